"""Meta-batches: the per-iteration work of each algorithm over B tasks at once (NumPy reference).

A :class:`TaskBatch` stacks B tasks of equal sizes into arrays. The functions
here average the per-task results of :mod:`tinymeta.maml` and
:mod:`tinymeta.reptile`; the Numba kernels in :mod:`tinymeta.kernels` compute the
same numbers (tests hold the two equal to rtol 1e-12), and
:func:`batch_functions` picks one of the two.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from . import validate
from .inner import DivergenceError
from .maml import fomaml_value_and_grad, maml_value_and_grad
from .optim import SGD, Adam, make_optimizer
from .reptile import _inner_batches
from .tasks import Task


class TaskBatch(NamedTuple):
    """B tasks stacked: xs (B, K, d_in), ys (B, K, d_out) or int (B, K), xq, yq likewise with K_query."""

    xs: np.ndarray
    ys: np.ndarray
    xq: np.ndarray
    yq: np.ndarray

    @property
    def num_tasks(self):
        """B, the number of stacked tasks (``len`` stays the number of fields, as for any NamedTuple)."""
        return self.xs.shape[0]

    def task(self, i) -> Task:
        return Task(self.xs[i], self.ys[i], self.xq[i], self.yq[i])

    @classmethod
    def stack(cls, tasks):
        """Stack a list of equally sized :class:`Task` into a batch."""
        if not tasks:
            raise ValueError("tasks is empty; a meta-batch needs at least one task")
        return cls(*(np.stack([np.asarray(t[j]) for t in tasks]) for j in range(4)))


def maml_batch(net, phi, batch, alpha, k, loss="mse"):
    """Mean over the B tasks of (F_i(phi), g_MAML,i), eq. (3.3). Returns ``(float, (P,) array)``."""
    results = [maml_value_and_grad(net, phi, batch.task(i), alpha, k, loss) for i in range(batch.num_tasks)]
    return float(np.mean([r[0] for r in results])), np.mean([r[1] for r in results], axis=0)


def fomaml_batch(net, phi, batch, alpha, k, loss="mse"):
    """Mean over the B tasks of (F_i(phi), g_FOMAML,i), eq. (3.4). Returns ``(float, (P,) array)``."""
    results = [fomaml_value_and_grad(net, phi, batch.task(i), alpha, k, loss) for i in range(batch.num_tasks)]
    return float(np.mean([r[0] for r in results])), np.mean([r[1] for r in results], axis=0)


def reptile_batch(net, phi, batch, alpha, k, loss="mse", inner_indices=None):
    """Mean over tasks of phi~_i - phi after k inner SGD steps on each support set, eq. (4.1).

    Parameters
    ----------
    inner_indices : int ndarray, shape (B, k, m), optional
        Row ``[i, j]`` lists the support points of task i used in inner step j
        (mini-batches, see :func:`inner_batch_indices`); ``None`` means the full support set.

    Returns
    -------
    (float, ndarray of shape (P,)): the mean support loss at phi (before adapting) and mean(phi~ - phi).
    """
    phi = net.check_phi(phi)
    inner = SGD(validate.positive("alpha", alpha))
    k = validate.count("k", k)
    inner_indices = _check_inner_indices(inner_indices, batch, k)
    value, delta, _ = _adapt_each(net, phi, batch, k, loss, inner_indices, inner, {})
    return value, delta


def reptile_adam_batch(net, phi, batch, alpha, k, adam_state, loss="mse", beta1=0.0, inner_indices=None):
    """Reptile's update direction with an Adam inner loop whose state runs through the tasks in order.

    As :func:`reptile_batch`, with the inner optimizer ``Adam(alpha, beta1=beta1)`` (the Reptile
    paper's beta1 = 0): task i starts from phi and from the Adam state task i - 1 left, as in
    the Reptile code (and :func:`tinymeta.reptile.reptile_step_adam`, which draws the mini-batches
    from a generator instead of taking ``inner_indices``).

    Parameters
    ----------
    adam_state : dict
        ``{"m": (P,), "v": (P,), "t": int}`` from ``Adam(alpha).init(P)`` or a previous call; not modified.
    beta1 : float in [0, 1)

    Returns
    -------
    (float, ndarray of shape (P,), dict): the mean support loss at phi, mean(phi~ - phi) (eq. (4.1)
    without epsilon) and the Adam state after the B * k inner steps.
    """
    phi = net.check_phi(phi)
    inner = make_optimizer("adam", validate.positive("alpha", alpha), beta1)
    k = validate.count("k", k)
    inner_indices = _check_inner_indices(inner_indices, batch, k)
    state = Adam.check_state(adam_state, phi.size)
    return _adapt_each(net, phi, batch, k, loss, inner_indices, inner, state)


def _check_inner_indices(inner_indices, batch, k):
    if inner_indices is None:
        return None
    inner_indices = np.asarray(inner_indices)
    n = batch.xs.shape[1]
    if (
        inner_indices.ndim != 3
        or inner_indices.shape[:2] != (batch.num_tasks, k)
        or inner_indices.dtype.kind != "i"
    ):
        raise ValueError(
            f"inner_indices must be an int array of shape ({batch.num_tasks}, {k}, m); "
            f"got {inner_indices.dtype} array of shape {inner_indices.shape}"
        )
    if inner_indices.size and (inner_indices.min() < 0 or inner_indices.max() >= n):
        raise ValueError(f"inner_indices must index the {n} support points; got values outside [0, {n})")
    return inner_indices


def _adapt_each(net, phi, batch, k, loss, inner_indices, optimizer, state):
    """Task by task: k steps of ``optimizer`` from phi on the support rows, its state carried from task to
    task. Returns (mean support loss at phi, mean over tasks of phi~_i - phi, final optimizer state)."""
    values, delta = [], np.zeros_like(phi)
    for i in range(batch.num_tasks):
        x, y = net.check_data(batch.xs[i], batch.ys[i], loss, names=("x_support", "y_support"))
        phi_i = phi
        for j in range(k):
            idx = slice(None) if inner_indices is None else inner_indices[i, j]
            _, g = net.loss_and_grad(phi_i, x[idx], y[idx], loss)
            phi_i, state = optimizer.update(phi_i, g, state)
            if not np.all(np.isfinite(phi_i)):
                raise reptile_divergence(i, j, optimizer.lr)
        values.append(net.loss(phi, x, y, loss))
        delta += phi_i - phi
    return float(np.mean(values)), delta / batch.num_tasks, state


def reptile_divergence(task, step, alpha):
    """The error of a Reptile inner loop whose parameters became non-finite (shared with the kernels)."""
    return DivergenceError(
        f"Reptile inner step {step} of task {task}: the parameters became non-finite; "
        f"alpha={alpha} is too large, try a smaller alpha"
    )


def inner_batch_indices(rng, num_tasks, n, batch_size, k):
    """(B, k, m) indices: per task, k mini-batches of the n support points (shuffle, then cycle)."""
    rng = validate.rng(rng)
    m = min(validate.count("batch_size", batch_size, minimum=1), n)
    out = np.empty((num_tasks, k, m), dtype=np.int64)
    for i in range(num_tasks):
        for j, idx in enumerate(_inner_batches(rng, n, m, k)):
            out[i, j] = np.arange(n)[idx]
    return out


BACKENDS = ("numpy", "numba")


def default_backend():
    """``TINYMETA_BACKEND`` if set, else ``"numba"``."""
    name = os.environ.get("TINYMETA_BACKEND", "numba")
    return validate.one_of("TINYMETA_BACKEND", name, BACKENDS)


def batch_functions(backend=None):
    """``{"maml": fn, "fomaml": fn, "reptile": fn, "reptile_adam": fn}`` of the chosen backend (same
    signatures as above)."""
    backend = default_backend() if backend is None else validate.one_of("backend", backend, BACKENDS)
    if backend == "numpy":
        return {"maml": maml_batch, "fomaml": fomaml_batch, "reptile": reptile_batch,
                "reptile_adam": reptile_adam_batch}  # fmt: skip
    from . import kernels  # imported lazily: compiling is paid only by those who use it

    return {"maml": kernels.maml_batch, "fomaml": kernels.fomaml_batch, "reptile": kernels.reptile_batch,
            "reptile_adam": kernels.reptile_adam_batch}  # fmt: skip
