"""Implicit MAML (iMAML): adapt by a proximal minimisation, differentiate by the implicit function theorem.

Inner problem of one task (eq. (5.1)), with lam > 0::

    phi*(phi) = argmin_u  G(u),    G(u) = L_A(u) + (lam / 2) ||u - phi||^2

phi* is a stationary point: grad L_A(phi*) + lam (phi* - phi) = 0. Differentiating that
identity in phi gives (eqs. (5.2), (5.3)) d phi* / d phi = (I + H_A(phi*) / lam)^{-1} (symmetric), so the
gradient of F(phi) = L_B(phi*(phi)) is (eq. (5.4))::

    g_iMAML = (I + H_A(phi*) / lam)^{-1} grad L_B(phi*),    H_A(phi*) = hess L_A(phi*)

solved by conjugate gradients on a LinearOperator of Hessian-vector products: only phi*
enters, not the path the solver took to it, so memory is O(P) whatever the number of
inner iterations.

Smoothness matters: the identity needs grad L_A to be differentiable at phi*. With ReLU
the minimiser usually sits on a kink (some hidden pre-activation exactly 0) where no
gradient vanishes; the inner solve then stalls and :class:`ConvergenceError` says so. Use
a smooth activation (tanh, softplus, sigmoid) for iMAML.

References
----------
Rajeswaran, Finn, Kakade & Levine (2019), "Meta-Learning with Implicit Gradients", Sec. 3
(eq. (4) the proximal inner problem, Lemma 1 the implicit Jacobian, Sec. 3.1 the CG solve).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.sparse.linalg import LinearOperator, cg

from . import validate
from .batch import check_batch
from .hessian_operator import ConvergenceError, check_tol, hessian_operator
from .inner import DivergenceError
from .tasks import check_task

MAX_TRUST_REGION_ITERATIONS = 1000
"""Iterations of the globalised Newton phase (scipy's trust-ncg) of :func:`imaml_adapt`."""

MAX_POLISH_STEPS = 20
"""Newton steps on grad G = 0 after the trust-region phase; each one squares the error near phi*."""

MAX_CG_RESTARTS = 3
"""CG passes of :func:`implicit_jacobian_solve`, each restarted from the last solution."""


def _check_lam(lam) -> float:
    return validate.positive("lam", lam)


def _proximal(net, phi, x, y, lam, loss):
    """G(u) and grad G(u), and u -> (H_A(u) + lam I) p: the inner objective, eq. (5.1)."""

    def value_and_grad(u):
        value, g = net.loss_and_grad(u, x, y, loss)
        d = u - phi
        return value + 0.5 * lam * float(d @ d), g + lam * d

    def hessp(u, p):
        return net.hvp(u, x, y, p, loss) + lam * p

    return value_and_grad, hessp


def imaml_adapt(net, phi, x, y, lam, loss="mse", tol=1e-8):
    r"""phi* = argmin_u L_A(u) + (lam/2) ||u - phi||^2, to ||grad L_A(u) + lam (u - phi)|| <= tol. Eq. (5.1).

    Solver, in two phases, both with the hand-derived gradient and HVP:

    1. ``scipy.optimize.minimize(method="trust-ncg")`` from u = phi: Newton steps whose
       linear systems are solved by Steihaug's truncated CG inside a trust region, so that
       an indefinite Hessian far from phi* (a non-convex L_A) is handled.
    2. Newton steps on the stationarity equation grad G(u) = 0, each system
       (H_A(u) + lam I) s = -grad G(u) solved by ``scipy.sparse.linalg.cg``, until the
       norm of the proximal gradient is at most ``tol``. A trust region judges a step by the
       decrease of G, which near phi* falls below the round-off of G itself (about
       1e-16 |G|): phase 1 then stops with the gradient norm around 1e-9. Phase 2 judges by
       the gradient norm, which stays accurate, and converges quadratically.

    Cost: each Newton iteration is one gradient plus as many HVPs (about two gradients
    each) as its CG takes. Measured on the 1-40-40-1 tanh sine net at its initialisation
    (K = 10, tol = 1e-8, 25 tasks): median 24 gradients and 150 HVPs per task (at most 46 and
    464) with lam = 1; 10 gradients and 26 HVPs with lam = 10. A smaller lam lets phi* move
    further from phi, through a less convex landscape. Memory O(P).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
        The meta-parameters: the centre of the proximal term and the starting point.
    x, y : the support set, shapes as in :meth:`tinymeta.mlp.MLP.loss_and_grad`
    lam : float > 0
        Strength of the proximal term; large lam keeps phi* close to phi.
    loss : {"mse", "cross_entropy"}
    tol : float in (0, 1)
        Bound on the Euclidean norm of the proximal gradient at the returned point. Then
        ||phi* - phi*_exact|| <= tol / mu, with mu = lam + lambda_min(H_A) > 0 near phi*.

    Returns
    -------
    ndarray, shape (P,): phi*. ``phi`` is not modified.

    Raises
    ------
    ConvergenceError
        if the proximal gradient norm cannot be brought to ``tol``: typically a ReLU network,
        whose minimiser lies on a kink, or a ``tol`` below round-off, which is at least about
        eps lam ||phi|| (eps = 2.2e-16) from the term lam (u - phi) alone.
    DivergenceError
        if the support loss becomes non-finite.

    Math
    ----
    \varphi^\star = \mathop{\mathrm{arg\,min}}_u\ L_A(u) + \frac{\lambda}{2} \lVert u - \varphi \rVert^2,
    \qquad \lVert \nabla L_A(\varphi^\star) + \lambda (\varphi^\star - \varphi) \rVert \le \mathrm{tol}
    (eq. :eq:`eq-imaml-inner`)
    """
    phi = net.check_phi(phi)
    x, y = net.check_data(x, y, loss, names=("x", "y"))
    lam, tol = _check_lam(lam), check_tol(tol)
    value_and_grad, hessp = _proximal(net, phi, x, y, lam, loss)
    if not np.isfinite(value_and_grad(phi)[0]):
        raise DivergenceError("imaml_adapt: the support loss at phi is not finite")
    result = minimize(value_and_grad, phi, jac=True, hessp=hessp, method="trust-ncg",
                      options={"gtol": tol, "maxiter": MAX_TRUST_REGION_ITERATIONS})  # fmt: skip
    u = result.x
    if not np.all(np.isfinite(u)):
        raise DivergenceError(f"imaml_adapt: the inner solver produced non-finite parameters (lam={lam:g})")
    grad = value_and_grad(u)[1]
    gnorm = np.linalg.norm(grad)
    for _ in range(MAX_POLISH_STEPS):
        if gnorm <= tol:
            return u
        newton = LinearOperator((u.size, u.size), matvec=lambda p, u=u: hessp(u, p), dtype=np.float64)
        step, info = cg(newton, -grad, rtol=1e-6, atol=0.0)
        trial = u + step
        if info != 0 or not np.all(np.isfinite(trial)):
            break
        trial_grad = value_and_grad(trial)[1]
        if not np.linalg.norm(trial_grad) < gnorm:  # no progress: round-off reached, a kink, or a saddle
            break
        u, grad, gnorm = trial, trial_grad, np.linalg.norm(trial_grad)
    if gnorm <= tol:
        return u
    floor = np.finfo(np.float64).eps * lam * np.linalg.norm(phi)  # rounding of lam * (u - phi) alone
    raise ConvergenceError(
        f"imaml_adapt: the proximal gradient norm ||grad L_A(u) + lam (u - phi)|| stalled at {gnorm:.3e}, "
        f"above tol={tol:g} (lam={lam:g}, {result.nit} trust-region iterations: {result.message}). "
        f"With a ReLU network the minimiser usually lies on a kink, where no gradient vanishes: use a "
        f"smooth activation (tanh, softplus). Otherwise tol may be below round-off (about {floor:.1e} "
        f"for this lam and phi, from lam * (u - phi) alone): try a larger tol."
    )


def implicit_jacobian_solve(net, phi_star, x, y, lam, v, loss="mse", tol=1e-8):
    r"""(I + H_A(phi*) / lam)^{-1} v by ``scipy.sparse.linalg.cg`` on HVPs. Eq. (5.3).

    Parameters
    ----------
    phi_star : ndarray, shape (P,), the point H_A is evaluated at
    x, y : the support set
    v : ndarray, shape (P,)
    tol : float in (0, 1), relative residual: ||v - (I + H/lam) g|| <= tol ||v||

    Returns
    -------
    ndarray, shape (P,). Cost: one HVP per CG iteration, at most about sqrt(cond) log(2/tol) / 2
    iterations with cond = (lam + lambda_max) / (lam + lambda_min) (measured on the 1-40-40-1 tanh
    sine net, tol = 1e-8: median 55 HVPs with lam = 1, 13 with lam = 10).

    Raises
    ------
    ConvergenceError
        if CG stops before the tolerance (I + H/lam not positive definite, i.e. phi* is not
        a strict local minimum of the inner problem, or too few iterations).

    Math
    ----
    \Big(I + \frac{1}{\lambda} H_A(\varphi^\star)\Big)\, g = v, \quad \text{solved to} \quad
    \lVert v - g - H_A(\varphi^\star)\, g / \lambda \rVert \le \mathrm{tol}\, \lVert v \rVert
    (eq. :eq:`eq-imaml-jacobian`)
    """
    lam, tol = _check_lam(lam), check_tol(tol)
    v = net.check_phi(v, "v")
    H = hessian_operator(net, phi_star, x, y, loss)
    A = LinearOperator(H.shape, matvec=lambda p: p + H.matvec(p) / lam, dtype=np.float64)
    v_norm = np.linalg.norm(v)
    g, info = np.zeros_like(v), 0
    for _ in range(MAX_CG_RESTARTS):
        # cg stops on its recursively updated residual; the true one is checked, and CG restarted from g
        g, info = cg(A, v, x0=g, rtol=tol, atol=0.0, maxiter=10 * v.size)
        residual = np.linalg.norm(v - A.matvec(g))
        if info == 0 and residual <= tol * v_norm:
            return g
    raise ConvergenceError(
        f"implicit_jacobian_solve: CG on (I + H_A(phi*)/lam) g = grad L_B stopped at relative residual "
        f"{residual / max(v_norm, 1e-300):.3e} > tol={tol:g} (cg info {info}, lam={lam:g}); "
        "I + H/lam must be positive definite (phi* a strict local minimum of the inner problem), "
        "and tol above round-off"
    )


def imaml_value_and_grad(net, phi, task, lam, loss="mse", tol=1e-8):
    r"""``(F(phi), g_iMAML)`` with F(phi) = L_B(phi*(phi)) and g = (I + H_A(phi*)/lam)^{-1} grad L_B(phi*).

    Eq. (5.4). ``tol`` bounds both the inner problem (norm of the proximal gradient, see
    :func:`imaml_adapt`) and the CG solve (relative residual).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    task : Task
    lam : float > 0
    loss : {"mse", "cross_entropy"}
    tol : float in (0, 1)

    Returns
    -------
    (float, ndarray of shape (P,))

    Math
    ----
    F(\varphi) = L_B(\varphi^\star), \qquad
    g_{\mathrm{iMAML}} = \Big(I + \frac{1}{\lambda} H_A(\varphi^\star)\Big)^{-1} \nabla L_B(\varphi^\star)
    (eq. :eq:`eq-imaml-grad`)
    """
    task = check_task(net, task, loss)
    phi_star = imaml_adapt(net, phi, task.x_support, task.y_support, lam, loss, tol)
    value, g_query = net.loss_and_grad(phi_star, task.x_query, task.y_query, loss)
    if not (np.isfinite(value) and np.all(np.isfinite(g_query))):
        raise DivergenceError(f"the query loss at phi* is not finite ({value}) (lam={lam})")
    return value, implicit_jacobian_solve(
        net, phi_star, task.x_support, task.y_support, lam, g_query, loss, tol
    )


def imaml_grad(net, phi, task, lam, loss="mse", tol=1e-8):
    """Exact iMAML meta-gradient g = (I + H_A(phi*)/lam)^{-1} grad L_B(phi*), eq. (5.4).

    Returns
    -------
    ndarray, shape (P,). See :func:`imaml_value_and_grad`.
    """
    return imaml_value_and_grad(net, phi, task, lam, loss, tol)[1]


def imaml_batch(net, phi, batch, lam, loss="mse", tol=1e-8):
    """Mean over the B tasks of (F_i(phi), g_iMAML,i), eq. (5.4). Returns ``(float, (P,) array)``.

    Checks, in order: the batch, each task's support and query sets, phi, lam, tol.
    """
    B = check_batch(batch)
    for i in range(B):
        check_task(net, batch.task(i), loss)
    phi, lam, tol = net.check_phi(phi), _check_lam(lam), check_tol(tol)
    results = [imaml_value_and_grad(net, phi, batch.task(i), lam, loss, tol) for i in range(B)]
    return float(np.mean([r[0] for r in results])), np.mean([r[1] for r in results], axis=0)
