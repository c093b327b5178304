"""Fused kernel of iMAML's practical variant (:mod:`tinymeta.imaml_approx`): a meta-batch in one call.

Per task (eq. (5.5), then eq. (5.3) by a fixed number n of CG iterations)::

    u_{s+1} = u_s - alpha (grad L_A(u_s) + lam (u_s - phi))       s = 0 .. k-1,  phi_k = u_k
    b = grad L_B(phi_k);  g = at most n iterations of CG on (I + H_A(phi_k)/lam) g = b from g = 0

CG is written out here as ``scipy.sparse.linalg.cg`` runs it (the reference calls scipy): residual r = b,
p = r, then per iteration q = A p, a = (r.r) / (p.q), g += a p, r -= a q, p = r + ((r.r)_new / (r.r)_old) p;
stopping early once ||r|| < CG_RTOL ||b||, the norms and dot products by BLAS as in scipy. One more
forward and backward pass at phi_k on the support set fills the buffers every HVP reuses. Buffers: set 0
(the support set) with its R-set, set 1 (the query set); ITERATES holds u (two rows, alternating), r, p
and q; g is written into the task's row.

The exact iMAML gradient has no twin (measured in :mod:`tinymeta.kernels`): its time goes to SciPy's
trust-region and CG loops, which a kernel would have to re-implement.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import meta as _meta
from .layers import ACT, DACT, DELTA, r_backward, r_forward
from .losses import MSE, hvp
from .meta import (  # the exact MAML kernel's helpers, compiled into this kernel
    BAD_INPUT,
    DIVERGED,
    OK,
    bn_columns,
    count_nonfinite,
    loss_grad,
    mean_rows,
    source_digest,
    task_ok,
)
from .views import unowned, view1, view2
from .workspace import GRAD, HVP_OUT, ITERATES, SCRATCH, X_BATCH

CG_RTOL = 1e-10
"""As :data:`tinymeta.imaml_approx.CG_RTOL` (a test holds the two equal)."""


@njit
def _dot(a, b):
    """a . b by BLAS ddot, as ``np.dot`` in scipy's CG: CG's iterates carry the rounding of every dot
    product (amplified by the condition number), so a loop in another order would miss rtol 1e-12."""
    return np.dot(a, b)


@njit
def _imaml_task(act, loss, bn, sizes, param_off, phi, X, yf, yi, Xq, yqf, yqi, lam, alpha, k, iterations,
                rtol, buf, off, extra_off, g, st):  # fmt: skip
    """One task: k proximal gradient steps, the query gradient, n CG iterations into ``g``. Returns L_B."""
    P, n, nq, L = phi.size, X.shape[0], Xq.shape[0], sizes.size - 1
    rows = view2(buf, extra_off[ITERATES], 5, P)  # u (2 rows), r, p, q
    r, p, q = rows[2], rows[3], rows[4]
    gs, hv = view1(buf, extra_off[GRAD], P), view1(buf, extra_off[HVP_OUT], P)
    cols = bn_columns(buf, extra_off, bn, sizes)
    scratch = view1(buf, extra_off[SCRATCH], extra_off[X_BATCH] - extra_off[SCRATCH])
    cur = phi
    for s in range(k):
        val = loss_grad(act, loss, bn, cur, sizes, param_off, X, yf, yi, buf, off[0], n, gs, cols)
        nxt, bad = rows[s % 2], 0
        for j in range(P):  # eq. (5.5)
            nxt[j] = cur[j] - alpha * (gs[j] + lam * (cur[j] - phi[j]))
            bad += (nxt[j] - nxt[j]) != 0.0
        if bad > 0 or not np.isfinite(val):
            st[0], st[1] = DIVERGED, s
            return val
        cur = nxt
    # b, as r = b
    val = loss_grad(act, loss, bn, cur, sizes, param_off, Xq, yqf, yqi, buf, off[1], nq, r, cols)
    if count_nonfinite(r) > 0 or not np.isfinite(val):
        st[0], st[1] = DIVERGED, k
        return val
    loss_grad(act, loss, bn, cur, sizes, param_off, X, yf, yi, buf, off[0], n, gs, cols)  # buffers at phi_k
    for j in range(P):
        g[j] = 0.0
    bnorm = np.linalg.norm(r)
    if bnorm == 0.0:  # b = 0: scipy returns b
        return val
    stop, rho_prev = rtol * bnorm, 1.0
    for it in range(iterations):
        if np.linalg.norm(r) < stop:
            break
        rho = _dot(r, r)
        if it == 0:
            for j in range(P):
                p[j] = r[j]
        else:
            beta = rho / rho_prev
            for j in range(P):
                p[j] = p[j] * beta
                p[j] += r[j]
        r_forward(cur, p, sizes, param_off, X, buf, off[0], off[2], n, scratch, bn, cols)
        Y, Rz = view2(buf, off[0][ACT, L - 1], n, sizes[L]), view2(buf, off[2][DACT, L - 1], n, sizes[L])
        hvp(loss, Y, Rz, view2(buf, off[2][DELTA, L - 1], n, sizes[L]))
        r_backward(act, cur, p, sizes, param_off, X, buf, off[0], off[2], n, hv, scratch, bn, cols)
        for j in range(P):
            q[j] = p[j] + hv[j] / lam  # q = (I + H_A(phi_k)/lam) p
        a = rho / _dot(p, q)
        for j in range(P):
            g[j] += a * p[j]
            r[j] -= a * q[j]
        rho_prev = rho
    return val


def _make_kernel(digest):
    @njit(cache=True, parallel=True)
    def imaml_approx_kernel(act, loss, bn, sizes, phi, xs, ysf, ysi, xq, yqf, yqi, lam, alpha, k,
                            iterations, rtol, buf, set_off, extra_off, param_off, task_rows, values, status,
                            out):  # fmt: skip
        """iMAML's practical variant over all tasks; returns the mean query loss at phi_k; ``out``: mean g."""
        if digest == 0:  # never true; ties this build to the helpers' sources (see meta.source_digest)
            return np.nan
        B, nslots, c = xs.shape[0], buf.shape[0], sizes[sizes.size - 1]
        phi_ok = count_nonfinite(phi) == 0
        sizes, phi, xs, ysf, ysi = unowned(sizes), unowned(phi), unowned(xs), unowned(ysf), unowned(ysi)
        xq, yqf, yqi, buf, set_off = unowned(xq), unowned(yqf), unowned(yqi), unowned(buf), unowned(set_off)
        extra_off, param_off, task_rows = unowned(extra_off), unowned(param_off), unowned(task_rows)
        status = unowned(status)
        for slot in prange(nslots):
            for i in range(slot, B, nslots):
                status[i, 0], status[i, 1] = OK, 0
                yf, yqf_ = (ysf[i], yqf[i]) if loss == MSE else (ysf[0], yqf[0])
                yi, yqi_ = (ysi[0], yqi[0]) if loss == MSE else (ysi[i], yqi[i])
                if not (phi_ok and task_ok(loss, xs[i], yf, yi, c) and task_ok(loss, xq[i], yqf_, yqi_, c)):
                    status[i, 0] = BAD_INPUT
                    continue
                values[i] = _imaml_task(act, loss, bn, sizes, param_off, phi, xs[i], yf, yi, xq[i], yqf_,
                                        yqi_, lam, alpha, k, iterations, rtol, buf[slot], set_off, extra_off,
                                        task_rows[i], status[i])  # fmt: skip
        return mean_rows(task_rows, values, status, out)

    return imaml_approx_kernel


imaml_approx_kernel = _make_kernel(source_digest(_meta))
