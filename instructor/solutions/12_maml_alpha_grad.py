"""Exercise 12: the derivative of MAML's meta-objective with respect to the step size alpha.

Meta-SGD learns the inner step size. With phi_0 = phi, phi_{i+1} = phi_i - alpha grad L_A(phi_i)
(i = 0 .. k-1) and F(alpha) = L_B(phi_k), derive dF/dalpha. Hint: differentiate the inner
steps themselves; with u_i = d phi_i / d alpha and H_i = hess L_A(phi_i),

    u_0 = 0,   u_{i+1} = ? ,   dF/dalpha = grad L_B(phi_k) . u_k.

Use ``net.loss_and_grad`` and ``net.hvp`` (mse loss), k Hessian-vector products, no Hessian.
Check your formula with a central difference of ``tinymeta.meta_objective`` in alpha -- but
return the exact value: a finite difference is not exact enough to pass.

Check:  tinymeta exercises check 12 12_maml_alpha_grad.py    (or: python 12_maml_alpha_grad.py)
"""

import numpy as np  # noqa: F401  (you will need it)


def maml_alpha_grad(net, phi, task, alpha, k):
    """dF/dalpha for F(alpha) = L_B(phi_k), phi_k after k inner steps of size alpha on L_A.

    Parameters
    ----------
    net : tinymeta.MLP
    phi : ndarray, shape (P,)
    task : tinymeta.Task, the tuple (x_support, y_support, x_query, y_query)
    alpha : float, inner step size
    k : int >= 0, number of inner steps

    Returns
    -------
    float
    """
    # BEGIN SOLUTION
    x_s, y_s, x_q, y_q = task
    p, u = phi, np.zeros_like(phi)  # u_i = d phi_i / d alpha
    for _ in range(k):
        g = net.loss_and_grad(p, x_s, y_s)[1]
        u = u - alpha * net.hvp(p, x_s, y_s, u) - g  # u_{i+1} = (I - alpha H_i) u_i - grad L_A(phi_i)
        p = p - alpha * g
    return float(net.loss_and_grad(p, x_q, y_q)[1] @ u)
    # END SOLUTION


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact value, for
# k = 0 to 5; threshold 1e-11.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "12", __file__]))
