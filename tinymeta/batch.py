"""The per-iteration work of each algorithm on a meta-batch of B tasks: the NumPy reference.

Each function averages the per-task results of :mod:`tinymeta.maml` and
:mod:`tinymeta.reptile` over a :class:`~tinymeta.tasks.TaskBatch`. The Numba kernels
in :mod:`tinymeta.kernels` compute the same numbers (tests hold the two equal to
rtol 1e-12) and raise the same errors; :mod:`tinymeta.backends` chooses between them.
"""

from __future__ import annotations

import numpy as np

from . import validate
from .losses import LOSSES
from .maml import fomaml_value_and_grad, maml_value_and_grad
from .mlp import MLP
from .optim import SGD, Adam, make_optimizer
from .reptile import reptile_direction
from .tasks import TaskBatch, check_task


def check_net_and_loss(net, loss):
    """``net`` must be a :class:`~tinymeta.MLP` and ``loss`` one of :data:`tinymeta.losses.LOSSES`."""
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a tinymeta.MLP; got {type(net).__name__}")
    validate.one_of("loss", loss, LOSSES)


def check_batch(batch, with_query=True):
    """``batch`` must be a non-empty :class:`~tinymeta.tasks.TaskBatch`; returns B."""
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a tinymeta.TaskBatch; got {type(batch).__name__}")
    fields = ("xs", "ys", "xq", "yq") if with_query else ("xs", "ys")
    lengths = []
    for name in fields:
        try:
            lengths.append(len(getattr(batch, name)))
        except TypeError:
            got = type(getattr(batch, name)).__name__
            raise TypeError(f"batch.{name} must be an array with one entry per task; got {got}") from None
    if lengths[0] == 0:
        raise ValueError("batch has no tasks (batch.xs is empty); a meta-batch needs at least one task")
    for name, n in zip(fields, lengths, strict=True):
        if n != lengths[0]:
            raise ValueError(f"batch.{name} holds {n} tasks but batch.xs holds {lengths[0]}")
    return lengths[0]


def check_inner_indices(inner_indices, num_tasks, k, n):
    """Reptile's mini-batch rows: an integer array (num_tasks, k, m), m >= 1, values in [0, n).

    Returns it as an int64 C array, or None for ``None`` (full support set) or k = 0."""
    if inner_indices is None:
        return None
    idx = np.asarray(inner_indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"inner_indices must hold integer row indices; got dtype {idx.dtype}")
    if idx.ndim != 3 or idx.shape[:2] != (num_tasks, k) or (k > 0 and idx.shape[2] == 0):
        raise ValueError(f"inner_indices has shape {idx.shape}; expected ({num_tasks}, {k}, m) with m >= 1 "
                         "(tasks, inner steps, mini-batch size)")  # fmt: skip
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"inner_indices has values in [{idx.min()}, {idx.max()}]; "
                         f"expected rows of the support set, in [0, {n})")  # fmt: skip
    return np.ascontiguousarray(idx, dtype=np.int64) if k > 0 else None


def check_maml_batch(net, phi, batch, alpha, k, loss):
    """Every check of MAML's and FOMAML's batched step, in one order: the batch, each task's
    support and query sets, phi, alpha, k. Returns ``(phi, alpha, k)`` checked (float64 phi).

    The Numba kernels call this same function, so both backends raise the same errors."""
    check_net_and_loss(net, loss)
    B = check_batch(batch)
    for i in range(B):
        check_task(net, batch.task(i), loss)
    return net.check_phi(phi), validate.positive("alpha", alpha), validate.count("k", k)


def check_reptile_batch(net, phi, batch, alpha, k, loss, inner_indices):
    """Every check of Reptile's batched step, in one order: the batch, phi, alpha, k, the mini-batch
    rows, each task's support set. Returns ``(phi, alpha, k, inner_indices)`` checked."""
    check_net_and_loss(net, loss)
    B = check_batch(batch, with_query=False)
    phi, alpha, k = net.check_phi(phi), validate.positive("alpha", alpha), validate.count("k", k)
    shape = np.shape(batch.xs)
    idx = check_inner_indices(inner_indices, B, k, shape[1] if len(shape) > 1 else 0)
    for i in range(B):
        net.check_data(batch.xs[i], batch.ys[i], loss, names=("x_support", "y_support"))
    return phi, alpha, k, idx


def maml_batch(net, phi, batch, alpha, k, loss="mse"):
    """Mean over the B tasks of (F_i(phi), g_MAML,i), eq. (3.3). Returns ``(float, (P,) array)``.

    Raises
    ------
    DivergenceError
        for the first task whose inner loop or query gradient is not finite.
    """
    phi, alpha, k = check_maml_batch(net, phi, batch, alpha, k, loss)
    results = [maml_value_and_grad(net, phi, batch.task(i), alpha, k, loss) for i in range(batch.num_tasks)]
    return float(np.mean([r[0] for r in results])), np.mean([r[1] for r in results], axis=0)


def fomaml_batch(net, phi, batch, alpha, k, loss="mse"):
    """Mean over the B tasks of (F_i(phi), g_FOMAML,i), eq. (3.4). Returns ``(float, (P,) array)``."""
    phi, alpha, k = check_maml_batch(net, phi, batch, alpha, k, loss)
    results = [fomaml_value_and_grad(net, phi, batch.task(i), alpha, k, loss) for i in range(batch.num_tasks)]
    return float(np.mean([r[0] for r in results])), np.mean([r[1] for r in results], axis=0)


def reptile_batch(net, phi, batch, alpha, k, loss="mse", inner_indices=None):
    """Mean over tasks of phi~_i - phi after k inner SGD steps on each support set, eq. (4.1).

    Parameters
    ----------
    inner_indices : int ndarray, shape (B, k, m), optional
        Row ``[i, j]`` lists the support points of task i used in inner step j
        (mini-batches, see :func:`tinymeta.reptile.inner_batch_indices`); ``None`` means the
        full support set.

    Returns
    -------
    (float, ndarray of shape (P,)): the mean support loss at phi (before adapting) and mean(phi~ - phi).
    """
    phi, alpha, k, idx = check_reptile_batch(net, phi, batch, alpha, k, loss, inner_indices)
    value, delta, _ = reptile_direction(net, phi, batch, k, SGD(alpha), {}, loss, idx)
    return value, delta


def reptile_adam_batch(net, phi, batch, alpha, k, adam_state, loss="mse", beta1=0.0, inner_indices=None):
    """Reptile's update direction with an Adam inner loop whose state runs through the tasks in order.

    As :func:`reptile_batch`, with the inner optimizer ``Adam(alpha, beta1=beta1)`` (the Reptile
    paper's beta1 = 0): task i starts from phi and from the Adam state task i - 1 left, as in
    the Reptile code and :func:`tinymeta.reptile.reptile_step_adam`.

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
    phi, alpha, k, idx = check_reptile_batch(net, phi, batch, alpha, k, loss, inner_indices)
    inner = make_optimizer("adam", alpha, beta1=beta1)
    return reptile_direction(net, phi, batch, k, inner, Adam.check_state(adam_state, phi.size), loss, idx)
