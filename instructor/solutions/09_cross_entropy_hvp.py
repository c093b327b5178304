"""Exercise 09: the gradient and the output-space Hessian-vector product of cross-entropy.

For logits yhat of shape (n, c) (one row per example, one column per class) and integer labels
y of shape (n,), tinymeta's cross-entropy is the mean negative log-likelihood

    L = -(1/n) sum_i log softmax(yhat_i)[y_i],   softmax(yhat_i) = e^{yhat_i} / sum_j e^{yhat_ij}.

Derive dL/dyhat (shape (n, c)) and the Hessian-vector product in output space,
H_out u = d/dr dL/dyhat(yhat + r u) at r = 0, for a direction u of shape (n, c): each row of
H_out u involves only that row of yhat and u (tutorial 02, eq. (2.4)). Never form a c x c
matrix per example if you can help it, and keep every exponent <= 0 (logits may be as large
as 800). (Do not call ``tinymeta.losses``: that is the answer.)

Check:  tinymeta exercises check 09 09_cross_entropy_hvp.py    (or: python 09_cross_entropy_hvp.py)
"""

import numpy as np  # noqa: F401  (you will need it)


def cross_entropy_grad_hvp(yhat, y, u):
    """dL/dyhat and H_out u for the mean cross-entropy of the logits yhat with labels y.

    Parameters
    ----------
    yhat : ndarray, shape (n, c), float64 logits
    y : ndarray, shape (n,), int labels in 0 .. c-1
    u : ndarray, shape (n, c), a direction in output space

    Returns
    -------
    (g, Hu) : two ndarrays of shape (n, c)
    """
    # BEGIN SOLUTION
    n, c = yhat.shape
    z = yhat - yhat.max(axis=1, keepdims=True)  # every exponent <= 0: no overflow
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    g = (p - np.eye(c)[y]) / n
    Hu = (p * u - p * np.sum(p * u, axis=1, keepdims=True)) / n  # (diag(p) - p p^T) u, row by row
    return g, Hu
    # END SOLUTION


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact values, for
# two classes, one example and logits up to +-800 too; threshold 1e-12.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "09", __file__]))
