"""Exact MAML, first-order MAML, and the term first-order drops.

Meta-objective of one task (eq. (3.2)):  F(phi) = L_B(U^k_A(phi)), A the support set, B the query set.
By the chain rule, with phi_0 = phi, phi_{i+1} = phi_i - alpha grad L_A(phi_i) the inner iterates
and H_i = hess L_A(phi_i) (i = 0, ..., k-1),

    dU/dphi = (I - alpha H_{k-1}) ... (I - alpha H_0)   (each factor symmetric), so

    g_MAML   = (I - alpha H_0)(I - alpha H_1) ... (I - alpha H_{k-1}) grad L_B(phi_k)   (eq. (3.3))
    g_FOMAML = grad L_B(phi_k)                                                          (eq. (3.4))

g_MAML is computed right to left, v <- v - alpha H_i v for i = k-1, ..., 0, with the
hand-derived Hessian-vector product: k HVPs, no Hessian ever formed, and memory
O(k P) for the stored trajectory phi_0 .. phi_{k-1}.

How much first-order MAML drops is measured by the relative dropped term
rho = ||g_MAML - g_FOMAML|| / ||g_MAML|| (:func:`dropped_term`; docs: Notation).
"""

from __future__ import annotations

import numpy as np

from .inner import DivergenceError, adapt_trajectory
from .tasks import check_task


def _query_value_and_grad(net, phi_k, task, loss, alpha, k):
    """L_B(phi_k) and its gradient; a non-finite value is a divergence (too large an alpha), not bad input."""
    value, g = net.loss_and_grad(phi_k, task.x_query, task.y_query, loss)
    if not (np.isfinite(value) and np.all(np.isfinite(g))):
        raise DivergenceError(
            f"the query loss after {k} inner step(s) is not finite ({value}); "
            f"alpha={alpha} is too large for this network/task, try a smaller alpha"
        )
    return value, g


def meta_objective(net, phi, task, alpha, k, loss="mse"):
    """F(phi) = L_B(U^k_A(phi)), eq. (3.2): the function ``maml_grad`` differentiates."""
    task = check_task(net, task, loss)
    phi_k = adapt_trajectory(net, phi, task.x_support, task.y_support, alpha, k, loss)[-1]
    return net.loss(phi_k, task.x_query, task.y_query, loss)


def maml_value_and_grad(net, phi, task, alpha, k, loss="mse"):
    """``(F(phi), g_MAML)``: the meta-objective and its exact gradient, eq. (3.3).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    task : Task
    alpha : float > 0, inner step size
    k : int >= 0, inner steps on the support set

    Returns
    -------
    (float, ndarray of shape (P,))
    """
    task = check_task(net, task, loss)
    traj = adapt_trajectory(net, phi, task.x_support, task.y_support, alpha, k, loss)
    value, v = _query_value_and_grad(net, traj[-1], task, loss, alpha, k)
    for i in range(k - 1, -1, -1):  # right to left: v <- (I - alpha H_i) v
        v = v - alpha * net.hvp(traj[i], task.x_support, task.y_support, v, loss)
        if not np.all(np.isfinite(v)):
            raise DivergenceError(
                f"the MAML product (I - alpha H_{i}) ... overflowed at inner step {i}; "
                f"alpha={alpha} is too large for this network/task, try a smaller alpha"
            )
    return value, v


def maml_grad(net, phi, task, alpha, k, loss="mse"):
    """Exact MAML meta-gradient g = (I - alpha H_0) ... (I - alpha H_{k-1}) grad L_B(phi_k), eq. (3.3).

    Returns
    -------
    ndarray, shape (P,)

    References
    ----------
    Finn, Abbeel & Levine (2017), Sec. 2.2; the product form as in Nichol et al. (2018), Sec. 5.
    """
    return maml_value_and_grad(net, phi, task, alpha, k, loss)[1]


def fomaml_value_and_grad(net, phi, task, alpha, k, loss="mse"):
    """``(F(phi), g_FOMAML)`` with g_FOMAML = grad L_B(phi_k), eq. (3.4)."""
    task = check_task(net, task, loss)
    traj = adapt_trajectory(net, phi, task.x_support, task.y_support, alpha, k, loss)
    return _query_value_and_grad(net, traj[-1], task, loss, alpha, k)


def fomaml_grad(net, phi, task, alpha, k, loss="mse"):
    """First-order MAML: the query gradient at the adapted parameters, eq. (3.4).

    It *drops* the Jacobian of the inner update, i.e. treats
    (I - alpha H_0) ... (I - alpha H_{k-1}) as the identity: no Hessian enters.

    Returns
    -------
    ndarray, shape (P,)
    """
    return fomaml_value_and_grad(net, phi, task, alpha, k, loss)[1]


def dropped_term(net, phi, task, alpha, k, loss="mse"):
    """How much first-order MAML drops: ``(||g_MAML - g_FOMAML||, rho)``.

    rho = ||g_MAML - g_FOMAML|| / ||g_MAML|| is the relative dropped term (docs: Notation).
    Both are 0 for k = 0 and O(alpha) as alpha -> 0; rho can exceed 1.
    """
    g = maml_grad(net, phi, task, alpha, k, loss)
    diff = float(np.linalg.norm(g - fomaml_grad(net, phi, task, alpha, k, loss)))
    return diff, diff / max(float(np.linalg.norm(g)), 1e-300)
