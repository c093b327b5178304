"""Exercise 06: the exact MAML gradient for k inner steps.

k steps of gradient descent on the support loss L_A,

    phi_0 = phi,   phi_{i+1} = phi_i - alpha grad L_A(phi_i)   (i = 0 .. k-1),

and MAML's objective F(phi) = L_B(phi_k) (L_B: the query loss). Derive dF/dphi: each step
contributes the Jacobian d phi_{i+1} / d phi_i = I - alpha H_i with H_i = hess L_A(phi_i),
i = 0 .. k-1. Compute the product times grad L_B(phi_k) with k Hessian-vector products,
applying the factors to a vector one at a time; in which order? Never form a Hessian. k = 0
is allowed (then F = L_B(phi)).

Use ``net.loss_and_grad(phi, X, Y) -> (loss, grad)`` and ``net.hvp(phi, X, Y, v) -> H v``
(mse loss). (Do not call ``tinymeta.maml_grad``: that is the answer.)

Check:  tinymeta exercises check 06 06_maml_k_steps.py    (or: python 06_maml_k_steps.py)
"""


def maml_grad(net, phi, task, alpha, k):
    """dF/dphi for F(phi) = L_B(phi_k), phi_k after k inner gradient steps on the support set.

    Parameters
    ----------
    net : tinymeta.MLP
    phi : ndarray, shape (P,)
    task : tinymeta.Task, the tuple (x_support, y_support, x_query, y_query)
    alpha : float, inner step size
    k : int >= 0, number of inner steps

    Returns
    -------
    ndarray, shape (P,)
    """
    ### YOUR CODE HERE
    raise NotImplementedError("exercise 06: write the exact MAML gradient for any k")


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact gradient,
# for k = 0 to 5; threshold 1e-12.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "06", __file__]))
