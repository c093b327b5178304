"""ANIL: the gradient with respect to all of phi against differences of F built from loss_and_grad alone."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, Sine, Task, gradcheck, maml_value_and_grad
from tinymeta.anil import anil_adapt, anil_batch, anil_trajectory, anil_value_and_grad, head_mask, head_slice
from tinymeta.metasgd import metasgd_value_and_grad
from tinymeta.tasks import TaskBatch

# Relative error (gradcheck.rel_error) against central differences of F(phi) = L_B(psi, w_k):
# TOL = 1e-6 with tanh and softplus: O(h^2) truncation + O(eps |F| / h) round-off; measured
# 4e-11..2.5e-10 (h = 1e-5 per coordinate) and 3.5e-10..3.1e-9 (5 directions, h = 1e-6). Dropped
# terms are far above it: the body's mixed terms 0.09..0.45, every Jacobian (first order) 0.13..0.54.
TOL = 1e-6
ALPHA = {"mse": 0.1, "cross_entropy": 1.0}


def _problem(loss, activation="tanh", seed=0, sizes=(2, 6, 6, 3), n=10):
    net = MLP(list(sizes), activation)
    rng = np.random.default_rng(seed)
    phi = net.init(rng)

    def draw():
        x = rng.standard_normal((n, sizes[0]))
        y = rng.standard_normal((n, sizes[-1])) if loss == "mse" else rng.integers(0, sizes[-1], n)
        return x, y

    return net, phi, Task(*draw(), *draw())


def _objective(net, task, alpha, k, loss):
    """F(phi) = L_B(psi, w_k): k gradient steps on the last layer's entries only; loss_and_grad alone."""
    last = slice(net.num_params - (net.sizes[-2] + 1) * net.sizes[-1], net.num_params)

    def F(phi):
        phi = phi.copy()
        for _ in range(k):
            phi[last] -= alpha * net.loss_and_grad(phi, task.x_support, task.y_support, loss)[1][last]
        return net.loss_and_grad(phi, task.x_query, task.y_query, loss)[0]

    return F


# ---------------------------------------------------------------- gradient checks
@pytest.mark.fast
@pytest.mark.parametrize("k", [0, 1, 2, 4])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_anil_grad_matches_finite_differences(activation, loss, k):
    alpha = ALPHA[loss]
    net, phi, task = _problem(loss, activation, seed=k)
    F = _objective(net, task, alpha, k, loss)
    value, g = anil_value_and_grad(net, phi, task, alpha, k, loss)
    assert value == F(phi)
    report = gradcheck.check_grad(F, lambda p: g, phi, h=1e-5, threshold=TOL, name="ANIL gradient")
    assert report.passed, str(report)


@pytest.mark.fast
@pytest.mark.parametrize("k", [1, 5])
def test_anil_directional_on_sine_net(k):
    # The MAML paper's 1-40-40-1 sine regressor (P = 1761; head 41 entries), 5 directions, h = 1e-6.
    net = MLP([1, 40, 40, 1], "tanh")
    rng = np.random.default_rng(2)
    phi = net.init(rng)
    task = Sine(10, 10).sample(rng, 1)[0]
    F = _objective(net, task, 0.05, k, "mse")
    report = gradcheck.check_directional(
        F, lambda p: anil_value_and_grad(net, p, task, 0.05, k)[1], phi, rng=0, h=1e-6, threshold=TOL,
        name="ANIL gradient",
    )  # fmt: skip
    assert report.passed, str(report)


# ---------------------------------------------------------------- negative controls
def _dropped(net, phi, task, alpha, k, loss, keep_head_jacobian):
    """The body's mixed terms dropped: g_psi = grad_psi L_B(psi, w_k); the head's chain kept or not."""
    traj = anil_trajectory(net, phi, task.x_support, task.y_support, alpha, k, loss)
    g = net.loss_and_grad(traj[-1], task.x_query, task.y_query, loss)[1]
    head = head_slice(net)
    for i in range(k - 1, -1, -1) if keep_head_jacobian else ():
        g[head] -= alpha * net.hvp(traj[i], task.x_support, task.y_support, head_mask(net) * g, loss)[head]
    return g


@pytest.mark.fast
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_dropping_the_body_terms_fails(loss, k):
    # The body enters the head's inner updates: without H_pw the body's gradient is wrong, even with
    # the head's own Jacobian product exact; with every Jacobian dropped (first-order ANIL) too.
    alpha = ALPHA[loss]
    net, phi, task = _problem(loss, seed=k)
    F = _objective(net, task, alpha, k, loss)
    for keep in (True, False):
        g = _dropped(net, phi, task, alpha, k, loss, keep_head_jacobian=keep)
        report = gradcheck.check_grad(F, lambda p, g=g: g, phi, h=1e-5, threshold=TOL)
        assert not report.passed
        assert report.error > 2e-2, str(report)
        if keep:  # the head block alone is right: the error is all in the body
            exact = anil_value_and_grad(net, phi, task, alpha, k, loss)[1]
            np.testing.assert_allclose(g[head_slice(net)], exact[head_slice(net)], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- identities
@pytest.mark.fast
@pytest.mark.parametrize("k", [0, 1, 3])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_anil_is_metasgd_with_step_sizes_on_the_head_only(loss, k):
    # alphas = alpha on the head, 0 on the body: the same F and gradient (alpha * (m * g) against
    # (alpha m) * g rounds differently: rtol 1e-13).
    alpha = ALPHA[loss]
    net, phi, task = _problem(loss, seed=5 + k)
    value, g = anil_value_and_grad(net, phi, task, alpha, k, loss)
    value_m, g_m, _ = metasgd_value_and_grad(net, phi, alpha * head_mask(net), task, k, loss)
    assert value == pytest.approx(value_m, rel=1e-13)
    np.testing.assert_allclose(g, g_m, rtol=1e-13, atol=1e-15)


@pytest.mark.fast
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_without_hidden_layer_anil_is_maml(loss):
    # MLP([d_0, d_L]): the head is the whole network, so ANIL's inner loop is MAML's.
    net, phi, task = _problem(loss, sizes=(2, 3))
    assert head_slice(net) == slice(0, net.num_params)
    value, g = anil_value_and_grad(net, phi, task, ALPHA[loss], 3, loss)
    maml_value, maml_grad = maml_value_and_grad(net, phi, task, ALPHA[loss], 3, loss)
    assert value == pytest.approx(maml_value, rel=1e-13)
    np.testing.assert_allclose(g, maml_grad, rtol=1e-13, atol=1e-15)


@pytest.mark.fast
def test_only_the_last_layer_moves():
    net, phi, task = _problem("mse", sizes=(2, 6, 5, 3))
    head = head_slice(net)
    assert head == slice(net.num_params - 18, net.num_params)  # W_3 (5, 3) and b_3 (3,)
    assert head_mask(net).sum() == 18
    traj = anil_trajectory(net, phi, task.x_support, task.y_support, 0.1, 4)
    np.testing.assert_array_equal(traj[:, : head.start], np.broadcast_to(phi[: head.start], (5, head.start)))
    assert np.all(np.abs(traj[-1, head] - phi[head]) > 0)
    np.testing.assert_array_equal(anil_adapt(net, phi, task.x_support, task.y_support, 0.1, 4), traj[-1])
    losses = [net.loss(p, task.x_support, task.y_support) for p in traj]
    assert np.all(np.diff(losses) < 0)  # a small step on the head lowers the support loss


def _offset(view, base):
    """Where the view starts in base, in float64 entries (from the memory addresses, not the layout code)."""
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize


@pytest.mark.fast
@pytest.mark.parametrize("batch_norm", [False, True])
def test_head_is_the_last_layer_also_with_batch_norm(batch_norm):
    # With batch norm the shifts beta_l are stored after every (W_l, b_l): they belong to the body.
    # The head's place is read off net.unflatten's views of phi; the gradient is checked as above.
    net = MLP([2, 6, 5, 3], "tanh", batch_norm=batch_norm)
    rng = np.random.default_rng(7)
    phi = net.init(rng) + 0.1 * rng.standard_normal(net.num_params)  # shifts away from 0
    W_L, b_L = net.unflatten(phi)[-1]
    head = head_slice(net)
    assert (head.start, head.stop) == (_offset(W_L, phi), _offset(b_L, phi) + b_L.size)
    task = _problem("mse", sizes=(2, 6, 5, 3), seed=7)[2]

    def F(p):
        p = p.copy()
        for _ in range(2):
            p[head] -= 0.1 * net.loss_and_grad(p, task.x_support, task.y_support)[1][head]
        return net.loss_and_grad(p, task.x_query, task.y_query)[0]

    g = anil_value_and_grad(net, phi, task, 0.1, 2)[1]
    report = gradcheck.check_grad(F, lambda p: g, phi, h=1e-5, threshold=TOL, name="ANIL gradient")
    assert report.passed, str(report)


@pytest.mark.fast
def test_cost_k_hvps_and_no_hessian(monkeypatch):
    net, phi, task = _problem("mse")
    expected = anil_value_and_grad(net, phi, task, 0.1, 3)

    def no_hessian(*args, **kwargs):
        raise AssertionError("ANIL formed the explicit Hessian")

    calls = []
    original = net.hvp
    monkeypatch.setattr(MLP, "hessian", no_hessian)
    monkeypatch.setattr(net, "hvp", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    value, g = anil_value_and_grad(net, phi, task, 0.1, 3)
    assert len(calls) == 3
    assert value == expected[0]
    np.testing.assert_array_equal(g, expected[1])


@pytest.mark.fast
def test_batch_is_the_mean_over_tasks_and_inputs_are_not_mutated():
    net = MLP([1, 16, 16, 1], "tanh")
    rng = np.random.default_rng(4)
    phi = net.init(rng)
    tasks = Sine(10, 7).sample(rng, 4)
    batch = TaskBatch.stack(tasks)
    for a in (phi, *batch):
        a.flags.writeable = False
    value, g = anil_batch(net, phi, batch, 0.05, 2)
    per_task = [anil_value_and_grad(net, phi, t, 0.05, 2) for t in tasks]
    assert value == pytest.approx(np.mean([r[0] for r in per_task]), rel=1e-14)
    np.testing.assert_allclose(g, np.mean([r[1] for r in per_task], axis=0), rtol=1e-14, atol=1e-16)


# ---------------------------------------------------------------- arguments
@pytest.mark.fast
def test_bad_arguments():
    net, phi, task = _problem("mse")
    with pytest.raises(ValueError, match="alpha must be a finite number > 0; got -0.1"):
        anil_value_and_grad(net, phi, task, -0.1, 1)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0; got 0"):
        anil_batch(net, phi, TaskBatch.stack([task]), 0, 1)
    with pytest.raises(ValueError, match="k must be an integer >= 0; got -2"):
        anil_value_and_grad(net, phi, task, 0.1, -2)
    with pytest.raises(ValueError, match="phi"):
        anil_value_and_grad(net, np.zeros(3), task, 0.1, 1)
    with pytest.raises(ValueError, match="x_support"):
        anil_value_and_grad(net, phi, task._replace(x_support=np.zeros((10, 4))), 0.1, 1)
    with pytest.raises(TypeError, match="batch"):
        anil_batch(net, phi, task, 0.1, 1)
