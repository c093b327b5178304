"""Numba kernels: the per-meta-iteration work of MAML, FOMAML and Reptile in one compiled call.

Drop-in twins of :func:`tinymeta.batch.maml_batch`, :func:`~tinymeta.batch.fomaml_batch`,
:func:`~tinymeta.batch.reptile_batch` and :func:`~tinymeta.batch.reptile_adam_batch` -- same
arguments, same results (held equal to the NumPy reference to rtol 1e-12 by
tests/test_kernels_parity.py and tests/test_reptile_adam_batch.py), same errors -- selected with
``tinymeta.batch.batch_functions("numba")``.

* :mod:`.layers`: forward, backward and R-operator of a dense stack, activations by int code;
* :mod:`.losses`: mse and cross-entropy value, gradient and output-space HVP;
* :mod:`.meta`: the fused kernels, one ``prange`` over tasks, deterministic reduction;
* :mod:`.adam`: Reptile with a persistent inner Adam, the tasks in order on one thread;
* :mod:`.workspace`: the preallocated buffers, made once per shape;
* :mod:`.views`: views into them without reference counting;
* :mod:`.inputs`: argument checks (cheap on the common path, the reference's errors otherwise).

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

# Idle OpenMP threads spin by default; on a machine where another process holds a core, a spinning
# worker is descheduled exactly when the next parallel region needs it, and two threads ran 10-20x
# slower than one. Passive waiting removes that collapse and costs nothing measurable on idle cores.
# A value the user has set is kept; it must be set before numba starts its threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np

from ..batch import reptile_divergence
from ..optim import Adam, make_optimizer
from . import inputs, workspace
from .adam import reptile_adam_kernel
from .layers import ACTIVATION_CODES
from .losses import LOSS_CODES
from .meta import DIVERGED, maml_kernel, reptile_kernel

__all__ = [
    "maml_batch",
    "fomaml_batch",
    "reptile_batch",
    "reptile_adam_batch",
    "ACTIVATION_CODES",
    "LOSS_CODES",
]


def _run(kernel, nslots, T, args):
    """Call ``kernel`` on ``nslots = min(B, T)`` workers; with fewer tasks than the T threads,
    the threads that would idle are not woken."""
    if nslots == T:
        return kernel(*args)
    numba.set_num_threads(nslots)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(T)


def _codes(net, loss):
    act = ACTIVATION_CODES.get(net.activation)
    if act is None:
        known = sorted(ACTIVATION_CODES)
        raise ValueError(
            f"activation {net.activation!r} has no Numba kernel (known: {known}); use backend='numpy'"
        )
    return act, LOSS_CODES[loss]


def _maml_like(net, phi, batch, alpha, k, loss, store):
    x = inputs.fast(net, phi, batch, alpha, k, loss, query=True)
    if x is None:
        x = inputs.reference_checks(net, phi, batch, alpha, k, loss, query=True)
    B, K, Kq = x.xs.shape[0], x.xs.shape[1], x.xq.shape[1]
    T = numba.get_num_threads()
    ws = workspace.for_maml(net.sizes, K, Kq, x.k, store, min(B, T), B)
    out = np.empty(net.num_params)
    codes = _codes(net, loss)
    args = (*codes, ws.sizes, x.phi, x.xs, x.ysf, x.ysi, x.xq, x.yqf, x.yqi, x.alpha, x.k, store)
    value = _run(
        maml_kernel, min(B, T), T, (*args, ws.buf, ws.off, ws.xoff, ws.poff, ws.G, ws.values, ws.status, out)
    )
    if value != value and ws.status[:, 0].any():  # a problem makes the mean NaN; only then look closer
        inputs.reference_checks(net, phi, batch, alpha, k, loss, True, ws.status, ws.values)
    return value, out


def maml_batch(net, phi, batch, alpha, k, loss="mse"):
    """Mean over the B tasks of (F_i(phi), g_MAML,i), eq. (3.3); as :func:`tinymeta.batch.maml_batch`.

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    batch : TaskBatch
        xs (B, K, d_0), ys (B, K, d_L) or int (B, K), xq / yq likewise with K_query
    alpha : float > 0, inner step size
    k : int >= 0, inner steps
    loss : {"mse", "cross_entropy"}

    Returns
    -------
    (float, ndarray of shape (P,))

    Raises
    ------
    DivergenceError
        If an inner step meets a non-finite support loss or gradient (first such task, as the reference).
    """
    return _maml_like(net, phi, batch, alpha, k, loss, True)


def fomaml_batch(net, phi, batch, alpha, k, loss="mse"):
    """Mean over the B tasks of (F_i(phi), g_FOMAML,i), eq. (3.4); as :func:`tinymeta.batch.fomaml_batch`.

    Same parameters, returns and errors as :func:`maml_batch`; no Hessian-vector product is formed.
    """
    return _maml_like(net, phi, batch, alpha, k, loss, False)


def reptile_batch(net, phi, batch, alpha, k, loss="mse", inner_indices=None):
    """Mean over tasks of phi~_i - phi after k inner SGD steps, eq. (4.1); as the NumPy ``reptile_batch``.

    Parameters
    ----------
    net, phi, alpha, k, loss : as :func:`maml_batch`
    batch : TaskBatch
        Only the support sets xs, ys are used.
    inner_indices : int ndarray, shape (B, k, m), optional
        Row ``[i, j]`` lists the support points of task i used in inner step j; ``None``: all.
        Values must lie in [0, K).

    Returns
    -------
    (float, ndarray of shape (P,)): the mean support loss at phi and mean(phi~ - phi).
    """
    x = inputs.fast(net, phi, batch, alpha, k, loss, query=False)
    if x is None:
        x = inputs.reference_checks(net, phi, batch, alpha, k, loss, query=False)
    B, K = x.xs.shape[0], x.xs.shape[1]
    use_idx = inner_indices is not None and x.k > 0
    idx = inputs.indices(inner_indices, B, x.k, K) if use_idx else inputs.NO_IDX
    m = idx.shape[2] if use_idx else 0
    T = numba.get_num_threads()
    ws = workspace.for_reptile(net.sizes, K, m, min(B, T), B)
    out = np.empty(net.num_params)
    codes = _codes(net, loss)
    args = (*codes, ws.sizes, x.phi, x.xs, x.ysf, x.ysi, x.alpha, x.k, idx, use_idx, ws.buf, ws.ibuf)
    value = _run(
        reptile_kernel, min(B, T), T, (*args, ws.off, ws.xoff, ws.poff, ws.G, ws.values, ws.status, out)
    )
    if value != value and ws.status[:, 0].any():
        inputs.reference_checks(net, phi, batch, alpha, k, loss, False, ws.status, ws.values)
    return value, out


def reptile_adam_batch(net, phi, batch, alpha, k, adam_state, loss="mse", beta1=0.0, inner_indices=None):
    """Reptile's direction with an inner Adam whose state runs through the tasks in order; as the NumPy
    :func:`tinymeta.batch.reptile_adam_batch` (same arguments, results and errors).

    Parameters
    ----------
    net, phi, batch, alpha, k, loss, inner_indices : as :func:`reptile_batch` (alpha: Adam's step size)
    adam_state : dict ``{"m": (P,), "v": (P,), "t": int}``, not modified
    beta1 : float in [0, 1); the Reptile paper uses 0

    Returns
    -------
    (float, ndarray of shape (P,), dict): mean support loss at phi, mean(phi~ - phi), the new Adam state.

    The tasks run one after another on one thread (each starts from the Adam state of the previous one).
    """
    x = inputs.fast(net, phi, batch, alpha, k, loss, query=False)
    if x is None:
        x = inputs.reference_checks(net, phi, batch, alpha, k, loss, query=False)
    adam = make_optimizer("adam", x.alpha, beta1)
    state = Adam.check_state(adam_state, net.num_params)
    B, K = x.xs.shape[0], x.xs.shape[1]
    use_idx = inner_indices is not None and x.k > 0
    idx = inputs.indices(inner_indices, B, x.k, K) if use_idx else inputs.NO_IDX
    ws = workspace.for_reptile(net.sizes, K, idx.shape[2] if use_idx else 0, 1, B)
    m, v, out = state["m"].copy(), state["v"].copy(), np.empty(net.num_params)  # the caller's state stays
    hyper = (adam.lr, adam.beta1, adam.beta2, adam.eps)
    data = (ws.sizes, x.phi, x.xs, x.ysf, x.ysi)
    args = (*_codes(net, loss), *data, *hyper, x.k, idx, use_idx, m, v, state["t"], ws.buf[0], ws.ibuf[0])
    value = reptile_adam_kernel(*args, ws.off, ws.xoff, ws.poff, ws.values, ws.status, out)
    if value != value and ws.status[:, 0].any():
        bad = int(np.flatnonzero(ws.status[:, 0])[0])
        if ws.status[bad, 0] == DIVERGED:  # tasks 0..bad passed the kernel's input checks
            raise reptile_divergence(bad, int(ws.status[bad, 1]), adam.lr)
        inputs.reference_checks(net, phi, batch, alpha, k, loss, False, ws.status, ws.values)
    return value, out, {"m": m, "v": v, "t": state["t"] + B * x.k}
