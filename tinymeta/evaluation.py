"""Few-shot evaluation: query loss on held-out tasks after s inner SGD steps on each support set.

For each task i and each s in ``steps`` (Finn et al. 2017, Fig. 2 and 3)::

    loss_i(s) = L_query,i(phi_s),    phi_{j+1} = phi_j - alpha grad L_support,i(phi_j),  phi_0 = phi

reported as the mean over tasks with its standard error. One inner trajectory of
max(steps) steps per task serves every s.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import validate
from .inner import adapt_trajectory
from .tasks import check_task


class EvalResult(NamedTuple):
    """Held-out scores after each number of inner steps.

    Attributes
    ----------
    steps : tuple of int, length S
    mean : ndarray, shape (S,), mean query loss over tasks (the MSE for ``loss="mse"``)
    stderr : ndarray, shape (S,), standard error of that mean, std(ddof=1) / sqrt(n); NaN for one task
    per_task : ndarray, shape (n_tasks, S)
    accuracy : ndarray of shape (S,) (mean query accuracy) for ``loss="cross_entropy"``, else None
    """

    steps: tuple
    mean: np.ndarray
    stderr: np.ndarray
    per_task: np.ndarray
    accuracy: np.ndarray | None = None

    def as_dict(self, values=None):
        """``{"0": mean after 0 steps, "1": ..., ...}`` (JSON-ready floats); ``values`` overrides ``mean``."""
        values = self.mean if values is None else values
        return {str(s): float(v) for s, v in zip(self.steps, values, strict=True)}


def iter_tasks(tasks):
    """Yield :class:`Task` from a sequence of tasks, a single Task or a stacked ``TaskBatch``, lazily
    (a large held-out set, e.g. of images, is then never held in memory all at once)."""
    if hasattr(tasks, "task") and hasattr(tasks, "xs"):  # a TaskBatch: B tasks stacked on axis 0
        yield from (tasks.task(i) for i in range(len(tasks)))
    elif isinstance(tasks, tuple) and len(tasks) == 4 and isinstance(tasks[0], np.ndarray):
        yield tasks
    else:
        yield from tasks


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

    Raises
    ------
    DivergenceError
        If adapting on a support set produces a non-finite loss (alpha too large).
    """
    phi = net.check_phi(phi)
    alpha = validate.positive("alpha", alpha)
    steps = check_steps(steps)
    losses, accs = [], []
    for t in iter_tasks(tasks):
        t = check_task(net, t, loss)
        traj = adapt_trajectory(net, phi, t.x_support, t.y_support, alpha, steps[-1], loss)
        losses.append([net.loss(traj[s], t.x_query, t.y_query, loss) for s in steps])
        if loss == "cross_entropy":
            accs.append(
                [np.mean(np.argmax(net.forward(traj[s], t.x_query), axis=1) == t.y_query) for s in steps]
            )
    if not losses:
        raise ValueError("tasks is empty; evaluation needs at least one task")
    per_task, accuracy = np.array(losses), np.array(accs).mean(axis=0) if accs else None
    n = len(per_task)
    stderr = per_task.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(len(steps), np.nan)
    return EvalResult(steps, per_task.mean(axis=0), stderr, per_task, accuracy)
