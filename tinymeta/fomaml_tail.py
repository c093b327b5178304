"""First-order MAML as the Reptile paper runs it: Reptile's inner loop, and only its last step kept.

For each task, k inner steps of an optimizer (SGD, or Adam with beta1 = 0 whose state runs on from
task to task) go from phi over mini-batches of the task's training examples; first-order MAML keeps
only the last step (Nichol et al. 2018, sec. 6.2-6.3; the Reptile code's ``FOML``)::

    direction = mean_tasks(phi_k - phi_{k-1}),      phi <- phi + epsilon * direction

With SGD the last step is -alpha grad L_tail(phi_{k-1}): first-order MAML's gradient (eq. (3.4)) with
the final mini-batch playing the query set; Reptile keeps the sum of all k steps instead. Two ways
to choose the final mini-batch, as in the Reptile code:

* ``tail="shared"``: the k mini-batches are drawn alike from all the task's examples
  (:func:`tinymeta.reptile.inner_batches`: shuffle, consecutive batches, reshuffle when exhausted),
  so the final one overlaps the earlier ones once the inner loop cycles through the data;
* ``tail="separate"``: ``tail_shots`` examples of each class (the first ones; the first
  ``tail_shots`` rows for regression) are set apart; steps 1 .. k-1 use mini-batches of the other
  examples and step k uses the whole tail, which no earlier step has seen.

:func:`fomaml_tail_direction` is written once over a ``run`` function (a backend's Reptile step on one
task), so the NumPy reference and the Numba kernels share it; the inner steps are Reptile's.

References: Nichol, Achiam & Schulman (2018), "On First-Order Meta-Learning Algorithms", sec. 6.2-6.3;
openai/supervised-reptile, ``supervised_reptile/reptile.py`` (class ``FOML``, ``tail_shots``).
"""

from __future__ import annotations

import numpy as np

from . import validate
from .reptile import inner_batch_indices, inner_batches
from .tasks import TaskBatch

TAILS = ("shared", "separate")
"""Where the final inner mini-batch comes from (module docstring)."""


def tail_rows(y, tail_shots, loss):
    """Rows of a support set held apart as the separate tail, as a sorted int64 array.

    Classification (``loss="cross_entropy"``, integer labels ``y`` of shape (n,)): the first ``tail_shots``
    rows of each class, as the Reptile code's ``_split_train_test``; every class must keep at least one
    other row. Regression: the first ``tail_shots`` rows (the points are drawn independently), leaving at
    least one.
    """
    tail_shots = validate.count("tail_shots", tail_shots, minimum=1)
    y = np.asarray(y)
    if loss != "cross_entropy":
        if tail_shots >= len(y):
            raise ValueError(f"tail_shots={tail_shots} leaves no support row for the inner steps "
                             f"(the support set has {len(y)})")  # fmt: skip
        return np.arange(tail_shots, dtype=np.int64)
    rows = []
    for c in np.unique(y):
        of_c = np.flatnonzero(y == c)
        if tail_shots >= len(of_c):
            raise ValueError(f"tail_shots={tail_shots} leaves no example of class {c} for the inner "
                             f"steps (it has {len(of_c)} in the support set); use fewer tail shots or more "
                             "shots")  # fmt: skip
        rows.append(of_c[:tail_shots])
    return np.sort(np.concatenate(rows)).astype(np.int64)


def fomaml_tail_indices(rng, ys, k, batch_size, tail, tail_shots=None, loss="cross_entropy"):
    """The rows of every inner step of a meta-batch: ``(inner, last)``.

    Parameters
    ----------
    rng : np.random.Generator, consumed task by task (shared tail: exactly as Reptile with the same
        ``batch_size`` and k, so both see the same mini-batches)
    ys : (B, n) labels or (B, n, d) targets of the support sets
    k : int >= 1, inner steps
    batch_size : int >= 1 or None (None: every step on all the examples it may use)
    tail : {"shared", "separate"}
    tail_shots : int >= 1 for ``tail="separate"``, None for ``"shared"``

    Returns
    -------
    inner : int64 array (B, k - 1, m) of the rows of steps 1 .. k-1, or None (full set, or k = 1)
    last : int64 array (B, 1, m_last) of the rows of step k, or None (the full support set)
    """
    tail = validate.one_of("tail", tail, TAILS)
    k = validate.count("k", k, minimum=1)
    B, n = len(ys), np.shape(ys)[1]
    if tail == "shared":
        if tail_shots is not None:
            raise ValueError(f"tail_shots is for tail='separate'; got {tail_shots!r} with tail='shared'")
        if batch_size is None or batch_size >= n:
            return None, None
        idx = inner_batch_indices(rng, B, n, batch_size, k)
        return (idx[:, : k - 1] if k > 1 else None), idx[:, k - 1 :]
    last = [tail_rows(ys[i], tail_shots, loss) for i in range(B)]
    inner = None
    if k > 1:
        rest = [np.setdiff1d(np.arange(n), rows) for rows in last]
        m = len(rest[0]) if batch_size is None else min(batch_size, len(rest[0]))
        inner = np.empty((B, k - 1, m), dtype=np.int64)
        for i in range(B):
            for j, sel in enumerate(inner_batches(rng, len(rest[i]), m, k - 1)):
                inner[i, j] = rest[i][sel]
    return inner, np.stack(last)[:, None, :]


def fomaml_tail_direction(run, phi, batch, k, state, inner=None, last=None):
    """mean over tasks of phi_k - phi_{k-1}, the last of k inner steps (module docstring).

    Parameters
    ----------
    run : ``(phi, one_task_batch, steps, state, rows) -> (support loss at phi, phi~ - phi, state)``, a
        backend's Reptile step on one task (``rows``: int (1, steps, m) or None for the full support set)
    phi : ndarray, shape (P,)
    batch : TaskBatch (only the support sets are used)
    k : int >= 1, inner steps
    state : the inner optimizer's state before the first task (``{}`` for SGD); not modified
    inner, last : from :func:`fomaml_tail_indices`

    Returns
    -------
    (float, ndarray of shape (P,), state): the mean support loss at phi, the direction, and the inner
    optimizer's state after the last task (task i starts from the state task i - 1 left).
    """
    k = validate.count("k", k, minimum=1)
    values, direction = [], np.zeros_like(phi)
    for i in range(batch.num_tasks):
        one = TaskBatch(*(a[i : i + 1] for a in batch))
        value, to_last, state = run(phi, one, k - 1, state, None if inner is None else inner[i : i + 1])
        _, step, state = run(phi + to_last, one, 1, state, None if last is None else last[i : i + 1])
        values.append(value)
        direction += step
    return float(np.mean(values)), direction / batch.num_tasks, state
