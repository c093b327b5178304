"""iMAML: the implicit meta-gradient against differences of its own meta-objective and a dense solve.

The reference meta-objective F(phi) = L_B(phi*(phi)) is built here from ``MLP.loss_and_grad`` alone:
phi* solves grad L_A(u) + lam (u - phi) = 0, found by L-BFGS and then Newton steps whose Jacobian
is a central difference of the gradient. No HVP, no Hessian, nothing of tinymeta.imaml.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from tinymeta import MLP, Sine, Task, gradcheck
from tinymeta.batch import check_batch
from tinymeta.hessian_operator import ConvergenceError
from tinymeta.imaml import imaml_adapt, imaml_batch, imaml_grad, imaml_value_and_grad, implicit_jacobian_solve
from tinymeta.tasks import TaskBatch

# Tolerances (relative error, gradcheck.rel_error):
# * FD_TOL = 1e-6 for g against central differences of F: the reference phi* is exact to
#   ||grad G|| ~ 1e-15 (so its error in F is ~1e-15, against h = 1e-5), the truncation error is
#   O(h^2); measured 1.2e-10..3.5e-10 (coordinates, h = 1e-5) and 1.7e-9..2.4e-9 (5 directions,
#   h = 1e-6). A wrong factor is far above: H at phi instead of phi* 0.04..0.39, first order 0.24..0.65.
# * DENSE_TOL = 1e-6 for tol = 1e-10 against np.linalg.solve with MLP.hessian at the reference phi*:
#   CG's relative residual 1e-10 times cond(I + H/lam) (2.4..8.1 here); measured 2e-11..6e-11
#   (3e-9 with the default tol = 1e-8).
FD_TOL = 1e-6
DENSE_TOL = 1e-6
# lam: the proximal term must make G strongly convex near phi*; the support-loss Hessians below
# have lambda_min >= -1.3 (mse) and >= -0.3 (cross-entropy) near phi, so lam = 2 and 1.
LAM = {"mse": 2.0, "cross_entropy": 1.0}


def _problem(loss, activation="tanh", sizes=(2, 6, 6, 3), seed=0, n=10):
    net = MLP(list(sizes), activation)
    rng = np.random.default_rng(seed)
    phi = net.init(rng)

    def draw():
        x = rng.standard_normal((n, sizes[0]))
        y = rng.standard_normal((n, sizes[-1])) if loss == "mse" else rng.integers(0, sizes[-1], n)
        return x, y

    return net, phi, Task(*draw(), *draw())


def _sine_problem(sizes=(1, 16, 16, 1), seed=0):
    net = MLP(list(sizes), "tanh")
    rng = np.random.default_rng(seed)
    return net, net.init(rng), Sine(10, 10).sample(rng, 1)[0]


# ---------------------------------------------------------------- the independent reference
def _prox_grad(net, phi, x, y, lam, loss):
    return lambda u: net.loss_and_grad(u, x, y, loss)[1] + lam * (u - phi)


def _fd_jacobian(net, u, x, y, lam, loss):
    """d/du (grad L_A(u) + lam (u - phi)) by central differences of the exact gradient: (P, P)."""
    J = gradcheck.numerical_grad(lambda p: net.loss_and_grad(p, x, y, loss)[1], u, h=1e-5)
    return 0.5 * (J + J.T) + lam * np.eye(u.size)


def _newton(grad, u, M, steps=30):
    """u <- u - M^{-1} grad(u) while ||grad|| decreases (quadratic convergence for M the Jacobian at u,
    linear for a fixed M near it)."""
    best = np.linalg.norm(grad(u))
    for _ in range(steps):
        trial = u - np.linalg.solve(M, grad(u))
        norm = np.linalg.norm(grad(trial))
        if not norm < best:
            break
        u, best = trial, norm
    return u, best


def _reference_phi_star(net, phi, x, y, lam, loss):
    """phi* and the (P, P) Jacobian of the proximal gradient there, from loss_and_grad alone."""

    def value_and_grad(u):
        value, g = net.loss_and_grad(u, x, y, loss)
        return value + 0.5 * lam * (u - phi) @ (u - phi), g + lam * (u - phi)

    u = minimize(value_and_grad, phi, jac=True, method="L-BFGS-B", options={"gtol": 1e-9, "maxiter": 5000}).x
    grad = _prox_grad(net, phi, x, y, lam, loss)
    for _ in range(3):  # Newton with a fresh finite-difference Jacobian each time
        M = _fd_jacobian(net, u, x, y, lam, loss)
        u, norm = _newton(grad, u, M, steps=1)
    u, norm = _newton(grad, u, M)
    assert norm < 1e-13, f"reference solve stalled at {norm:.2e}"
    return u, M


def _reference_objective(net, task, lam, loss, phi0):
    """F(phi) = L_B(phi*(phi)) for phi near phi0; phi* by Newton steps from phi*(phi0) with the Jacobian
    there (the chord method)."""
    xs, ys = task.x_support, task.y_support
    u0, M = _reference_phi_star(net, phi0, xs, ys, lam, loss)

    def F(phi):
        u, norm = _newton(_prox_grad(net, phi, xs, ys, lam, loss), u0, M)
        assert norm < 1e-13, f"reference solve stalled at {norm:.2e}"
        return net.loss_and_grad(u, task.x_query, task.y_query, loss)[0]

    return F, u0


# ---------------------------------------------------------------- gradient checks
@pytest.mark.fast
@pytest.mark.parametrize("activation", ["tanh", "softplus"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_imaml_grad_matches_finite_differences(loss, activation):
    net, phi, task = _problem(loss, activation)
    lam = LAM[loss]
    F, phi_star = _reference_objective(net, task, lam, loss, phi)
    g = imaml_grad(net, phi, task, lam, loss, tol=1e-10)
    report = gradcheck.check_grad(F, lambda p: g, phi, h=1e-5, threshold=FD_TOL, name="iMAML gradient")
    assert report.passed, str(report)
    # the check is meaningful only if the implicit Jacobian matters: g differs from grad L_B(phi*)
    g_first_order = net.loss_and_grad(phi_star, task.x_query, task.y_query, loss)[1]
    assert gradcheck.rel_error(g, g_first_order) > 0.05


@pytest.mark.fast
@pytest.mark.parametrize("lam", [0.5, 4.0])
def test_imaml_grad_directional_on_sine_net(lam):
    # A 1-16-16-1 tanh sine regressor (P = 321), 5 random directions, h = 1e-6.
    net, phi, task = _sine_problem()
    F, _ = _reference_objective(net, task, lam, "mse", phi)
    report = gradcheck.check_directional(
        F, lambda p: imaml_grad(net, p, task, lam, tol=1e-10), phi, rng=0, h=1e-6, threshold=FD_TOL,
        name="iMAML gradient",
    )  # fmt: skip
    assert report.passed, str(report)


@pytest.mark.fast
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_imaml_matches_dense_solve(loss):
    net, phi, task = _problem(loss, seed=1)
    lam = LAM[loss]
    phi_ref, _ = _reference_phi_star(net, phi, task.x_support, task.y_support, lam, loss)
    H = net.hessian(phi_ref, task.x_support, task.y_support, loss)
    g_query = net.loss_and_grad(phi_ref, task.x_query, task.y_query, loss)[1]
    dense = np.linalg.solve(np.eye(net.num_params) + H / lam, g_query)
    value, g = imaml_value_and_grad(net, phi, task, lam, loss, tol=1e-10)
    assert gradcheck.rel_error(g, dense) < DENSE_TOL
    # phi* itself: ||phi* - phi*_ref|| <= (tol + 1e-13) / mu with mu = lambda_min(H + lam I) > 0
    mu = np.linalg.eigvalsh(H).min() + lam
    assert mu > 0
    assert (
        np.linalg.norm(imaml_adapt(net, phi, task.x_support, task.y_support, lam, loss, 1e-10) - phi_ref)
        < 2e-10 / mu
    )
    assert value == pytest.approx(net.loss(phi_ref, task.x_query, task.y_query, loss), rel=1e-9)


# ---------------------------------------------------------------- negative controls
@pytest.mark.fast
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_hessian_at_phi_instead_of_phi_star_fails(loss):
    # The implicit Jacobian must be evaluated at the solution phi*, not at the meta-parameters phi.
    net, phi, task = _problem(loss)
    lam = LAM[loss]
    F, phi_star = _reference_objective(net, task, lam, loss, phi)
    g_query = net.loss_and_grad(phi_star, task.x_query, task.y_query, loss)[1]
    wrong = implicit_jacobian_solve(net, phi, task.x_support, task.y_support, lam, g_query, loss, tol=1e-10)
    first_order = g_query
    for name, g in (("H at phi", wrong), ("first order", first_order)):
        report = gradcheck.check_grad(F, lambda p, g=g: g, phi, h=1e-5, threshold=FD_TOL, name=name)
        assert not report.passed
        assert report.error > 1e-2, str(report)


# ---------------------------------------------------------------- behaviour
@pytest.mark.fast
@pytest.mark.parametrize("tol", [1e-4, 1e-8, 1e-11])
def test_tol_bounds_the_proximal_gradient_and_the_cg_residual(tol):
    net, phi, task = _sine_problem(seed=2)
    lam = 1.0
    xs, ys = task.x_support, task.y_support
    phi_star = imaml_adapt(net, phi, xs, ys, lam, tol=tol)
    assert np.linalg.norm(_prox_grad(net, phi, xs, ys, lam, "mse")(phi_star)) <= tol
    v = net.loss_and_grad(phi_star, task.x_query, task.y_query)[1]
    g = implicit_jacobian_solve(net, phi_star, xs, ys, lam, v, tol=tol)
    residual = v - g - net.hvp(phi_star, xs, ys, g) / lam
    assert np.linalg.norm(residual) <= tol * np.linalg.norm(v)


@pytest.mark.fast
def test_large_lam_tends_to_the_query_gradient():
    # phi* = phi - grad L_A(phi)/lam + O(1/lam^2), so g - grad L_B(phi) = O(1/lam): slope -1 in log-log.
    # Measured slope -0.99..-1.00 over lam = 1e2..1e4; tolerance 0.05. tol = 1e-10 stays above the
    # round-off floor of the proximal gradient, eps * lam * ||phi|| ~ 1e-12 at lam = 1e4.
    net, phi, task = _problem("mse", seed=3)
    g0 = net.loss_and_grad(phi, task.x_query, task.y_query)[1]
    lams = np.geomspace(1e2, 1e4, 5)
    gaps = [np.linalg.norm(imaml_grad(net, phi, task, lam, tol=1e-10) - g0) for lam in lams]
    assert abs(np.polyfit(np.log(lams), np.log(gaps), 1)[0] + 1.0) < 0.05


@pytest.mark.fast
def test_relu_minimiser_on_a_kink_raises_convergence_error():
    # With ReLU the proximal minimiser sits on a kink (some hidden |z| ~ 1e-15) where no gradient
    # vanishes: the solver must say so rather than return a point whose implicit gradient is undefined.
    net = MLP([1, 40, 40, 1], "relu")
    rng = np.random.default_rng(0)
    phi = net.init(rng)
    task = Sine(10, 10).sample(rng, 1)[0]
    with pytest.raises(ConvergenceError, match="kink"):
        imaml_adapt(net, phi, task.x_support, task.y_support, 1.0)


@pytest.mark.fast
def test_cg_uses_hvps_and_never_the_hessian(monkeypatch):
    net, phi, task = _problem("mse")

    def no_hessian(*args, **kwargs):
        raise AssertionError("iMAML formed the explicit Hessian")

    monkeypatch.setattr(MLP, "hessian", no_hessian)
    assert np.all(np.isfinite(imaml_grad(net, phi, task, 2.0)))


@pytest.mark.fast
def test_batch_is_the_mean_over_tasks_and_inputs_are_not_mutated():
    net, phi, _ = _sine_problem()
    tasks = Sine(10, 10).sample(np.random.default_rng(5), 3)
    batch = TaskBatch.stack(tasks)
    for a in (phi, *batch):
        a.flags.writeable = False
    value, g = imaml_batch(net, phi, batch, 1.0, "mse", 1e-8)
    per_task = [imaml_value_and_grad(net, phi, t, 1.0, "mse", 1e-8) for t in tasks]
    assert value == pytest.approx(np.mean([r[0] for r in per_task]), rel=1e-14)
    np.testing.assert_allclose(g, np.mean([r[1] for r in per_task], axis=0), rtol=1e-14, atol=1e-16)
    assert check_batch(batch) == 3


# ---------------------------------------------------------------- arguments
@pytest.mark.fast
@pytest.mark.parametrize("lam", [0.0, -1.0, np.nan, np.inf])
def test_bad_lam_is_refused(lam):
    net, phi, task = _problem("mse")
    for call in (
        lambda: imaml_adapt(net, phi, task.x_support, task.y_support, lam),
        lambda: imaml_grad(net, phi, task, lam),
        lambda: imaml_batch(net, phi, TaskBatch.stack([task]), lam),
    ):
        with pytest.raises(ValueError, match=r"lam must be a finite number > 0; got"):
            call()
    with pytest.raises(TypeError, match="lam"):
        imaml_grad(net, phi, task, "1.0")


@pytest.mark.fast
@pytest.mark.parametrize("tol", [0.0, -1e-8, 1.0, np.nan])
def test_bad_tol_is_refused(tol):
    net, phi, task = _problem("mse")
    with pytest.raises(ValueError, match=r"tol must be a finite number in \(0, 1\); got"):
        imaml_grad(net, phi, task, 1.0, tol=tol)
    with pytest.raises(TypeError, match="tol"):
        imaml_grad(net, phi, task, 1.0, tol=True)


@pytest.mark.fast
def test_bad_task_and_batch_arguments():
    net, phi, task = _problem("mse")
    with pytest.raises(TypeError, match="task"):
        imaml_grad(net, phi, (task.x_support, task.y_support), 1.0)
    with pytest.raises(ValueError, match="x_query"):
        imaml_grad(net, phi, task._replace(x_query=np.zeros((10, 5))), 1.0)
    with pytest.raises(ValueError, match="phi"):
        imaml_grad(net, phi[:-1], task, 1.0)
    with pytest.raises(TypeError, match="batch"):
        imaml_batch(net, phi, [task], 1.0)
