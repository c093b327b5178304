"""Exercise 01: the first and second derivative of softplus.

softplus(z) = log(1 + e^z) is a smooth ReLU. The Hessian-vector product of an MLP needs
sigma' and sigma'' of its activation (exercise 04), so derive both on paper, then implement
them for an array z of any shape.

Both must be finite for every float64 z: e^z overflows above z ~ 709, so write them in a
form that never evaluates e^z for a large z.

Check:  tinymeta exercises check 01 01_activation_derivatives.py    (or: python 01_activation_derivatives.py)
"""

import numpy as np  # noqa: F401  (you will need it)


def softplus_derivatives(z):
    """sigma'(z) and sigma''(z) of sigma(z) = log(1 + e^z), elementwise.

    Parameters
    ----------
    z : ndarray, any shape, float64

    Returns
    -------
    (d1, d2) : two ndarrays with the shape of z
    """
    ### YOUR CODE HERE
    raise NotImplementedError("exercise 01: write softplus' and softplus''")


# CHECK: a correct answer gives relative error ~1e-16 (round-off) against the exact values, on
# random z, a 2-D z and z = +-800; threshold 1e-12 (a finite difference is not exact enough).

if __name__ == "__main__":
    from tinymeta.exercises.cli import main

    raise SystemExit(main(["check", "01", __file__]))
