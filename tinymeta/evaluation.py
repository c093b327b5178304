"""Few-shot evaluation: query loss on held-out tasks after s inner SGD steps on each support set.

For each task i and each s in ``steps`` (Finn et al. 2017, Fig. 2 and 3)::

    loss_i(s) = L_query,i(phi_s),    phi_{j+1} = phi_j - alpha grad L_support,i(phi_j),  phi_0 = phi

reported as the mean over tasks with its standard error. One inner trajectory of
max(steps) steps per task serves every s. A task whose adaptation diverges (plain
SGD is unstable where the top Hessian eigenvalue of its support loss exceeds
2/alpha) scores inf from that step on and is counted in ``diverged``: one bad
task never discards the whole evaluation, and never hides in a finite mean.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import validate
from .inner import DivergenceError, adapt_trajectory
from .tasks import check_task, iter_tasks


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
    """

    steps: tuple
    mean: np.ndarray
    stderr: np.ndarray
    per_task: np.ndarray
    accuracy: np.ndarray | None = None
    diverged: np.ndarray | None = None

    def as_dict(self, values=None):
        """``{"0": mean after 0 steps, "1": ..., ...}`` (JSON-ready floats); ``values`` overrides ``mean``."""
        values = self.mean if values is None else values
        return {str(s): float(v) for s, v in zip(self.steps, values, strict=True)}


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


def evaluate(net, phi, tasks, alpha, steps=range(11), loss="mse") -> EvalResult:
    """Mean query loss (and its standard error) after s inner SGD steps, for every s in ``steps``.

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,), the (meta-learned) initial parameters
    tasks : sequence of Task, or a TaskBatch
        Held-out tasks, e.g. ``Sine().evaluation_tasks(100)[0]``.
    alpha : float > 0, inner SGD step size (use the one meta-training used)
    steps : iterable of int >= 0
    loss : {"mse", "cross_entropy"}

    Returns
    -------
    EvalResult

    """
    phi = net.check_phi(phi)
    alpha = validate.positive("alpha", alpha)
    steps = check_steps(steps)
    losses, accs = [], []
    for t in iter_tasks(tasks):
        t = check_task(net, t, loss)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging task is reported, not warned about
            traj = _trajectory(net, phi, t, alpha, steps[-1], loss)
            losses.append([_query_loss(net, traj[s], t, loss) for s in steps])
            if loss == "cross_entropy":
                accs.append([_accuracy(net, traj[s], t) for s in steps])
    if not losses:
        raise ValueError("tasks is empty; evaluation needs at least one task")
    per_task, accuracy = np.array(losses), np.array(accs).mean(axis=0) if accs else None
    n = len(per_task)
    with np.errstate(over="ignore", invalid="ignore"):
        stderr = per_task.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(len(steps), np.nan)
    diverged = np.count_nonzero(~np.isfinite(per_task), axis=0)
    return EvalResult(steps, per_task.mean(axis=0), stderr, per_task, accuracy, diverged)


def _trajectory(net, phi, task, alpha, k, loss):
    """phi_0 .. phi_k on the support set; rows after a divergence are NaN."""
    try:
        return adapt_trajectory(net, phi, task.x_support, task.y_support, alpha, k, loss)
    except DivergenceError:
        traj = np.full((k + 1, phi.size), np.nan)
        traj[0] = phi
        for s in range(k):  # again one step at a time, to keep the steps before the divergence
            try:
                traj[s + 1] = adapt_trajectory(net, traj[s], task.x_support, task.y_support, alpha, 1, loss)[
                    1
                ]
            except DivergenceError:
                break
        return traj


def _query_loss(net, phi_s, task, loss):
    if not np.all(np.isfinite(phi_s)):
        return np.inf
    value = net.loss(phi_s, task.x_query, task.y_query, loss)
    return value if np.isfinite(value) else np.inf


def _accuracy(net, phi_s, task):
    if not np.all(np.isfinite(phi_s)):
        return 0.0
    return float(np.mean(np.argmax(net.forward(phi_s, task.x_query), axis=1) == task.y_query))
