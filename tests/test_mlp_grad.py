"""MLP: parameters, forward pass, and the backprop gradient against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, gradcheck
from tinymeta.params import flatten, num_params

pytestmark = pytest.mark.fast

ACTS = ["tanh", "relu", "sigmoid", "softplus", "identity"]
LOSSES = ["mse", "cross_entropy"]

# Thresholds on the relative error of the whole gradient (gradcheck.rel_error):
# * smooth activations, 1e-6: central differences in float64 give O(h^2) truncation plus
#   O(eps |L| / h) round-off, measured around 1e-10..1e-9; a wrong gradient lands near 1.
# * ReLU, 1e-4: ReLU is not differentiable at z = 0, and a difference step that crosses a kink
#   measures a wrong slope in that coordinate. make_batch keeps every hidden |z| > 1e-3, far
#   more than a step moves z (~1e-5), so in practice the error is as small as for smooth
#   activations; the looser threshold only absorbs a unit sitting unexpectedly close to a kink.
SMOOTH_TOL = 1e-6
RELU_TOL = 1e-4


def tol(activation):
    return RELU_TOL if activation == "relu" else SMOOTH_TOL


def out_width(loss):
    # cross-entropy needs >= 2 classes to be non-trivial; mse uses 2 outputs to exercise the sum
    return 3 if loss == "cross_entropy" else 2


# (d_in, hidden widths): depth 1..3, widths 1..8, including width-1 bottlenecks
SMALL = [(3, ()), (1, (1,)), (2, (5,)), (4, (1, 3)), (3, (8, 6))]


def _setup(sizes, activation, loss, n, make_batch, seed=0):
    net = MLP(sizes, activation)
    rng = np.random.default_rng(seed)
    phi = net.init(rng)
    X, y = make_batch(net, phi, n, loss, rng)
    return net, phi, X, y


# ---------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("n", [1, 25])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize(("d_in", "hidden"), SMALL)
def test_grad_coordinatewise_small_nets(d_in, hidden, activation, loss, n, make_batch):
    sizes = [d_in, *hidden, out_width(loss)]
    net, phi, X, y = _setup(sizes, activation, loss, n, make_batch)
    report = gradcheck.check_model(net, phi, X, y, loss, h=1e-5, threshold=tol(activation))
    assert report.passed, str(report)


@pytest.mark.parametrize("activation", ACTS)
def test_grad_coordinatewise_sine_net(activation, make_batch):
    # the 1-40-40-1 network of the sine benchmark, P = 1761: 3522 loss evaluations, ~0.1 s
    net, phi, X, y = _setup([1, 40, 40, 1], activation, "mse", 25, make_batch)
    report = gradcheck.check_model(net, phi, X, y, "mse", h=1e-5, threshold=tol(activation))
    assert report.passed, str(report)


BIG = [[1, 40, 40, 1], [1, 40, 40, 4], [40, 3], [10, 40, 40, 5], [20, 40, 40]]


@pytest.mark.parametrize("n", [1, 25])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("sizes", BIG, ids=str)
def test_grad_directional_big_nets(sizes, activation, n, make_batch):
    # one output: cross-entropy would be identically 0 (and pass vacuously), so mse only
    for loss in LOSSES if sizes[-1] > 1 else ["mse"]:
        net, phi, X, y = _setup(sizes, activation, loss, n, make_batch, seed=1)
        report = gradcheck.check_directional(
            lambda p, net=net, X=X, y=y, loss=loss: net.loss(p, X, y, loss),
            lambda p, net=net, X=X, y=y, loss=loss: net.loss_and_grad(p, X, y, loss)[1],
            phi,
            rng=2,
            num_directions=10,
            h=1e-6,
            threshold=tol(activation),
        )
        assert report.passed, f"{net!r} {loss}: {report}"


# ---------------------------------------------------------------- forward and loss
def test_forward_by_hand():
    net = MLP([2, 3, 1], "tanh")
    phi = np.arange(net.num_params, dtype=np.float64) / 10.0
    W1, b1 = phi[:6].reshape(2, 3), phi[6:9]  # row-major W then b, layer by layer
    W2, b2 = phi[9:12].reshape(3, 1), phi[12:13]
    X = np.array([[1.0, -1.0], [0.5, 2.0]])
    expected = np.tanh(X @ W1 + b1) @ W2 + b2
    np.testing.assert_allclose(net.forward(phi, X), expected, rtol=1e-15)


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_and_grad_value_equals_loss(loss, make_batch):
    net, phi, X, y = _setup([3, 5, 4, out_width(loss)], "tanh", loss, 7, make_batch)
    value, grad = net.loss_and_grad(phi, X, y, loss)
    assert isinstance(value, float)
    assert value == net.loss(phi, X, y, loss)
    assert grad.shape == (net.num_params,) and grad.dtype == np.float64


@pytest.mark.parametrize("loss", LOSSES)
def test_batch_loss_and_grad_are_means_over_examples(loss, make_batch):
    # L and dL/dphi are means of the per-example values (the convention of tinymeta.losses);
    # 1e-13 relative: sums of 6 terms reordered
    net, phi, X, y = _setup([2, 6, out_width(loss)], "softplus", loss, 6, make_batch)
    per = [net.loss_and_grad(phi, X[i : i + 1], y[i : i + 1], loss) for i in range(6)]
    value, grad = net.loss_and_grad(phi, X, y, loss)
    np.testing.assert_allclose(value, np.mean([v for v, _ in per]), rtol=1e-13)
    np.testing.assert_allclose(grad, np.mean([g for _, g in per], axis=0), rtol=1e-13, atol=1e-15)


def test_output_bias_gradient_by_hand(make_batch):
    # mse: dL/db_L = (2/n) sum_i (yhat_i - y_i); the last d_L entries of phi are b_L
    net, phi, X, y = _setup([3, 4, 2], "sigmoid", "mse", 5, make_batch)
    _, grad = net.loss_and_grad(phi, X, y, "mse")
    expected = 2.0 * (net.forward(phi, X) - y).sum(axis=0) / 5
    np.testing.assert_allclose(grad[-2:], expected, rtol=1e-13)


def test_no_argument_is_modified(make_batch):
    net, phi, X, y = _setup([2, 5, 3], "tanh", "cross_entropy", 4, make_batch)
    v = np.random.default_rng(3).standard_normal(net.num_params)
    copies = [a.copy() for a in (phi, X, y, v)]
    net.loss_and_grad(phi, X, y, "cross_entropy")
    net.hvp(phi, X, y, v, "cross_entropy")
    for a, c in zip((phi, X, y, v), copies, strict=True):
        np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------- parameters
def test_num_params():
    # P = sum (d_in + 1) d_out: 1-40-40-1 -> 80 + 1640 + 41
    assert MLP([1, 40, 40, 1]).num_params == 1761 == num_params([1, 40, 40, 1])
    assert MLP([3, 2]).num_params == 8


def test_init_is_reproducible_and_seed_dependent():
    net = MLP([2, 7, 3], "relu")
    a, b = net.init(5), net.init(5)
    np.testing.assert_array_equal(a, b)  # bit-identical
    np.testing.assert_array_equal(net.init(5), net.init(np.random.default_rng(5)))
    assert not np.array_equal(net.init(5), net.init(6))
    assert a.shape == (net.num_params,) and a.dtype == np.float64


def test_init_advances_a_shared_generator():
    net = MLP([2, 7, 3])
    rng = np.random.default_rng(0)
    assert not np.array_equal(net.init(rng), net.init(rng))


def test_init_bounds_are_one_over_sqrt_fan_in():
    net = MLP([4, 25, 9, 1])
    layers = net.unflatten(net.init(0))
    for (W, b), d_in in zip(layers, net.sizes[:-1], strict=True):
        bound = 1.0 / np.sqrt(d_in)
        assert np.abs(W).max() <= bound and np.abs(b).max() <= bound
        # uniform on the interval: the largest draw of >= 9 values is not tiny
        assert np.abs(np.concatenate([W.ravel(), b])).max() > 0.5 * bound


def test_unflatten_returns_views_in_layout_order():
    net = MLP([2, 3, 4])
    phi = net.init(0)
    (W1, b1), (W2, b2) = net.unflatten(phi)
    assert W1.shape == (2, 3) and b1.shape == (3,) and W2.shape == (3, 4) and b2.shape == (4,)
    np.testing.assert_array_equal(W1, phi[:6].reshape(2, 3))
    np.testing.assert_array_equal(b2, phi[-4:])
    for arr in (W1, b1, W2, b2):
        assert np.shares_memory(arr, phi)
    W1[1, 2] = 123.0
    b2[0] = -7.0
    assert phi[5] == 123.0 and phi[9 + 12] == -7.0


def test_flatten_unflatten_roundtrip():
    net = MLP([3, 5, 5, 2])
    phi = net.init(1)
    back = flatten(net.unflatten(phi))
    np.testing.assert_array_equal(back, phi)
    assert not np.shares_memory(back, phi)  # flatten copies
