"""ANIL (almost no inner loop): adapt only the last layer, differentiate with respect to all of phi.

Split phi = (psi, w): w = (W_L, b_L) the head, the (d_{L-1} + 1) d_L entries of the last layer
(:func:`head_slice`), psi everything else, the body. Inner update (eq. (7.1))::

    w_0 = w,   w_{i+1} = w_i - alpha grad_w L_A(psi, w_i),   F(phi) = L_B(psi, w_k)

psi is not updated, but it enters F twice: through the features of the query loss and
through every inner step of the head. With H_i = hess L_A(psi, w_i) in blocks
(H_pp, H_pw; H_wp, H_ww) (p for the body psi, w for the head), the exact gradient is (eq. (7.2))::

    v_k = grad_w L_B(psi, w_k),       g_psi = grad_psi L_B(psi, w_k)
    for i = k-1, ..., 0:   g_psi -= alpha H_pw,i v_{i+1},    v_i = v_{i+1} - alpha H_ww,i v_{i+1}
    g = (g_psi, v_0)

The two blocks come from one Hessian-vector product per step: the full-network HVP
(:meth:`tinymeta.mlp.MLP.hvp`) along the direction (0, v_{i+1}), zero in the body, is
H_i (0, v) = (H_pw v, H_ww v), exactly the mixed term and the head term. With m the 0/1 mask
of the head (:func:`head_mask`) the whole step is g <- g - alpha H_i (m * g): ANIL is Meta-SGD
(:mod:`tinymeta.metasgd`) with alphas = alpha m, and the tests hold the two equal. This reuses the
R-operator already derived and checked instead of a second, specialised backward pass. The
price: the R-forward pass through the body multiplies zeros, and the body is back-propagated
once per inner step. A hand-specialised mixed derivative could back-propagate through the
body once for all k steps (the derivations page shows how), which needs a public
vector-Jacobian product of the body.

Cost: k + 1 gradients and k HVPs, as for MAML; memory O(k P) for the stored iterates.

References
----------
Raghu, Raghu, Bengio & Vinyals (2020), "Rapid Learning or Feature Reuse? Towards Understanding
the Effectiveness of MAML", Sec. 4 (ANIL: inner loop on the head only, outer loop on all parameters).
"""

from __future__ import annotations

import numpy as np

from . import validate
from .batch import check_batch
from .inner import DivergenceError
from .params import num_params
from .tasks import check_task


def head_slice(net) -> slice:
    """Where the head w = (W_L, b_L) sits in phi: the last (d_{L-1} + 1) d_L entries of the (W_l, b_l) part.

    The (W_l, b_l) of all layers come first in phi, in order (:mod:`tinymeta.params`); anything a
    network stores after them (batch-norm shifts of the hidden layers) belongs to the body.
    """
    end = num_params(net.sizes)
    return slice(end - (net.sizes[-2] + 1) * net.sizes[-1], end)


def head_mask(net) -> np.ndarray:
    """m, shape (P,): 1.0 on the head's entries of phi, 0.0 on the body's."""
    mask = np.zeros(net.num_params)
    mask[head_slice(net)] = 1.0
    return mask


def anil_trajectory(net, phi, x, y, alpha, k, loss="mse"):
    r"""The full parameter vectors (psi, w_0) .. (psi, w_k) of the head-only inner loop, eq. (7.1).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    x, y : the support set, shapes as in :meth:`tinymeta.mlp.MLP.loss_and_grad`
    alpha : float > 0, inner step size
    k : int >= 0

    Returns
    -------
    ndarray, shape (k + 1, P): row i is (psi, w_i); the body's columns are the same in every row.

    Math
    ----
    w_0 = w, \qquad w_{i+1} = w_i - \alpha \nabla_w L_A(\psi, w_i)
    (eq. :eq:`eq-anil-inner`)
    """
    phi = net.check_phi(phi)
    x, y = net.check_data(x, y, loss, names=("x", "y"))
    alpha, k = validate.positive("alpha", alpha), validate.count("k", k)
    step = alpha * head_mask(net)  # alpha on the head, 0 on the body
    traj = np.empty((k + 1, phi.size))
    traj[0] = phi
    for i in range(k):
        value, g = net.loss_and_grad(traj[i], x, y, loss)
        traj[i + 1] = traj[i] - step * g
        if not (np.isfinite(value) and np.all(np.isfinite(traj[i + 1]))):
            raise DivergenceError(
                f"ANIL inner step {i}: the support loss or the head is not finite ({value}); "
                f"alpha={alpha} is too large for this network/task, try a smaller alpha"
            )
    return traj


def anil_adapt(net, phi, x, y, alpha, k, loss="mse"):
    """(psi, w_k): phi with its head adapted by k steps on (x, y), eq. (7.1). Shape (P,)."""
    return anil_trajectory(net, phi, x, y, alpha, k, loss)[-1]


def anil_value_and_grad(net, phi, task, alpha, k, loss="mse"):
    r"""``(F(phi), g_ANIL)``: F = L_B(psi, w_k) and its exact gradient w.r.t. all of phi, eq. (7.2).

    Parameters
    ----------
    net : MLP
    phi : ndarray, shape (P,)
    task : Task
    alpha : float > 0, inner step size of the head
    k : int >= 0, inner steps on the support set
    loss : {"mse", "cross_entropy"}

    Returns
    -------
    (float, ndarray of shape (P,))
        For k = 0, (L_B(phi), grad L_B(phi)).

    Math
    ----
    g \leftarrow \nabla L_B(\psi, w_k); \qquad
    g \leftarrow g - \alpha H_i\, (m \odot g) \quad (i = k-1, \dots, 0), \qquad
    H_i (0, v) = (H^{\psi w}_i v,\ H^{ww}_i v)
    (eq. :eq:`eq-anil-grad`; m is the head's 0/1 mask)
    """
    task = check_task(net, task, loss)
    xs, ys = task.x_support, task.y_support
    traj = anil_trajectory(net, phi, xs, ys, alpha, k, loss)
    value, g = net.loss_and_grad(traj[-1], task.x_query, task.y_query, loss)  # (grad_psi, grad_w) L_B
    if not (np.isfinite(value) and np.all(np.isfinite(g))):
        raise DivergenceError(f"the query loss after {k} ANIL step(s) is not finite ({value}); alpha={alpha}")
    mask = head_mask(net)
    for i in range(k - 1, -1, -1):  # right to left; g holds (g_psi, v_{i+1})
        g = g - alpha * net.hvp(traj[i], xs, ys, mask * g, loss)  # H_i (0, v) = (H_pw v, H_ww v): one R-pass
        if not np.all(np.isfinite(g)):
            raise DivergenceError(f"the ANIL Jacobian product overflowed at inner step {i}; alpha={alpha}")
    return value, g


def anil_batch(net, phi, batch, alpha, k, loss="mse"):
    """Mean over the B tasks of (F_i(phi), g_ANIL,i), eq. (7.2). Returns ``(float, (P,) array)``.

    Checks, in order: the batch, each task's support and query sets, phi, alpha, k.
    """
    B = check_batch(batch)
    for i in range(B):
        check_task(net, batch.task(i), loss)
    phi, alpha, k = net.check_phi(phi), validate.positive("alpha", alpha), validate.count("k", k)
    results = [anil_value_and_grad(net, phi, batch.task(i), alpha, k, loss) for i in range(B)]
    return float(np.mean([r[0] for r in results])), np.mean([r[1] for r in results], axis=0)
