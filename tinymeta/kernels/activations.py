"""Compiled twins of :mod:`tinymeta.activations`: sigma, sigma' and sigma'' of each activation, by int code.

sigma'' is written as a function of a = sigma(z) and s = sigma'(z), which the layer buffers keep, so
that z itself need not be stored (see :mod:`.layers`).
"""

from __future__ import annotations

import math

from numba import njit

IDENTITY, RELU, TANH, SIGMOID, SOFTPLUS = 0, 1, 2, 3, 4
ACTIVATION_CODES = {"identity": IDENTITY, "relu": RELU, "tanh": TANH, "sigmoid": SIGMOID,
                    "softplus": SOFTPLUS}  # fmt: skip
"""Integer code of each activation in :data:`tinymeta.activations.ACTIVATIONS`."""


@njit(cache=True)
def bias_activate(code, Z, b, A, S):
    """z = Z + b: A <- sigma(z), S <- sigma'(z), all (n, d), ``A`` may be ``Z``; as activations.py."""
    n, d = A.shape
    for i in range(n):
        for j in range(d):
            z = Z[i, j] + b[j]
            if code == RELU:
                A[i, j] = 0.0 if z <= 0.0 else z  # NaN passes through, as np.maximum does
                S[i, j] = 1.0 if z > 0.0 else 0.0
            elif code == TANH:
                t = math.tanh(z)
                A[i, j] = t
                S[i, j] = 1.0 - t * t
            elif code == SIGMOID:
                s = 0.5 * (1.0 + math.tanh(0.5 * z))
                A[i, j] = s
                S[i, j] = s * (1.0 - s)
            elif code == SOFTPLUS:
                # log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}), as np.logaddexp(0, z)
                A[i, j] = (z + math.log1p(math.exp(-z))) if z > 0.0 else math.log1p(math.exp(z))
                S[i, j] = 0.5 * (1.0 + math.tanh(0.5 * z))
            else:
                A[i, j] = z
                S[i, j] = 1.0


@njit(cache=True, inline="always")
def sigma_d2(code, a, s):
    """sigma''(z) from a = sigma(z) and s = sigma'(z) (activations.py writes it from z)."""
    if code == TANH:
        return -2.0 * a * s  # -2 tanh (1 - tanh^2)
    if code == SIGMOID:
        return s * (1.0 - 2.0 * a)  # s (1 - s)(1 - 2 s)
    if code == SOFTPLUS:
        return s * (1.0 - s)  # softplus'' = logistic', and s = logistic(z)
    return 0.0  # relu (away from the kink), identity
