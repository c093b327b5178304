"""Test-time inner loops of Meta-SGD, ANIL and iMAML, for :func:`tinymeta.evaluation.evaluate`.

Each function returns ``adapt(phi, task, steps) -> (len(steps), P) array``, the network's parameters
after each number of inner steps in ``steps`` on the task's support set, like
:func:`tinymeta.evaluation.sgd_adapter` (plain SGD, eq. (3.1)) does for MAML:

* :func:`metasgd_adapter`: phi_{s+1} = phi_s - alphas * grad L_A(phi_s), the learned step sizes (eq. (6.1));
* :func:`anil_adapter`: the head alone, w_{s+1} = w_s - alpha grad_w L_A(psi, w_s) (eq. (7.1));
* :func:`imaml_adapter`: gradient steps on the proximal objective,
  u_{s+1} = u_s - alpha (grad L_A(u_s) + lam (u_s - phi)) (eq. (5.5)), the inner loop of iMAML's
  practical variant; with enough steps u_s tends to the solution phi* of the inner problem (eq. (5.1));
* :func:`imaml_solve_adapter`: exact iMAML's inner loop, the solver itself: phi* (eq. (5.1)) for every
  number of steps >= 1. An initialisation trained with exact iMAML can be sharp enough that small
  gradient steps diverge on it while the solver converges (docs: beyond_maml_results).

The steps run one at a time, so that a task whose adaptation diverges keeps the steps before the
divergence; its rows from then on are NaN, which :func:`~tinymeta.evaluation.evaluate` scores as inf
and counts in ``diverged``.
"""

from __future__ import annotations

import numpy as np

from . import validate
from .anil import anil_trajectory
from .hessian_operator import ConvergenceError
from .imaml import imaml_adapt
from .inner import DivergenceError
from .metasgd import check_alphas, metasgd_trajectory


def stepwise_adapter(step):
    """``adapt(phi, task, steps)`` from ``step(phi, u, x, y) -> u_next``, one inner step from u (phi: start).

    Rows after a step that raises :class:`~tinymeta.DivergenceError` are NaN.
    """

    def adapt(phi, task, steps):
        traj = np.full((steps[-1] + 1, np.size(phi)), np.nan)
        traj[0] = phi
        for s in range(steps[-1]):
            try:
                traj[s + 1] = step(phi, traj[s], task.x_support, task.y_support)
            except DivergenceError:
                break
        return traj[list(steps)]

    return adapt


def metasgd_adapter(net, alphas, loss="mse"):
    """Meta-SGD's test-time inner loop: steps with the learned per-parameter sizes ``alphas``, shape (P,)."""
    alphas = check_alphas(net, alphas).copy()  # the adapter keeps its own copy
    return stepwise_adapter(lambda phi, u, x, y: metasgd_trajectory(net, u, alphas, x, y, 1, loss)[0][1])


def anil_adapter(net, alpha, loss="mse"):
    """ANIL's test-time inner loop: SGD steps of size ``alpha`` on the head (W_L, b_L) alone."""
    alpha = validate.positive("alpha", alpha)
    return stepwise_adapter(lambda phi, u, x, y: anil_trajectory(net, u, x, y, alpha, 1, loss)[1])


def imaml_adapter(net, lam, alpha, loss="mse"):
    """iMAML's test-time inner loop: gradient steps of size ``alpha`` on L_A(u) + (lam/2) ||u - phi||^2."""
    lam, alpha = validate.positive("lam", lam), validate.positive("alpha", alpha)

    def step(phi, u, x, y):
        # one step of eq. (5.5) from u (the arithmetic of imaml_approx.imaml_gd_trajectory), the
        # proximal term centred on the start phi, not on u
        value, g = net.loss_and_grad(u, x, y, loss)
        nxt = u - alpha * (g + lam * (u - phi))
        if not (np.isfinite(value) and np.all(np.isfinite(nxt))):
            raise DivergenceError(f"iMAML test-time step: not finite (alpha={alpha}, lam={lam})")
        return nxt

    return stepwise_adapter(step)


def imaml_solve_adapter(net, lam, tol=1e-8, loss="mse"):
    """Exact iMAML's test-time inner loop: phi* = argmin_u L_A(u) + (lam/2) ||u - phi||^2 to ``tol``
    (:func:`tinymeta.imaml.imaml_adapt`), the row of every number of steps >= 1 (row 0 is phi). A solve
    that does not converge gives NaN rows, scored inf and counted as diverged."""
    lam = validate.positive("lam", lam)

    def adapt(phi, task, steps):
        rows = np.full((len(steps), np.size(phi)), np.nan)
        try:
            star = imaml_adapt(net, phi, task.x_support, task.y_support, lam, loss, tol)
        except (ConvergenceError, DivergenceError):
            star = np.full(np.size(phi), np.nan)
        for i, s in enumerate(steps):
            rows[i] = phi if s == 0 else star
        return rows

    return adapt
