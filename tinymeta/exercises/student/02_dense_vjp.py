"""Exercise 02: the vector-Jacobian product (backward pass) of one dense tanh layer.

The layer maps a batch a of shape (n, d_in), one example per row, to

    h = tanh(z),   z = a W + b,   W of shape (d_in, d_out), b of shape (d_out,).

Given the upstream gradient delta = dL/dh of shape (n, d_out), derive and implement

    dL/dW  (d_in, d_out),   dL/db  (d_out,),   dL/da  (n, d_in).

Start from dL/dz; tanh'(z) = 1 - tanh(z)^2. Every gradient has the shape of its variable.

Check:  tinymeta exercises check 02 02_dense_vjp.py    (or: python 02_dense_vjp.py)
"""

import numpy as np  # noqa: F401  (you will need it)


def dense_vjp(a, W, b, delta):
    """Gradients of L through h = tanh(a W + b), given delta = dL/dh.

    Parameters
    ----------
    a : ndarray, shape (n, d_in)
    W : ndarray, shape (d_in, d_out)
    b : ndarray, shape (d_out,)
    delta : ndarray, shape (n, d_out)

    Returns
    -------
    (dW, db, da) : ndarrays of shapes (d_in, d_out), (d_out,), (n, d_in)
    """
    ### YOUR CODE HERE
    raise NotImplementedError("exercise 02: write dL/dW, dL/db and dL/da")


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact gradients of
# L = sum(delta * h), for a square layer, one example and saturated units too; threshold 1e-12.

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "02", __file__]))
