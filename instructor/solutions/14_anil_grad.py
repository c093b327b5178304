"""Exercise 14: the ANIL meta-gradient, exact with respect to all of phi.

ANIL adapts only the head: split phi = (psi, w) with w = (W_L, b_L), the last layer, and psi the
body. The inner loop is w_0 = w, w_{i+1} = w_i - alpha grad_w L_A(psi, w_i) (i = 0 .. k-1), the
body stays, and F(phi) = L_B(psi, w_k). Derive the gradient of F with respect to ALL of phi:
the body enters F through the query features and through every inner step of the head.
Hint: with m the 0/1 mask of the head (``tinymeta.anil.head_mask(net)``), the inner steps are
phi_0 = phi, phi_{i+1} = phi_i - alpha m * grad L_A(phi_i) (i = 0 .. k-1); with H_i = hess L_A(phi_i),
the Hessian-vector product of the whole network along a direction that is zero on the body,
H_i (0, v), gives both blocks you need.

    g <- grad L_B(psi, w_k);   for i = k-1 .. 0:  g <- ?

Use ``net.loss_and_grad`` and ``net.hvp`` (mse loss), k Hessian-vector products, no Hessian.
Check with central differences of F -- but return the exact value.

Check:  tinymeta exercises check 14 14_anil_grad.py    (or: python 14_anil_grad.py)
"""

import numpy as np  # noqa: F401  (you will need it)

from tinymeta.anil import head_mask


def anil_grad(net, phi, task, alpha, k):
    """dF/dphi for F = L_B(psi, w_k): k head-only inner steps of size alpha, the gradient in all of phi.

    Parameters
    ----------
    net : tinymeta.MLP
    phi : ndarray, shape (P,)
    task : tinymeta.Task, the tuple (x_support, y_support, x_query, y_query)
    alpha : float, inner step size of the head
    k : int >= 0, number of inner steps

    Returns
    -------
    ndarray, shape (P,)
    """
    m = head_mask(net)  # noqa: F841  (1.0 on W_L and b_L, 0.0 on the body)
    # BEGIN SOLUTION
    x_s, y_s, x_q, y_q = task
    traj = [phi]
    for _ in range(k):
        traj.append(traj[-1] - alpha * m * net.loss_and_grad(traj[-1], x_s, y_s)[1])
    g = net.loss_and_grad(traj[-1], x_q, y_q)[1]
    for i in range(k - 1, -1, -1):
        g = g - alpha * net.hvp(traj[i], x_s, y_s, m * g)  # (I - alpha diag(m) H_i)^T g
    return g
    # END SOLUTION


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact value, for
# k = 0 to 5; threshold 1e-12.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "14", __file__]))
