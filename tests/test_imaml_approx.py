"""iMAML's practical variant and the test-time inner loops of Meta-SGD, ANIL and iMAML.

The practical direction is not the gradient of any objective, so it is checked against its
definition, computed here independently: k gradient steps on the proximal objective written out
with ``MLP.loss_and_grad``, and n CG iterations as the minimiser of the A-norm error over the
Krylov space span{v, A v, ..., A^{n-1} v} (a dense computation with ``MLP.hessian``, no CG). And
it tends to the exact iMAML gradient as k and n grow.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, ConvergenceError, DivergenceError, Sine, gradcheck, imaml_adapt, imaml_grad
from tinymeta.adapters import anil_adapter, imaml_adapter, imaml_solve_adapter, metasgd_adapter
from tinymeta.anil import head_mask
from tinymeta.evaluation import sgd_adapter
from tinymeta.imaml_approx import imaml_approx_batch, imaml_approx_value_and_grad, imaml_gd_trajectory
from tinymeta.metasgd import metasgd_trajectory
from tinymeta.tasks import TaskBatch

pytestmark = pytest.mark.fast

# Krylov-space minimiser against scipy's CG after n iterations: both are exact in exact arithmetic;
# in float64 they differ by the rounding of n three-term recurrences and of a dense (n, n) solve
# with cond(V^T A V) <= cond(A) ~ 10 here. Measured 1e-15..4e-14; 1e-10 leaves room.
KRYLOV_TOL = 1e-10


def _problem(activation="tanh", sizes=(1, 8, 8, 1), seed=0):
    net = MLP(list(sizes), activation)
    rng = np.random.default_rng(seed)
    return net, net.init(rng), Sine(10, 10).sample(rng, 1)[0]


def _by_definition(net, phi, task, lam, alpha, k, n):
    """Eq. (5.5) k times with loss_and_grad, then the Krylov minimiser of ||g - A^{-1} v||_A, densely."""
    xs, ys = task.x_support, task.y_support
    u = phi.copy()
    for _ in range(k):
        u = u - alpha * (net.loss_and_grad(u, xs, ys)[1] + lam * (u - phi))
    value, v = net.loss_and_grad(u, task.x_query, task.y_query)
    A = np.eye(phi.size) + net.hessian(u, xs, ys) / lam
    K = np.stack([np.linalg.matrix_power(A, j) @ v for j in range(n)], axis=1)
    V = np.linalg.qr(K)[0]
    return value, V @ np.linalg.solve(V.T @ A @ V, V.T @ v)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (3, 2), (10, 5)])
def test_the_direction_is_its_definition(k, n):
    net, phi, task = _problem()
    value, g = imaml_approx_value_and_grad(net, phi, task, 2.0, 0.05, k, n)
    ref_value, ref = _by_definition(net, phi, task, 2.0, 0.05, k, n)
    assert value == pytest.approx(ref_value, rel=1e-13)  # the same steps in the same order
    assert gradcheck.rel_error(g, ref) < KRYLOV_TOL


def test_it_tends_to_the_exact_gradient_and_is_not_it_for_few_steps():
    net, phi, task = _problem()
    exact = imaml_grad(net, phi, task, 5.0, tol=1e-10)
    # 2000 steps of alpha = 0.02 contract the inner error by (1 - 0.02 (5 + lambda_min))^2000 < 1e-30,
    # 60 CG iterations on this P = 97 system reach round-off; the exact solve's own tol is 1e-10.
    close = imaml_approx_value_and_grad(net, phi, task, 5.0, 0.02, 2000, 60)[1]
    assert gradcheck.rel_error(close, exact) < 1e-8
    rough = imaml_approx_value_and_grad(net, phi, task, 5.0, 0.02, 10, 5)[1]  # measured 2e-2
    assert gradcheck.rel_error(rough, exact) > 1e-3, "negative control: 10 steps are far from phi*"


def test_it_runs_on_relu_where_the_exact_solve_stalls():
    net, phi, task = _problem("relu", (1, 40, 40, 1))
    with pytest.raises(ConvergenceError):
        imaml_grad(net, phi, task, 1.0)
    value, g = imaml_approx_value_and_grad(net, phi, task, 2.0, 0.01, 10, 5)
    assert np.isfinite(value) and np.all(np.isfinite(g)) and np.any(g)


def test_batch_is_the_mean_and_bad_settings_are_named():
    net, phi, _ = _problem()
    batch = TaskBatch(*Sine(10, 10).sample_arrays(np.random.default_rng(3), 3)[2:])
    value, g = imaml_approx_batch(net, phi, batch, 2.0, 0.05, 3, 2)
    each = [imaml_approx_value_and_grad(net, phi, batch.task(i), 2.0, 0.05, 3, 2) for i in range(3)]
    assert value == np.mean([e[0] for e in each])
    np.testing.assert_array_equal(g, np.mean([e[1] for e in each], axis=0))
    for kw, message in [(dict(lam=0.0), "lam must be"), (dict(cg_iterations=0), "cg_iterations must be"),
                        (dict(alpha=-1.0), "alpha must be"), (dict(k=-1), "k must be")]:  # fmt: skip
        args = dict(lam=2.0, alpha=0.05, k=3, cg_iterations=2) | kw
        with pytest.raises(ValueError, match=message):
            imaml_approx_batch(net, phi, batch, **args)


def test_an_unstable_step_raises_divergence_error():
    net, phi, task = _problem()
    with pytest.raises(DivergenceError, match="alpha=.* is too large for lam"), np.errstate(all="ignore"):
        imaml_approx_value_and_grad(net, phi, task, 1e6, 1.0, 40, 2)  # alpha (lam + lambda) >> 2


# ---------------------------------------------------------------- test-time inner loops
def test_metasgd_adapter_follows_the_learned_steps():
    net, phi, task = _problem()
    alphas = np.random.default_rng(1).uniform(0.0, 0.1, phi.size)
    rows = metasgd_adapter(net, alphas)(phi, task, (0, 2, 3))
    traj = metasgd_trajectory(net, phi, alphas, task.x_support, task.y_support, 3)[0]
    np.testing.assert_array_equal(rows, traj[[0, 2, 3]])
    same = metasgd_adapter(net, np.full(phi.size, 0.05))(phi, task, (1, 3))  # equal steps: plain SGD
    np.testing.assert_allclose(same, sgd_adapter(net, 0.05)(phi, task, (1, 3)), rtol=1e-14, atol=0)


def test_anil_adapter_moves_the_head_only():
    net, phi, task = _problem()
    rows = anil_adapter(net, 0.1)(phi, task, (0, 4))
    head = head_mask(net).astype(bool)
    np.testing.assert_array_equal(rows[:, ~head], np.broadcast_to(phi[~head], rows[:, ~head].shape))
    assert np.all(rows[1, head] != phi[head])


def test_imaml_adapter_takes_proximal_steps_and_keeps_the_steps_before_a_divergence():
    net, phi, task = _problem()
    rows = imaml_adapter(net, 2.0, 0.05)(phi, task, (1, 4))
    np.testing.assert_array_equal(rows, imaml_gd_trajectory(net, phi, task.x_support, task.y_support,
                                                            2.0, 0.05, 4)[[1, 4]])  # fmt: skip
    with np.errstate(over="ignore", invalid="ignore"):  # evaluate() runs adapters so
        blown = imaml_adapter(net, 1e200, 1.0)(phi, task, (0, 1, 8))  # u_1 = phi - g; lam (u_2 - phi) = inf
    assert np.array_equal(blown[0], phi) and np.all(np.isfinite(blown[1])) and np.all(np.isnan(blown[2]))


def test_imaml_solve_adapter_returns_phi_star_and_nan_where_the_solve_fails():
    net, phi, task = _problem()
    rows = imaml_solve_adapter(net, 4.0)(phi, task, (0, 1, 7))
    star = imaml_adapt(net, phi, task.x_support, task.y_support, 4.0)
    np.testing.assert_array_equal(rows, np.stack([phi, star, star]))
    relu, phi_r, task_r = _problem("relu", (1, 40, 40, 1))  # the minimiser lies on a kink: no convergence
    failed = imaml_solve_adapter(relu, 1.0)(phi_r, task_r, (0, 3))
    assert np.array_equal(failed[0], phi_r) and np.all(np.isnan(failed[1]))
