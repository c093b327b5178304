"""Exercise 10: the Gauss-Newton vector product G v = J^T H_out J v of a one-hidden-layer net.

The net of exercise 04, sizes = (d_0, d_1, d_2), phi = (W_1, b_1, W_2, b_2) flat:

    z_1 = X W_1 + b_1,   a_1 = tanh(z_1),   yhat = a_1 W_2 + b_2.

J = d yhat / d phi is the Jacobian of the outputs and H_out the Hessian of the loss with
respect to the outputs: (2/n) I for loss = "mse", and per example (diag(p_i) - p_i p_i^T) / n
with p = softmax(yhat) for loss = "cross_entropy" (exercise 09). The Gauss-Newton matrix
G = J^T H_out J is the Hessian without the terms that contain the residual; unlike H it is
positive semi-definite.

Compute G v in three passes and never form J: J v by the forward R-pass (R{yhat} for the
direction v = (V_1, c_1, V_2, c_2)), then u = H_out (J v), then J^T u by backpropagating u as
if it were dL/dyhat. (Exercise 04's R-operator drops three terms here: which ones?)

Check:  tinymeta exercises check 10 10_gauss_newton.py    (or: python 10_gauss_newton.py)
"""

import numpy as np  # noqa: F401  (you will need it)

from tinymeta.params import flatten, unflatten  # noqa: F401


def gauss_newton_vp(phi, X, y, v, sizes, loss):
    """J^T H_out J v for a one-hidden-layer tanh net.

    Parameters
    ----------
    phi, v : ndarray, shape (P,)
    X : ndarray, shape (n, d_0)
    y : ndarray, shape (n, d_2) for "mse"; int ndarray, shape (n,) for "cross_entropy"
    sizes : tuple of 3 ints (d_0, d_1, d_2)
    loss : "mse" or "cross_entropy"

    Returns
    -------
    ndarray, shape (P,)
    """
    # BEGIN SOLUTION
    (W1, b1), (W2, b2) = unflatten(sizes, phi)
    (V1, c1), (V2, c2) = unflatten(sizes, v)
    n = X.shape[0]
    t = np.tanh(X @ W1 + b1)
    d1 = 1.0 - t**2
    Ryhat = (d1 * (X @ V1 + c1)) @ W2 + t @ V2 + c2  # J v
    if loss == "mse":
        u = 2.0 * Ryhat / n
    else:
        yhat = t @ W2 + b2
        p = np.exp(yhat - yhat.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        u = (p * Ryhat - p * np.sum(p * Ryhat, axis=1, keepdims=True)) / n
    e1 = d1 * (u @ W2.T)  # J^T u: backprop u through the net
    return flatten([(X.T @ e1, e1.sum(axis=0)), (t.T @ u, u.sum(axis=0))])
    # END SOLUTION


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact G v, for MSE
# and cross-entropy; threshold 1e-12.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "10", __file__]))
