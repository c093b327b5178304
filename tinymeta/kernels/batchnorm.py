"""Compiled twin of :mod:`tinymeta.batchnorm`: one layer's normalisation, its VJP and its R-operator.

Same equations (tutorial 9, eqs. (9.1)-(9.4)) on preallocated arrays: ``Z``, ``Zhat``, ``G`` are
(n, d) views, ``r`` = (var + EPS)^(-1/2) and ``R_r`` = R{r} are (d,) vectors, and ``cols`` is a
scratch of 4 d entries for the column means bar{.}. Every column mean is summed row after row and
then divided by n, the order of NumPy's ``mean(axis=0)`` on a C-ordered array: the result does
not depend on threads, and it matches the reference to rounding.

R-forward reuses the VJP: the Jacobian of zhat in z, r (I - 1 1^T / n - zhat zhat^T / n) per column,
is symmetric, so R{zhat} = J R{z} is eq. (9.2) applied to R{z}, and R{r} = -r^2 bar{zhat R{z}}
(eq. (9.3) with bar{zhat} = 0).
"""

from __future__ import annotations

import math

from numba import njit

from ..batchnorm import EPS
from .views import view1


@njit(cache=True)
def col_mean(A, out):
    """out = bar{A} = (1/n) 1^T A, summed row after row."""
    n, d = A.shape
    for j in range(d):
        out[j] = A[0, j]
    for i in range(1, n):
        for j in range(d):
            out[j] += A[i, j]
    for j in range(d):
        out[j] /= n


@njit(cache=True)
def col_mean_of_product(A, B, out):
    """out = bar{A * B}, the column means of the elementwise product, summed row after row."""
    n, d = A.shape
    for j in range(d):
        out[j] = A[0, j] * B[0, j]
    for i in range(1, n):
        for j in range(d):
            out[j] += A[i, j] * B[i, j]
    for j in range(d):
        out[j] /= n


@njit(cache=True)
def normalise(Z, Zhat, r):
    """Eq. (9.1): mu = bar{z}, s2 = bar{(z - mu)^2}, r = (s2 + EPS)^(-1/2), Zhat = (z - mu) r.

    ``r`` holds mu, then s2, then r: no other scratch is needed.
    """
    n, d = Z.shape
    col_mean(Z, r)  # mu
    for i in range(n):
        for j in range(d):
            Zhat[i, j] = Z[i, j] - r[j]  # z - mu
    col_mean_of_product(Zhat, Zhat, r)  # s2
    for j in range(d):
        r[j] = 1.0 / math.sqrt(r[j] + EPS)
    for i in range(n):
        for j in range(d):
            Zhat[i, j] = Zhat[i, j] * r[j]


@njit(cache=True)
def vjp(G, Zhat, r, out, cols):
    """Eq. (9.2): out = r (G - bar{G} - Zhat bar{G Zhat}); ``out`` may be ``G`` itself.

    Leaves bar{G Zhat} in ``cols[d:2d]`` (R-forward needs it for R{r}).
    """
    n, d = G.shape
    mean_g, mean_gz = view1(cols, 0, d), view1(cols, d, d)
    col_mean(G, mean_g)
    col_mean_of_product(G, Zhat, mean_gz)
    for i in range(n):
        for j in range(d):
            out[i, j] = r[j] * ((G[i, j] - mean_g[j]) - Zhat[i, j] * mean_gz[j])


@njit(cache=True)
def rop(Rz, Zhat, r, R_zhat, R_r, cols):
    """Eq. (9.3): R{zhat} = J R{z} (the VJP's formula, J being symmetric), R{r} = -r^2 bar{zhat R{z}}."""
    d = Rz.shape[1]
    vjp(Rz, Zhat, r, R_zhat, cols)
    mean_zRz = view1(cols, d, d)
    for j in range(d):
        R_r[j] = -(r[j] * r[j]) * mean_zRz[j]


@njit(cache=True)
def rop_vjp(G, RG, Zhat, r, R_zhat, R_r, cols):
    """Eq. (9.4), in place: RG <- R{dL/dz} = R{r} (G - bar{G} - Zhat m)
    + r (R{G} - bar{R{G}} - R{zhat} m - Zhat R{m}), with m = bar{G Zhat}, R{m} = bar{R{G} Zhat + G R{zhat}}.
    """
    n, d = G.shape
    mean_g, m = view1(cols, 0, d), view1(cols, d, d)
    mean_rg, R_m = view1(cols, 2 * d, d), view1(cols, 3 * d, d)
    col_mean(G, mean_g)
    col_mean_of_product(G, Zhat, m)
    col_mean(RG, mean_rg)
    for j in range(d):
        R_m[j] = RG[0, j] * Zhat[0, j] + G[0, j] * R_zhat[0, j]
    for i in range(1, n):
        for j in range(d):
            R_m[j] += RG[i, j] * Zhat[i, j] + G[i, j] * R_zhat[i, j]
    for j in range(d):
        R_m[j] /= n
    for i in range(n):
        for j in range(d):
            first = R_r[j] * ((G[i, j] - mean_g[j]) - Zhat[i, j] * m[j])
            second = r[j] * (((RG[i, j] - mean_rg[j]) - R_zhat[i, j] * m[j]) - Zhat[i, j] * R_m[j])
            RG[i, j] = first + second
