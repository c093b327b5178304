"""Exercise 15: the implicit iMAML meta-gradient at a given inner solution phi*.

iMAML adapts by solving a regularised problem: phi* = argmin_u L_A(u) + (lam/2) ||u - phi||^2
(computed for you and passed in as ``phi_star``). Its meta-objective is F(phi) = L_B(phi*(phi)).
Derive dF/dphi without differentiating through the solver. Hint: phi* satisfies the stationarity
condition grad L_A(phi*) + lam (phi* - phi) = 0 for every phi; differentiate it in phi to get
d phi*/d phi, then apply the chain rule. With H_A(phi*) = hess L_A(phi*):

    g = ? applied to grad L_B(phi*)

Use ``net.loss_and_grad`` and ``net.hvp`` with ``scipy.sparse.linalg.cg`` on a
``scipy.sparse.linalg.LinearOperator`` (mse loss), solved to a relative residual of 1e-10 (scipy's
default, 1e-5, is not exact enough), or a dense solve with ``net.hessian`` (the sizes here are
small). Check your formula with central differences of F -- each phi* solved again with
``tinymeta.imaml_adapt`` -- but return the exact value.

Check:  tinymeta exercises check 15 15_imaml_grad.py    (or: python 15_imaml_grad.py)
"""

import numpy as np  # noqa: F401  (you will need it)
from scipy.sparse.linalg import LinearOperator, cg  # noqa: F401  (you may need them)


def imaml_meta_grad(net, phi, phi_star, task, lam):
    """dF/dphi for F(phi) = L_B(phi*(phi)), at the inner solution ``phi_star`` of the proximal problem.

    Parameters
    ----------
    net : tinymeta.MLP
    phi : ndarray, shape (P,), the meta-parameters (the centre of the proximal term)
    phi_star : ndarray, shape (P,), argmin_u L_A(u) + (lam/2) ||u - phi||^2
    task : tinymeta.Task, the tuple (x_support, y_support, x_query, y_query)
    lam : float > 0, strength of the proximal term

    Returns
    -------
    ndarray, shape (P,)
    """
    # BEGIN SOLUTION
    x_s, y_s, x_q, y_q = task
    v = net.loss_and_grad(phi_star, x_q, y_q)[1]
    A = LinearOperator((v.size, v.size), matvec=lambda p: p + net.hvp(phi_star, x_s, y_s, p) / lam)
    g, info = cg(A, v, rtol=1e-12, atol=0.0, maxiter=10 * v.size)  # (I + H_A(phi*)/lam) g = grad L_B(phi*)
    return g
    # END SOLUTION


# CHECK: a correct answer gives relative error ~1e-12 with CG at rtol 1e-12 (a dense solve: ~1e-15)
# against the exact value; threshold 1e-08.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "15", __file__]))
