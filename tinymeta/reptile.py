"""Reptile (Nichol, Achiam & Schulman 2018): move phi toward the task-adapted parameters.

For each task, run k steps of an inner optimizer from phi on the task's support
set to get phi~; then (eq. (4.1))

    phi <- phi + epsilon * mean_tasks(phi~ - phi)

One task per step is serial Reptile; several is the batched version. With k = 1
and SGD, phi~ - phi = -alpha grad L(phi), so Reptile is plain SGD on the expected
task loss -- joint training (eq. (4.2)). No Hessian and no query set is used.

The inner steps may use mini-batches of the support set (``inner_batch_size``):
the support points are shuffled and taken in consecutive batches, reshuffled
when exhausted, as in the Reptile code.
"""

from __future__ import annotations

import numpy as np

from . import validate
from .inner import DivergenceError
from .optim import SGD, Adam
from .tasks import check_task, iter_tasks


def _inner_batches(rng, n, batch_size, k):
    """Index arrays for k mini-batches drawn by shuffling 0..n-1 and cycling through it."""
    if batch_size is None or batch_size >= n:
        return [slice(None)] * k
    order, batches = np.empty(0, dtype=np.int64), []
    for _ in range(k):
        if order.size < batch_size:
            order = np.concatenate([order, rng.permutation(n)])
        batches.append(order[:batch_size])
        order = order[batch_size:]
    return batches


def reptile_adapt(net, phi, x, y, k, optimizer, state, loss="mse", inner_batch_size=None, rng=None):
    """phi~: k steps of ``optimizer`` from phi on (x, y). Returns ``(phi~, new optimizer state)``."""
    k = validate.count("k", k)
    if inner_batch_size is not None:
        validate.count("inner_batch_size", inner_batch_size, minimum=1)
        if rng is None:
            raise ValueError("rng is required when inner_batch_size is set (it shuffles the support set)")
        rng = validate.rng(rng)
    for i, idx in enumerate(_inner_batches(rng, len(x), inner_batch_size, k)):
        value, g = net.loss_and_grad(phi, x[idx], y[idx], loss)
        if not np.isfinite(value):
            raise DivergenceError(
                f"Reptile inner step {i}: the loss is not finite ({value}); try a smaller inner step size"
            )
        phi, state = optimizer.update(phi, g, state)
    return phi, state


def _as_tasks(tasks):
    tasks = list(iter_tasks(tasks))
    if not tasks:
        raise ValueError("tasks is empty; Reptile needs at least one task")
    return tasks


def reptile_step(net, phi, tasks, alpha, k, epsilon, loss="mse", inner_batch_size=None, rng=None):
    """One Reptile outer step with an SGD inner loop: phi + epsilon * mean_i(phi~_i - phi). Eq. (4.1).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    tasks : Task, TaskBatch or sequence of Task
        One task (serial Reptile) or a meta-batch (batched Reptile). Only the
        support sets are used.
    alpha : float > 0, inner SGD step size
    k : int >= 0, inner steps
    epsilon : float > 0, outer step size (interpolation factor)
    inner_batch_size : int or None
        Mini-batch size of the inner steps; ``None`` means full support set.
    rng : np.random.Generator or int, needed only with ``inner_batch_size``.

    Returns
    -------
    ndarray, shape (P,)
    """
    phi = net.check_phi(phi)
    epsilon = validate.positive("epsilon", epsilon)
    inner = SGD(validate.positive("alpha", alpha))
    tasks = [check_task(net, t, loss) for t in _as_tasks(tasks)]
    rng = None if rng is None else validate.rng(rng)
    delta = np.zeros_like(phi)
    for t in tasks:
        phi_t, _ = reptile_adapt(
            net, phi, t.x_support, t.y_support, k, inner, {}, loss, inner_batch_size, rng
        )
        delta += phi_t - phi
    return phi + epsilon * delta / len(tasks)


def reptile_step_adam(net, phi, tasks, alpha, k, epsilon, adam_state, loss="mse", beta1=0.0,
                      inner_batch_size=None, rng=None):  # fmt: skip
    """Reptile with an Adam inner loop whose state persists across tasks, as in the Reptile code.

    Same update as :func:`reptile_step`; the inner optimizer is
    ``Adam(alpha, beta1=beta1)`` (the paper uses beta1 = 0). ``adam_state`` is the
    dict from ``Adam(...).init(P)`` (or the previous call's output); it is carried
    from task to task and returned, never modified in place.

    Returns
    -------
    (ndarray of shape (P,), dict): the new phi and the new inner Adam state.
    """
    phi = net.check_phi(phi)
    epsilon = validate.positive("epsilon", epsilon)
    inner = Adam(validate.positive("alpha", alpha), beta1=beta1)
    tasks = [check_task(net, t, loss) for t in _as_tasks(tasks)]
    rng = None if rng is None else validate.rng(rng)
    delta = np.zeros_like(phi)
    for t in tasks:
        phi_t, adam_state = reptile_adapt(net, phi, t.x_support, t.y_support, k, inner, adam_state, loss,
                                          inner_batch_size, rng)  # fmt: skip
        delta += phi_t - phi
    return phi + epsilon * delta / len(tasks), adam_state
