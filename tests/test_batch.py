"""Meta-batches: stacking, the batched algorithms as means of per-task results, inner mini-batch indices."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, Sine, Task, fomaml_grad, maml_grad, meta_objective, reptile_step
from tinymeta.backends import batch_functions, default_backend
from tinymeta.batch import fomaml_batch, maml_batch, reptile_adam_batch, reptile_batch
from tinymeta.reptile import inner_batch_indices
from tinymeta.tasks import TaskBatch

pytestmark = pytest.mark.fast

# The batched functions average the per-task results; a mean of B <= 5 vectors of size P
# computed in a different order differs by a few ulps, so relative 1e-14. Reptile's
# phi + eps * delta versus reptile_step: absolute 1e-14 on |phi_j| <= 1 (a few roundings of ~1e-16).
RTOL = 1e-14
ATOL = 1e-14


def _sine(B=5, K=10, seed=0):
    net = MLP([1, 16, 16, 1], "tanh")
    rng = np.random.default_rng(seed)
    return net, net.init(rng), Sine(K, 7).sample(rng, B)


def _classification(B=3, seed=0):
    net = MLP([2, 8, 3], "tanh")
    rng = np.random.default_rng(seed)
    tasks = [Task(rng.standard_normal((6, 2)), rng.integers(0, 3, 6), rng.standard_normal((4, 2)),
                  rng.integers(0, 3, 4)) for _ in range(B)]  # fmt: skip
    return net, net.init(rng), tasks


def test_stack_shapes_and_round_trip():
    _, _, tasks = _sine(B=4)
    batch = TaskBatch.stack(tasks)
    assert batch.num_tasks == 4
    assert batch.xs.shape == batch.ys.shape == (4, 10, 1)
    assert batch.xq.shape == batch.yq.shape == (4, 7, 1)
    for i, t in enumerate(tasks):
        assert isinstance(batch.task(i), Task)
        for a, b in zip(batch.task(i), t, strict=True):
            np.testing.assert_array_equal(a, b)
    _, _, ctasks = _classification()
    cbatch = TaskBatch.stack(ctasks)
    assert cbatch.ys.shape == (3, 6) and cbatch.ys.dtype.kind == "i"
    with pytest.raises(ValueError, match="tasks is empty"):
        TaskBatch.stack([])
    swapped = batch._replace(yq=batch.yq + 1.0)
    assert isinstance(swapped, TaskBatch) and swapped.num_tasks == 4
    np.testing.assert_array_equal(swapped.yq, batch.yq + 1.0)


@pytest.mark.parametrize("k", [0, 1, 3])
@pytest.mark.parametrize("problem", ["sine", "classification"])
def test_maml_and_fomaml_batch_are_means_of_per_task_results(problem, k):
    net, phi, tasks = _sine() if problem == "sine" else _classification()
    loss = "mse" if problem == "sine" else "cross_entropy"
    alpha = 0.05 if problem == "sine" else 0.5
    batch = TaskBatch.stack(tasks)
    value, g = maml_batch(net, phi, batch, alpha, k, loss)
    np.testing.assert_allclose(g, np.mean([maml_grad(net, phi, t, alpha, k, loss) for t in tasks], axis=0),
                               rtol=RTOL, atol=0)  # fmt: skip
    np.testing.assert_allclose(value, np.mean([meta_objective(net, phi, t, alpha, k, loss) for t in tasks]),
                               rtol=RTOL, atol=0)  # fmt: skip
    value_fo, g_fo = fomaml_batch(net, phi, batch, alpha, k, loss)
    g_fo_ref = np.mean([fomaml_grad(net, phi, t, alpha, k, loss) for t in tasks], axis=0)
    np.testing.assert_allclose(g_fo, g_fo_ref, rtol=RTOL, atol=0)
    assert value_fo == value  # the same meta-objective F(phi)
    if k > 0:
        assert np.linalg.norm(g - g_fo) > 1e-3 * np.linalg.norm(g)  # and the two gradients differ


@pytest.mark.parametrize("k", [0, 1, 4])
def test_reptile_batch_is_reptile_step(k):
    net, phi, tasks = _sine()
    batch = TaskBatch.stack(tasks)
    value, delta = reptile_batch(net, phi, batch, 0.02, k)
    np.testing.assert_allclose(
        phi + 0.3 * delta, reptile_step(net, phi, tasks, 0.02, k, 0.3), rtol=0, atol=ATOL
    )
    np.testing.assert_allclose(value, np.mean([net.loss(phi, t.x_support, t.y_support) for t in tasks]),
                               rtol=RTOL)  # fmt: skip


def test_reptile_batch_with_indices_is_reptile_step_with_minibatches():
    # inner_batch_indices consumes the generator exactly as reptile_step's inner loop does
    net, phi, tasks = _sine(B=3)
    batch = TaskBatch.stack(tasks)
    idx = inner_batch_indices(np.random.default_rng(9), 3, 10, 4, 5)
    _, delta = reptile_batch(net, phi, batch, 0.02, 5, inner_indices=idx)
    expected = reptile_step(net, phi, tasks, 0.02, 5, 0.5, inner_batch_size=4, rng=np.random.default_rng(9))
    np.testing.assert_allclose(phi + 0.5 * delta, expected, rtol=0, atol=ATOL)
    # and the indices matter
    _, full = reptile_batch(net, phi, batch, 0.02, 5)
    assert np.abs(full - delta).max() > 1e-6


@pytest.mark.parametrize(("n", "m", "k"), [(10, 4, 7), (10, 5, 6), (7, 3, 9), (5, 1, 12)])
def test_inner_batch_indices_cover_each_point_once_per_epoch(n, m, k):
    idx = inner_batch_indices(3, 4, n, m, k)
    assert idx.shape == (4, k, m) and idx.dtype == np.int64
    for task in idx:
        stream = task.ravel()  # the consecutive batches of one task
        for e in range(stream.size // n):  # every complete epoch is a permutation of 0..n-1
            np.testing.assert_array_equal(np.sort(stream[e * n : (e + 1) * n]), np.arange(n))
        tail = stream[(stream.size // n) * n :]
        assert np.unique(tail).size == tail.size  # a partial epoch repeats no point
    np.testing.assert_array_equal(idx, inner_batch_indices(np.random.default_rng(3), 4, n, m, k))
    assert not np.array_equal(idx, inner_batch_indices(4, 4, n, m, k))
    assert not np.array_equal(idx[0], idx[1])  # each task has its own shuffle


def test_inner_batch_indices_full_batch():
    # batch_size >= n: every step uses all points, in order (no shuffle needed)
    idx = inner_batch_indices(0, 2, 6, 10, 3)
    assert idx.shape == (2, 3, 6)
    np.testing.assert_array_equal(idx, np.broadcast_to(np.arange(6), (2, 3, 6)))
    with pytest.raises(ValueError, match="batch_size"):
        inner_batch_indices(0, 2, 6, 0, 3)


def test_backend_selection(monkeypatch):
    from tinymeta.anil import anil_batch
    from tinymeta.imaml import imaml_batch
    from tinymeta.imaml_approx import imaml_approx_batch
    from tinymeta.metasgd import metasgd_batch

    funcs = batch_functions("numpy")
    assert funcs == {"maml": maml_batch, "fomaml": fomaml_batch, "reptile": reptile_batch,
                     "reptile_adam": reptile_adam_batch, "metasgd": metasgd_batch, "anil": anil_batch,
                     "imaml": imaml_batch, "imaml_approx": imaml_approx_batch}  # fmt: skip
    with pytest.raises(ValueError, match="backend"):
        batch_functions("torch")
    monkeypatch.setenv("TINYMETA_BACKEND", "numpy")
    assert default_backend() == "numpy"
    assert batch_functions() == funcs
    monkeypatch.setenv("TINYMETA_BACKEND", "cuda")
    with pytest.raises(ValueError, match="TINYMETA_BACKEND"):
        default_backend()
    monkeypatch.delenv("TINYMETA_BACKEND")
    assert default_backend() == "numba"


def test_reptile_batch_bad_arguments():
    net, phi, tasks = _sine(B=2)
    batch = TaskBatch.stack(tasks)
    with pytest.raises(ValueError, match="alpha"):
        reptile_batch(net, phi, batch, 0.0, 1)
    with pytest.raises(ValueError, match="k"):
        reptile_batch(net, phi, batch, 0.1, -1)
    with pytest.raises(ValueError, match="phi"):
        reptile_batch(net, phi[:-1], batch, 0.1, 1)
    with pytest.raises(ValueError, match="x_support"):
        reptile_batch(net, phi, batch._replace(xs=np.zeros((2, 10, 3))), 0.1, 1)
