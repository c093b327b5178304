"""The inner update U(phi): k steps of full-batch gradient descent on one data set.

    phi_0 = phi,   phi_{i+1} = phi_i - alpha * grad L(phi_i),   U^k(phi) = phi_k      (eq. (3.1))

Full batch: every step uses all of ``(x, y)``, as in the MAML paper's inner loop.
"""

from __future__ import annotations

import numpy as np

from . import validate


class DivergenceError(FloatingPointError):
    """Raised when an inner or outer loop produces a non-finite loss or parameter vector."""


def adapt_trajectory(net, phi, x, y, alpha, k, loss="mse"):
    """All iterates of the inner loop, phi_0 .. phi_k. Eq. (3.1).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    x, y : the data adapted on (support set), shapes as in ``MLP.loss_and_grad``
    alpha : float > 0, inner step size
    k : int >= 0, number of steps

    Returns
    -------
    ndarray, shape (k + 1, P): row i is phi_i. Row 0 is a copy of ``phi``.
    """
    phi = net.check_phi(phi)
    x, y = net.check_data(x, y, loss, names=("x", "y"))
    alpha = validate.positive("alpha", alpha)
    k = validate.count("k", k)
    traj = np.empty((k + 1, phi.size))
    traj[0] = phi
    for i in range(k):
        value, g = net.loss_and_grad(traj[i], x, y, loss)
        if not (np.isfinite(value) and np.all(np.isfinite(g))):
            raise DivergenceError(
                f"inner step {i}: the support loss is not finite ({value}); "
                f"alpha={alpha} is too large for this network/task, try a smaller alpha"
            )
        traj[i + 1] = traj[i] - alpha * g
        if not np.all(np.isfinite(traj[i + 1])):  # the last iterate is never fed back to the loss
            raise DivergenceError(
                f"inner step {i}: the parameters overflowed to a non-finite value; "
                f"alpha={alpha} is too large for this network/task, try a smaller alpha"
            )
    return traj


def adapt(net, phi, x, y, alpha, k, loss="mse"):
    """U^k(phi): the parameters after k full-batch gradient steps on (x, y). Eq. (3.1).

    Returns
    -------
    ndarray, shape (P,). ``phi`` itself is not modified.
    """
    return adapt_trajectory(net, phi, x, y, alpha, k, loss)[-1]
