"""Hessian-vector products (R-operator) and the explicit Hessian."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, gradcheck
from tinymeta.mlp import MAX_HESSIAN_PARAMS

pytestmark = pytest.mark.fast

ACTS = ["tanh", "relu", "sigmoid", "softplus", "identity"]
LOSSES = ["mse", "cross_entropy"]

# HVP vs central differences of the exact gradient along a unit v (h = 1e-5): O(h^2)
# truncation and O(eps ||g|| / h) round-off, measured ~1e-10; 1e-6 for smooth activations.
# ReLU: 1e-4, because a step that crosses a kink changes the gradient discontinuously
# (make_batch keeps |z| > 1e-3 >> h, so this is a margin, not an expected error).
SMOOTH_TOL = 1e-6
RELU_TOL = 1e-4

# Identities that hold exactly in real arithmetic (symmetry, linearity) are checked to
# round-off: relative 1e-12 leaves ~1e4 ulps for sums over P <= 1761 terms.
ROUNDOFF = 1e-12


def tol(activation):
    return RELU_TOL if activation == "relu" else SMOOTH_TOL


def _setup(sizes, activation, loss, n, make_batch, seed=0):
    net = MLP(sizes, activation)
    rng = np.random.default_rng(seed)
    phi = net.init(rng)
    X, y = make_batch(net, phi, n, loss, rng)
    grad = lambda p: net.loss_and_grad(p, X, y, loss)[1]
    hvp = lambda p, v: net.hvp(p, X, y, v, loss)
    return net, phi, X, y, grad, hvp, rng


def _unit(rng, size):
    v = rng.standard_normal(size)
    return v / np.linalg.norm(v)


ARCHS = [[3, 2], [1, 1, 3], [2, 5, 3], [4, 1, 3, 3], [3, 8, 6, 3], [1, 40, 40, 3]]


@pytest.mark.parametrize("n", [1, 25])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("sizes", ARCHS, ids=str)
def test_hvp_matches_differences_of_the_gradient(sizes, activation, loss, n, make_batch):
    net, phi, X, y, grad, hvp, rng = _setup(sizes, activation, loss, n, make_batch)
    for _ in range(3):
        report = gradcheck.check_hvp(
            grad, hvp, phi, _unit(rng, net.num_params), h=1e-5, threshold=tol(activation)
        )
        assert report.passed, f"{net!r} {loss}: {report}"


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ["tanh", "softplus", "relu"])
def test_hessian_matches_jacobian_of_the_gradient(activation, loss, make_batch):
    net, phi, X, y, grad, _, _ = _setup([3, 4, 3, 3], activation, loss, 10, make_batch)
    H = net.hessian(phi, X, y, loss)
    J = gradcheck.numerical_grad(grad, phi, h=1e-5)  # J[j] = d grad / d phi_j, a row of H
    assert gradcheck.rel_error(H, J) < tol(activation)


@pytest.mark.parametrize("loss", LOSSES)
def test_hessian_columns_are_hvps(loss, make_batch):
    net, phi, X, y, _, hvp, rng = _setup([2, 5, 4, 3], "sigmoid", loss, 8, make_batch)
    H = net.hessian(phi, X, y, loss)
    assert H.shape == (net.num_params, net.num_params)
    eye = np.eye(net.num_params)
    for j in range(net.num_params):
        np.testing.assert_array_equal(H[:, j], hvp(phi, eye[j]))
    v = rng.standard_normal(net.num_params)
    assert gradcheck.rel_error(H @ v, hvp(phi, v)) < ROUNDOFF  # H v by linearity


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTS)
def test_hessian_is_symmetric(activation, loss, make_batch):
    net, phi, X, y, *_ = _setup([3, 6, 5, 3], activation, loss, 12, make_batch)
    H = net.hessian(phi, X, y, loss)
    assert np.linalg.norm(H - H.T) <= ROUNDOFF * np.linalg.norm(H)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTS)
def test_hvp_bilinear_form_is_symmetric(activation, loss, make_batch):
    # <u, H v> = <v, H u> on the sine-sized network, where the Hessian is never formed
    net, phi, X, y, _, hvp, rng = _setup([1, 40, 40, 3], activation, loss, 25, make_batch)
    u, v = rng.standard_normal((2, net.num_params))
    Hu, Hv = hvp(phi, u), hvp(phi, v)
    scale = np.linalg.norm(u) * np.linalg.norm(Hv) + np.linalg.norm(v) * np.linalg.norm(Hu)
    assert abs(u @ Hv - v @ Hu) <= ROUNDOFF * scale


def test_hvp_is_linear_in_v(make_batch):
    net, phi, X, y, _, hvp, rng = _setup([2, 7, 3], "tanh", "cross_entropy", 9, make_batch)
    u, v = rng.standard_normal((2, net.num_params))
    combo = hvp(phi, 2.5 * u - 0.75 * v)
    assert gradcheck.rel_error(combo, 2.5 * hvp(phi, u) - 0.75 * hvp(phi, v)) < ROUNDOFF
    np.testing.assert_array_equal(hvp(phi, np.zeros(net.num_params)), 0.0)


def test_linear_regression_hessian_in_closed_form(rng):
    # one linear layer with mse: L = (1/n) ||A w - y||^2 with A = [X, 1] and w = (W, b) in
    # phi's order, so H = (2/n) A^T A exactly, whatever phi and y
    n, d = 9, 4
    net = MLP([d, 1], "tanh")
    X, y = rng.standard_normal((n, d)), rng.standard_normal((n, 1))
    A = np.hstack([X, np.ones((n, 1))])
    H = net.hessian(net.init(rng), X, y, "mse")
    np.testing.assert_allclose(H, (2.0 / n) * A.T @ A, rtol=ROUNDOFF, atol=ROUNDOFF)


def test_cross_entropy_hessian_is_psd_for_a_linear_model(rng):
    # softmax regression is convex in its parameters: H = J^T H_out J with H_out PSD
    net = MLP([3, 4], "identity")
    X, y = rng.standard_normal((10, 3)), rng.integers(0, 4, size=10)
    H = net.hessian(net.init(rng), X, y, "cross_entropy")
    # eigenvalues >= -1e-12: round-off of eigvalsh around the exact zeros (shift invariance)
    assert np.linalg.eigvalsh(H).min() >= -1e-12


def test_hessian_refuses_large_networks():
    net = MLP([1, 64, 64, 1])  # P = 128 + 4160 + 65 = 4353 > 4000
    assert net.num_params == 4353 > MAX_HESSIAN_PARAMS
    phi = net.init(0)
    X, y = np.zeros((2, 1)), np.zeros((2, 1))
    with pytest.raises(ValueError, match=r"P = 4353"):
        net.hessian(phi, X, y)
