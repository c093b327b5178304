"""Losses on the network output: values by hand, gradients and output-space HVPs by differences."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta.gradcheck import directional_derivative, numerical_grad, rel_error
from tinymeta.losses import LOSSES, softmax

pytestmark = pytest.mark.fast

# Derivatives of the losses w.r.t. yhat by central differences (h = 1e-5 per coordinate,
# h = 1e-6 along a unit direction): O(h^2) truncation and O(eps / h) round-off give relative
# errors ~1e-10 (measured); 1e-7 is the threshold, a wrong formula gives ~1e-1 or more.
TOL = 1e-7


def _batch(loss, n, c, rng):
    yhat = 2.0 * rng.standard_normal((n, c))
    y = rng.standard_normal((n, c)) if loss == "mse" else rng.integers(0, c, size=n)
    return yhat, y


def test_mse_value_by_hand():
    # residuals [[1, -2], [0, 3]]: squared sums 5 and 9, mean over 2 examples = 7 (no factor 1/2)
    yhat = np.array([[1.0, 0.0], [2.0, 3.0]])
    y = np.array([[0.0, 2.0], [2.0, 0.0]])
    assert LOSSES["mse"].value(yhat, y) == 7.0
    np.testing.assert_array_equal(LOSSES["mse"].grad(yhat, y), [[1.0, -2.0], [0.0, 3.0]])


def test_cross_entropy_value_by_hand():
    # logits (0, log 3): softmax (1/4, 3/4). Labels 1 and 0: NLL log(4/3) and log 4, mean below.
    yhat = np.array([[0.0, np.log(3.0)], [0.0, np.log(3.0)]])
    y = np.array([1, 0])
    expected = 0.5 * (np.log(4.0 / 3.0) + np.log(4.0))
    # 1e-15 relative: a handful of roundings of O(1) numbers
    np.testing.assert_allclose(LOSSES["cross_entropy"].value(yhat, y), expected, rtol=1e-15)
    np.testing.assert_allclose(softmax(yhat), [[0.25, 0.75], [0.25, 0.75]], rtol=1e-15)


SHAPES = [(1, 1), (1, 4), (7, 1), (7, 3), (25, 5)]


# one class makes cross-entropy identically 0, so it is left out there
@pytest.mark.parametrize(
    ("loss", "n", "c"),
    [("mse", n, c) for n, c in SHAPES] + [("cross_entropy", n, c) for n, c in SHAPES if c > 1],
)
def test_grad_matches_central_differences(loss, n, c, rng):
    fn = LOSSES[loss]
    yhat, y = _batch(loss, n, c, rng)
    numerical = numerical_grad(lambda z: fn.value(z, y), yhat, h=1e-5)
    assert rel_error(fn.grad(yhat, y), numerical) < TOL


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize(("n", "c"), [(1, 2), (7, 3), (25, 5)])
def test_output_hvp_matches_differences_of_the_grad(loss, n, c, rng):
    fn = LOSSES[loss]
    yhat, y = _batch(loss, n, c, rng)
    for _ in range(3):
        u = rng.standard_normal((n, c))
        u /= np.linalg.norm(u)
        numerical = directional_derivative(lambda z: fn.grad(z, y), yhat, u, h=1e-6)
        assert rel_error(fn.hvp(yhat, y, u), numerical) < TOL


def _output_hessian(fn, yhat, y):
    """The (n c, n c) output-space Hessian, column j = hvp(e_j)."""
    m = yhat.size
    eye = np.eye(m)
    return np.stack([fn.hvp(yhat, y, eye[j].reshape(yhat.shape)).ravel() for j in range(m)], axis=1)


def test_cross_entropy_output_hessian_is_psd_and_symmetric(rng):
    fn = LOSSES["cross_entropy"]
    yhat, y = _batch("cross_entropy", 6, 4, rng)
    yhat[0] *= 20.0  # one nearly one-hot row, where diag(p) - p p^T is nearly singular
    H = _output_hessian(fn, yhat, y)
    # symmetric to round-off (each entry is one or two products of O(1) numbers)
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-15)
    # PSD: eigenvalues >= -1e-12, room for eigvalsh's round-off (~eps ||H||) around exact zeros
    assert np.linalg.eigvalsh(H).min() >= -1e-12
    # each row's Hessian annihilates the all-ones vector (softmax is shift invariant)
    ones = np.ones_like(yhat)
    np.testing.assert_allclose(fn.hvp(yhat, y, ones), 0.0, atol=1e-15)


def test_cross_entropy_output_hessian_matches_jacobian_of_grad(rng):
    fn = LOSSES["cross_entropy"]
    yhat, y = _batch("cross_entropy", 4, 3, rng)
    H = _output_hessian(fn, yhat, y)
    J = numerical_grad(lambda z: fn.grad(z.reshape(yhat.shape), y).ravel(), yhat.ravel(), h=1e-5)
    assert rel_error(H, J) < TOL


def test_mse_output_hessian_is_two_over_n_identity(rng):
    fn = LOSSES["mse"]
    yhat, y = _batch("mse", 5, 2, rng)
    np.testing.assert_allclose(_output_hessian(fn, yhat, y), (2.0 / 5) * np.eye(10), rtol=1e-15)


def test_cross_entropy_grad_rows_sum_to_zero(rng):
    yhat, y = _batch("cross_entropy", 9, 4, rng)
    # rows of (p - onehot) / n sum to 0 up to round-off of O(1/n) numbers
    np.testing.assert_allclose(LOSSES["cross_entropy"].grad(yhat, y).sum(axis=1), 0.0, atol=1e-15)


def test_softmax_and_cross_entropy_are_stable_for_large_logits():
    fn = LOSSES["cross_entropy"]
    yhat = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -999.0], [1e300, -1e300, 0.0]])
    y = np.array([1, 2, 0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = softmax(yhat)
        value = fn.value(yhat, y)
        grad = fn.grad(yhat, y)
        hv = fn.hvp(yhat, y, np.ones_like(yhat))
    for arr in (p, grad, hv):
        assert np.all(np.isfinite(arr))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    # by hand: row 1 NLL = log(e^1000 + 1 + e^-1000) - 0 = 1000 (to double precision); row 2 NLL =
    # log(2 e^-1000 + e^-999) + 999 = log(1 + 2/e) ~ 0.5514; row 3 NLL = log-sum-exp - 1e300 = 0
    expected = (1000.0 + np.log1p(2.0 / np.e) + 0.0) / 3.0
    np.testing.assert_allclose(value, expected, rtol=1e-15)


def test_cross_entropy_is_shift_invariant(rng):
    fn = LOSSES["cross_entropy"]
    yhat, y = _batch("cross_entropy", 5, 3, rng)
    shifted = yhat + 500.0 * rng.standard_normal((5, 1))
    # 1e-12: the shift of size ~500 costs eps * 500 ~ 1e-13 absolute in the logits
    np.testing.assert_allclose(fn.value(shifted, y), fn.value(yhat, y), rtol=1e-12)
    np.testing.assert_allclose(fn.grad(shifted, y), fn.grad(yhat, y), atol=1e-12)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_negative_control_wrong_output_hvp_is_detected(loss, rng):
    # hvp with the p p^T term dropped (cross-entropy) or a factor 1/2 (mse) must fail the check
    fn = LOSSES[loss]
    yhat, y = _batch(loss, 5, 3, rng)
    u = rng.standard_normal((5, 3))
    numerical = directional_derivative(lambda z: fn.grad(z, y), yhat, u, h=1e-6)
    wrong = softmax(yhat) * u / 5 if loss == "cross_entropy" else 0.5 * fn.hvp(yhat, y, u)
    assert rel_error(wrong, numerical) > 1e-2
