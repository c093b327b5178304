"""Fused kernels: the whole per-meta-iteration work of MAML, FOMAML or Reptile in one compiled call.

Each kernel runs every task of a meta-batch (inner loop, query pass, and for MAML the
right-to-left chain v <- (I - alpha H_i) v of eq. (3.3)), writes task i's result into
row i of ``G`` and its loss into ``values[i]``, then averages the rows in task order.
Tasks are spread over the worker threads with ``prange`` (slot c of the workspace
takes tasks c, c + T, c + 2T, ...); as every row is computed by the same code
whichever thread runs it and the average is taken in a fixed order, the result does
not depend on the number of threads.

``status[i]`` reports, per task, ``(OK, 0)``, ``(BAD_INPUT, 0)`` (non-finite phi or data,
or a label out of range) or ``(DIVERGED, j)``: inner step j met a non-finite support
loss or gradient (``values[i]`` then holds that loss). The wrappers in
:mod:`tinymeta.kernels` turn these into the reference's exceptions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from numba import njit, prange

from . import activations as _activations
from . import batchnorm as _batchnorm
from . import layers as _layers
from . import losses as _losses
from . import views as _views
from . import workspace as _workspace
from .layers import ACT, DACT, DELTA, backward, forward, r_backward, r_forward
from .losses import MSE, hvp, value, value_and_grad
from .views import unowned, view1, view2
from .workspace import COLS, GRAD, HVP_OUT, ITERATES, SCRATCH, X_BATCH, Y_BATCH

OK, BAD_INPUT, DIVERGED = 0, 1, 2

# The helpers below are compiled as part of the kernels and are deliberately *not* cached on
# their own: a cached helper would keep the code of the layers.py / losses.py it was built
# with (this happened: a stale helper silently ran old code). Only the kernels are cached,
# keyed on those files' contents (see source_digest).


@njit
def count_nonfinite(a):
    """Number of NaN/inf entries of a C-contiguous array (x - x is 0 exactly when x is finite)."""
    flat = a.reshape(a.size)
    bad = 0
    for j in range(flat.size):
        bad += (flat[j] - flat[j]) != 0.0
    return bad


@njit
def task_ok(loss, X, yf, yi, c):
    """Finite inputs and targets (mse) or labels in [0, c) (cross-entropy)."""
    if count_nonfinite(X) > 0:
        return False
    if loss == MSE:
        return count_nonfinite(yf) == 0
    for j in range(yi.size):
        if yi[j] < 0 or yi[j] >= c:
            return False
    return True


@njit
def bn_columns(buf, extra_off, bn, sizes):
    """The batch-norm scratch of column means (4 max(d_l) entries; empty without batch norm)."""
    return view1(buf, extra_off[COLS], 4 * sizes.max() if bn else 0)


@njit
def loss_grad(act, loss, bn, phi, sizes, param_off, X, yf, yi, buf, offs, n, g, cols):
    """One forward and backward pass at ``phi`` on n rows: returns L, writes grad L into ``g``."""
    L = sizes.size - 1
    forward(act, phi, sizes, param_off, X, buf, offs, n, bn)
    Y = view2(buf, offs[ACT, L - 1], n, sizes[L])
    val = value_and_grad(loss, Y, yf, yi, view2(buf, offs[DELTA, L - 1], n, sizes[L]))
    backward(phi, sizes, param_off, X, buf, offs, n, g, bn, cols)
    return val


@njit
def sgd_step(cur, alpha, g, nxt):
    """nxt = cur - alpha g (phi_{i+1} = phi_i - alpha grad L_A(phi_i), eq. (3.1)); returns how many
    entries of nxt are not finite (x - x is 0 exactly when x is finite; a non-finite g makes nxt so).
    The count costs ~130 ns per 1761 entries."""
    bad = 0
    for j in range(cur.size):
        nxt[j] = cur[j] - alpha * g[j]
        bad += (nxt[j] - nxt[j]) != 0.0
    return bad


@njit
def _maml_task(
    act, loss, bn, sizes, param_off, phi, X, yf, yi, Xq, yqf, yqi, alpha, k, exact, buf, off, extra_off, v, st
):
    """One task: inner loop (sets 0..k-1 kept when ``exact``: each
    iterate is needed again for its Hessian), query gradient into ``v``, and,
    when ``exact`` (exact MAML), v <- (I - alpha H_i) v for i = k-1..0. Returns the query loss."""
    P, n, nq, L = phi.size, X.shape[0], Xq.shape[0], sizes.size - 1
    ntraj = k if exact else 2
    traj = view2(buf, extra_off[ITERATES], max(ntraj, 1), P)
    gs, cols = view1(buf, extra_off[GRAD], P), bn_columns(buf, extra_off, bn, sizes)
    cur = phi
    for s in range(k):
        offs = off[s] if exact else off[0]
        val = loss_grad(act, loss, bn, cur, sizes, param_off, X, yf, yi, buf, offs, n, gs, cols)
        nxt = traj[s] if exact else traj[s % 2]
        if sgd_step(cur, alpha, gs, nxt) > 0 or not np.isfinite(val):
            st[0], st[1] = DIVERGED, s
            return val
        cur = nxt
    qset = k if exact else 1
    val = loss_grad(act, loss, bn, cur, sizes, param_off, Xq, yqf, yqi, buf, off[qset], nq, v, cols)
    if not exact:
        return val
    hv = view1(buf, extra_off[HVP_OUT], P)
    scratch = view1(buf, extra_off[SCRATCH], extra_off[X_BATCH] - extra_off[SCRATCH])
    for s in range(k - 1, -1, -1):
        ph, roffs = (phi if s == 0 else traj[s - 1]), off[k + 1 + s]
        r_forward(ph, v, sizes, param_off, X, buf, off[s], roffs, n, scratch, bn, cols)
        Y, Rz = view2(buf, off[s][ACT, L - 1], n, sizes[L]), view2(buf, roffs[DACT, L - 1], n, sizes[L])
        hvp(loss, Y, Rz, view2(buf, roffs[DELTA, L - 1], n, sizes[L]))
        r_backward(act, ph, v, sizes, param_off, X, buf, off[s], roffs, n, hv, scratch, bn, cols)
        for j in range(P):
            v[j] -= alpha * hv[j]
    return val


@njit
def gather(loss, X, yf, yi, rows_idx, sizes, buf, ibuf, extra_off):
    """Copy the support rows ``rows_idx`` (a mini-batch) into the X_BATCH / Y_BATCH / ibuf scratch;
    returns ``(x, y_float, y_int, m)``, the mini-batch and its size."""
    m, L = rows_idx.size, sizes.size - 1
    x_, yf_, yi_ = (
        view2(buf, extra_off[X_BATCH], m, sizes[0]),
        view2(buf, extra_off[Y_BATCH], m, sizes[L]),
        view1(ibuf, 0, m),
    )
    for r in range(m):
        src = rows_idx[r]
        for j in range(sizes[0]):
            x_[r, j] = X[src, j]
        if loss == MSE:
            for j in range(sizes[L]):
                yf_[r, j] = yf[src, j]
        else:
            yi_[r] = yi[src]
    return x_, yf_, yi_, m


@njit
def _reptile_task(act, loss, bn, sizes, param_off, phi, X, yf, yi, alpha, k, idx, use_idx, buf, ibuf, off,
                  extra_off, d, st):  # fmt: skip
    """One task: k SGD steps on the support set (rows ``idx[j]`` at step j when ``use_idx``);
    writes phi~ - phi into ``d`` and returns the support loss at phi (eq. (4.1)). A step that leaves
    non-finite parameters sets ``st`` to (DIVERGED, step), as the reference raises there."""
    P, n, L = phi.size, X.shape[0], sizes.size - 1
    traj = view2(buf, extra_off[ITERATES], 2, P)
    gs, cols = view1(buf, extra_off[GRAD], P), bn_columns(buf, extra_off, bn, sizes)
    offs = off[0]
    val = np.nan
    if k == 0 or use_idx:
        forward(act, phi, sizes, param_off, X, buf, offs, n, bn)
        val = value(loss, view2(buf, offs[ACT, L - 1], n, sizes[L]), yf, yi)
    cur = phi
    for s in range(k):
        x_, yf_, yi_, rows = X, yf, yi, n
        if use_idx:
            x_, yf_, yi_, rows = gather(loss, X, yf, yi, idx[s], sizes, buf, ibuf, extra_off)
        step_val = loss_grad(act, loss, bn, cur, sizes, param_off, x_, yf_, yi_, buf, offs, rows, gs, cols)
        if s == 0 and not use_idx:
            val = step_val  # the first step's forward pass is the loss at phi
        if sgd_step(cur, alpha, gs, traj[s % 2]) > 0:
            st[0], st[1] = DIVERGED, s
            return val
        cur = traj[s % 2]
    for j in range(P):
        d[j] = cur[j] - phi[j]
    return val


@njit
def mean_rows(rows, values, status, out):
    """out = (1/B) sum_i rows[i], summed in task order (as ``np.mean(rows, axis=0)``); mean of values.

    The mean is NaN if any task reported a problem (the wrappers then read ``status``).
    """
    B = rows.shape[0]
    for i in range(B):
        if status[i, 0] != OK:
            return np.nan
    out[:] = rows[0]
    for i in range(1, B):
        for j in range(out.size):
            out[j] += rows[i, j]
    total = values[0]
    for i in range(1, B):
        total += values[i]
    for j in range(out.size):
        out[j] /= B
    return total / B


def source_digest(*more_modules):
    """A number that changes whenever the helpers' source files (and those of ``more_modules``) change.

    Numba's cache checks only the file of the cached function itself; the kernels
    below capture this number in their closure, and numba keys its cache on closure
    contents, so an edit of activations.py, batchnorm.py, layers.py, losses.py, views.py or
    workspace.py (whose constants the kernels bake in) recompiles them instead of loading a stale build.
    """
    h = hashlib.sha256()
    for module in (_activations, _batchnorm, _layers, _losses, _views, _workspace, *more_modules):
        h.update(Path(module.__file__).read_bytes())
    return int(h.hexdigest()[:15], 16)


def _make_kernels(digest):
    @njit(cache=True, parallel=True)
    def maml_kernel(act, loss, bn, sizes, phi, xs, ysf, ysi, xq, yqf, yqi, alpha, k, exact,
                    buf, set_off, extra_off, param_off, task_rows, values, status, out):  # fmt: skip
        """Exact MAML (``exact`` true) or first-order MAML over all tasks.

        Returns the mean query loss; ``out`` = the mean of the rows g_i of ``task_rows``."""
        if digest == 0:  # never true; ties this build to the helpers' sources (see source_digest)
            return np.nan
        B, nslots, c = xs.shape[0], buf.shape[0], sizes[sizes.size - 1]
        phi_ok = count_nonfinite(phi) == 0
        # every array below is valid for the whole call: drop reference counting (see views.py)
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
                values[i] = _maml_task(act, loss, bn, sizes, param_off, phi, xs[i], yf, yi, xq[i], yqf_, yqi_,
                                       alpha, k, exact, buf[slot], set_off, extra_off, task_rows[i],
                                       status[i])  # fmt: skip
        return mean_rows(task_rows, values, status, out)

    @njit(cache=True, parallel=True)
    def reptile_kernel(act, loss, bn, sizes, phi, xs, ysf, ysi, alpha, k, idx, use_idx,
                       buf, ibuf, set_off, extra_off, param_off, task_rows, values, status, out):  # fmt: skip
        """Reptile over all tasks; returns the mean support loss at phi, ``out`` = mean(phi~ - phi)."""
        if digest == 0:
            return np.nan
        B, nslots, c = xs.shape[0], buf.shape[0], sizes[sizes.size - 1]
        phi_ok = count_nonfinite(phi) == 0
        sizes, phi, xs, ysf, ysi = unowned(sizes), unowned(phi), unowned(xs), unowned(ysf), unowned(ysi)
        idx, buf, ibuf, set_off = unowned(idx), unowned(buf), unowned(ibuf), unowned(set_off)
        extra_off, param_off, task_rows = unowned(extra_off), unowned(param_off), unowned(task_rows)
        status = unowned(status)
        for slot in prange(nslots):
            for i in range(slot, B, nslots):
                status[i, 0], status[i, 1] = OK, 0
                yf = ysf[i] if loss == MSE else ysf[0]
                yi = ysi[0] if loss == MSE else ysi[i]
                if not (phi_ok and task_ok(loss, xs[i], yf, yi, c)):
                    status[i, 0] = BAD_INPUT
                    continue
                values[i] = _reptile_task(act, loss, bn, sizes, param_off, phi, xs[i], yf, yi, alpha, k,
                                          idx[i if use_idx else 0], use_idx, buf[slot], ibuf[slot], set_off,
                                          extra_off, task_rows[i], status[i])  # fmt: skip
        return mean_rows(task_rows, values, status, out)

    return maml_kernel, reptile_kernel


maml_kernel, reptile_kernel = _make_kernels(source_digest())
