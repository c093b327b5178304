"""lambda_max and lambda_min by Lanczos against the dense eigenvalues; the 2 / lambda_max boundary at work."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, Sine
from tinymeta.anil import anil_trajectory, head_slice
from tinymeta.spectrum import StepStability, lambda_max, lambda_min, step_stability

# Lanczos with eigsh(tol=0) converges to machine precision relative to ||H||: measured 0..2.5e-15
# against numpy.linalg.eigvalsh(MLP.hessian(...)); EIG_TOL = 1e-10 leaves room for ARPACK's
# stopping rule, and any real mistake (the wrong end of the spectrum, a wrong HVP) is O(1).
EIG_TOL = 1e-10


def _batch(net, loss, rng, n=10):
    x = rng.standard_normal((n, net.sizes[0]))
    y = rng.standard_normal((n, net.sizes[-1])) if loss == "mse" else rng.integers(0, net.sizes[-1], n)
    return x, y


@pytest.mark.fast
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
def test_extreme_eigenvalues_match_eigvalsh(activation, loss, seed):
    net = MLP([3, 7, 5, 4], activation)
    rng = np.random.default_rng(seed)
    phi = net.init(rng)
    x, y = _batch(net, loss, rng)
    eig = np.linalg.eigvalsh(net.hessian(phi, x, y, loss))
    scale = np.abs(eig).max()
    assert abs(lambda_max(net, phi, x, y, loss) - eig[-1]) < EIG_TOL * scale
    assert abs(lambda_min(net, phi, x, y, loss) - eig[0]) < EIG_TOL * scale


@pytest.mark.fast
def test_reproducible_and_smallest_network(monkeypatch):
    net = MLP([1, 40, 40, 1], "tanh")
    rng = np.random.default_rng(3)
    phi = net.init(rng)
    task = Sine(10, 10).sample(rng, 1)[0]
    first = lambda_max(net, phi, task.x_support, task.y_support)

    def no_hessian(*args, **kwargs):
        raise AssertionError("lambda_max formed the explicit Hessian")

    monkeypatch.setattr(MLP, "hessian", no_hessian)
    assert lambda_max(net, phi, task.x_support, task.y_support) == first  # fixed start vector: bitwise equal
    # P = 2 (one weight, one bias): L = mean (w x + b - y)^2 with x = 1 has H = 2 [[1, 1], [1, 1]]
    tiny = MLP([1, 1], "tanh")
    assert lambda_max(tiny, np.array([0.3, 0.1]), np.ones((3, 1)), np.ones((3, 1))) == pytest.approx(
        4.0, rel=1e-14
    )
    assert lambda_min(tiny, np.array([0.3, 0.1]), np.ones((3, 1)), np.ones((3, 1))) == pytest.approx(
        0.0, abs=1e-14
    )


@pytest.mark.fast
def test_step_stability_fields():
    net = MLP([2, 6, 3], "tanh")
    rng = np.random.default_rng(0)
    phi = net.init(rng)
    x, y = _batch(net, "mse", rng)
    lmax, lmin = lambda_max(net, phi, x, y), lambda_min(net, phi, x, y)
    boundary = 2.0 / lmax
    below, above = (
        step_stability(net, phi, x, y, 0.5 * boundary),
        step_stability(net, phi, x, y, 1.5 * boundary),
    )
    assert isinstance(below, StepStability)
    assert below.alpha_boundary == above.alpha_boundary == boundary
    assert below.stable and not above.stable
    assert below.top_factor == pytest.approx(0.0, abs=1e-14) and above.top_factor == pytest.approx(
        -2.0, rel=1e-14
    )
    assert below.bottom_factor == pytest.approx(1.0 - 0.5 * boundary * lmin, rel=1e-14)
    assert below.norm == max(abs(below.top_factor), abs(below.bottom_factor))
    assert below.contracts == (below.norm < 1.0) and not above.contracts
    assert "UNSTABLE" in str(above) and "stable" in str(below)


# ---------------------------------------------------------------- the boundary predicts divergence
@pytest.mark.fast
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quadratic_inner_loop_diverges_exactly_above_the_boundary(seed):
    # ANIL's inner loop with mse is gradient descent on a quadratic in the head w = (W_L, b_L): the
    # features are fixed, so H_ww = (2/n) [A 1]^T [A 1] is constant and every step multiplies the error
    # along its top eigenvector by 1 - alpha lambda_max. So 2% below the boundary the support loss
    # decreases monotonically, 2% above it grows by a factor (1 - alpha lambda_max)^2 = 1.0816 per step
    # once the top mode dominates (measured: equal to 1e-14 after 400 steps). A lambda_max off by more
    # than 2% would get one side wrong.
    net = MLP([1, 10, 10, 1], "tanh")
    rng = np.random.default_rng(seed)
    phi = net.init(rng)
    task = Sine(10, 10).sample(rng, 1)[0]
    body, head = MLP([1, 10, 10], "tanh"), MLP([10, 1], "tanh")
    features = body.sigma.f(body.forward(phi[: body.num_params], task.x_support))
    w = head_slice(net)
    lam = lambda_max(head, phi[w], features, task.y_support)
    H_ww = net.hessian(phi, task.x_support, task.y_support)[w, w]  # the head block of the full Hessian
    assert lam == pytest.approx(np.linalg.eigvalsh(H_ww)[-1], rel=EIG_TOL)
    for c in (0.98, 1.02):
        alpha = c * 2.0 / lam
        with np.errstate(over="ignore"):
            traj = anil_trajectory(net, phi, task.x_support, task.y_support, alpha, 400)
        losses = np.array([net.loss(p, task.x_support, task.y_support) for p in traj])
        if c < 1:
            assert np.all(np.diff(losses) <= 0)
        else:
            assert losses[-1] > 1e10 * losses[0]
            assert losses[-1] / losses[-2] == pytest.approx((1.0 - alpha * lam) ** 2, rel=1e-10)


def _gradient_descent(net, phi, x, y, alpha, steps):
    losses = [net.loss(phi, x, y)]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            phi = phi - alpha * net.loss_and_grad(phi, x, y)[1]
            losses.append(net.loss(phi, x, y) if np.all(np.isfinite(phi)) else np.inf)
    return np.array(losses), phi


@pytest.mark.fast
@pytest.mark.parametrize("seed", [0, 2, 4])
def test_network_minimum_is_stable_exactly_below_the_boundary(seed):
    # A tanh network is not quadratic, but near a minimum phi^ of its support loss it is to second
    # order. Started from phi^ + 0.01 u (u a random unit vector), plain gradient descent with
    # alpha = 0.9 * 2 / lambda_max(phi^) never raises the loss above its start; with 1.1 * 2 / lambda_max
    # the top eigendirection grows by |1 - alpha lambda_max| = 1.2 per step and the loss rises by a
    # factor 140..8600 (measured) before the iterate, thrown out of that minimum, settles elsewhere.
    # phi^ by gradient descent at alpha = 1 / lambda_max, recomputed every 300 steps.
    net = MLP([1, 10, 10, 1], "tanh")
    rng = np.random.default_rng(seed)
    phi = net.init(rng)
    task = Sine(5, 5).sample(rng, 1)[0]
    x, y = task.x_support, task.y_support
    for _ in range(5):
        phi = _gradient_descent(net, phi, x, y, 1.0 / lambda_max(net, phi, x, y), 300)[1]
    lam = lambda_max(net, phi, x, y)
    u = rng.standard_normal(phi.size)
    start = phi + 1e-2 * u / np.linalg.norm(u)
    below = _gradient_descent(net, start, x, y, 0.9 * 2.0 / lam, 100)[0]
    above = _gradient_descent(net, start, x, y, 1.1 * 2.0 / lam, 100)[0]
    assert below.max() <= below[0] and below[-1] < below[0]
    assert above.max() > 10.0 * above[0]


# ---------------------------------------------------------------- arguments
@pytest.mark.fast
def test_bad_arguments():
    net = MLP([2, 6, 3], "tanh")
    rng = np.random.default_rng(0)
    phi = net.init(rng)
    x, y = _batch(net, "mse", rng)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0; got 0"):
        step_stability(net, phi, x, y, 0.0)
    with pytest.raises(ValueError, match="phi"):
        lambda_max(net, phi[:-1], x, y)
    with pytest.raises(ValueError, match="loss must be one of"):
        lambda_max(net, phi, x, y, "hinge")
    with pytest.raises(ValueError, match=r"y has shape \(9, 3\)"):
        lambda_min(net, phi, x, y[:9])
    with pytest.raises(ValueError, match=r"x has shape \(10, 3\); expected \(any, 2\)"):
        lambda_max(net, phi, np.zeros((10, 3)), y)
