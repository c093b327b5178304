"""Task families: the sine family's defaults, shapes, seeding, held-out set; Task validation."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, Sine, Task
from tinymeta.tasks import check_task

pytestmark = pytest.mark.fast


def test_sine_defaults_are_the_maml_papers():
    s = Sine()
    assert (s.K, s.K_query) == (10, 10)
    assert s.amplitude == (0.1, 5.0)
    assert s.phase == (0.0, np.pi)
    assert s.x_range == (-5.0, 5.0)
    assert s.grid is None
    assert "K=10" in repr(s)


def test_sample_shapes_and_ranges():
    s = Sine(K=5, K_query=7)
    amp, phase, xs, ys, xq, yq = s.sample_arrays(0, 200)
    assert amp.shape == phase.shape == (200,)
    assert xs.shape == ys.shape == (200, 5, 1)
    assert xq.shape == yq.shape == (200, 7, 1)
    assert all(a.dtype == np.float64 for a in (amp, phase, xs, ys, xq, yq))
    assert 0.1 <= amp.min() and amp.max() <= 5.0
    assert 0.0 <= phase.min() and phase.max() <= np.pi
    for x in (xs, xq):
        assert -5.0 <= x.min() and x.max() <= 5.0
    # y = A sin(x - p), exactly as computed
    np.testing.assert_array_equal(ys, amp[:, None, None] * np.sin(xs - phase[:, None, None]))
    np.testing.assert_array_equal(yq, amp[:, None, None] * np.sin(xq - phase[:, None, None]))
    tasks = s.sample(0, 3)
    assert len(tasks) == 3 and all(isinstance(t, Task) for t in tasks)
    assert tasks[0].x_support.shape == (5, 1) and tasks[0].y_query.shape == (7, 1)


def test_draw_order_is_the_documented_one():
    # A = U(B), p = U(B), x = U((B, K + K_query)) from the same generator, in this order
    B, K, Kq = 4, 3, 6
    amp, phase, xs, ys, xq, yq = Sine(K=K, K_query=Kq).sample_arrays(np.random.default_rng(11), B)
    rng = np.random.default_rng(11)
    amp_ref = rng.uniform(0.1, 5.0, B)
    phase_ref = rng.uniform(0.0, np.pi, B)
    x_ref = rng.uniform(-5.0, 5.0, (B, K + Kq))
    np.testing.assert_array_equal(amp, amp_ref)
    np.testing.assert_array_equal(phase, phase_ref)
    np.testing.assert_array_equal(xs[..., 0], x_ref[:, :K])
    np.testing.assert_array_equal(xq[..., 0], x_ref[:, K:])


def test_seeded_determinism():
    s = Sine()
    a = s.sample_arrays(5, 10)
    b = s.sample_arrays(np.random.default_rng(5), 10)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    c = s.sample_arrays(6, 10)
    assert not np.array_equal(a[0], c[0])
    # a shared generator moves on: two batches from it differ
    rng = np.random.default_rng(5)
    assert not np.array_equal(s.sample_arrays(rng, 10)[0], s.sample_arrays(rng, 10)[0])


def test_sample_with_truth_matches_sample():
    s = Sine()
    tasks, amp, phase = s.sample_with_truth(3, 4)
    plain = s.sample(3, 4)
    for t, u in zip(tasks, plain, strict=True):
        for a, b in zip(t, u, strict=True):
            np.testing.assert_array_equal(a, b)
    for t, a, p in zip(tasks, amp, phase, strict=True):
        np.testing.assert_array_equal(t.y_support, a * np.sin(t.x_support - p))


def test_evaluation_tasks_are_fixed_and_held_out():
    s = Sine()
    t1, amp1, ph1 = s.evaluation_tasks()
    t2, amp2, ph2 = s.evaluation_tasks()
    assert len(t1) == 100
    assert t1[0].x_support.shape == (10, 1) and t1[0].x_query.shape == (100, 1)
    np.testing.assert_array_equal(amp1, amp2)
    np.testing.assert_array_equal(ph1, ph2)
    for a, b in zip(t1, t2, strict=True):
        for u, v in zip(a, b, strict=True):
            np.testing.assert_array_equal(u, v)
    # a training stream seeded like the usual experiments never draws one of these tasks
    for seed in (0, 1, 12345 + 1):
        amp_train = s.sample_arrays(seed, 1000)[0]
        assert not np.isin(amp1, amp_train).any()
    # and training a different-seed family does not change the held-out set
    s.sample(0, 10)
    np.testing.assert_array_equal(s.evaluation_tasks()[1], amp1)
    assert not np.array_equal(s.evaluation_tasks(seed=1)[1], amp1)


def test_reptile_demo_grid():
    s = Sine.reptile_demo()
    assert (s.K, s.K_query) == (50, 50)
    assert s.phase == (0.0, 2.0 * np.pi)
    np.testing.assert_array_equal(s.grid, np.linspace(-5.0, 5.0, 50))
    _, _, xs, _, xq, _ = s.sample_arrays(0, 5)
    for x in (xs, xq):
        assert np.isin(x, s.grid).all()
        for row in x[..., 0]:
            assert np.unique(row).size == row.size  # without replacement within a set
    # K = 50 of 50 grid points: the support set is the whole grid, shuffled
    np.testing.assert_array_equal(np.sort(xs[0, :, 0]), s.grid)
    small = Sine(K=5, K_query=10, grid=np.linspace(-5.0, 5.0, 50))
    _, _, xs, _, xq, _ = small.sample_arrays(1, 3)
    assert xs.shape == (3, 5, 1) and xq.shape == (3, 10, 1)


def test_reptile_demo_evaluation_tasks_cap_the_query_set_at_the_grid():
    tasks, amp, _ = Sine.reptile_demo().evaluation_tasks(num_tasks=4)  # K_query=100 > 50 grid points
    assert len(tasks) == 4 and amp.shape == (4,)
    assert tasks[0].x_query.shape == (50, 1)
    tasks, _, _ = Sine.reptile_demo().evaluation_tasks(num_tasks=2, K_query=20)
    assert tasks[0].x_query.shape == (20, 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"K": 0}, ValueError, "K"),
        ({"K": 2.5}, TypeError, "K"),
        ({"K_query": 0}, ValueError, "K_query"),
        ({"amplitude": (5.0, 0.1)}, ValueError, "amplitude"),
        ({"phase": (0.0, np.inf)}, ValueError, "phase"),
        ({"x_range": (1.0, -1.0)}, ValueError, "x_range"),
        ({"grid": np.linspace(0, 1, 5), "K": 6}, ValueError, "grid"),
        ({"grid": np.zeros((2, 3))}, ValueError, "grid"),
    ],
)
def test_sine_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Sine(**kwargs)


def test_sample_bad_arguments():
    with pytest.raises(ValueError, match="num_tasks"):
        Sine().sample(0, 0)
    with pytest.raises(TypeError, match="rng"):
        Sine().sample(0.5, 2)
    with pytest.raises(ValueError, match="rng"):
        Sine().sample(-1, 2)


# ---------------------------------------------------------------- Task validation
def _task(loss="mse"):
    rng = np.random.default_rng(0)
    if loss == "mse":
        return Task(rng.standard_normal((4, 2)), rng.standard_normal((4, 3)),
                    rng.standard_normal((6, 2)), rng.standard_normal((6, 3)))  # fmt: skip
    return Task(
        rng.standard_normal((4, 2)), rng.integers(0, 3, 4), rng.standard_normal((6, 2)), rng.integers(0, 3, 6)
    )


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_check_task_accepts_and_converts(loss):
    net = MLP([2, 3], "tanh")
    t = _task(loss)
    t = t._replace(x_support=t.x_support.astype(np.float32))
    out = check_task(net, t, loss)
    assert isinstance(out, Task)
    assert out.x_support.dtype == np.float64
    assert out.y_support.dtype == (np.float64 if loss == "mse" else np.int64)
    # a plain 4-tuple is accepted too
    assert isinstance(check_task(net, tuple(_task(loss)), loss), Task)


@pytest.mark.parametrize(
    ("field", "value", "error", "match"),
    [
        ("x_support", np.zeros((4, 5)), ValueError, "x_support"),
        ("x_support", np.zeros((0, 2)), ValueError, "x_support has no rows"),
        ("y_support", np.zeros((3, 3)), ValueError, "y_support"),
        ("x_query", np.full((6, 2), np.nan), ValueError, "x_query"),
        ("y_query", np.zeros((6, 2)), ValueError, "y_query"),
        ("y_query", "abc", TypeError, "y_query"),
    ],
)
def test_check_task_names_the_bad_field(field, value, error, match):
    net = MLP([2, 3], "tanh")
    with pytest.raises(error, match=match):
        check_task(net, _task()._replace(**{field: value}), "mse")


def test_check_task_rejects_non_tasks_and_bad_labels():
    net = MLP([2, 3], "tanh")
    with pytest.raises(TypeError, match="task"):
        check_task(net, [1, 2, 3, 4], "mse")
    with pytest.raises(TypeError, match="task"):
        check_task(net, _task()[:3], "mse")
    t = _task("cross_entropy")
    with pytest.raises(ValueError, match="y_support"):
        check_task(net, t._replace(y_support=np.array([0, 1, 2, 3])), "cross_entropy")
    with pytest.raises(TypeError, match="y_query"):
        check_task(net, t._replace(y_query=np.zeros(6)), "cross_entropy")
