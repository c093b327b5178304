"""Exercise 04: the Hessian-vector product of a one-hidden-layer net by the R-operator.

sizes = (d_0, d_1, d_2); phi = (W_1, b_1, W_2, b_2) flat, as in exercise 03, and

    z_1 = X W_1 + b_1,   a_1 = tanh(z_1),   yhat = a_1 W_2 + b_2,   L = (1/n) sum_i ||yhat_i - y_i||^2.

Backprop: delta_2 = 2 (yhat - y) / n, e_1 = delta_2 W_2^T, delta_1 = sigma'(z_1) * e_1,
dL/dW_2 = a_1^T delta_2, dL/db_2 = 1^T delta_2, dL/dW_1 = X^T delta_1, dL/db_1 = 1^T delta_1.

The R-operator R{f} = d/dr f(phi + r v) at r = 0 (Pearlmutter 1994) applied to every line of
the forward and backward pass gives H v = R{dL/dphi}, with v = (V_1, c_1, V_2, c_2) in the same
layout. Use the product rule on every product; R{X} = 0; sigma''(z) = -2 tanh(z) (1 - tanh(z)^2).
Never form the Hessian, and do not difference gradients: a finite-difference product is
not exact enough to pass.

Check:  tinymeta exercises check 04 04_hvp_r_operator.py    (or: python 04_hvp_r_operator.py)
"""

import numpy as np  # noqa: F401  (you will need it)

from tinymeta.params import flatten, unflatten  # noqa: F401


def hvp_one_hidden(phi, X, y, v, sizes):
    """H v, the Hessian of the mse loss w.r.t. phi times v, by one forward and one R-pass.

    Parameters
    ----------
    phi, v : ndarray, shape (P,)
    X : ndarray, shape (n, d_0)
    y : ndarray, shape (n, d_2)
    sizes : tuple of 3 ints (d_0, d_1, d_2)

    Returns
    -------
    ndarray, shape (P,)
    """
    # BEGIN SOLUTION
    (W1, b1), (W2, b2) = unflatten(sizes, phi)
    (V1, c1), (V2, c2) = unflatten(sizes, v)
    n = X.shape[0]
    t = np.tanh(X @ W1 + b1)  # a_1
    d1, d2 = 1.0 - t**2, -2.0 * t * (1.0 - t**2)  # sigma'(z_1), sigma''(z_1)
    delta2 = 2.0 * (t @ W2 + b2 - y) / n
    e1 = delta2 @ W2.T
    Rz1 = X @ V1 + c1
    Ra1 = d1 * Rz1
    Rdelta2 = 2.0 * (Ra1 @ W2 + t @ V2 + c2) / n  # R{yhat} through the output Hessian (2/n) I
    Re1 = Rdelta2 @ W2.T + delta2 @ V2.T
    Rdelta1 = d2 * Rz1 * e1 + d1 * Re1
    return flatten(
        [(X.T @ Rdelta1, Rdelta1.sum(axis=0)), (Ra1.T @ delta2 + t.T @ Rdelta2, Rdelta2.sum(axis=0))]
    )
    # END SOLUTION


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact H v
# (v random, a coordinate axis, or 0); threshold 1e-13.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "04", __file__]))
