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

Batch norm (``bn`` true; :mod:`tinymeta.mlp`, eqs. (9.1)-(9.4)): each hidden layer also keeps
``ZHAT`` = zhat_l (n, d_l), ``INV_STD`` = r_l (d_l,) and ``DTILDE`` = dtilde_l = sigma'(ztilde_l) * e_l;
the activation is evaluated at ztilde_l = zhat_l + beta_l, so ``A`` and ``S`` hold sigma and sigma'
there (and sigma'' is recovered from them as before). The R-set keeps R{zhat_l} and R{r_l} in the
same roles, and its ``DACT`` buffer holds R{ztilde_l} = R{zhat_l} + R{beta_l}. beta_l sits in phi
after all (W_l, b_l) (offset ``param_off[l - 1, 2]``); the normalisation's rules are in :mod:`.batchnorm`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import batchnorm as bn_rules
from .activations import ACTIVATION_CODES, bias_activate, sigma_d2  # noqa: F401 (ACTIVATION_CODES: re-exported)
from .views import view1, view2

ACT, DACT, DELTA, ERR, ZHAT, DTILDE, INV_STD = range(7)
"""Roles of the per-layer buffers of a set: a_l, sigma'(z_l), delta_l, e_l (R-set: R{.} of each); with
batch norm zhat_l, dtilde_l and r_l (R-set: R{zhat_l}, none, R{r_l})."""
NROLES = 7


@njit(cache=True)
def weight(phi, sizes, param_off, l):
    """W_{l+1}, the (d_l, d_{l+1}) view into ``phi``."""
    return view2(phi, param_off[l, 0], sizes[l], sizes[l + 1])


@njit(cache=True)
def bias(phi, sizes, param_off, l):
    """b_{l+1}, the (d_{l+1},) view into ``phi``."""
    return view1(phi, param_off[l, 1], sizes[l + 1])


@njit(cache=True)
def shift(phi, sizes, param_off, l):
    """beta_{l+1}, the (d_{l+1},) batch-norm shift of hidden layer l + 1, a view into ``phi``."""
    return view1(phi, param_off[l, 2], sizes[l + 1])


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
def forward(code, phi, sizes, param_off, X, buf, offs, n, bn):
    """a_l = sigma(a_{l-1} W_l + b_l), output z_L (eq. (1.1)); fills A and S of the set ``offs``.

    ``X`` is (n, d_0); ``offs`` is the (NROLES, L) offset table of the set; the output z_L is left in
    A_L. With ``bn``, eq. (9.1): z_l -> ZHAT, r_l -> INV_STD, a_l = sigma(zhat_l + beta_l).
    """
    L = sizes.size - 1
    a = X
    for l in range(L):
        d = sizes[l + 1]
        A = view2(buf, offs[ACT, l], n, d)
        matmul(a, weight(phi, sizes, param_off, l), A)
        if l == L - 1:
            add_bias(A, bias(phi, sizes, param_off, l))
        elif bn:
            add_bias(A, bias(phi, sizes, param_off, l))  # z_l
            Zhat = view2(buf, offs[ZHAT, l], n, d)
            bn_rules.normalise(A, Zhat, view1(buf, offs[INV_STD, l], d))
            bias_activate(code, Zhat, shift(phi, sizes, param_off, l), A, view2(buf, offs[DACT, l], n, d))
        else:
            bias_activate(code, A, bias(phi, sizes, param_off, l), A, view2(buf, offs[DACT, l], n, d))
        a = A


@njit(cache=True)
def backward(phi, sizes, param_off, X, buf, offs, n, g, bn, cols):
    """Backprop from delta_L (already in D_L) into the flat gradient ``g`` (P,), eq. (1.2).

    dL/dW_l = a_{l-1}^T delta_l, dL/db_l = 1^T delta_l, e_{l-1} = delta_l W_l^T,
    delta_{l-1} = sigma'(z_{l-1}) * e_{l-1}. Fills D and E of the set. With ``bn``, eq. (9.2):
    dtilde_{l-1} = sigma'(ztilde_{l-1}) * e_{l-1} (kept in DTILDE), dL/dbeta_{l-1} = 1^T dtilde_{l-1},
    delta_{l-1} = BN_vjp(dtilde_{l-1}); ``cols``: scratch of 2 max(d_l).
    """
    L = sizes.size - 1
    for l in range(L - 1, -1, -1):
        d_in = sizes[l]
        D = view2(buf, offs[DELTA, l], n, sizes[l + 1])
        a = X if l == 0 else view2(buf, offs[ACT, l - 1], n, d_in)
        matmul(a.T, D, weight(g, sizes, param_off, l))
        col_sum(D, bias(g, sizes, param_off, l))
        if l > 0:
            E = view2(buf, offs[ERR, l - 1], n, d_in)
            matmul(D, weight(phi, sizes, param_off, l).T, E)
            S = view2(buf, offs[DACT, l - 1], n, d_in)
            Dp = view2(buf, offs[DELTA, l - 1], n, d_in)
            Dt = view2(buf, offs[DTILDE, l - 1], n, d_in) if bn else Dp
            for i in range(n):
                for j in range(d_in):
                    Dt[i, j] = S[i, j] * E[i, j]
            if bn:
                col_sum(Dt, shift(g, sizes, param_off, l - 1))
                zhat, r = view2(buf, offs[ZHAT, l - 1], n, d_in), view1(buf, offs[INV_STD, l - 1], d_in)
                bn_rules.vjp(Dt, zhat, r, Dp, cols)


@njit(cache=True)
def r_forward(phi, v, sizes, param_off, X, buf, offs, roffs, n, scratch, bn, cols):
    """R{z_l} = R{a_{l-1}} W_l + a_{l-1} V_l + c_l,  R{a_l} = sigma'(z_l) * R{z_l}  (eq. (2.3)).

    ``offs``: the set holding a_l, sigma'(z_l) at phi; ``roffs``: the R-set (filled: R{a}, R{z});
    ``scratch``: of at least n * max(d_l) entries. R{z_L} is left in the R-set's S_L. With ``bn``,
    eq. (9.3): R{zhat_l}, R{r_l} from R{z_l} (into the R-set's ZHAT, INV_STD), and the R-set's S_l
    holds R{ztilde_l} = R{zhat_l} + R{beta_l}; ``cols``: scratch of 2 max(d_l).
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
            if bn:
                zhat, r = view2(buf, offs[ZHAT, l], n, d), view1(buf, offs[INV_STD, l], d)
                R_zhat, R_r = view2(buf, roffs[ZHAT, l], n, d), view1(buf, roffs[INV_STD, l], d)
                bn_rules.rop(Rz, zhat, r, R_zhat, R_r, cols)
                R_beta = shift(v, sizes, param_off, l)
                for i in range(n):
                    for j in range(d):
                        Rz[i, j] = R_zhat[i, j] + R_beta[j]  # R{ztilde_l}
            S = view2(buf, offs[DACT, l], n, d)
            Ra = view2(buf, roffs[ACT, l], n, d)
            for i in range(n):
                for j in range(d):
                    Ra[i, j] = S[i, j] * Rz[i, j]


@njit(cache=True)
def r_backward(code, phi, v, sizes, param_off, X, buf, offs, roffs, n, hv, scratch, bn, cols):
    """H v from R{delta_L} (already in the R-set's D_L) back to layer 1, eq. (2.3).

    R{dL/dW_l} = R{a_{l-1}}^T delta_l + a_{l-1}^T R{delta_l},  R{dL/db_l} = 1^T R{delta_l},
    R{e_{l-1}} = R{delta_l} W_l^T + delta_l V_l^T,
    R{delta_{l-1}} = sigma''(z_{l-1}) R{z_{l-1}} e_{l-1} + sigma'(z_{l-1}) R{e_{l-1}}.
    Writes the (P,) result into ``hv``; ``scratch``: of n max(d_l). The R-set must be paired
    with the set (see workspace.layout): R{dL/dW_l} is then the single product
    [R{a_{l-1}}; a_{l-1}]^T [delta_l; R{delta_l}] (R{a_0} = 0 leaves X^T R{delta_1} at layer 1).
    With ``bn``, eq. (9.4): the formula above gives R{dtilde_{l-1}} (at ztilde), R{dL/dbeta_{l-1}} =
    1^T R{dtilde_{l-1}}, and R{delta_{l-1}} = BN_rop_vjp(dtilde_{l-1}, R{dtilde_{l-1}}); ``cols``: 4 max(d_l).
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
        if bn:
            col_sum(RDp, shift(hv, sizes, param_off, l - 1))
            Dt, zhat = view2(buf, offs[DTILDE, l - 1], n, d_in), view2(buf, offs[ZHAT, l - 1], n, d_in)
            R_zhat, r = view2(buf, roffs[ZHAT, l - 1], n, d_in), view1(buf, offs[INV_STD, l - 1], d_in)
            bn_rules.rop_vjp(Dt, RDp, zhat, r, R_zhat, view1(buf, roffs[INV_STD, l - 1], d_in), cols)
