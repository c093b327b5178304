"""The inner update U^k(phi): trajectory, copies, divergence, argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, DivergenceError, adapt, adapt_trajectory

pytestmark = pytest.mark.fast


def _setup(loss="mse", seed=0):
    net = MLP([2, 8, 8, 3], "tanh")
    rng = np.random.default_rng(seed)
    phi = net.init(rng)
    x = rng.standard_normal((10, 2))
    y = rng.standard_normal((10, 3)) if loss == "mse" else rng.integers(0, 3, 10)
    return net, phi, x, y


def test_k0_returns_an_equal_copy():
    net, phi, x, y = _setup()
    out = adapt(net, phi, x, y, 0.1, 0)
    assert out is not phi
    assert not np.shares_memory(out, phi)
    np.testing.assert_array_equal(out, phi)
    out[0] += 1.0  # writing to the result must not reach the caller's phi
    assert out[0] != phi[0]


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("k", [1, 3])
def test_input_not_mutated(k, loss):
    net, phi, x, y = _setup(loss)
    before = (phi.copy(), x.copy(), y.copy())
    for a in (phi, x, y):
        a.flags.writeable = False  # any in-place write raises
    adapt_trajectory(net, phi, x, y, 0.1, k, loss)
    for a, b in zip((phi, x, y), before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("k", [0, 1, 4])
def test_trajectory_is_gradient_descent(k, loss):
    net, phi, x, y = _setup(loss)
    traj = adapt_trajectory(net, phi, x, y, 0.1, k, loss)
    assert traj.shape == (k + 1, net.num_params)
    assert traj.dtype == np.float64
    np.testing.assert_array_equal(traj[0], phi)
    for i in range(k):
        # the same float operations in the same order: bitwise equal
        g = net.loss_and_grad(traj[i], x, y, loss)[1]
        np.testing.assert_array_equal(traj[i + 1], traj[i] - 0.1 * g)
    np.testing.assert_array_equal(adapt(net, phi, x, y, 0.1, k, loss), traj[-1])


def test_adaptation_lowers_the_support_loss():
    net, phi, x, y = _setup()
    traj = adapt_trajectory(net, phi, x, y, 0.02, 10)
    losses = [net.loss(p, x, y) for p in traj]
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses


def test_accepts_integer_types_for_k_and_alpha():
    net, phi, x, y = _setup()
    np.testing.assert_array_equal(adapt(net, phi, x, y, 0.1, np.int64(2)), adapt(net, phi, x, y, 0.1, 2))
    np.testing.assert_array_equal(adapt(net, phi, x, y, 1, 1), adapt(net, phi, x, y, 1.0, 1))


@pytest.mark.parametrize("alpha", [1e3, 1e308])
def test_divergence_raises_and_names_alpha(alpha):
    # alpha = 1e3: the loss overflows after a few steps; alpha = 1e308: the very last
    # iterate overflows (k = 1), which no loss evaluation inside adapt would see.
    net, phi, x, y = _setup()
    y = 100.0 * y
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(DivergenceError, match="alpha"):
        adapt(net, phi, x, y, alpha, 100 if alpha == 1e3 else 1)


def test_divergence_error_is_a_floating_point_error():
    assert issubclass(DivergenceError, FloatingPointError)


BAD_ARGS = [
    ({"alpha": 0.0}, ValueError, "alpha"),
    ({"alpha": -0.1}, ValueError, "alpha"),
    ({"alpha": float("nan")}, ValueError, "alpha"),
    ({"alpha": float("inf")}, ValueError, "alpha"),
    ({"alpha": "0.1"}, TypeError, "alpha"),
    ({"k": -1}, ValueError, "k"),
    ({"k": 1.5}, TypeError, "k"),
    ({"k": 2.0}, TypeError, "k"),
    ({"k": True}, TypeError, "k"),
    ({"x": np.zeros((0, 2)), "y": np.zeros((0, 3))}, ValueError, "x has no rows"),
    ({"x": np.zeros((10, 3))}, ValueError, "x has shape"),
    ({"y": np.zeros((9, 3))}, ValueError, "y has shape"),
    ({"y": np.zeros((10, 2))}, ValueError, "y has shape"),
    ({"x": np.full((10, 2), np.nan)}, ValueError, "x contains"),
    ({"phi": np.zeros(5)}, ValueError, "phi has shape"),
    ({"phi": np.zeros((1, 123))}, ValueError, "phi must have 1 dimension"),
    ({"loss": "l1"}, ValueError, "loss"),
]


@pytest.mark.parametrize(("change", "error", "match"), BAD_ARGS)
def test_bad_arguments_name_the_argument(change, error, match):
    net, phi, x, y = _setup()
    args = {"phi": phi, "x": x, "y": y, "alpha": 0.1, "k": 2, "loss": "mse"} | change
    with pytest.raises(error, match=match):
        adapt(net, **args)
    with pytest.raises(error, match=match):
        adapt_trajectory(net, **args)
