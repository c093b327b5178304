"""The extreme eigenvalues of the loss Hessian, and what they say about the inner step size.

One gradient step phi' = phi - alpha grad L(phi) on a quadratic L with Hessian H moves the
error e = phi - phi_min to (I - alpha H) e: along an eigenvector of H with eigenvalue lambda
the error is multiplied by 1 - alpha lambda. So (eq. (8.2))::

    |1 - alpha lambda_max| < 1   <=>   0 < alpha < 2 / lambda_max      (for lambda_max > 0)

and above that boundary the top eigendirection is multiplied by |1 - alpha lambda_max| > 1 at
every step: gradient descent oscillates with a growing amplitude, the loss grows geometrically,
and a few dozen steps later it overflows ("my inner loop produced NaNs"). Near a minimum of a
network's loss the same holds to first order. A negative eigenvalue lambda_min < 0 gives a
factor 1 + alpha |lambda_min| > 1 for every alpha: slow, monotone escape along negative
curvature, not the oscillating blow-up. The same factors (I - alpha H_i) make up MAML's
meta-gradient (eq. (3.3)), whose size they stretch or shrink direction by direction.

The eigenvalues come from Lanczos (``scipy.sparse.linalg.eigsh``) on the matrix-free Hessian
(:func:`tinymeta.hessian_operator.hessian_operator`): a few dozen HVPs, never the (P, P) matrix.
The start vector is drawn from a generator with a fixed seed, so repeated calls agree exactly.

References
----------
Nesterov (2004), "Introductory Lectures on Convex Optimization", Sec. 1.2.3 (gradient descent on
a quadratic); Cohen et al. (2021), "Gradient Descent on Neural Networks Typically Occurs at the
Edge of Stability" (the 2 / lambda_max boundary during training).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

from . import validate
from .hessian_operator import ConvergenceError, hessian_operator

V0_SEED = 0
"""Seed of the Lanczos start vector: the same network and data always give the same numbers."""


def _extreme_eigenvalue(net, phi, x, y, loss, which):
    H = hessian_operator(net, phi, x, y, loss)
    v0 = np.random.default_rng(V0_SEED).standard_normal(H.shape[0])
    try:
        return float(eigsh(H, k=1, which=which, v0=v0, tol=0.0, return_eigenvectors=False)[0])
    except ArpackNoConvergence as err:
        P = H.shape[0]
        raise ConvergenceError(
            f"Lanczos (eigsh, which={which!r}) did not converge for the ({P}, {P}) Hessian: {err}"
        ) from None


def lambda_max(net, phi, x, y, loss="mse") -> float:
    r"""Largest (algebraic) eigenvalue of H = hess L(phi) on the batch ``(x, y)``, by Lanczos.

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    x, y : a batch, shapes as in :meth:`tinymeta.mlp.MLP.loss_and_grad` (for the inner loop: the support set)
    loss : {"mse", "cross_entropy"}

    Returns
    -------
    float. Accurate to machine precision relative to ||H|| (``eigsh`` with tol=0); costs a few
    dozen HVPs. Requires P >= 2 (ARPACK needs more unknowns than wanted eigenvalues).

    Math
    ----
    \lambda_{\max} = \max_{\lVert u \rVert = 1} u^\top \nabla^2 L(\varphi)\, u
    """
    return _extreme_eigenvalue(net, phi, x, y, loss, "LA")


def lambda_min(net, phi, x, y, loss="mse") -> float:
    """Smallest (algebraic) eigenvalue of H = hess L(phi) on ``(x, y)``; negative away from a minimum."""
    return _extreme_eigenvalue(net, phi, x, y, loss, "SA")


class StepStability(NamedTuple):
    """What the Hessian's extreme eigenvalues say about one inner step of size ``alpha``, eq. (8.2).

    Attributes
    ----------
    alpha : float, the step size examined
    lambda_max, lambda_min : float, the extreme eigenvalues of H
    alpha_boundary : float, 2 / lambda_max (inf if lambda_max <= 0): the step is stable below it
    top_factor : float, 1 - alpha lambda_max, the factor of (I - alpha H) along the top eigenvector
    bottom_factor : float, 1 - alpha lambda_min, its factor along the bottom eigenvector
    norm : float, ||I - alpha H||_2 = max(|top_factor|, |bottom_factor|)
    stable : bool, alpha < alpha_boundary, i.e. top_factor > -1: no direction oscillates with a growing
        amplitude
    contracts : bool, norm < 1: (I - alpha H) shrinks every direction (needs lambda_min > 0 too)
    """

    alpha: float
    lambda_max: float
    lambda_min: float
    alpha_boundary: float
    top_factor: float
    bottom_factor: float
    norm: float
    stable: bool
    contracts: bool

    def __str__(self):
        verdict = "stable" if self.stable else "UNSTABLE (the top eigendirection grows every step)"
        contraction = "contracts" if self.contracts else "does not contract"
        return (f"alpha = {self.alpha:.4g}, lambda in [{self.lambda_min:.4g}, {self.lambda_max:.4g}], "
                f"boundary 2/lambda_max = {self.alpha_boundary:.4g}: {verdict}; "
                f"||I - alpha H|| = {self.norm:.4g} ({contraction})")  # fmt: skip


def step_stability(net, phi, x, y, alpha, loss="mse") -> StepStability:
    r"""Whether a gradient step of size ``alpha`` on L(phi) = loss on (x, y) is stable at phi, eq. (8.2).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    x, y : a batch (the support set)
    alpha : float > 0
    loss : {"mse", "cross_entropy"}

    Returns
    -------
    StepStability. The verdict is local: it is exact for a quadratic loss and holds to first
    order near phi; along a trajectory the Hessian, and so the boundary, moves.

    Math
    ----
    0 < \alpha < \frac{2}{\lambda_{\max}}, \qquad
    \lVert I - \alpha H \rVert_2 = \max\big(|1 - \alpha \lambda_{\max}|,\ |1 - \alpha \lambda_{\min}|\big)
    (eq. :eq:`eq-stability`)
    """
    alpha = validate.positive("alpha", alpha)
    lmax, lmin = lambda_max(net, phi, x, y, loss), lambda_min(net, phi, x, y, loss)
    top, bottom = 1.0 - alpha * lmax, 1.0 - alpha * lmin
    norm = max(abs(top), abs(bottom))
    boundary = 2.0 / lmax if lmax > 0 else np.inf
    return StepStability(
        alpha, lmax, lmin, boundary, top, bottom, norm, bool(alpha < boundary), bool(norm < 1.0)
    )
