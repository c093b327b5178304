"""Meta-SGD: a learned step size per parameter, and its exact gradient through k inner steps.

Inner update of one task (eq. (6.1)), ``alphas`` a vector of size P, ``*`` elementwise::

    phi_0 = phi,   phi_{i+1} = phi_i - alphas * g_i,   g_i = grad L_A(phi_i),   F(phi, alphas) = L_B(phi_k)

Backward, right to left (eqs. (6.2), (6.3)). The Jacobian of one step with respect to
phi_i is I - diag(alphas) H_i, whose transpose is I - H_i diag(alphas), and its derivative
with respect to alphas is -diag(g_i). With v_i = dF / d phi_i::

    v_k = grad L_B(phi_k)
    for i = k-1, ..., 0:   dF/dalphas += -g_i * v_{i+1},    v_i = v_{i+1} - H_i (alphas * v_{i+1})
    dF/dphi = v_0

k gradients, one query gradient and k HVPs (each at the stored phi_i): the cost of MAML,
plus k elementwise products for dF/dalphas. No Hessian is formed. With alphas = alpha * 1
this is exactly MAML's eq. (3.3), and dF/dalphas sums to dF/dalpha.

The alphas may have any sign: Meta-SGD learns "both the update direction and the learning
rate" (Li et al. 2017, Sec. 3.1), so a negative entry (ascent along that coordinate) is legitimate.

References
----------
Li, Zhou, Chen & Li (2017), "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning", Sec. 3,
eq. (2) (one inner step; k steps here).
"""

from __future__ import annotations

import numpy as np

from . import validate
from .batch import check_batch
from .inner import DivergenceError
from .tasks import check_task


def check_alphas(net, alphas) -> np.ndarray:
    """Per-parameter step sizes: a finite float array of shape (P,), any sign (see the module docstring)."""
    return validate.float_array("alphas", alphas, 1, (net.num_params,))


def metasgd_trajectory(net, phi, alphas, x, y, k, loss="mse"):
    r"""The iterates phi_0 .. phi_k of eq. (6.1) and the support gradients g_0 .. g_{k-1} used.

    Parameters
    ----------
    net : MLP
    phi, alphas : ndarray, shape (P,)
    x, y : the support set, shapes as in :meth:`tinymeta.mlp.MLP.loss_and_grad`
    k : int >= 0

    Returns
    -------
    (ndarray of shape (k + 1, P), ndarray of shape (k, P)): row i of the first is phi_i
    (row 0 a copy of ``phi``), row i of the second is g_i = grad L_A(phi_i).

    Math
    ----
    \varphi_0 = \varphi, \qquad \varphi_{i+1} = \varphi_i - \boldsymbol\alpha \odot g_i,
    \qquad g_i = \nabla L_A(\varphi_i)
    (eq. :eq:`eq-metasgd-inner`)
    """
    phi, alphas = net.check_phi(phi), check_alphas(net, alphas)
    x, y = net.check_data(x, y, loss, names=("x", "y"))
    k = validate.count("k", k)
    traj, grads = np.empty((k + 1, phi.size)), np.empty((k, phi.size))
    traj[0] = phi
    for i in range(k):
        value, grads[i] = net.loss_and_grad(traj[i], x, y, loss)
        traj[i + 1] = traj[i] - alphas * grads[i]
        if not (np.isfinite(value) and np.all(np.isfinite(grads[i])) and np.all(np.isfinite(traj[i + 1]))):
            raise DivergenceError(
                f"Meta-SGD inner step {i}: the support loss or the parameters are not finite ({value}); "
                f"the step sizes alphas (largest |alpha| {np.max(np.abs(alphas)):.3g}) are too large"
            )
    return traj, grads


def metasgd_adapt(net, phi, alphas, x, y, k, loss="mse"):
    """phi_k after k Meta-SGD steps on (x, y), eq. (6.1). Returns ndarray, shape (P,)."""
    return metasgd_trajectory(net, phi, alphas, x, y, k, loss)[0][-1]


def metasgd_value_and_grad(net, phi, alphas, task, k, loss="mse"):
    r"""``(F, dF/dphi, dF/dalphas)`` for F(phi, alphas) = L_B(phi_k), exact, eqs. (6.1)-(6.3).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    alphas : ndarray, shape (P,), per-parameter inner step sizes (any sign)
    task : Task
    k : int >= 0, inner steps on the support set
    loss : {"mse", "cross_entropy"}

    Returns
    -------
    (float, ndarray of shape (P,), ndarray of shape (P,))
        For k = 0, F = L_B(phi), dF/dphi = grad L_B(phi) and dF/dalphas = 0.

    Math
    ----
    v_k = \nabla L_B(\varphi_k), \qquad v_i = v_{i+1} - H_i (\boldsymbol\alpha \odot v_{i+1}), \qquad
    \frac{\partial F}{\partial \varphi} = v_0
    (eq. :eq:`eq-metasgd-grad`)

    \frac{\partial F}{\partial \boldsymbol\alpha} = -\sum_{i=0}^{k-1} g_i \odot v_{i+1}
    (eq. :eq:`eq-metasgd-alphas`)
    """
    task = check_task(net, task, loss)
    xs, ys = task.x_support, task.y_support
    traj, grads = metasgd_trajectory(net, phi, alphas, xs, ys, k, loss)
    alphas = check_alphas(net, alphas)
    value, v = net.loss_and_grad(traj[-1], task.x_query, task.y_query, loss)
    if not (np.isfinite(value) and np.all(np.isfinite(v))):
        raise DivergenceError(f"the query loss after {k} Meta-SGD step(s) is not finite ({value})")
    d_alphas = np.zeros_like(v)
    for i in range(k - 1, -1, -1):  # right to left; v holds v_{i+1} = dF/dphi_{i+1}
        d_alphas -= grads[i] * v  # eq. (6.3)
        v = v - net.hvp(traj[i], xs, ys, alphas * v, loss)  # eq. (6.2): v_i = (I - H_i diag(alphas)) v_{i+1}
        if not np.all(np.isfinite(v)):
            raise DivergenceError(f"the Meta-SGD Jacobian product overflowed at inner step {i}")
    return value, v, d_alphas


def metasgd_batch(net, phi, alphas, batch, k, loss="mse"):
    """Mean over the B tasks of (F_i, dF_i/dphi, dF_i/dalphas), eqs. (6.1)-(6.3).

    Checks, in order: the batch, each task's support and query sets, phi, alphas, k.

    Returns
    -------
    (float, ndarray of shape (P,), ndarray of shape (P,))
    """
    B = check_batch(batch)
    for i in range(B):
        check_task(net, batch.task(i), loss)
    phi, alphas, k = net.check_phi(phi), check_alphas(net, alphas), validate.count("k", k)
    results = [metasgd_value_and_grad(net, phi, alphas, batch.task(i), k, loss) for i in range(B)]
    return (float(np.mean([r[0] for r in results])), np.mean([r[1] for r in results], axis=0),
            np.mean([r[2] for r in results], axis=0))  # fmt: skip
