"""Reptile (Nichol, Achiam & Schulman 2018): move phi toward the task-adapted parameters.

For each task, run k steps of an inner optimizer from phi on the task's support
set to get phi~; then (eq. (4.1))

    phi <- phi + epsilon * mean_tasks(phi~ - phi)

One task per step is serial Reptile; several is the batched version. With k = 1
and SGD, phi~ - phi = -alpha grad L(phi), so Reptile is plain SGD on the expected
task loss -- joint training (eq. (4.2)). No Hessian and no query set is used.

Everything below is one algorithm written once: :func:`reptile_direction` adapts
task after task with an inner optimizer given as an argument (``SGD(alpha)``, or
``Adam(alpha, beta1=0)`` whose state runs on from task to task as in the Reptile
code), and the public steps are thin wrappers around it. The inner steps may use
mini-batches of the support set: :func:`inner_batches` shuffles the support points
and takes consecutive batches, reshuffling when exhausted, as in the Reptile code.
"""

from __future__ import annotations

import numpy as np

from . import validate
from .inner import DivergenceError
from .optim import SGD, Adam, make_optimizer
from .tasks import check_task, iter_tasks


def inner_batches(rng, n, batch_size, k):
    """k mini-batches of the n support points: shuffle 0..n-1, take consecutive batches, reshuffle
    when fewer than ``batch_size`` remain. ``batch_size`` None or >= n: k full batches (``slice(None)``),
    and ``rng`` is not used. Returns a list of k index arrays (or slices)."""
    if batch_size is None or batch_size >= n:
        return [slice(None)] * k
    order, batches = np.empty(0, dtype=np.int64), []
    for _ in range(k):
        if order.size < batch_size:
            order = np.concatenate([order, rng.permutation(n)])
        batches.append(order[:batch_size])
        order = order[batch_size:]
    return batches


def inner_batch_indices(rng, num_tasks, n, batch_size, k):
    """:func:`inner_batches` of ``num_tasks`` tasks with n support points each, as an int64 array
    (num_tasks, k, m) with m = min(batch_size, n): row ``[i, j]`` lists the rows of task i's
    support set used in inner step j. The generator is consumed task by task, as by
    :func:`reptile_step` with ``inner_batch_size``."""
    rng = validate.rng(rng)
    m = min(validate.count("batch_size", batch_size, minimum=1), n)
    out = np.empty((num_tasks, k, m), dtype=np.int64)
    for i in range(num_tasks):
        for j, idx in enumerate(inner_batches(rng, n, m, k)):
            out[i, j] = np.arange(n)[idx]
    return out


def reptile_divergence(task, step, lr):
    """The error when task ``task``'s inner step ``step`` left non-finite parameters (both backends)."""
    return DivergenceError(
        f"Reptile inner step {step} of task {task}: the parameters became non-finite; "
        f"the inner step size {lr} is too large, try a smaller alpha"
    )


def reptile_adapt(net, phi, x, y, k, optimizer, state, loss="mse", batches=None, task=0):
    """phi~: k steps of ``optimizer`` from phi on (x, y). Returns ``(phi~, new optimizer state)``.

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    x, y : the support set, shapes as in ``MLP.loss_and_grad``
    k : int >= 0, inner steps
    optimizer : tinymeta.SGD or tinymeta.Adam, the inner optimizer
    state : dict, its state (``{}`` for SGD, ``Adam.init(P)`` or a previous state for Adam); not modified
    batches : sequence of k row-index arrays (mini-batches, see :func:`inner_batches`), or None: full set
    task : int, the task's position in its meta-batch (named in the divergence error)

    Raises
    ------
    DivergenceError
        If an inner step leaves non-finite parameters.
    """
    k = validate.count("k", k)
    batches = [slice(None)] * k if batches is None else batches
    for j in range(k):
        _, g = net.loss_and_grad(phi, x[batches[j]], y[batches[j]], loss)
        phi, state = optimizer.update(phi, g, state)
        if not np.all(np.isfinite(phi)):
            raise reptile_divergence(task, j, optimizer.lr)
    return phi, state


def reptile_direction(net, phi, tasks, k, optimizer, state, loss="mse", inner_indices=None):
    """The direction of one Reptile step: mean over tasks of phi~_i - phi (eq. (4.1) without epsilon).

    Task i starts from phi and from the optimizer state task i - 1 left (for SGD the state is empty).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    tasks : Task, TaskBatch or sequence of Task; only the support sets are used
    k : int >= 0, inner steps
    optimizer : tinymeta.SGD or tinymeta.Adam
    state : dict, the optimizer's state before the first task; not modified
    inner_indices : sequence over tasks of k row-index arrays, e.g. (B, k, m) ints from
        :func:`inner_batch_indices`; None: every step uses the full support set

    Returns
    -------
    (float, ndarray of shape (P,), dict): the mean support loss at phi (before adapting),
    mean(phi~ - phi) and the optimizer state after the last task.
    """
    phi = net.check_phi(phi)
    k = validate.count("k", k)
    tasks = list(iter_tasks(tasks))
    if not tasks:
        raise ValueError("tasks is empty; Reptile needs at least one task")
    values, delta = [], np.zeros_like(phi)
    for i, t in enumerate(tasks):
        x, y = net.check_data(t[0], t[1], loss, names=("x_support", "y_support"))
        batches = None if inner_indices is None else inner_indices[i]
        phi_i, state = reptile_adapt(net, phi, x, y, k, optimizer, state, loss, batches, task=i)
        values.append(net.loss(phi, x, y, loss))
        delta += phi_i - phi
    return float(np.mean(values)), delta / len(tasks), state


def _minibatches(tasks, k, inner_batch_size, rng):
    if inner_batch_size is None:
        return None
    validate.count("inner_batch_size", inner_batch_size, minimum=1)
    if rng is None:
        raise ValueError("rng is required when inner_batch_size is set (it shuffles the support set)")
    rng = validate.rng(rng)
    return [inner_batches(rng, len(t[0]), inner_batch_size, k) for t in tasks]


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
    tasks = [check_task(net, t, loss) for t in iter_tasks(tasks)]
    idx = _minibatches(tasks, validate.count("k", k), inner_batch_size, rng)
    _, delta, _ = reptile_direction(net, phi, tasks, k, inner, {}, loss, idx)
    return phi + epsilon * delta


def reptile_step_adam(net, phi, tasks, alpha, k, epsilon, adam_state, loss="mse", beta1=0.0,
                      inner_batch_size=None, rng=None):  # fmt: skip
    """Reptile with an Adam inner loop whose state persists across tasks, as in the Reptile code.

    Same update as :func:`reptile_step`; the inner optimizer is ``Adam(alpha, beta1=beta1)``
    (the paper uses beta1 = 0). ``adam_state`` is the dict from ``Adam(...).init(P)`` (or the
    previous call's output); it is carried from task to task and returned, never modified in place.

    Returns
    -------
    (ndarray of shape (P,), dict): the new phi and the new inner Adam state.
    """
    phi = net.check_phi(phi)
    epsilon = validate.positive("epsilon", epsilon)
    inner = make_optimizer("adam", validate.positive("alpha", alpha), beta1=beta1)
    adam_state = Adam.check_state(adam_state, phi.size)
    tasks = [check_task(net, t, loss) for t in iter_tasks(tasks)]
    idx = _minibatches(tasks, validate.count("k", k), inner_batch_size, rng)
    _, delta, adam_state = reptile_direction(net, phi, tasks, k, inner, adam_state, loss, idx)
    return phi + epsilon * delta, adam_state
