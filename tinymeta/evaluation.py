"""Few-shot evaluation: query loss (and accuracy) on held-out tasks after s inner steps on each support set.

For each task i and each s in ``steps`` (Finn et al. 2017, Fig. 2 and 3)::

    loss_i(s) = L_B,i(phi_s),    phi_0 = phi,  phi_{j+1} = phi_j - alpha grad L_A,i(phi_j)   (eq. (3.1))

reported as the mean over tasks with its standard error; for classification also the mean query
accuracy with a 95 % interval. One inner trajectory of max(steps) steps per task serves every s.

The inner loop at test time is the one the initialisation was trained with. By default it is the
full-batch SGD of eq. (3.1); :func:`adam_adapter` gives Reptile's (Adam on mini-batches, from the
Adam state training left, as in the Reptile code). A task whose adaptation diverges (plain SGD is
unstable where the top Hessian eigenvalue of its support loss exceeds 2/alpha) scores inf from that
step on and is counted in ``diverged``: one bad task never discards the whole evaluation, and
never hides in a finite mean.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import batch, validate
from .inner import DivergenceError, adapt_trajectory
from .optim import Adam
from .reptile import inner_batch_indices
from .tasks import TaskBatch, check_task, iter_tasks


class EvalResult(NamedTuple):
    """Held-out scores after each number of inner steps.

    Attributes
    ----------
    steps : tuple of int, length S
    mean : ndarray, shape (S,), mean query loss over tasks (the MSE for ``loss="mse"``)
    stderr : ndarray, shape (S,), standard error of that mean, std(ddof=1) / sqrt(n); NaN for one task
    per_task : ndarray, shape (n_tasks, S)
    accuracy : ndarray of shape (S,) (mean query accuracy) for ``loss="cross_entropy"``, else None
    diverged : ndarray of int, shape (S,), number of tasks whose adaptation diverged by step s
    per_task_accuracy : ndarray, shape (n_tasks, S), for ``loss="cross_entropy"``, else None
    """

    steps: tuple
    mean: np.ndarray
    stderr: np.ndarray
    per_task: np.ndarray
    accuracy: np.ndarray | None = None
    diverged: np.ndarray | None = None
    per_task_accuracy: np.ndarray | None = None

    def as_dict(self, values=None):
        """``{"0": mean after 0 steps, "1": ..., ...}`` (floats); ``values`` overrides ``mean``."""
        values = self.mean if values is None else values
        return {str(s): float(v) for s, v in zip(self.steps, values, strict=True)}

    def accuracy_ci95(self):
        """Per step: (mean accuracy, half-width of its 95 % interval), as two (S,) arrays."""
        if self.per_task_accuracy is None:
            raise ValueError("accuracy is defined for loss='cross_entropy' only")
        pairs = [mean_ci95(col) for col in self.per_task_accuracy.T]
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def mean_ci95(values) -> tuple[float, float]:
    """(mean, 1.96 * std(ddof=1) / sqrt(n)): a normal 95 % interval for the mean of per-task scores."""
    v = np.asarray(values, dtype=np.float64)
    half = float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), half


def check_steps(steps):
    """Sorted, distinct, non-negative step counts as a tuple."""
    try:
        steps = [validate.count("each entry of steps", s) for s in steps]
    except TypeError as e:
        if "each entry" in str(e):
            raise
        raise TypeError(f"steps must be a sequence of integers >= 0; got {steps!r}") from None
    if not steps:
        raise ValueError("steps is empty; give at least one number of inner steps, e.g. range(11)")
    return tuple(sorted(set(steps)))


def sgd_adapter(net, alpha, loss="mse"):
    """The default test-time inner loop: full-batch SGD of ``alpha`` (eq. (3.1)).

    Returns ``adapt(phi, task, steps) -> (len(steps), P) array``; rows after a divergence are NaN.
    """
    alpha = validate.positive("alpha", alpha)

    def adapt(phi, task, steps):
        try:
            traj = adapt_trajectory(net, phi, task.x_support, task.y_support, alpha, steps[-1], loss)
        except DivergenceError:
            traj = np.full((steps[-1] + 1, phi.size), np.nan)
            traj[0] = phi
            for s in range(steps[-1]):  # again one step at a time, to keep the steps before the divergence
                try:
                    traj[s + 1] = adapt_trajectory(
                        net, traj[s], task.x_support, task.y_support, alpha, 1, loss
                    )[1]
                except DivergenceError:
                    break
        return traj[list(steps)]

    return adapt


def adam_adapter(net, alpha, adam_state, batch_size, seed=0, loss="mse", batch_function=None):
    """Reptile's test-time inner loop: Adam(alpha, beta1 = 0) on mini-batches of ``batch_size`` support
    rows, each task starting from a copy of ``adam_state`` (the state training left).

    The mini-batches of task after task are drawn from ``np.random.default_rng(seed)``, created when this
    adapter is made: make a new adapter for each evaluation to score the same tasks the same way.
    ``batch_function``: the backend's ``reptile_adam`` (see :func:`tinymeta.backends.batch_functions`);
    default the NumPy reference :func:`tinymeta.batch.reptile_adam_batch`.
    Returns ``adapt(phi, task, steps) -> (len(steps), P) array``.
    """
    batch_function = batch.reptile_adam_batch if batch_function is None else batch_function
    adam = Adam(validate.positive("alpha", alpha), beta1=0.0)
    adam_state = Adam.check_state(adam_state, net.num_params)
    batch_size = validate.count("batch_size", batch_size, minimum=1)
    rng = np.random.default_rng(validate.count("seed", seed))

    def adapt(phi, task, steps):
        idx = inner_batch_indices(rng, 1, len(task.x_support), batch_size, steps[-1])
        out, done, state = [], 0, adam_state
        for s in steps:  # Adam from step `done` to step s, then record
            if s > done:
                one = TaskBatch(*(np.asarray(a)[None] for a in task))
                _, delta, state = batch_function(net, phi, one, adam.lr, s - done, state, loss, 0.0,
                                                 idx[:, done:s])  # fmt: skip
                phi, done = phi + delta, s
            out.append(phi)
        return np.array(out)

    return adapt


def evaluate(net, phi, tasks, alpha, steps=range(11), loss="mse", adapt=None) -> EvalResult:
    """Mean query loss (and its standard error) after s inner steps, for every s in ``steps``.

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,), the (meta-learned) initial parameters
    tasks : sequence of Task, or a TaskBatch
        Held-out tasks, e.g. ``Sine().evaluation_tasks(100)[0]``.
    alpha : float > 0, inner SGD step size (use the one meta-training used)
    steps : iterable of int >= 0
    loss : {"mse", "cross_entropy"}
    adapt : callable ``(phi, task, steps) -> (len(steps), P)`` or None
        The test-time inner loop; default :func:`sgd_adapter` of ``alpha``.

    Returns
    -------
    EvalResult
    """
    phi = net.check_phi(phi)
    alpha = validate.positive("alpha", alpha)
    steps = check_steps(steps)
    adapt = sgd_adapter(net, alpha, loss) if adapt is None else adapt
    losses, accs = [], []
    for t in iter_tasks(tasks):
        t = check_task(net, t, loss)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging task is reported, not warned about
            at_steps = adapt(phi, t, steps)
            losses.append([_query_loss(net, p, t, loss) for p in at_steps])
            if loss == "cross_entropy":
                accs.append([_accuracy(net, p, t) for p in at_steps])
    if not losses:
        raise ValueError("tasks is empty; evaluation needs at least one task")
    per_task = np.array(losses)
    per_acc = np.array(accs) if accs else None
    n = len(per_task)
    with np.errstate(over="ignore", invalid="ignore"):
        stderr = per_task.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(len(steps), np.nan)
    diverged = np.count_nonzero(~np.isfinite(per_task), axis=0)
    accuracy = None if per_acc is None else per_acc.mean(axis=0)
    return EvalResult(steps, per_task.mean(axis=0), stderr, per_task, accuracy, diverged, per_acc)


def _query_loss(net, phi_s, task, loss):
    if not np.all(np.isfinite(phi_s)):
        return np.inf
    value = net.loss(phi_s, task.x_query, task.y_query, loss)
    return value if np.isfinite(value) else np.inf


def _accuracy(net, phi_s, task):
    if not np.all(np.isfinite(phi_s)):
        return 0.0
    return float(np.mean(np.argmax(net.forward(phi_s, task.x_query), axis=1) == task.y_query))
