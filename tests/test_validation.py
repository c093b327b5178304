"""Bad input raises ValueError/TypeError naming the argument; nothing is silently broadcast."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tinymeta import MLP

pytestmark = pytest.mark.fast


@pytest.fixture
def mse_problem():
    net = MLP([3, 4, 2], "tanh")
    rng = np.random.default_rng(0)
    return net, net.init(rng), rng.standard_normal((5, 3)), rng.standard_normal((5, 2))


@pytest.fixture
def ce_problem():
    net = MLP([3, 4, 4], "tanh")
    rng = np.random.default_rng(0)
    return net, net.init(rng), rng.standard_normal((5, 3)), rng.integers(0, 4, size=5)


def _calls(net, phi, X, y, loss):
    """Every public entry point that takes a batch, as (name, thunk)."""
    v = np.ones(net.num_params)
    return [
        ("loss", lambda: net.loss(phi, X, y, loss)),
        ("loss_and_grad", lambda: net.loss_and_grad(phi, X, y, loss)),
        ("hvp", lambda: net.hvp(phi, X, y, v, loss)),
        ("hessian", lambda: net.hessian(phi, X, y, loss)),
    ]


def _assert_all_raise(net, phi, X, y, loss, exc, match):
    """Every entry point raises ``exc`` with a message matching ``match`` (the argument's name)."""
    for name, call in _calls(net, phi, X, y, loss):
        try:
            call()
        except exc as err:
            assert re.search(match, str(err)), f"{name}: message {str(err)!r} does not match {match!r}"
        else:
            pytest.fail(f"{name} accepted the bad input instead of raising {exc}")


# ---------------------------------------------------------------- constructor
@pytest.mark.parametrize(
    ("sizes", "exc"),
    [([3], ValueError), ([], ValueError), ([3, 0, 1], ValueError), ([3, -2, 1], ValueError),
     ([3, 2.5, 1], TypeError), ([3, True, 1], TypeError), ([3, "4", 1], TypeError), (5, TypeError)],
)  # fmt: skip
def test_invalid_sizes(sizes, exc):
    with pytest.raises(exc, match="sizes"):
        MLP(sizes)


@pytest.mark.parametrize("activation", ["gelu", "Tanh", "", None, ["tanh"]])
def test_unknown_activation(activation):
    with pytest.raises((ValueError, TypeError), match="activation"):
        MLP([2, 3, 1], activation)


@pytest.mark.parametrize("loss", ["hinge", "MSE", None, ["mse"]])
def test_unknown_loss(loss, mse_problem):
    _assert_all_raise(*mse_problem, loss, (ValueError, TypeError), "loss")


# ---------------------------------------------------------------- shapes
def test_X_with_wrong_input_width(mse_problem):
    net, phi, X, y = mse_problem
    _assert_all_raise(net, phi, X[:, :2], y, "mse", ValueError, r"X has shape \(5, 2\)")
    with pytest.raises(ValueError, match="X"):
        net.forward(phi, X[:, :2])


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((5, 3, 1)), np.zeros((0, 3))])
def test_X_with_wrong_dimensions_or_no_rows(bad, mse_problem):
    net, phi, _, _ = mse_problem
    y = np.zeros((len(bad), 2)) if bad.ndim > 1 else np.zeros((1, 2))
    with pytest.raises(ValueError, match="X"):
        net.loss_and_grad(phi, bad, y, "mse")


@pytest.mark.parametrize("shape", [(5,), (5, 1), (5, 3), (4, 2), (1, 2), (5, 2, 1), (2,)])
def test_mse_targets_of_the_wrong_shape_are_not_broadcast(shape, mse_problem):
    # (5,) and (1, 2) would broadcast against yhat of shape (5, 2); they must raise instead
    net, phi, X, _ = mse_problem
    _assert_all_raise(net, phi, X, np.zeros(shape), "mse", ValueError, "y")


def test_mse_targets_of_shape_n_for_one_output_are_rejected():
    # the common mistake: y of shape (n,) against yhat of shape (n, 1) broadcasts to (n, n)
    net = MLP([1, 8, 1])
    phi, X = net.init(0), np.zeros((6, 1))
    with pytest.raises(ValueError, match=r"y must have 2 dimension"):
        net.loss_and_grad(phi, X, np.zeros(6), "mse")


@pytest.mark.parametrize("offset", [-26, -1, 1])  # P = 26: empty, one short, one too many
def test_phi_of_the_wrong_length(offset, mse_problem):
    net, phi, X, y = mse_problem
    assert net.num_params == 26
    bad = np.zeros(net.num_params + offset)
    _assert_all_raise(net, bad, X, y, "mse", ValueError, "phi")
    with pytest.raises(ValueError, match="phi"):
        net.unflatten(bad)
    with pytest.raises(ValueError, match="phi"):
        net.forward(phi.reshape(1, -1), X)


def test_v_of_the_wrong_length(mse_problem):
    net, phi, X, y = mse_problem
    for v in (np.zeros(net.num_params - 1), np.zeros((net.num_params, 1)), np.zeros(net.num_params + 3)):
        with pytest.raises(ValueError, match="v"):
            net.hvp(phi, X, y, v, "mse")


# ---------------------------------------------------------------- non-finite values and dtypes
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values(value, mse_problem):
    net, phi, X, y = mse_problem
    X2, y2, phi2, v = X.copy(), y.copy(), phi.copy(), np.ones(net.num_params)
    X2[2, 1], y2[0, 0], phi2[3], v[4] = value, value, value, value
    _assert_all_raise(net, phi, X2, y, "mse", ValueError, "X contains 1 non-finite")
    _assert_all_raise(net, phi, X, y2, "mse", ValueError, "y contains 1 non-finite")
    _assert_all_raise(net, phi2, X, y, "mse", ValueError, "phi contains 1 non-finite")
    with pytest.raises(ValueError, match="v contains 1 non-finite"):
        net.hvp(phi, X, y, v, "mse")


@pytest.mark.parametrize(
    "bad", [np.full((5, 3), "a"), np.ones((5, 3), dtype=complex), np.ones((5, 3), dtype=bool), "X", None]
)
def test_X_of_a_non_real_type(bad, mse_problem):
    net, phi, _, y = mse_problem
    with pytest.raises(TypeError, match="X"):
        net.loss_and_grad(phi, bad, y, "mse")


def test_phi_of_a_non_real_type(mse_problem):
    net, phi, X, y = mse_problem
    for bad in (None, phi.astype(complex), "phi"):
        with pytest.raises(TypeError, match="phi"):
            net.loss_and_grad(bad, X, y, "mse")


def test_float_labels_with_cross_entropy(ce_problem):
    net, phi, X, y = ce_problem
    _assert_all_raise(net, phi, X, y.astype(np.float64), "cross_entropy", TypeError, "y must hold integer")
    _assert_all_raise(net, phi, X, y.astype(bool), "cross_entropy", TypeError, "y")


@pytest.mark.parametrize("bad_label", [-1, 4, 100])
def test_labels_out_of_range(bad_label, ce_problem):
    net, phi, X, y = ce_problem
    y = y.copy()
    y[2] = bad_label
    _assert_all_raise(
        net, phi, X, y, "cross_entropy", ValueError, r"y has labels in .*expected values in \[0, 4\)"
    )


@pytest.mark.parametrize("shape", [(5, 1), (4,), (6,), (5, 4)])
def test_labels_of_the_wrong_shape(shape, ce_problem):
    # (5, 1) or one-hot (5, 4) labels must raise rather than index or broadcast
    net, phi, X, _ = ce_problem
    _assert_all_raise(
        net, phi, X, np.zeros(shape, dtype=np.int64), "cross_entropy", ValueError, "y has shape"
    )


def test_valid_inputs_of_other_real_dtypes_are_accepted(ce_problem):
    # int X, float32 X and int32 labels are converted, not rejected; results match float64 input
    net, phi, X, y = ce_problem
    Xi = np.round(3 * X).astype(np.int32)
    ref = net.loss_and_grad(phi, Xi.astype(np.float64), y, "cross_entropy")[1]
    np.testing.assert_array_equal(net.loss_and_grad(phi, Xi, y.astype(np.int32), "cross_entropy")[1], ref)
    Xf = X.astype(np.float32)
    ref = net.loss_and_grad(phi, Xf.astype(np.float64), y, "cross_entropy")[1]
    np.testing.assert_array_equal(net.loss_and_grad(phi, Xf, y, "cross_entropy")[1], ref)


# ---------------------------------------------------------------- random generators
@pytest.mark.parametrize("bad", ["0", 1.5, None, True, np.random.RandomState(0), [1, 2]])
def test_init_rejects_a_non_generator_rng(bad):
    with pytest.raises(TypeError, match="rng"):
        MLP([2, 3, 1]).init(bad)


def test_init_rejects_a_negative_seed():
    with pytest.raises(ValueError, match="rng"):
        MLP([2, 3, 1]).init(-1)


def test_init_accepts_numpy_integer_seeds():
    net = MLP([2, 3, 1])
    np.testing.assert_array_equal(net.init(np.int64(7)), net.init(7))
