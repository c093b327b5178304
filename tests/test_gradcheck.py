"""tinymeta.gradcheck: the formulas themselves, and negative controls that must be rejected."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, gradcheck
from tinymeta.gradcheck import (
    CheckReport,
    check_directional,
    check_grad,
    check_hvp,
    directional_derivative,
    numerical_grad,
    rel_error,
)

pytestmark = pytest.mark.fast


# ---------------------------------------------------------------- rel_error
def test_rel_error_on_vectors_computed_by_hand():
    # ||(3,4) - (4,3)|| = sqrt(2), ||(3,4)|| + ||(4,3)|| = 10
    assert rel_error([3.0, 4.0], [4.0, 3.0]) == pytest.approx(np.sqrt(2.0) / 10.0, rel=1e-15)
    # against zero: ||a|| / ||a|| = 1
    assert rel_error([3.0, 4.0], [0.0, 0.0]) == 1.0
    # opposite signs: ||2a|| / (2 ||a||) = 1, the largest possible value
    assert rel_error([1.0, -2.0, 2.0], [-1.0, 2.0, -2.0]) == 1.0
    # (1, 2, 2) has norm 3; (1, 2, 2.3) differs by 0.3 and has norm sqrt(10.29)
    assert rel_error([1.0, 2.0, 2.0], [1.0, 2.0, 2.3]) == pytest.approx(
        0.3 / (3.0 + np.sqrt(10.29)), rel=1e-14
    )
    # scalars: |1 - 1.5| / 2.5
    assert rel_error(1.0, 1.5) == pytest.approx(0.2, rel=1e-15)


def test_rel_error_edge_cases():
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0  # both zero: no 0/0
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    a, b = np.array([1.0, -3.0, 0.5]), np.array([1.1, -2.9, 0.4])
    assert rel_error(a, b) == rel_error(b, a)
    assert rel_error(1e-30 * a, 1e-30 * b) == pytest.approx(rel_error(a, b), rel=1e-12)  # scale-free
    with pytest.raises(ValueError, match="shape"):
        rel_error(np.zeros(3), np.zeros(4))


# ---------------------------------------------------------------- numerical derivatives
def _quadratic(rng, m=6):
    A = rng.standard_normal((m, m))
    A = A + A.T
    b = rng.standard_normal(m)
    return (lambda x: 0.5 * x @ A @ x + b @ x), (lambda x: A @ x + b), A


def test_numerical_grad_of_a_quadratic_is_exact_to_roundoff(rng):
    # central differences have no truncation error on a quadratic; what is left is round-off
    # ~eps |f| / h ~ 1e-11 relative, hence 1e-9
    f, grad, _ = _quadratic(rng)
    x = rng.standard_normal(6)
    assert rel_error(numerical_grad(f, x, h=1e-5), grad(x)) < 1e-9
    # a large step is still exact on a quadratic (the round-off shrinks as h grows)
    assert rel_error(numerical_grad(f, x, h=0.5), grad(x)) < 1e-12


def test_numerical_grad_shapes(rng):
    M = rng.standard_normal((3, 4))
    x = rng.standard_normal(4)
    J = numerical_grad(lambda z: M @ z, x)  # shape x.shape + f(x).shape: the transposed Jacobian
    assert J.shape == (4, 3)
    np.testing.assert_allclose(J, M.T, rtol=1e-9, atol=1e-10)  # linear: exact to round-off
    X = rng.standard_normal((2, 3))
    G = numerical_grad(lambda Z: np.sum(Z**2), X)
    assert G.shape == (2, 3)
    np.testing.assert_allclose(G, 2.0 * X, rtol=1e-9)


def test_directional_derivative_of_a_quadratic(rng):
    f, grad, _ = _quadratic(rng)
    x, u = rng.standard_normal((2, 6))
    assert directional_derivative(f, x, u) == pytest.approx(grad(x) @ u, rel=1e-8)


# ---------------------------------------------------------------- CheckReport
def test_check_report_string_and_verdict():
    ok = CheckReport("gradient", 3.2e-11, 1e-6)
    bad = CheckReport("gradient", 0.5, 1e-6)
    assert ok.passed and bool(ok) and not bad.passed and not bool(bad)
    assert "3.20e-11" in str(ok) and "1e-06" in str(ok) and "PASS" in str(ok) and "gradient" in str(ok)
    assert "5.00e-01" in str(bad) and "FAIL" in str(bad)
    assert not CheckReport("x", 1e-6, 1e-6).passed  # strictly below the threshold
    assert CheckReport("x", 0.0, 1e-6).passed


def test_checks_pass_on_correct_derivatives(rng):
    f, grad, A = _quadratic(rng)
    x, v = rng.standard_normal((2, 6))
    for report in (
        check_grad(f, grad, x),
        check_directional(f, grad, x, rng=0),
        check_hvp(grad, lambda p, w: A @ w, x, v),
    ):
        assert isinstance(report, CheckReport)
        assert report.passed, str(report)
        assert report.threshold == gradcheck.DEFAULT_THRESHOLD


def test_check_directional_is_reproducible(rng):
    f, grad, _ = _quadratic(rng)
    x = rng.standard_normal(6)
    wrong = lambda p: grad(p) + 0.1
    assert check_directional(f, wrong, x, rng=3).error == check_directional(f, wrong, x, rng=3).error


# ---------------------------------------------------------------- negative controls
# Each wrong derivative below must FAIL with the default threshold 1e-6, by a wide margin.


def _net_problem(activation="tanh", loss="mse", sizes=(2, 6, 6, 1), seed=0):
    net = MLP(list(sizes), activation)
    rng = np.random.default_rng(seed)
    phi = net.init(rng)
    X = rng.standard_normal((20, sizes[0]))
    y = rng.standard_normal((20, sizes[-1])) if loss == "mse" else rng.integers(0, sizes[-1], 20)
    return net, phi, X, y, rng


def test_perturbed_hvp_is_rejected():
    net, phi, X, y, rng = _net_problem()
    grad = lambda p: net.loss_and_grad(p, X, y)[1]
    v = rng.standard_normal(net.num_params)
    v /= np.linalg.norm(v)
    noise = 1e-3 * rng.standard_normal(net.num_params)
    exact = check_hvp(grad, lambda p, w: net.hvp(p, X, y, w), phi, v)
    wrong = check_hvp(grad, lambda p, w: net.hvp(p, X, y, w) + noise, phi, v)
    assert exact.passed
    # ||noise|| / (2 ||Hv||) ~ 1e-3 here: > 100 x the threshold, > 1e6 x the exact error
    assert not wrong.passed and wrong.error > 1e-4, str(wrong)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_hvp_without_the_sigma_second_derivative_term_is_rejected(loss, monkeypatch):
    # Gauss-Newton-like HVP: drop sigma'' (what a first-order method never sees) on a tanh net
    sizes = (2, 6, 6, 1) if loss == "mse" else (2, 6, 6, 3)
    net, phi, X, y, rng = _net_problem("tanh", loss, sizes)
    grad = lambda p: net.loss_and_grad(p, X, y, loss)[1]
    hvp = lambda p, w: net.hvp(p, X, y, w, loss)
    v = rng.standard_normal(net.num_params)
    v /= np.linalg.norm(v)
    assert check_hvp(grad, hvp, phi, v).passed
    monkeypatch.setattr(net, "sigma", net.sigma._replace(d2=lambda z: np.zeros_like(z)))
    report = check_hvp(grad, hvp, phi, v)
    assert not report.passed and report.error > 1e-3, str(report)


def test_gradient_with_a_sign_error_is_rejected():
    net, phi, X, y, _ = _net_problem()
    loss = lambda p: net.loss(p, X, y)
    grad = lambda p: net.loss_and_grad(p, X, y)[1]
    report = check_grad(loss, lambda p: -grad(p), phi)
    assert not report.passed and report.error == pytest.approx(1.0)  # ||2g|| / 2||g||
    # a sign error in one layer only (the output bias) must also fail
    flipped = lambda p: np.concatenate([grad(p)[:-1], -grad(p)[-1:]])
    report = check_grad(loss, flipped, phi)
    assert not report.passed and report.error > 1e-3, str(report)


def test_gradient_with_a_transposed_weight_block_is_rejected():
    # square hidden layer, so the transposed block has the right size: a classic layout bug
    net, phi, X, y, rng = _net_problem(sizes=(2, 6, 6, 1))
    grad = lambda p: net.loss_and_grad(p, X, y)[1]

    def transposed(p):
        g = grad(p).copy()
        (_, _), (W2, _), _ = net.unflatten(g)
        W2[...] = W2.T.copy()  # writes through the view into g
        return g

    assert not np.allclose(transposed(phi), grad(phi))
    loss = lambda p: net.loss(p, X, y)
    for report in (check_grad(loss, transposed, phi), check_directional(loss, transposed, phi, rng=rng)):
        assert not report.passed and report.error > 1e-3, str(report)


def test_gradient_missing_the_activation_derivative_is_rejected(monkeypatch):
    # backprop through tanh with sigma' = 1 (the activation treated as linear on the way back)
    net, phi, X, y, _ = _net_problem()
    loss = lambda p: net.loss(p, X, y)
    grad = lambda p: net.loss_and_grad(p, X, y)[1]
    monkeypatch.setattr(net, "sigma", net.sigma._replace(d1=lambda z: np.ones_like(z)))
    report = check_grad(loss, grad, phi)
    assert not report.passed and report.error > 1e-3, str(report)


# ---------------------------------------------------------------- argument checks
def test_gradcheck_arguments_are_validated(rng):
    f, grad, _ = _quadratic(rng)
    x = rng.standard_normal(6)
    with pytest.raises(ValueError, match="h"):
        numerical_grad(f, x, h=0.0)
    with pytest.raises(ValueError, match="h"):
        check_grad(f, grad, x, h=-1e-5)
    with pytest.raises(ValueError, match="num_directions"):
        check_directional(f, grad, x, num_directions=0)
    with pytest.raises(TypeError, match="rng"):
        check_directional(f, grad, x, rng="seed")
    with pytest.raises(ValueError, match="x"):
        numerical_grad(f, np.array([1.0, np.nan]))
