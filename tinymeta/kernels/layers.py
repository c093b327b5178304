"""Compiled twins of :mod:`tinymeta.mlp`: forward, backward and R-operator of a stack of dense layers.

Same equations as the NumPy reference (tutorial 1, eqs. (1.1)-(1.2); tutorial 2, eq. (2.3)),
written for Numba: every array is preallocated by the caller (see
:mod:`tinymeta.kernels.workspace`) and every product is a BLAS call
``np.dot(a, b, out)`` into a C-contiguous output (see :func:`matmul`), with transposes passed as
``.T`` views (Fortran-ordered, so BLAS reads them with a transpose flag, no copy).

Per layer l = 1..L (index ``l - 1`` in the arrays) a *set* of buffers holds, for n rows:
``A`` = a_l (for l = L the output z_L), ``S`` = sigma'(z_l), ``D`` = delta_l and
``E`` = e_l = delta_{l+1} W_{l+1}^T. sigma'' is recovered from (a_l, sigma'(z_l)), so z_l
itself is never stored. The R-operator uses a second set with the same roles:
R{a_l}, R{z_l}, R{delta_l}, R{e_l}.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .views import view1, view2

IDENTITY, RELU, TANH, SIGMOID, SOFTPLUS = 0, 1, 2, 3, 4
ACTIVATION_CODES = {"identity": IDENTITY, "relu": RELU, "tanh": TANH, "sigmoid": SIGMOID,
                    "softplus": SOFTPLUS}  # fmt: skip
"""Integer code of each activation in :data:`tinymeta.activations.ACTIVATIONS`."""

ACT, DACT, DELTA, ERR = 0, 1, 2, 3
"""Roles of the per-layer buffers of a set: a_l, sigma'(z_l), delta_l, e_l (R-set: R{.} of each)."""


@njit(cache=True)
def weight(phi, sizes, param_off, l):
    """W_{l+1}, the (d_l, d_{l+1}) view into ``phi``."""
    return view2(phi, param_off[l, 0], sizes[l], sizes[l + 1])


@njit(cache=True)
def bias(phi, sizes, param_off, l):
    """b_{l+1}, the (d_{l+1},) view into ``phi``."""
    return view1(phi, param_off[l, 1], sizes[l + 1])


SMALL = 4096
"""Products of at most this many multiply-adds with a 1-wide operand are written as loops."""


@njit(cache=True)
def matmul(A, B, out):
    """out = A B, (m, k) (k, n) -> (m, n): BLAS dgemm, or a loop for the degenerate products of a
    1-wide input or output layer.

    Loops (measured on 10-row sine batches): an outer product (k = 1; OpenBLAS takes its general,
    locking gemm path: loop 156 ns, BLAS 215 ns), a row (m = 1) or a column (n = 1, from a
    transposed A) with the inner loop over the contiguous axis (57-74 ns, BLAS gemv 108-112 ns).
    Everything else goes to BLAS, which is faster even for (10, 40) (40, 1): a loop there would
    be a serial sum.
    """
    m, k = A.shape
    n = B.shape[1]
    if k == 1:
        for i in range(m):
            a = A[i, 0]
            for j in range(n):
                out[i, j] = a * B[0, j]
    elif m == 1 and k * n <= SMALL:
        for j in range(n):
            out[0, j] = 0.0
        for p in range(k):
            a = A[0, p]
            for j in range(n):
                out[0, j] += a * B[p, j]
    elif n == 1 and m * k <= SMALL and A.strides[0] == A.itemsize:  # A's columns are contiguous
        for i in range(m):
            out[i, 0] = 0.0
        for p in range(k):
            b = B[p, 0]
            for i in range(m):
                out[i, 0] += A[i, p] * b
    else:
        np.dot(A, B, out)


@njit(cache=True)
def bias_activate(code, A, b, S):
    """In place, z = A + b: A <- sigma(z), S <- sigma'(z). ``(n, d)``; same formulas as activations.py."""
    n, d = A.shape
    for i in range(n):
        for j in range(d):
            z = A[i, j] + b[j]
            if code == RELU:
                A[i, j] = 0.0 if z <= 0.0 else z  # NaN passes through, as np.maximum does
                S[i, j] = 1.0 if z > 0.0 else 0.0
            elif code == TANH:
                t = math.tanh(z)
                A[i, j] = t
                S[i, j] = 1.0 - t * t
            elif code == SIGMOID:
                s = 0.5 * (1.0 + math.tanh(0.5 * z))
                A[i, j] = s
                S[i, j] = s * (1.0 - s)
            elif code == SOFTPLUS:
                # log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}), as np.logaddexp(0, z)
                A[i, j] = (z + math.log1p(math.exp(-z))) if z > 0.0 else math.log1p(math.exp(z))
                S[i, j] = 0.5 * (1.0 + math.tanh(0.5 * z))
            else:
                A[i, j] = z
                S[i, j] = 1.0


@njit(cache=True)
def add_bias(A, b):
    n, d = A.shape
    for i in range(n):
        for j in range(d):
            A[i, j] += b[j]


@njit(cache=True)
def col_sum(D, out):
    """out = 1^T D, summed row after row (the order of ``D.sum(axis=0)``)."""
    n, d = D.shape
    for j in range(d):
        out[j] = D[0, j]
    for i in range(1, n):
        for j in range(d):
            out[j] += D[i, j]


@njit(cache=True)
def forward(code, phi, sizes, param_off, X, buf, offs, n):
    """a_l = sigma(a_{l-1} W_l + b_l), output z_L (eq. (1.1)); fills A and S of the set ``offs``.

    ``X`` is (n, d_0); ``offs`` is the (4, L) offset table of the set; the output z_L is left in A_L.
    """
    L = sizes.size - 1
    a = X
    for l in range(L):
        A = view2(buf, offs[ACT, l], n, sizes[l + 1])
        matmul(a, weight(phi, sizes, param_off, l), A)
        if l < L - 1:
            bias_activate(code, A, bias(phi, sizes, param_off, l), view2(buf, offs[DACT, l], n, sizes[l + 1]))
        else:
            add_bias(A, bias(phi, sizes, param_off, l))
        a = A


@njit(cache=True)
def backward(phi, sizes, param_off, X, buf, offs, n, g):
    """Backprop from delta_L (already in D_L) into the flat gradient ``g`` (P,), eq. (1.2).

    dL/dW_l = a_{l-1}^T delta_l, dL/db_l = 1^T delta_l, e_{l-1} = delta_l W_l^T,
    delta_{l-1} = sigma'(z_{l-1}) * e_{l-1}. Fills D and E of the set.
    """
    L = sizes.size - 1
    for l in range(L - 1, -1, -1):
        D = view2(buf, offs[DELTA, l], n, sizes[l + 1])
        a = X if l == 0 else view2(buf, offs[ACT, l - 1], n, sizes[l])
        matmul(a.T, D, weight(g, sizes, param_off, l))
        col_sum(D, bias(g, sizes, param_off, l))
        if l > 0:
            E = view2(buf, offs[ERR, l - 1], n, sizes[l])
            matmul(D, weight(phi, sizes, param_off, l).T, E)
            S = view2(buf, offs[DACT, l - 1], n, sizes[l])
            Dp = view2(buf, offs[DELTA, l - 1], n, sizes[l])
            for i in range(n):
                for j in range(sizes[l]):
                    Dp[i, j] = S[i, j] * E[i, j]


@njit(cache=True)
def r_forward(phi, v, sizes, param_off, X, buf, offs, roffs, n, scratch):
    """R{z_l} = R{a_{l-1}} W_l + a_{l-1} V_l + c_l,  R{a_l} = sigma'(z_l) * R{z_l}  (eq. (2.3)).

    ``offs``: the set holding a_l, sigma'(z_l) at phi; ``roffs``: the R-set (filled: R{a}, R{z});
    ``scratch``: of at least n * max(d_l) entries. R{z_L} is left in the R-set's S_L.
    """
    L = sizes.size - 1
    for l in range(L):
        d = sizes[l + 1]
        a = X if l == 0 else view2(buf, offs[ACT, l - 1], n, sizes[l])
        Rz = view2(buf, roffs[DACT, l], n, d)
        matmul(a, weight(v, sizes, param_off, l), Rz)
        if l > 0:
            tmp = view2(scratch, 0, n, d)
            matmul(view2(buf, roffs[ACT, l - 1], n, sizes[l]), weight(phi, sizes, param_off, l), tmp)
            for i in range(n):
                for j in range(d):
                    Rz[i, j] += tmp[i, j]
        add_bias(Rz, bias(v, sizes, param_off, l))
        if l < L - 1:
            S = view2(buf, offs[DACT, l], n, d)
            Ra = view2(buf, roffs[ACT, l], n, d)
            for i in range(n):
                for j in range(d):
                    Ra[i, j] = S[i, j] * Rz[i, j]


@njit(cache=True)
def r_backward(code, phi, v, sizes, param_off, X, buf, offs, roffs, n, hv, scratch):
    """H v from R{delta_L} (already in the R-set's D_L) back to layer 1, eq. (2.3).

    R{dL/dW_l} = R{a_{l-1}}^T delta_l + a_{l-1}^T R{delta_l},  R{dL/db_l} = 1^T R{delta_l},
    R{e_{l-1}} = R{delta_l} W_l^T + delta_l V_l^T,
    R{delta_{l-1}} = sigma''(z_{l-1}) R{z_{l-1}} e_{l-1} + sigma'(z_{l-1}) R{e_{l-1}}.
    Writes the (P,) result into ``hv``; ``scratch``: of n max(d_l). The R-set must be paired
    with the set (see workspace.layout): R{dL/dW_l} is then the single product
    [R{a_{l-1}}; a_{l-1}]^T [delta_l; R{delta_l}] (R{a_0} = 0 leaves X^T R{delta_1} at layer 1).
    """
    L = sizes.size - 1
    for l in range(L - 1, -1, -1):
        d_in, d = sizes[l], sizes[l + 1]
        D = view2(buf, offs[DELTA, l], n, d)
        RD = view2(buf, roffs[DELTA, l], n, d)
        hW = weight(hv, sizes, param_off, l)
        col_sum(RD, bias(hv, sizes, param_off, l))
        if l == 0:
            matmul(X.T, RD, hW)
            continue
        matmul(view2(buf, roffs[ACT, l - 1], 2 * n, d_in).T, view2(buf, offs[DELTA, l], 2 * n, d), hW)
        Re = view2(buf, roffs[ERR, l - 1], n, d_in)
        matmul(RD, weight(phi, sizes, param_off, l).T, Re)
        tmp = view2(scratch, 0, n, d_in)
        matmul(D, weight(v, sizes, param_off, l).T, tmp)
        A = view2(buf, offs[ACT, l - 1], n, d_in)
        S = view2(buf, offs[DACT, l - 1], n, d_in)
        E = view2(buf, offs[ERR, l - 1], n, d_in)
        Rz = view2(buf, roffs[DACT, l - 1], n, d_in)
        RDp = view2(buf, roffs[DELTA, l - 1], n, d_in)
        for i in range(n):
            for j in range(d_in):
                Re[i, j] += tmp[i, j]
                RDp[i, j] = sigma_d2(code, A[i, j], S[i, j]) * Rz[i, j] * E[i, j] + S[i, j] * Re[i, j]


@njit(cache=True, inline="always")
def sigma_d2(code, a, s):
    """sigma''(z) from a = sigma(z) and s = sigma'(z) (activations.py writes it from z)."""
    if code == TANH:
        return -2.0 * a * s  # -2 tanh (1 - tanh^2)
    if code == SIGMOID:
        return s * (1.0 - 2.0 * a)  # s (1 - s)(1 - 2 s)
    if code == SOFTPLUS:
        return s * (1.0 - s)  # softplus'' = logistic', and s = logistic(z)
    return 0.0  # relu (away from the kink), identity
