"""Numba kernels: the per-meta-iteration work of MAML, FOMAML and Reptile in one compiled call.

Each public function here is the twin of a NumPy reference function: same arguments,
same results (held equal to rtol 1e-12 by tests/test_kernels_parity.py,
tests/test_kernels_batchnorm.py and tests/test_reptile_adam_batch.py), same errors, for
plain MLPs and for MLPs with batch norm. :func:`tinymeta.backends.batch_functions`
chooses between the two.

Precision: ``dtype="float64"`` (the default) is the reference's arithmetic. ``dtype="float32"``
runs the same kernels compiled for float32 (BLAS sgemm, single-precision buffers): the wrapper
converts phi, the data and Reptile's Adam moments to float32 and returns the results as float64,
so whatever the caller keeps (phi, optimizer states, checkpoints) stays float64. Its agreement with
the float64 reference is checked at tolerances set for float32 (tests/test_kernels_float32.py).

=====================================================  ===============================================
NumPy reference (readable, what the tutorials teach)   Numba twin
=====================================================  ===============================================
:func:`tinymeta.batch.maml_batch`                      :func:`maml_batch`: ``meta.maml_kernel``, exact
:func:`tinymeta.batch.fomaml_batch`                    :func:`fomaml_batch`: ``meta.maml_kernel``
:func:`tinymeta.batch.reptile_batch`                   :func:`reptile_batch`: ``meta.reptile_kernel``
:func:`tinymeta.batch.reptile_adam_batch`              :func:`reptile_adam_batch`: ``adam`` module
:meth:`tinymeta.MLP.forward` (eq. (1.1))               ``layers.forward``
:meth:`tinymeta.MLP.loss_and_grad` (eq. (1.2))         ``losses.value_and_grad``, ``layers.backward``
:meth:`tinymeta.MLP.hvp` (eq. (2.3))                   ``layers.r_forward``, ``losses.hvp``,
                                                       ``layers.r_backward``
:data:`tinymeta.activations.ACTIVATIONS` (f, f', f'')  ``activations.bias_activate``, ``sigma_d2``
:func:`tinymeta.batchnorm.statistics`, ``normalise``   ``batchnorm.normalise`` (eq. (9.1))
:func:`tinymeta.batchnorm.vjp` (eq. (9.2))             ``batchnorm.vjp``
:func:`tinymeta.batchnorm.rop` (eq. (9.3))             ``batchnorm.rop``
:func:`tinymeta.batchnorm.rop_vjp` (eq. (9.4))         ``batchnorm.rop_vjp``
:func:`tinymeta.inner.adapt_trajectory` (eq. (3.1))    ``meta.loss_grad`` and ``meta.sgd_step``
:func:`tinymeta.maml.maml_value_and_grad` (eq. (3.3))  ``meta._maml_task``
:func:`tinymeta.reptile.reptile_adapt` (eq. (4.1))     ``meta._reptile_task``; with Adam ``adam._adam``
:meth:`tinymeta.Adam.update`                           ``adam._adam``
:func:`tinymeta.metasgd.metasgd_batch` (eqs. (6.1)-3)  :func:`metasgd_batch`: ``metasgd.metasgd_kernel``
:func:`tinymeta.anil.anil_batch` (eqs. (7.1), (7.2))   :func:`anil_batch`: ``metasgd.metasgd_kernel``
                                                       with alphas = alpha m (m: the head's mask)
:func:`tinymeta.imaml_approx.imaml_approx_batch`       :func:`imaml_approx_batch`:
(eqs. (5.5), (5.3) by n CG iterations)                 ``imaml.imaml_approx_kernel`` (CG as scipy's)
:func:`tinymeta.imaml.imaml_batch` (exact iMAML)       none: the time is in SciPy's solver loops
                                                       (benchmarks/bench_beyond.py measures it)
=====================================================  ===============================================

* :mod:`.layers`: forward, backward and R-operator of a dense stack, with or without batch norm;
* :mod:`.activations`: sigma, sigma' and sigma'' by int code;
* :mod:`.batchnorm`: batch statistics, normalisation, its VJP and R-operator (column means in a fixed order);
* :mod:`.losses`: mse and cross-entropy value, gradient and output-space HVP;
* :mod:`.meta`: the fused kernels, one ``prange`` over tasks, deterministic reduction;
* :mod:`.adam`: Reptile with a persistent inner Adam, the tasks in order on one thread;
* :mod:`.metasgd`: Meta-SGD and ANIL; :mod:`.imaml`: iMAML's practical variant (float64 only);
* :mod:`.workspace`: the preallocated buffers, made once per shape;
* :mod:`.views`: views into them without reference counting;
* :mod:`.inputs`: the cheap acceptance of ordinary arguments, and their conversion to the kernels' dtype.

Errors: arguments are checked by the reference's own validators
(:func:`tinymeta.batch.check_maml_batch`, :func:`tinymeta.batch.check_reptile_batch`), except on a
fast path that accepts float64/int arrays of the right shapes after a few comparisons; their
finiteness and label ranges are checked inside the kernel. When a kernel reports anything
(invalid data, a diverging inner loop) or returns a non-finite result, the NumPy reference runs on
the same arguments and raises its own exception: both backends fail with the same type and message.
Batch norm needs at least 2 rows in every batch it normalises; with fewer, the reference runs and
raises. (In float32, a result that overflows where float64 does not is the reference's float64 one.)

Threads: ``numba.set_num_threads(n)`` picks how many tasks run at once; the result is
the same for every n, bit for bit. Each call is one parallel region, which waits for its
slowest thread: more than one thread pays only with that many idle cores. BLAS is called
from inside those threads, so keep BLAS itself single-threaded (``OPENBLAS_NUM_THREADS=1``
before importing numpy), and on a shared machine idle threads must wait passively
(``OMP_WAIT_POLICY=PASSIVE``, set by this module unless already set; spinning idle threads
made 2 threads 10-20x slower than 1 when another process held a core). Measurements: docs/performance.md.
"""

from __future__ import annotations

import os
import threading

# Idle OpenMP threads spin by default; on a machine where another process holds a core, a spinning
# worker is descheduled exactly when the next parallel region needs it, and two threads ran 10-20x
# slower than one. Passive waiting removes that collapse and costs nothing measurable on idle cores.
# A value the user has set is kept; it must be set before numba starts its threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np

from .. import batch as reference
from .. import validate
from ..anil import anil_batch as anil_reference
from ..anil import head_mask
from ..imaml_approx import imaml_approx_batch as imaml_approx_reference
from ..metasgd import metasgd_batch as metasgd_reference
from ..mlp import MLP
from ..optim import Adam, make_optimizer
from . import inputs, workspace
from .adam import reptile_adam_kernel
from .imaml import CG_RTOL, imaml_approx_kernel
from .layers import ACTIVATION_CODES
from .losses import LOSS_CODES
from .meta import maml_kernel, reptile_kernel
from .metasgd import metasgd_kernel

__all__ = [
    "maml_batch",
    "fomaml_batch",
    "reptile_batch",
    "reptile_adam_batch",
    "metasgd_batch",
    "anil_batch",
    "imaml_approx_batch",
    "ACTIVATION_CODES",
    "LOSS_CODES",
]


def _run(kernel, nslots, threads, args):
    """Call ``kernel`` on ``nslots = min(B, threads)`` workers; with fewer tasks than threads,
    the threads that would idle are not woken."""
    if nslots == threads:
        return kernel(*args)
    numba.set_num_threads(nslots)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(threads)


def _codes(net, loss):
    """(activation code, loss code, batch norm) of the kernels' first arguments."""
    act = ACTIVATION_CODES.get(net.activation)
    if act is None:
        known = sorted(ACTIVATION_CODES)
        raise ValueError(
            f"activation {net.activation!r} has no Numba kernel (known: {known}); use backend='numpy'"
        )
    return act, LOSS_CODES[loss], net.batch_norm


def _too_few_rows(net, *rows):
    """True if batch norm would normalise a batch of fewer than 2 rows (the reference refuses it)."""
    return net.batch_norm and min(rows) < 2


def _failed(value, out, status):
    """True if the kernel reported a problem or its result is not finite (the rare, slow path)."""
    return value != value or status[:, 0].any() or not np.isfinite(value) or not np.all(np.isfinite(out))


def _float64(out):
    """The result as the float64 array the reference returns (a copy only for float32)."""
    return out if out.dtype == np.float64 else out.astype(np.float64)


def _maml_like(net, phi, batch, alpha, k, loss, exact, dtype):
    codes = _codes(inputs.check_net(net), validate.one_of("loss", loss, LOSS_CODES))
    dt = inputs.dtype_of(dtype)
    x = inputs.fast(net, phi, batch, alpha, k, loss, with_query=True, dtype=dt)
    if x is None:  # anything unusual: the reference's checks, then a conversion
        checked = reference.check_maml_batch(net, phi, batch, alpha, k, loss)
        x = inputs.convert(net, *checked, batch, loss, dtype=dt)
    B, K, Kq = x.xs.shape[0], x.xs.shape[1], x.xq.shape[1]
    fallback = reference.maml_batch if exact else reference.fomaml_batch
    if _too_few_rows(net, K, Kq):
        return fallback(net, phi, batch, alpha, k, loss)
    threads = numba.get_num_threads()
    ws = workspace.for_maml(net.sizes, K, Kq, x.k, exact, min(B, threads), B, net.batch_norm, dt)
    out = np.empty(net.num_params, dt)
    args = (*codes, ws.sizes, x.phi, x.xs, x.ysf, x.ysi, x.xq, x.yqf, x.yqi, x.alpha, x.k, exact)
    workspace_args = (ws.buf, ws.set_off, ws.extra_off, ws.param_off, ws.task_rows, ws.values, ws.status)
    value = _run(maml_kernel, min(B, threads), threads, (*args, *workspace_args, out))
    if _failed(value, out, ws.status):  # the reference raises its own error for the same arguments
        return fallback(net, phi, batch, alpha, k, loss)
    return value, _float64(out)


def maml_batch(net, phi, batch, alpha, k, loss="mse", *, dtype="float64"):
    """Mean over the B tasks of (F_i(phi), g_MAML,i), eq. (3.3); twin of :func:`tinymeta.batch.maml_batch`.

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    batch : TaskBatch
        xs (B, K, d_0), ys (B, K, d_L) or int (B, K), xq / yq likewise with K_query
    alpha : float > 0, inner step size
    k : int >= 0, inner steps
    loss : {"mse", "cross_entropy"}
    dtype : {"float64", "float32"}, the arithmetic of the kernel (module docstring)

    Returns
    -------
    (float, ndarray of shape (P,)), float64 whatever ``dtype``

    Raises
    ------
    DivergenceError
        If an inner step or the query pass is not finite (first such task, as the reference).
    """
    return _maml_like(net, phi, batch, alpha, k, loss, exact=True, dtype=dtype)


def fomaml_batch(net, phi, batch, alpha, k, loss="mse", *, dtype="float64"):
    """Mean over the B tasks of (F_i(phi), g_FOMAML,i), eq. (3.4); twin of
    :func:`tinymeta.batch.fomaml_batch`.

    Same parameters, returns and errors as :func:`maml_batch`; no Hessian-vector product is formed.
    """
    return _maml_like(net, phi, batch, alpha, k, loss, exact=False, dtype=dtype)


def _reptile_inputs(net, phi, batch, alpha, k, loss, inner_indices, dt):
    """Kernel-ready arguments and mini-batch rows (``inputs.NO_IDX`` when every step uses all rows)."""
    x = inputs.fast(net, phi, batch, alpha, k, loss, with_query=False, dtype=dt)
    if x is None or inner_indices is not None:
        phi_, alpha_, k_, idx = reference.check_reptile_batch(net, phi, batch, alpha, k, loss, inner_indices)
        if x is None:
            x = inputs.convert(net, phi_, alpha_, k_, batch, loss, with_query=False, dtype=dt)
        if idx is not None:
            return x, idx
    return x, inputs.NO_IDX


def reptile_batch(net, phi, batch, alpha, k, loss="mse", inner_indices=None, *, dtype="float64"):
    """Mean over tasks of phi~_i - phi after k inner SGD steps, eq. (4.1); twin of
    :func:`tinymeta.batch.reptile_batch`.

    Parameters
    ----------
    net, phi, alpha, k, loss : as :func:`maml_batch`
    batch : TaskBatch
        Only the support sets xs, ys are used.
    inner_indices : int ndarray, shape (B, k, m), optional
        Row ``[i, j]`` lists the support points of task i used in inner step j; ``None``: all.
        Values must lie in [0, K).
    dtype : {"float64", "float32"}, as :func:`maml_batch`

    Returns
    -------
    (float, ndarray of shape (P,)): the mean support loss at phi and mean(phi~ - phi).
    """
    codes = _codes(inputs.check_net(net), validate.one_of("loss", loss, LOSS_CODES))
    dt = inputs.dtype_of(dtype)
    x, idx = _reptile_inputs(net, phi, batch, alpha, k, loss, inner_indices, dt)
    B, K, use_idx = x.xs.shape[0], x.xs.shape[1], idx is not inputs.NO_IDX
    m = idx.shape[2] if use_idx else 0
    if _too_few_rows(net, K, *([m] if use_idx else [])):
        return reference.reptile_batch(net, phi, batch, alpha, k, loss, inner_indices)
    threads = numba.get_num_threads()
    ws = workspace.for_reptile(net.sizes, K, m, min(B, threads), B, net.batch_norm, dt)
    out = np.empty(net.num_params, dt)
    data = (ws.sizes, x.phi, x.xs, x.ysf, x.ysi)
    args = (*codes, *data, x.alpha, x.k, idx, use_idx, ws.buf, ws.ibuf)
    workspace_args = (ws.set_off, ws.extra_off, ws.param_off, ws.task_rows, ws.values, ws.status)
    value = _run(reptile_kernel, min(B, threads), threads, (*args, *workspace_args, out))
    if _failed(value, out, ws.status):
        return reference.reptile_batch(net, phi, batch, alpha, k, loss, inner_indices)
    return value, _float64(out)


def reptile_adam_batch(net, phi, batch, alpha, k, adam_state, loss="mse", beta1=0.0, inner_indices=None, *,
                       dtype="float64"):  # fmt: skip
    """Reptile's direction with an inner Adam whose state runs through the tasks in order; twin of
    :func:`tinymeta.batch.reptile_adam_batch` (same arguments, results and errors).

    Parameters
    ----------
    net, phi, batch, alpha, k, loss, inner_indices : as :func:`reptile_batch` (alpha: Adam's step size)
    adam_state : dict ``{"m": (P,), "v": (P,), "t": int}``, not modified
    beta1 : float in [0, 1); the Reptile paper uses 0
    dtype : {"float64", "float32"}, as :func:`maml_batch`; with float32 the moments are rounded to
        float32 on the way in and returned as float64 (exactly the float32 values)

    Returns
    -------
    (float, ndarray of shape (P,), dict): mean support loss at phi, mean(phi~ - phi), the new Adam state.

    The tasks run one after another on one thread (each starts from the Adam state of the previous one).
    """
    codes = _codes(inputs.check_net(net), validate.one_of("loss", loss, LOSS_CODES))
    dt = inputs.dtype_of(dtype)
    x, idx = _reptile_inputs(net, phi, batch, alpha, k, loss, inner_indices, dt)
    adam = make_optimizer("adam", validate.positive("alpha", alpha), beta1=beta1)  # lr stays float64
    state = Adam.check_state(adam_state, net.num_params)
    B, K, use_idx = x.xs.shape[0], x.xs.shape[1], idx is not inputs.NO_IDX
    if _too_few_rows(net, K, *([idx.shape[2]] if use_idx else [])):
        return reference.reptile_adam_batch(net, phi, batch, alpha, k, adam_state, loss, beta1, inner_indices)
    ws = workspace.for_reptile(net.sizes, K, idx.shape[2] if use_idx else 0, 1, B, net.batch_norm, dt)
    m, v = state["m"].astype(dt), state["v"].astype(dt)  # copies: the caller's state stays
    out = np.empty(net.num_params, dt)
    hyper = (adam.lr, adam.beta1, adam.beta2, adam.eps)
    data = (ws.sizes, x.phi, x.xs, x.ysf, x.ysi)
    args = (*codes, *data, *hyper, x.k, idx, use_idx, m, v, state["t"], ws.buf[0], ws.ibuf[0])
    value = reptile_adam_kernel(*args, ws.set_off, ws.extra_off, ws.param_off, ws.values, ws.status, out)
    if _failed(value, out, ws.status):
        return reference.reptile_adam_batch(net, phi, batch, alpha, k, adam_state, loss, beta1, inner_indices)
    return value, _float64(out), {"m": _float64(m), "v": _float64(v), "t": state["t"] + B * x.k}


def _beyond_inputs(net, phi, batch, k, loss):
    """Kernel-ready arguments of the Meta-SGD, ANIL and iMAML twins, or None when anything is unusual: the
    caller then runs the reference, which checks, raises its own error, or computes the result."""
    if not (isinstance(net, MLP) and net.activation in ACTIVATION_CODES and loss in LOSS_CODES):
        return None
    x = inputs.fast(net, phi, batch, 1.0, k, loss, with_query=True)  # alpha: not used by these kernels
    return None if x is None or _too_few_rows(net, x.xs.shape[1], x.xq.shape[1]) else x


def _f64_vector(a, size):
    return type(a) is np.ndarray and a.dtype == np.float64 and a.shape == (size,) and a.flags.c_contiguous


def metasgd_batch(net, phi, alphas, batch, k, loss="mse"):
    """Mean over the B tasks of (F_i, dF_i/dphi, dF_i/dalphas), eqs. (6.1)-(6.3); twin of
    :func:`tinymeta.metasgd.metasgd_batch` (same arguments, results and errors; unusual arguments run there).

    Returns ``(float, (P,) array, (P,) array)``."""
    ref = lambda: metasgd_reference(net, phi, alphas, batch, k, loss)  # noqa: E731
    x = _beyond_inputs(net, phi, batch, k, loss)
    if x is None or not _f64_vector(alphas, net.num_params):
        return ref()
    value, out, out_alphas = _metasgd(net, x, alphas, loss)
    if value is None:
        return ref()
    return value, out, out_alphas


def anil_batch(net, phi, batch, alpha, k, loss="mse"):
    """Mean over the B tasks of (F_i, g_ANIL,i), eqs. (7.1)-(7.2); twin of :func:`tinymeta.anil.anil_batch`:
    the Meta-SGD kernel with alphas = alpha m, m the 0/1 mask of the head. Returns ``(float, (P,) array)``."""
    ref = lambda: anil_reference(net, phi, batch, alpha, k, loss)  # noqa: E731
    x = _beyond_inputs(net, phi, batch, k, loss)
    if x is None or not (type(alpha) is float and 0.0 < alpha < np.inf):
        return ref()
    value, out, _ = _metasgd(net, x, alpha * head_mask(net), loss)  # the same product as the reference's step
    return ref() if value is None else (value, out)


_local = threading.local()


def _alpha_rows(B, P):
    """One dF/dalphas row per task, (B, P), kept per thread: a fresh array each call costs a page fault
    per 4 KiB written (measured: 2-5 % of an iteration on the Omniglot MLP, 62 MB of rows)."""
    rows = getattr(_local, "alpha_rows", None)
    if rows is None or rows.shape != (B, P):
        rows = _local.alpha_rows = np.empty((B, P))
    return rows


def _metasgd(net, x, alphas, loss):
    B, K, Kq, P = x.xs.shape[0], x.xs.shape[1], x.xq.shape[1], net.num_params
    threads = numba.get_num_threads()
    key = ("metasgd", net.sizes, K, Kq, x.k, min(B, threads), B, net.batch_norm)
    ws = workspace.get(net.sizes, [K] * x.k + [Kq], 2 * x.k + 1, 0, min(B, threads), B, key, paired=x.k,
                       bn=net.batch_norm)  # fmt: skip
    out, out_alphas, alpha_rows = np.empty(P), np.empty(P), _alpha_rows(B, P)
    args = (*_codes(net, loss), ws.sizes, x.phi, alphas, x.xs, x.ysf, x.ysi, x.xq, x.yqf, x.yqi, x.k,
            ws.buf, ws.set_off, ws.extra_off, ws.param_off, ws.task_rows, alpha_rows, ws.values,
            ws.status)  # fmt: skip
    value = _run(metasgd_kernel, min(B, threads), threads, (*args, out, out_alphas))
    if _failed(value, out, ws.status) or not np.all(np.isfinite(out_alphas)):
        return None, None, None
    return value, out, out_alphas


def imaml_approx_batch(net, phi, batch, lam, alpha, k, cg_iterations, loss="mse"):
    """Mean over the B tasks of iMAML's practical direction, eqs. (5.5) and (5.3) by ``cg_iterations`` CG
    iterations; twin of :func:`tinymeta.imaml_approx.imaml_approx_batch`. Returns ``(float, (P,) array)``."""
    ref = lambda: imaml_approx_reference(net, phi, batch, lam, alpha, k, cg_iterations, loss)  # noqa: E731
    x = _beyond_inputs(net, phi, batch, k, loss)
    scalars_ok = all(type(a) is float and 0.0 < a < np.inf for a in (lam, alpha))
    if x is None or not scalars_ok or not (type(cg_iterations) is int and cg_iterations >= 1):
        return ref()
    B, K, Kq = x.xs.shape[0], x.xs.shape[1], x.xq.shape[1]
    threads = numba.get_num_threads()
    key = ("imaml_approx", net.sizes, K, Kq, min(B, threads), B, net.batch_norm)
    ws = workspace.get(net.sizes, [K, Kq], 5, 0, min(B, threads), B, key, paired=1, bn=net.batch_norm)
    out = np.empty(net.num_params)
    args = (*_codes(net, loss), ws.sizes, x.phi, x.xs, x.ysf, x.ysi, x.xq, x.yqf, x.yqi, lam, alpha, x.k,
            cg_iterations, CG_RTOL, ws.buf, ws.set_off, ws.extra_off, ws.param_off, ws.task_rows, ws.values,
            ws.status, out)  # fmt: skip
    value = _run(imaml_approx_kernel, min(B, threads), threads, args)
    return ref() if _failed(value, out, ws.status) else (value, out)
