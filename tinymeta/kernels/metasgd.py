"""Fused kernel of Meta-SGD (and of ANIL, which is Meta-SGD with alphas = alpha m): a meta-batch in one call.

Per task, the code paths of the exact MAML kernel (:func:`tinymeta.kernels.meta._maml_task`) with a
step size per parameter instead of one alpha (eqs. (6.1)-(6.3) of :mod:`tinymeta.metasgd`)::

    phi_{i+1} = phi_i - alphas * g_i                       (g_i = grad L_A(phi_i), kept for the backward)
    v = grad L_B(phi_k);  for i = k-1 .. 0:   dF/dalphas -= g_i * v,   v <- v - H_i (alphas * v)

with the same buffers (set i for inner step i, set k for the query pass, R-set k + 1 + i for the HVP at
phi_i) and the same deterministic reduction over tasks. ITERATES holds 2k + 1 rows: phi_1 .. phi_k,
then g_0 .. g_{k-1}, then w = alphas * v, the direction of the HVP. ANIL's head-only inner loop is the
case alphas = alpha m, m the 0/1 mask of the head (:mod:`tinymeta.anil`): the wrappers in
:mod:`tinymeta.kernels` pass that vector and drop dF/dalphas.

meta.py's helpers are compiled into this kernel (none is cached on its own), so its cache is keyed on
meta.py's source as well as on the files meta.py's own kernels are keyed on.
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
from .workspace import HVP_OUT, ITERATES, SCRATCH, X_BATCH


@njit
def _metasgd_task(act, loss, bn, sizes, param_off, phi, alphas, X, yf, yi, Xq, yqf, yqi, k, buf, off,
                  extra_off, v, d_alphas, st):  # fmt: skip
    """One task: k steps with the step sizes ``alphas`` (iterates and gradients kept), the query gradient
    into ``v``, then the right-to-left chain into ``v`` (dF/dphi) and ``d_alphas``. Returns the query loss."""
    P, n, nq, L = phi.size, X.shape[0], Xq.shape[0], sizes.size - 1
    rows = view2(buf, extra_off[ITERATES], 2 * k + 1, P)  # phi_1..phi_k, g_0..g_{k-1}, w
    cols = bn_columns(buf, extra_off, bn, sizes)
    cur = phi
    for s in range(k):
        g, nxt = rows[k + s], rows[s]
        val = loss_grad(act, loss, bn, cur, sizes, param_off, X, yf, yi, buf, off[s], n, g, cols)
        bad = 0
        for j in range(P):  # phi_{s+1} = phi_s - alphas * g_s, eq. (6.1)
            nxt[j] = cur[j] - alphas[j] * g[j]
            bad += (nxt[j] - nxt[j]) != 0.0
        if bad > 0 or not np.isfinite(val):
            st[0], st[1] = DIVERGED, s
            return val
        cur = nxt
    val = loss_grad(act, loss, bn, cur, sizes, param_off, Xq, yqf, yqi, buf, off[k], nq, v, cols)
    for j in range(P):
        d_alphas[j] = 0.0
    w, hv = rows[2 * k], view1(buf, extra_off[HVP_OUT], P)
    scratch = view1(buf, extra_off[SCRATCH], extra_off[X_BATCH] - extra_off[SCRATCH])
    for s in range(k - 1, -1, -1):
        g = rows[k + s]
        for j in range(P):
            d_alphas[j] -= g[j] * v[j]  # eq. (6.3), with v = v_{s+1}
            w[j] = alphas[j] * v[j]
        ph, roffs = (phi if s == 0 else rows[s - 1]), off[k + 1 + s]
        r_forward(ph, w, sizes, param_off, X, buf, off[s], roffs, n, scratch, bn, cols)
        Y, Rz = view2(buf, off[s][ACT, L - 1], n, sizes[L]), view2(buf, roffs[DACT, L - 1], n, sizes[L])
        hvp(loss, Y, Rz, view2(buf, roffs[DELTA, L - 1], n, sizes[L]))
        r_backward(act, ph, w, sizes, param_off, X, buf, off[s], roffs, n, hv, scratch, bn, cols)
        for j in range(P):
            v[j] = v[j] - hv[j]  # eq. (6.2): v_s = v_{s+1} - H_s (alphas * v_{s+1})
    return val


def _make_kernel(digest):
    @njit(cache=True, parallel=True)
    def metasgd_kernel(act, loss, bn, sizes, phi, alphas, xs, ysf, ysi, xq, yqf, yqi, k, buf, set_off,
                       extra_off, param_off, task_rows, alpha_rows, values, status, out,
                       out_alphas):  # fmt: skip
        """Meta-SGD over all tasks. Returns the mean query loss; ``out`` = mean dF/dphi, ``out_alphas`` =
        mean dF/dalphas (the rows of ``task_rows`` and ``alpha_rows``, summed in task order)."""
        if digest == 0:  # never true; ties this build to the helpers' sources (see meta.source_digest)
            return np.nan
        B, nslots, c = xs.shape[0], buf.shape[0], sizes[sizes.size - 1]
        phi_ok = count_nonfinite(phi) == 0 and count_nonfinite(alphas) == 0
        sizes, phi, alphas, xs, ysf, ysi = unowned(sizes), unowned(phi), unowned(alphas), unowned(xs), \
            unowned(ysf), unowned(ysi)  # fmt: skip
        xq, yqf, yqi, buf, set_off = unowned(xq), unowned(yqf), unowned(yqi), unowned(buf), unowned(set_off)
        extra_off, param_off, task_rows = unowned(extra_off), unowned(param_off), unowned(task_rows)
        alpha_rows, status = unowned(alpha_rows), unowned(status)
        for slot in prange(nslots):
            for i in range(slot, B, nslots):
                status[i, 0], status[i, 1] = OK, 0
                yf, yqf_ = (ysf[i], yqf[i]) if loss == MSE else (ysf[0], yqf[0])
                yi, yqi_ = (ysi[0], yqi[0]) if loss == MSE else (ysi[i], yqi[i])
                if not (phi_ok and task_ok(loss, xs[i], yf, yi, c) and task_ok(loss, xq[i], yqf_, yqi_, c)):
                    status[i, 0] = BAD_INPUT
                    continue
                values[i] = _metasgd_task(act, loss, bn, sizes, param_off, phi, alphas, xs[i], yf, yi, xq[i],
                                          yqf_, yqi_, k, buf[slot], set_off, extra_off, task_rows[i],
                                          alpha_rows[i], status[i])  # fmt: skip
        mean_rows(alpha_rows, values, status, out_alphas)
        return mean_rows(task_rows, values, status, out)

    return metasgd_kernel


metasgd_kernel = _make_kernel(source_digest(_meta))
