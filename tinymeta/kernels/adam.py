"""Fused kernel of Reptile with an Adam inner loop whose state runs through all tasks (the Reptile code's).

Task i starts from phi and from the Adam moments that task i - 1 left, so the tasks of a
meta-batch are adapted one after the other, on one thread. What the kernel saves is
Python's per-step overhead and NumPy's temporaries: one step is a forward and backward
pass on a gathered mini-batch (BLAS products in preallocated buffers) and one sweep over
the P parameters that updates m, v and phi~ together.

Twin of :func:`tinymeta.batch.reptile_adam_batch`; ``status`` as in :mod:`.meta`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import meta as _meta
from .layers import ACT, forward
from .losses import MSE, value
from .meta import BAD_INPUT, DIVERGED, OK, bn_columns, count_nonfinite, gather, loss_grad, task_ok
from .views import unowned, view1, view2
from .workspace import GRAD, ITERATES


@njit(error_model="numpy")  # IEEE division as in NumPy: no zero check per element, so the loop vectorises
def _adam(cur, g, m, v, lr, beta1, beta2, eps, t, c):
    """Adam step t of ``cur``, m and v in place, as ``optim.Adam.update``: m <- beta1 m + (1 - beta1) g,
    v <- beta2 v + (1 - beta2) g^2, cur <- cur - lr m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - beta1^t),
    v_hat = v / (1 - beta2^t); with one division per entry (the same numbers up to rounding).

    The constants are formed in float64 and stored in ``c`` (7 entries of the arrays' dtype) first, so
    that a float32 build sweeps in float32 arithmetic (a float64 scalar would promote every entry)."""
    c[0], c[1], c[2], c[3], c[4] = beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps
    c[5], c[6] = lr / (1.0 - beta1**t), 1.0 / np.sqrt(1.0 - beta2**t)  # step, 1 / sqrt(1 - beta2^t)
    b1, one_b1, b2, one_b2, eps_, step, inv_root_c2 = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    for j in range(cur.size):
        mj = b1 * m[j] + one_b1 * g[j]
        vj = b2 * v[j] + one_b2 * (g[j] * g[j])
        m[j], v[j] = mj, vj
        cur[j] = cur[j] - step * mj / (np.sqrt(vj) * inv_root_c2 + eps_)


def _make_kernel(digest):
    @njit(cache=True)
    def reptile_adam_kernel(act, loss, bn, sizes, phi, xs, ysf, ysi, lr, beta1, beta2, eps, k, idx, use_idx,
                            m, v, t0, buf, ibuf, off, extra_off, param_off, values, status, out):  # fmt: skip
        """All tasks in order; m, v advance in place through the B k steps from step t0.
        Returns the mean support loss at phi; out = mean(phi~ - phi). NaN (see status) on a problem."""
        if digest == 0:  # never true; ties this build to the helpers' sources (see meta.source_digest)
            return np.nan
        B, n, c, P, L = xs.shape[0], xs.shape[1], sizes[sizes.size - 1], phi.size, sizes.size - 1
        sizes, phi, xs, ysf, ysi = unowned(sizes), unowned(phi), unowned(xs), unowned(ysf), unowned(ysi)
        idx, buf, ibuf, off = unowned(idx), unowned(buf), unowned(ibuf), unowned(off)
        extra_off, param_off = unowned(extra_off), unowned(param_off)
        status[:, 0], status[:, 1] = OK, 0
        cur, gs, offs = view1(buf, extra_off[ITERATES], P), view1(buf, extra_off[GRAD], P), off[0]
        cols, consts = bn_columns(buf, extra_off, bn, sizes), np.empty(7, dtype=m.dtype)
        phi_ok = count_nonfinite(phi) == 0
        out[:] = 0.0
        t = t0
        for i in range(B):
            yf = ysf[i] if loss == MSE else ysf[0]
            yi = ysi[0] if loss == MSE else ysi[i]
            if not (phi_ok and task_ok(loss, xs[i], yf, yi, c)):
                status[i, 0] = BAD_INPUT
                return np.nan
            forward(act, phi, sizes, param_off, xs[i], buf, offs, n, bn)
            values[i] = value(loss, view2(buf, offs[ACT, L - 1], n, sizes[L]), yf, yi)
            cur[:] = phi
            for s in range(k):
                x_, yf_, yi_, rows = xs[i], yf, yi, n
                if use_idx:
                    x_, yf_, yi_, rows = gather(loss, xs[i], yf, yi, idx[i, s], sizes, buf, ibuf, extra_off)
                loss_grad(act, loss, bn, cur, sizes, param_off, x_, yf_, yi_, buf, offs, rows, gs, cols)
                t += 1
                _adam(cur, gs, m, v, lr, beta1, beta2, eps, t, consts)
                if count_nonfinite(cur) > 0:
                    status[i, 0], status[i, 1], values[i] = DIVERGED, s, np.nan
                    return np.nan
            for j in range(P):
                out[j] += cur[j] - phi[j]
        total = values[0]
        for i in range(1, B):
            total += values[i]
        for j in range(P):
            out[j] /= B
        return total / B

    return reptile_adam_kernel


reptile_adam_kernel = _make_kernel(_meta.source_digest(_meta))  # meta.py's helpers are compiled in too
