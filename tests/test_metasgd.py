"""Meta-SGD: dF/dphi and dF/dalphas against differences of F built from loss_and_grad alone; controls."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, Sine, Task, gradcheck, maml_value_and_grad, meta_objective
from tinymeta.inner import DivergenceError
from tinymeta.metasgd import metasgd_adapt, metasgd_batch, metasgd_trajectory, metasgd_value_and_grad
from tinymeta.tasks import TaskBatch

# Relative error (gradcheck.rel_error) against central differences of F(phi, alphas) = L_B(phi_k):
# TOL = 1e-6 with tanh: O(h^2) truncation + O(eps |F| / h) round-off; measured 5e-11..1.2e-10 for
# dF/dphi and 6e-11..2.5e-9 for dF/dalphas (h = 1e-5 per coordinate), 6e-10..4.6e-9 along 5
# directions (h = 1e-6). Dropped terms are far above it: first-order dF/dphi 0.17..0.59, dF/dalphas
# without the propagated vector 0.069..0.39.
TOL = 1e-6
# Step sizes large enough that the Hessian terms matter (lambda_max of the support Hessian ~6 for
# mse, ~1 for cross-entropy on these problems); each alpha_j drawn in [0.2, 1.5] * ALPHA, and a few
# negative, as Meta-SGD allows.
ALPHA = {"mse": 0.1, "cross_entropy": 1.0}


def _problem(loss, seed=0, sizes=(2, 6, 6, 3), n=10):
    net = MLP(list(sizes), "tanh")
    rng = np.random.default_rng(seed)
    phi = net.init(rng)

    def draw():
        x = rng.standard_normal((n, sizes[0]))
        y = rng.standard_normal((n, sizes[-1])) if loss == "mse" else rng.integers(0, sizes[-1], n)
        return x, y

    task = Task(*draw(), *draw())
    alphas = ALPHA[loss] * rng.uniform(0.2, 1.5, net.num_params)
    alphas[rng.choice(net.num_params, 5, replace=False)] *= -0.5
    return net, phi, alphas, task


def _objective(net, task, k, loss):
    """F(phi, alphas) = L_B(phi_k), phi_{i+1} = phi_i - alphas * grad L_A(phi_i): loss_and_grad only."""

    def F(phi, alphas):
        for _ in range(k):
            phi = phi - alphas * net.loss_and_grad(phi, task.x_support, task.y_support, loss)[1]
        return net.loss_and_grad(phi, task.x_query, task.y_query, loss)[0]

    return F


# ---------------------------------------------------------------- gradient checks
@pytest.mark.fast
@pytest.mark.parametrize("k", [0, 1, 2, 4])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_both_gradients_match_finite_differences(loss, k):
    net, phi, alphas, task = _problem(loss, seed=k)
    F = _objective(net, task, k, loss)
    value, d_phi, d_alphas = metasgd_value_and_grad(net, phi, alphas, task, k, loss)
    assert value == F(phi, alphas)  # the same float operations
    r_phi = gradcheck.check_grad(lambda p: F(p, alphas), lambda p: d_phi, phi, threshold=TOL, name="dF/dphi")
    assert r_phi.passed, str(r_phi)
    if k == 0:
        np.testing.assert_array_equal(d_alphas, 0.0)
        return
    r_alphas = gradcheck.check_grad(lambda a: F(phi, a), lambda a: d_alphas, alphas, threshold=TOL,
                                    name="dF/dalphas")  # fmt: skip
    assert r_alphas.passed, str(r_alphas)


@pytest.mark.fast
@pytest.mark.parametrize("k", [1, 5])
def test_directional_on_sine_net(k):
    # The MAML paper's 1-40-40-1 sine regressor (P = 1761), both gradients along 5 random directions.
    net = MLP([1, 40, 40, 1], "tanh")
    rng = np.random.default_rng(1)
    phi = net.init(rng)
    task = Sine(10, 10).sample(rng, 1)[0]
    alphas = rng.uniform(0.005, 0.05, net.num_params)
    F = _objective(net, task, k, "mse")
    _, d_phi, d_alphas = metasgd_value_and_grad(net, phi, alphas, task, k)
    for name, f, x, g in (("dF/dphi", lambda p: F(p, alphas), phi, d_phi),
                          ("dF/dalphas", lambda a: F(phi, a), alphas, d_alphas)):  # fmt: skip
        report = gradcheck.check_directional(f, lambda _, g=g: g, x, rng=0, h=1e-6, threshold=TOL, name=name)
        assert report.passed, str(report)


@pytest.mark.fast
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_equal_step_sizes_give_maml(loss, k):
    # alphas = alpha * 1: phi_k, F and dF/dphi are MAML's (alphas * v and alpha * v differ only in
    # rounding: rtol 1e-13), and sum_j dF/dalphas_j = dF/dalpha, by a central difference in alpha
    # (h = 1e-6 alpha; measured error 3e-10..1.6e-8, round-off eps |F| / h dominating; tolerance 1e-6).
    net, phi, _, task = _problem(loss, seed=10 + k)
    alpha = ALPHA[loss]
    value, d_phi, d_alphas = metasgd_value_and_grad(net, phi, np.full(net.num_params, alpha), task, k, loss)
    maml_value, maml_grad = maml_value_and_grad(net, phi, task, alpha, k, loss)
    assert value == pytest.approx(maml_value, rel=1e-13)
    np.testing.assert_allclose(d_phi, maml_grad, rtol=1e-13, atol=1e-15)
    h = 1e-6 * alpha
    d_alpha = (
        meta_objective(net, phi, task, alpha + h, k, loss)
        - meta_objective(net, phi, task, alpha - h, k, loss)
    ) / (2 * h)
    assert gradcheck.rel_error(d_alphas.sum(), d_alpha) < TOL


# ---------------------------------------------------------------- negative controls
def _first_order(net, phi, alphas, task, k, loss):
    """Drops every Jacobian: dF/dphi = grad L_B(phi_k), dF/dalphas = -sum_i g_i * grad L_B(phi_k)."""
    traj, grads = metasgd_trajectory(net, phi, alphas, task.x_support, task.y_support, k, loss)
    v = net.loss_and_grad(traj[-1], task.x_query, task.y_query, loss)[1]
    return v, -(grads * v).sum(axis=0)


@pytest.mark.fast
@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_dropping_the_jacobian_fails(loss, k):
    net, phi, alphas, task = _problem(loss, seed=k)
    F = _objective(net, task, k, loss)
    fo_phi, fo_alphas = _first_order(net, phi, alphas, task, k, loss)
    r_phi = gradcheck.check_grad(lambda p: F(p, alphas), lambda p: fo_phi, phi, threshold=TOL)
    assert not r_phi.passed
    assert r_phi.error > 5e-2, str(r_phi)
    if k >= 2:  # for k = 1 there is no later step to propagate through: the formula is exact
        r_alphas = gradcheck.check_grad(lambda a: F(phi, a), lambda a: fo_alphas, alphas, threshold=TOL)
        assert not r_alphas.passed
        assert r_alphas.error > 5e-2, str(r_alphas)
    else:
        np.testing.assert_allclose(fo_alphas, metasgd_value_and_grad(net, phi, alphas, task, k, loss)[2],
                                   rtol=1e-14)  # fmt: skip


# ---------------------------------------------------------------- behaviour
@pytest.mark.fast
def test_trajectory_and_cost(monkeypatch):
    net, phi, alphas, task = _problem("mse")
    xs, ys = task.x_support, task.y_support
    traj, grads = metasgd_trajectory(net, phi, alphas, xs, ys, 3)
    assert traj.shape == (4, net.num_params) and grads.shape == (3, net.num_params)
    np.testing.assert_array_equal(traj[0], phi)
    np.testing.assert_array_equal(traj[1], phi - alphas * net.loss_and_grad(phi, xs, ys)[1])
    np.testing.assert_array_equal(metasgd_adapt(net, phi, alphas, xs, ys, 3), traj[-1])
    expected = metasgd_value_and_grad(net, phi, alphas, task, 3)

    def no_hessian(*args, **kwargs):
        raise AssertionError("Meta-SGD formed the explicit Hessian")

    calls = []
    original = net.hvp
    monkeypatch.setattr(MLP, "hessian", no_hessian)
    monkeypatch.setattr(net, "hvp", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    got = metasgd_value_and_grad(net, phi, alphas, task, 3)
    assert len(calls) == 3  # k HVPs
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.fast
def test_batch_is_the_mean_over_tasks_and_inputs_are_not_mutated():
    net = MLP([1, 16, 16, 1], "tanh")
    rng = np.random.default_rng(4)
    phi, alphas = net.init(rng), rng.uniform(0.005, 0.05, net.num_params)
    tasks = Sine(10, 7).sample(rng, 4)
    batch = TaskBatch.stack(tasks)
    for a in (phi, alphas, *batch):
        a.flags.writeable = False
    value, d_phi, d_alphas = metasgd_batch(net, phi, alphas, batch, 2)
    per_task = [metasgd_value_and_grad(net, phi, alphas, t, 2) for t in tasks]
    assert value == pytest.approx(np.mean([r[0] for r in per_task]), rel=1e-14)
    np.testing.assert_allclose(d_phi, np.mean([r[1] for r in per_task], axis=0), rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(d_alphas, np.mean([r[2] for r in per_task], axis=0), rtol=1e-14, atol=1e-16)


@pytest.mark.fast
def test_huge_step_sizes_raise_divergence_error():
    net, phi, alphas, task = _problem("mse")
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(DivergenceError, match="alphas"):
        metasgd_value_and_grad(net, phi, alphas * 1e6, task, 40)


# ---------------------------------------------------------------- arguments
@pytest.mark.fast
def test_bad_arguments():
    net, phi, alphas, task = _problem("mse")
    with pytest.raises(ValueError, match=r"alphas has shape \(\d+,\); expected"):
        metasgd_value_and_grad(net, phi, alphas[:-1], task, 1)
    with pytest.raises(ValueError, match="alphas contains 1 non-finite"):
        metasgd_value_and_grad(net, phi, np.where(np.arange(alphas.size) == 3, np.nan, alphas), task, 1)
    with pytest.raises(ValueError, match=r"alphas must have 1 dimension\(s\); got shape \(\)"):
        metasgd_value_and_grad(net, phi, 0.1, task, 1)  # one scalar step size: that is MAML
    with pytest.raises(ValueError, match="k must be an integer >= 0; got -1"):
        metasgd_value_and_grad(net, phi, alphas, task, -1)
    with pytest.raises(TypeError, match="k must be an integer"):
        metasgd_batch(net, phi, alphas, TaskBatch.stack([task]), 1.5)
    with pytest.raises(ValueError, match="phi"):
        metasgd_value_and_grad(net, phi[:-1], alphas, task, 1)
    with pytest.raises(ValueError, match="y_support"):
        metasgd_value_and_grad(net, phi, alphas, task._replace(y_support=np.zeros((9, 3))), 1)
    with pytest.raises(TypeError, match="batch"):
        metasgd_batch(net, phi, alphas, [task], 1)
