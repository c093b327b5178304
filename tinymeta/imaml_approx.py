"""iMAML's practical variant: k inner gradient steps and n conjugate-gradient iterations. APPROXIMATE.

The exact iMAML gradient (:mod:`tinymeta.imaml`) solves the proximal inner problem of eq. (5.1)
to a tolerance, then the linear system of eq. (5.3) to a tolerance. The paper's experiments
(Rajeswaran et al. 2019, Sec. 4, Table 2: "iMAML, GD") instead fix both amounts of work:

1. the inner problem by k steps of gradient descent on G(u) = L_A(u) + (lam/2) ||u - phi||^2
   from u_0 = phi (eq. (5.5))::

       u_{s+1} = u_s - alpha (grad L_A(u_s) + lam (u_s - phi)),      phi_k = u_k

2. the meta-gradient g = (I + H_A(phi_k)/lam)^{-1} grad L_B(phi_k) by at most n iterations of
   ``scipy.sparse.linalg.cg`` started from g = 0, stopping early only once the relative residual is
   below :data:`CG_RTOL` (the system solved to round-off: further iterations only amplify rounding).

Neither step is exact. phi_k is not the minimiser phi*, so the implicit-function identity
behind eq. (5.4) holds only approximately, and n CG iterations leave a residual. The result is a
direction, not the gradient of F(phi) = L_B(phi_k(phi)). In exchange the cost is fixed:
k + 1 support gradients (the last one, at phi_k, supplies the buffers the HVPs reuse), one
query gradient and n HVPs per task, whatever the landscape. It also runs on ReLU networks,
where the exact inner solve stalls on a kink (:class:`tinymeta.ConvergenceError`). The paper
uses 16 inner steps, n = 5 and lam = 2 on 5-way Omniglot.

Stability: step 1 is gradient descent on G, whose Hessian is H_A + lam I; it is stable while
alpha (lambda_max(H_A) + lam) < 2 (eq. (8.2) with lambda shifted by lam). Step 2 needs I + H_A/lam
positive definite, lam > -lambda_min(H_A): on an indefinite system CG's iterates are erratic (the
residual can grow) and carry amplified rounding. Measured on the 1-40-40-1 ReLU sine net at its
initialisation: lambda_min(H_A) = -3.8, so lam = 2 is too small there.

References
----------
Rajeswaran, Finn, Kakade & Levine (2019), "Meta-Learning with Implicit Gradients", Sec. 3.1
(Algorithm 2, the approximate inner solution and the CG solve) and Sec. 4 (Table 2).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, cg

from . import validate
from .batch import check_batch
from .hessian_operator import hessian_operator
from .inner import DivergenceError
from .tasks import check_task

CG_RTOL = 1e-10
"""CG stops before its n iterations only once ||r|| < 1e-10 ||b||. Past convergence (I + H_A/lam has few
distinct eigenvalue clusters: the support Hessian's rank is small) the residual is rounding noise, and
further iterations divide noise by noise: measured on ReLU sine nets, 20 iterations without this stop
gave directions that two summation orders disagreed on by up to 100 %."""


def imaml_gd_trajectory(net, phi, x, y, lam, alpha, k, loss="mse"):
    r"""u_0 = phi, ..., u_k: k gradient steps on G(u) = L_A(u) + (lam/2) ||u - phi||^2. Eq. (5.5).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,), the centre of the proximal term and the start
    x, y : the support set, shapes as in :meth:`tinymeta.mlp.MLP.loss_and_grad`
    lam : float > 0, strength of the proximal term
    alpha : float > 0, step size
    k : int >= 0, steps

    Returns
    -------
    ndarray, shape (k + 1, P): row s is u_s (row 0 a copy of ``phi``).

    Raises
    ------
    DivergenceError
        if a support loss or an iterate is not finite (alpha (lambda_max + lam) >= 2 makes the steps grow).

    Math
    ----
    u_{s+1} = u_s - \alpha \big(\nabla L_A(u_s) + \lambda (u_s - \varphi)\big)
    (eq. :eq:`eq-imaml-gd`)
    """
    phi = net.check_phi(phi)
    x, y = net.check_data(x, y, loss, names=("x", "y"))
    lam, alpha, k = validate.positive("lam", lam), validate.positive("alpha", alpha), validate.count("k", k)
    traj = np.empty((k + 1, phi.size))
    traj[0] = phi
    for s in range(k):
        value, g = net.loss_and_grad(traj[s], x, y, loss)
        traj[s + 1] = traj[s] - alpha * (g + lam * (traj[s] - phi))
        if not (np.isfinite(value) and np.all(np.isfinite(traj[s + 1]))):
            raise DivergenceError(
                f"iMAML inner step {s}: the support loss or the parameters are not finite ({value}); "
                f"alpha={alpha} is too large for lam={lam} (stable while alpha (lambda_max + lam) < 2)"
            )
    return traj


def imaml_cg_fixed(net, phi_k, x, y, lam, v, iterations, loss="mse"):
    r"""At most n iterations of CG on (I + H_A(phi_k)/lam) g = v from g = 0 (:data:`CG_RTOL`). Eq. (5.3).

    Parameters
    ----------
    phi_k : ndarray, shape (P,), where the support Hessian H_A is taken
    x, y : the support set
    lam : float > 0
    v : ndarray, shape (P,), the right-hand side (the query gradient at phi_k)
    iterations : int >= 1, CG iterations (one HVP each)

    Returns
    -------
    ndarray, shape (P,): CG's n-th iterate, or an earlier one with relative residual below CG_RTOL
    (0 if v = 0). In general not a solution to any tolerance.
    """
    lam = validate.positive("lam", lam)
    iterations = validate.count("iterations", iterations, minimum=1)
    v = net.check_phi(v, "v")
    H = hessian_operator(net, phi_k, x, y, loss)
    A = LinearOperator(H.shape, matvec=lambda p: p + H.matvec(p) / lam, dtype=np.float64)
    g, _ = cg(A, v, rtol=CG_RTOL, atol=0.0, maxiter=iterations)  # info > 0: stopped after n, as asked
    return g


def imaml_approx_value_and_grad(net, phi, task, lam, alpha, k, cg_iterations, loss="mse"):
    r"""``(L_B(phi_k), g)``: the practical iMAML direction of one task (module docstring). APPROXIMATE.

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    task : Task
    lam : float > 0, proximal strength
    alpha : float > 0, inner step size on the proximal objective
    k : int >= 0, inner steps
    cg_iterations : int >= 1, CG iterations for the meta-gradient
    loss : {"mse", "cross_entropy"}

    Returns
    -------
    (float, ndarray of shape (P,))

    Math
    ----
    g \approx \Big(I + \frac{1}{\lambda} H_A(\varphi_k)\Big)^{-1} \nabla L_B(\varphi_k)
    \quad\text{(n CG iterations; } \varphi_k \text{ after k steps of eq. :eq:`eq-imaml-gd`)}
    """
    task = check_task(net, task, loss)
    xs, ys = task.x_support, task.y_support
    phi_k = imaml_gd_trajectory(net, phi, xs, ys, lam, alpha, k, loss)[-1]
    value, g_query = net.loss_and_grad(phi_k, task.x_query, task.y_query, loss)
    if not (np.isfinite(value) and np.all(np.isfinite(g_query))):
        raise DivergenceError(f"the query loss after {k} iMAML inner step(s) is not finite ({value})")
    g = imaml_cg_fixed(net, phi_k, xs, ys, lam, g_query, cg_iterations, loss)
    if not np.all(np.isfinite(g)):
        raise DivergenceError(f"the iMAML CG iterations overflowed (lam={lam}, {cg_iterations} iterations)")
    return value, g


def imaml_approx_batch(net, phi, batch, lam, alpha, k, cg_iterations, loss="mse"):
    """Mean over the B tasks of :func:`imaml_approx_value_and_grad`. Returns ``(float, (P,) array)``.

    Checks, in order: the batch, each task's support and query sets, phi, lam, alpha, k, cg_iterations.
    """
    B = check_batch(batch)
    for i in range(B):
        check_task(net, batch.task(i), loss)
    phi = net.check_phi(phi)
    lam, alpha = validate.positive("lam", lam), validate.positive("alpha", alpha)
    k, n = validate.count("k", k), validate.count("cg_iterations", cg_iterations, minimum=1)
    results = [imaml_approx_value_and_grad(net, phi, batch.task(i), lam, alpha, k, n, loss) for i in range(B)]
    return float(np.mean([r[0] for r in results])), np.mean([r[1] for r in results], axis=0)
