"""Exercise 05: the exact MAML gradient for one inner step.

A task has a support set A = (x_s, y_s) and a query set B = (x_q, y_q), with losses L_A and
L_B. One inner step of gradient descent on the support loss, from phi_0 = phi, gives
phi_1 = phi_0 - alpha grad L_A(phi_0), and MAML's objective is F(phi) = L_B(phi_1). Derive
dF/dphi by the chain rule: what is the Jacobian d phi_1 / d phi_0, in terms of
H_0 = hess L_A(phi_0)?

Implement it with the network's exact gradient and Hessian-vector product:
``net.loss_and_grad(phi, X, Y) -> (loss, grad)`` and ``net.hvp(phi, X, Y, v) -> H v``
(both for the mse loss; H is the Hessian of the loss on (X, Y) at phi). Never form a Hessian.
(Do not call ``tinymeta.maml_grad``: that is the answer.)

Check:  tinymeta exercises check 05 05_maml_k1.py    (or: python 05_maml_k1.py)
"""


def maml_grad_k1(net, phi, task, alpha):
    """dF/dphi for F(phi) = L_B(phi - alpha grad L_A(phi)).

    Parameters
    ----------
    net : tinymeta.MLP
    phi : ndarray, shape (P,)
    task : tinymeta.Task, the tuple (x_support, y_support, x_query, y_query)
    alpha : float, inner step size

    Returns
    -------
    ndarray, shape (P,)
    """
    ### YOUR CODE HERE
    raise NotImplementedError("exercise 05: write the exact MAML gradient for k = 1")


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact gradient
# (first-order MAML misses by 2e-2 to 2e-1); threshold 1e-12.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "05", __file__]))
