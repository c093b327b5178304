"""Exercise 03: backpropagation through an MLP with two hidden tanh layers.

sizes = (d_0, d_1, d_2, d_3). With a_0 = X of shape (n, d_0),

    z_l = a_{l-1} W_l + b_l,   a_l = tanh(z_l)  (l = 1, 2),   yhat = z_3   (linear output)
    L = (1/n) sum_i ||yhat_i - y_i||^2        (tinymeta's mse: a mean over examples, no 1/2)

The parameters are one flat vector phi in tinymeta's layout: W_1 (row-major), b_1, W_2, b_2,
W_3, b_3. ``tinymeta.params.unflatten(sizes, phi)`` gives the list [(W_1, b_1), ...] and
``tinymeta.params.flatten`` packs such a list back. Return dL/dphi in the same layout.
(Do not call ``MLP.loss_and_grad``: that is the answer.)

Check:  tinymeta exercises check 03 03_mlp_backward.py    (or: python 03_mlp_backward.py)
"""

import numpy as np  # noqa: F401  (you will need it)

from tinymeta.params import flatten, unflatten  # noqa: F401


def mlp_loss_grad(phi, X, y, sizes):
    """The gradient of the mse loss of a 2-hidden-layer tanh MLP w.r.t. its flat parameters.

    Parameters
    ----------
    phi : ndarray, shape (P,), P = sum_l (d_{l-1} + 1) d_l
    X : ndarray, shape (n, d_0)
    y : ndarray, shape (n, d_3)
    sizes : tuple of 4 ints (d_0, d_1, d_2, d_3)

    Returns
    -------
    ndarray, shape (P,)
    """
    # BEGIN SOLUTION
    layers = unflatten(sizes, phi)
    a = [X]
    for l, (W, b) in enumerate(layers):
        z = a[-1] @ W + b
        a.append(np.tanh(z) if l < len(layers) - 1 else z)
    delta = 2.0 * (a[-1] - y) / X.shape[0]  # dL/dyhat
    grads = [None] * len(layers)
    for l in range(len(layers) - 1, -1, -1):
        W = layers[l][0]
        grads[l] = (a[l].T @ delta, delta.sum(axis=0))
        if l > 0:
            delta = (1.0 - a[l] ** 2) * (delta @ W.T)  # sigma'(z) = 1 - tanh(z)^2 = 1 - a^2
    return flatten(grads)
    # END SOLUTION


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact gradient,
# for four networks (one example, saturated units); threshold 1e-12.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "03", __file__]))
