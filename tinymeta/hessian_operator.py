"""The loss Hessian as a matrix-free SciPy ``LinearOperator``, for the iterative solvers on it.

iMAML solves a linear system with I + H / lam (conjugate gradients) and the spectrum
diagnostics ask for the extreme eigenvalues of H (Lanczos). Both only ever multiply by
H, so both take this operator: each ``matvec`` is one hand-derived Hessian-vector product
(:meth:`tinymeta.mlp.MLP.hvp`, eq. (2.3)), about the cost of two gradients, and the (P, P)
matrix is never formed.

An iterative solver that stops before its tolerance raises :class:`ConvergenceError`,
never returns its last iterate silently.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.sparse.linalg import LinearOperator


class ConvergenceError(ArithmeticError):
    """An iterative solver (inner minimisation, CG, Lanczos) stopped before reaching its tolerance."""


def check_tol(tol, name="tol") -> float:
    """A tolerance: a finite real number with 0 < tol < 1."""
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise TypeError(f"{name} must be a real number in (0, 1); got {type(tol).__name__} {tol!r}")
    if not (np.isfinite(tol) and 0.0 < tol < 1.0):
        raise ValueError(f"{name} must be a finite number in (0, 1); got {tol!r}")
    return float(tol)


def hessian_operator(net, phi, x, y, loss="mse") -> LinearOperator:
    """H = d^2 L / d phi^2 on the batch ``(x, y)`` at ``phi``, as a symmetric (P, P) LinearOperator.

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    x, y : a batch, shapes as in :meth:`tinymeta.mlp.MLP.loss_and_grad`

    Returns
    -------
    scipy.sparse.linalg.LinearOperator, shape (P, P), dtype float64, with
    ``matvec(v) = net.hvp(phi, x, y, v, loss)`` (eq. (2.3)); ``rmatvec`` is the same map (H is symmetric).
    """
    phi = net.check_phi(phi)
    x, y = net.check_data(x, y, loss, names=("x", "y"))
    phi = phi.copy()  # the operator keeps its own phi: a later change to the caller's array cannot leak in

    def matvec(v):
        return net.hvp(phi, x, y, np.ravel(v), loss)

    return LinearOperator((phi.size, phi.size), matvec=matvec, rmatvec=matvec, dtype=np.float64)
