"""Exact MAML against finite differences of the whole meta-objective; FOMAML as a negative control."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from tinymeta import MLP, Sine, Task, dropped_term, fomaml_grad, gradcheck, maml_grad, meta_objective
from tinymeta.inner import adapt_trajectory
from tinymeta.maml import fomaml_value_and_grad, maml_value_and_grad

# Relative error (gradcheck.rel_error) of g_MAML against central differences of F(phi) = L_B(U^k(phi)):
# * tanh, 1e-6: O(h^2) truncation + O(eps |F| / h) round-off; measured 7e-11..3e-10 (h = 1e-5 per
#   coordinate) and 3e-10..2e-9 (h = 1e-6 along directions). A missing term lands near 1 (FOMAML: 0.07..0.72).
# * ReLU, 1e-4: the meta-objective has kinks wherever a hidden pre-activation of an inner iterate
#   crosses 0. _task keeps every such |z| >= 1e-3, much more than a step h = 1e-5 moves it, so the
#   measured error is as small as for tanh (6e-11..2.5e-10); the looser threshold is only a margin.
SMOOTH_TOL = 1e-6
RELU_TOL = 1e-4
MARGIN = 1e-3
# Step sizes large enough that the Hessian term matters (dropped_term relative size 0.5..3.1):
# the support loss's Hessian has largest eigenvalue 6.6..7.2 here for mse, 0.9..1.2 for cross-entropy.
ALPHA = {"mse": 0.1, "cross_entropy": 1.0}


def tol(activation):
    return RELU_TOL if activation == "relu" else SMOOTH_TOL


def _hidden_z(net, phi, X):
    a, out = X, []
    for W, b in net.unflatten(phi)[:-1]:
        out.append(a @ W + b)
        a = net.sigma.f(out[-1])
    return out


def _draw(net, rng, loss, n):
    x = rng.standard_normal((n, net.sizes[0]))
    y = rng.standard_normal((n, net.sizes[-1])) if loss == "mse" else rng.integers(0, net.sizes[-1], n)
    return x, y


def _task(sizes, activation, loss, alpha, k, n=10, seed=0):
    """A random task on which the check is meaningful.

    For ReLU, seeds are tried in order until every hidden pre-activation of the support set at
    phi_0 .. phi_{k-1} and of the query set at phi_k is at least MARGIN away from the kink.
    """
    net = MLP(sizes, activation)
    for s in range(seed, seed + 100):
        rng = np.random.default_rng(s)
        phi = net.init(rng)
        task = Task(*_draw(net, rng, loss, n), *_draw(net, rng, loss, n))
        if activation != "relu":
            return net, phi, task
        traj = adapt_trajectory(net, phi, task.x_support, task.y_support, alpha, k, loss)
        zs = [z for p in traj[:-1] for z in _hidden_z(net, p, task.x_support)]
        zs += _hidden_z(net, traj[-1], task.x_query)
        if min(np.abs(z).min() for z in zs) >= MARGIN:
            return net, phi, task
    raise RuntimeError("no kink-free task found")


def _check(grad_fn, net, phi, task, alpha, k, loss, threshold):
    return gradcheck.check_grad(
        lambda p: meta_objective(net, p, task, alpha, k, loss),
        lambda p: grad_fn(net, p, task, alpha, k, loss),
        phi, h=1e-5, threshold=threshold,
    )  # fmt: skip


# ---------------------------------------------------------------- exact MAML vs finite differences
@pytest.mark.fast
@pytest.mark.parametrize("k", [0, 1, 2, 3])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_maml_grad_matches_finite_differences(activation, loss, k):
    alpha = ALPHA[loss]
    net, phi, task = _task([2, 8, 8, 3], activation, loss, alpha, k)
    report = _check(maml_grad, net, phi, task, alpha, k, loss, tol(activation))
    assert report.passed, str(report)
    if k > 0:  # the check is only meaningful if the Hessian term is a sizeable part of g
        assert dropped_term(net, phi, task, alpha, k, loss)[1] > 0.3


@pytest.mark.fast
@pytest.mark.parametrize(("alpha", "k"), [(0.01, 1), (0.01, 5), (0.05, 5)])
def test_maml_grad_directional_on_sine_net(alpha, k):
    # The MAML paper's 1-40-40-1 sine regressor (P = 1761): 5 random directions, h = 1e-6.
    net = MLP([1, 40, 40, 1], "tanh")
    rng = np.random.default_rng(1)
    phi = net.init(rng)
    task = Sine(10, 10).sample(rng, 1)[0]
    report = gradcheck.check_directional(
        lambda p: meta_objective(net, p, task, alpha, k),
        lambda p: maml_grad(net, p, task, alpha, k),
        phi, rng=0, num_directions=5, h=1e-6, threshold=SMOOTH_TOL,
    )  # fmt: skip
    assert report.passed, str(report)


# ---------------------------------------------------------------- negative control: FOMAML fails
@pytest.mark.fast
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_fomaml_fails_the_exact_check(loss, k):
    # Same problems as above (tanh): FOMAML's direction has relative error 0.36..0.72 against
    # the true meta-gradient, the check rejects it.
    alpha = ALPHA[loss]
    net, phi, task = _task([2, 8, 8, 3], "tanh", loss, alpha, k)
    report = _check(fomaml_grad, net, phi, task, alpha, k, loss, SMOOTH_TOL)
    assert report.passed is False
    assert report.error > 1e-1, str(report)


@pytest.mark.fast
def test_fomaml_fails_on_small_sine_net():
    # A sine task on a 1-8-8-1 tanh net, alpha = 0.1, k = 1: error 0.19 coordinate-wise.
    net = MLP([1, 8, 8, 1], "tanh")
    rng = np.random.default_rng(1)
    phi = net.init(rng)
    task = Sine(10, 10).sample(rng, 1)[0]
    report = _check(fomaml_grad, net, phi, task, 0.1, 1, "mse", SMOOTH_TOL)
    assert report.passed is False
    assert report.error > 1e-1, str(report)
    assert _check(maml_grad, net, phi, task, 0.1, 1, "mse", SMOOTH_TOL).passed


# ---------------------------------------------------------------- k = 0 and alpha -> 0
@pytest.mark.fast
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_k0_everything_is_the_query_gradient(loss):
    net, phi, task = _task([2, 8, 8, 3], "tanh", loss, 0.1, 0)
    value, g_query = net.loss_and_grad(phi, task.x_query, task.y_query, loss)
    # no inner step, no HVP: the very same float operations, so bitwise equal
    np.testing.assert_array_equal(maml_grad(net, phi, task, 0.1, 0, loss), g_query)
    np.testing.assert_array_equal(fomaml_grad(net, phi, task, 0.1, 0, loss), g_query)
    assert maml_value_and_grad(net, phi, task, 0.1, 0, loss)[0] == value
    assert fomaml_value_and_grad(net, phi, task, 0.1, 0, loss)[0] == value
    assert meta_objective(net, phi, task, 0.1, 0, loss) == value
    assert dropped_term(net, phi, task, 0.1, 0, loss) == (0.0, 0.0)


def _slope(xs, ys):
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


@pytest.mark.fast
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize(("loss", "alpha_max"), [("cross_entropy", 1e-1), ("mse", 1e-2)])
def test_gap_shrinks_linearly_in_alpha(loss, alpha_max, k):
    # g_MAML - g_FOMAML = -alpha sum_i H_i grad L_B(phi_k) + O(alpha^2): slope 1 on a log-log plot.
    # Seven alphas over three decades, alpha_max * lambda_max(H) ~ 0.1 (lambda_max ~ 1 for
    # cross-entropy, ~6.6 for mse here) so the O(alpha^2) remainder does not bend the line.
    # Measured gap slopes: 1.004..1.006 (cross-entropy), 0.979..0.995 (mse); MAML -> query
    # gradient slopes 0.984..1.013. Tolerance |slope - 1| < 0.05.
    net, phi, task = _task([2, 8, 8, 3], "tanh", loss, alpha_max, k)
    alphas = np.geomspace(alpha_max, alpha_max * 1e-3, 7)
    g0 = net.loss_and_grad(phi, task.x_query, task.y_query, loss)[1]
    gaps = [dropped_term(net, phi, task, a, k, loss)[0] for a in alphas]
    to_query = [np.linalg.norm(maml_grad(net, phi, task, a, k, loss) - g0) for a in alphas]
    assert abs(_slope(alphas, gaps) - 1.0) < 0.05
    # MAML and FOMAML both tend to grad L_B(phi) as alpha -> 0 (phi_k -> phi), also linearly
    assert abs(_slope(alphas, to_query) - 1.0) < 0.05
    assert to_query[-1] < 1e-2 * np.linalg.norm(g0)


# ---------------------------------------------------------------- cost: k HVPs, no Hessian
@pytest.mark.fast
@pytest.mark.parametrize("k", [0, 1, 4])
def test_maml_uses_k_hvps_and_never_the_hessian(k, monkeypatch):
    net, phi, task = _task([2, 8, 8, 3], "tanh", "mse", 0.1, k)
    expected = maml_grad(net, phi, task, 0.1, k)

    def no_hessian(*args, **kwargs):
        raise AssertionError("maml_grad formed the explicit Hessian")

    monkeypatch.setattr(MLP, "hessian", no_hessian)
    calls = []
    original = net.hvp

    def counting_hvp(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(net, "hvp", counting_hvp)
    np.testing.assert_array_equal(maml_grad(net, phi, task, 0.1, k), expected)
    assert len(calls) == k
    calls.clear()
    fomaml_grad(net, phi, task, 0.1, k)
    assert not calls  # the first-order method uses no second-order information


@pytest.mark.fast
@pytest.mark.parametrize("k", [1, 5, 20])
def test_maml_memory_is_order_k_p(k):
    # Peak traced allocation of one maml_grad on the 1-40-40-1 net (P = 1761): measured about
    # 1.4..5 (k + 1) P float64 words; the (P, P) Hessian alone would be 24.8 MB.
    net = MLP([1, 40, 40, 1], "tanh")
    rng = np.random.default_rng(0)
    phi = net.init(rng)
    task = Sine(10, 10).sample(rng, 1)[0]
    P = net.num_params
    tracemalloc.start()
    try:
        maml_grad(net, phi, task, 0.01, k)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * (k + 1) * P * 8
    assert peak < P * P * 8 / 10


# ---------------------------------------------------------------- arguments
@pytest.mark.fast
def test_inputs_not_mutated():
    net, phi, task = _task([2, 8, 8, 3], "tanh", "mse", 0.1, 2)
    copies = [phi.copy()] + [np.copy(a) for a in task]
    for a in (phi, *task):
        a.flags.writeable = False
    for fn in (maml_grad, fomaml_grad, meta_objective, dropped_term):
        fn(net, phi, task, 0.1, 2)
    for a, b in zip((phi, *task), copies, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.fast
@pytest.mark.parametrize("fn", [maml_grad, fomaml_grad, meta_objective])
def test_bad_task_arguments(fn):
    net, phi, task = _task([2, 8, 8, 3], "tanh", "mse", 0.1, 1)
    with pytest.raises(TypeError, match="task"):
        fn(net, phi, (task.x_support, task.y_support), 0.1, 1)
    with pytest.raises(ValueError, match="x_query"):
        fn(net, phi, task._replace(x_query=np.zeros((10, 5))), 0.1, 1)
    with pytest.raises(ValueError, match="y_support"):
        fn(net, phi, task._replace(y_support=np.zeros((9, 3))), 0.1, 1)
    with pytest.raises(ValueError, match="alpha"):
        fn(net, phi, task, -0.1, 1)
    with pytest.raises(TypeError, match="k"):
        fn(net, phi, task, 0.1, 1.0)
