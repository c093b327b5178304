"""Tasks and task families.

A task is the pair of data sets the papers call A and B (support and query):
the inner loop adapts on the support set, the meta-objective is measured on
the query set. Families are seeded only through an explicit ``np.random.Generator``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import validate


class Task(NamedTuple):
    """One task: support set (A) for adaptation, query set (B) for the meta-objective.

    Attributes
    ----------
    x_support : ndarray, shape (K, d_in)
    y_support : ndarray, shape (K, d_out) for regression, int (K,) for classification
    x_query : ndarray, shape (K_query, d_in)
    y_query : ndarray, shape (K_query, d_out) or int (K_query,)
    """

    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray


class TaskBatch(NamedTuple):
    """B tasks of equal sizes stacked on a leading axis: the unit of work of one meta-iteration.

    Attributes
    ----------
    xs : ndarray, shape (B, K, d_in)
    ys : ndarray, shape (B, K, d_out) for regression, int (B, K) for classification
    xq : ndarray, shape (B, K_query, d_in)
    yq : ndarray, shape (B, K_query, d_out) or int (B, K_query)
    """

    xs: np.ndarray
    ys: np.ndarray
    xq: np.ndarray
    yq: np.ndarray

    @property
    def num_tasks(self):
        """B, the number of stacked tasks (``len`` stays the number of fields, as for any NamedTuple)."""
        return self.xs.shape[0]

    def task(self, i) -> Task:
        """Task ``i`` of the batch as a :class:`Task` (views, no copy)."""
        return Task(self.xs[i], self.ys[i], self.xq[i], self.yq[i])

    @classmethod
    def stack(cls, tasks):
        """Stack a list of equally sized :class:`Task` into a batch."""
        if not tasks:
            raise ValueError("tasks is empty; a meta-batch needs at least one task")
        return cls(*(np.stack([np.asarray(t[j]) for t in tasks]) for j in range(4)))


def check_task(net, task, loss):
    """Validate a :class:`Task` against a network and a loss; returns it as float64 arrays."""
    if not isinstance(task, tuple) or len(task) != 4:
        raise TypeError(
            "task must be a tinymeta.Task (x_support, y_support, x_query, y_query); "
            f"got {type(task).__name__}"
        )
    xs, ys = net.check_data(task[0], task[1], loss, names=("x_support", "y_support"))
    xq, yq = net.check_data(task[2], task[3], loss, names=("x_query", "y_query"))
    return Task(xs, ys, xq, yq)


def iter_tasks(tasks):
    """Yield :class:`Task` from one Task, a stacked :class:`TaskBatch` or a sequence of tasks, lazily
    (a large held-out set, e.g. of images, is then never held in memory all at once)."""
    if isinstance(tasks, Task):
        yield tasks
    elif isinstance(tasks, TaskBatch):
        yield from (tasks.task(i) for i in range(tasks.num_tasks))
    else:
        yield from tasks


class Sine:
    """Sine-wave regression tasks y = A sin(x - p) (Finn et al. 2017, Sec. 5.1).

    Defaults are the MAML paper's: amplitude A ~ U[0.1, 5.0], phase p ~ U[0, pi],
    x ~ U[-5, 5], ``K`` support and ``K_query`` query points. With ``grid``, x is
    drawn without replacement from the given grid points instead (the Reptile
    demo samples from 50 points evenly spaced on [-5, 5]); see :meth:`reptile_demo`.

    Draw order per batch of B tasks (the reference implementations use the same):
    ``A = U(B)``, ``p = U(B)``, ``x = U((B, K + K_query))``; the first K columns of
    x are the support set, the rest the query set.
    """

    def __init__(self, K=10, K_query=10, amplitude=(0.1, 5.0), phase=(0.0, np.pi), x_range=(-5.0, 5.0),
                 grid=None):  # fmt: skip
        self.K = validate.count("K", K, minimum=1)
        self.K_query = validate.count("K_query", K_query, minimum=1)
        self.amplitude, self.phase, self.x_range = _range("amplitude", amplitude), _range("phase", phase), \
            _range("x_range", x_range)  # fmt: skip
        self.grid = None if grid is None else validate.float_array("grid", grid, 1)
        if self.grid is not None and max(self.K, self.K_query) > self.grid.size:
            raise ValueError(f"K={self.K}, K_query={self.K_query} exceed the {self.grid.size} grid points")

    @classmethod
    def reptile_demo(cls, K=50, K_query=50):
        """The Reptile sine demo: phase U[0, 2 pi], x from a 50-point grid on [-5, 5]."""
        return cls(K=K, K_query=K_query, phase=(0.0, 2.0 * np.pi), grid=np.linspace(-5.0, 5.0, 50))

    def __repr__(self):
        grid = None if self.grid is None else self.grid.size
        return (f"Sine(K={self.K}, K_query={self.K_query}, amplitude={self.amplitude}, phase={self.phase}, "
                f"x_range={self.x_range}, grid={grid})")  # fmt: skip

    def sample_arrays(self, rng, num_tasks):
        """A batch as stacked arrays: ``(A, p, xs, ys, xq, yq)`` with xs, ys of shape (B, K, 1)."""
        rng = validate.rng(rng)
        B = validate.count("num_tasks", num_tasks, minimum=1)
        amp = rng.uniform(*self.amplitude, B)
        phase = rng.uniform(*self.phase, B)
        if self.grid is None:
            x = rng.uniform(*self.x_range, (B, self.K + self.K_query))
        else:
            x = np.stack([np.concatenate([rng.choice(self.grid, self.K, replace=False),
                                          rng.choice(self.grid, self.K_query, replace=False)])
                          for _ in range(B)])  # fmt: skip
        y = amp[:, None] * np.sin(x - phase[:, None])
        K = self.K
        return amp, phase, x[:, :K, None], y[:, :K, None], x[:, K:, None], y[:, K:, None]

    def sample(self, rng, num_tasks):
        """``num_tasks`` independent tasks, a list of :class:`Task`."""
        _, _, xs, ys, xq, yq = self.sample_arrays(rng, num_tasks)
        return [Task(xs[i], ys[i], xq[i], yq[i]) for i in range(len(xs))]

    def sample_with_truth(self, rng, num_tasks):
        """Tasks together with their (amplitude, phase), for plotting the true curve."""
        amp, phase, xs, ys, xq, yq = self.sample_arrays(rng, num_tasks)
        tasks = [Task(xs[i], ys[i], xq[i], yq[i]) for i in range(len(xs))]
        return tasks, amp, phase

    def evaluation_tasks(self, num_tasks=100, seed=12345, K_query=100):
        """A fixed, seeded held-out set: ``num_tasks`` tasks with ``K_query`` query points each.

        The same arguments always give the same tasks; the generator is separate from
        the training stream, so training never sees these tasks' draws.
        """
        if self.grid is not None:  # a grid holds at most grid.size distinct query points
            K_query = min(validate.count("K_query", K_query, minimum=1), self.grid.size)
        family = Sine(self.K, K_query, self.amplitude, self.phase, self.x_range, self.grid)
        return family.sample_with_truth(np.random.default_rng(seed), num_tasks)


def _range(name, pair):
    lo, hi = (float(v) for v in pair)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name} must be a finite (low, high) pair with low <= high; got {pair!r}")
    return (lo, hi)
