"""Exercise 13: the two gradients of Meta-SGD, with respect to phi and to the step sizes.

Meta-SGD learns a step size per parameter: alphas has one entry per entry of phi, and the inner
steps are phi_0 = phi, phi_{i+1} = phi_i - alphas * grad L_A(phi_i) (elementwise), i = 0 .. k-1.
With F(phi, alphas) = L_B(phi_k), derive dF/dphi and dF/dalphas. Hint: write one step as a
function of (phi_i, alphas); its Jacobian in phi_i is I - diag(alphas) H_i (H_i = hess L_A(phi_i)),
which is NOT symmetric, and its Jacobian in alphas is -diag(grad L_A(phi_i)). Going right to left
with v_i = dF/dphi_i:

    v_k = grad L_B(phi_k),   v_i = ? ,   dF/dalphas = ? ,   dF/dphi = v_0.

Use ``net.loss_and_grad`` and ``net.hvp`` (mse loss), k Hessian-vector products, no Hessian.
Check your formulas with central differences of F in phi and in alphas -- but return the exact
values: finite differences are not exact enough to pass.

Check:  tinymeta exercises check 13 13_metasgd_grad.py    (or: python 13_metasgd_grad.py)
"""

import numpy as np  # noqa: F401  (you will need it)


def metasgd_grad(net, phi, alphas, task, k):
    """(dF/dphi, dF/dalphas) for F = L_B(phi_k), phi_k after k Meta-SGD steps with step sizes ``alphas``.

    Parameters
    ----------
    net : tinymeta.MLP
    phi : ndarray, shape (P,)
    alphas : ndarray, shape (P,), one step size per parameter (any sign)
    task : tinymeta.Task, the tuple (x_support, y_support, x_query, y_query)
    k : int >= 0, number of inner steps

    Returns
    -------
    (ndarray of shape (P,), ndarray of shape (P,))
    """
    # BEGIN SOLUTION
    x_s, y_s, x_q, y_q = task
    traj, grads = [phi], []
    for _ in range(k):
        grads.append(net.loss_and_grad(traj[-1], x_s, y_s)[1])
        traj.append(traj[-1] - alphas * grads[-1])
    v = net.loss_and_grad(traj[-1], x_q, y_q)[1]
    d_alphas = np.zeros_like(phi)
    for i in range(k - 1, -1, -1):  # v holds v_{i+1}
        d_alphas = d_alphas - grads[i] * v
        v = v - net.hvp(traj[i], x_s, y_s, alphas * v)  # (I - diag(alphas) H_i)^T v = v - H_i (alphas v)
    return v, d_alphas
    # END SOLUTION


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact values, for
# k = 0 to 5; threshold 1e-12.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "13", __file__]))
