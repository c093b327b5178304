"""Activation functions, each with its first and second derivative.

The Hessian-vector product of an MLP (the R-operator, tutorial 2) needs
sigma, sigma' and sigma'' of every hidden activation; they are written side by
side so a reader can check one against the other.

ReLU's second derivative is zero wherever it exists (everywhere but z = 0); at
the kink we use sigma'(0) = 0, the convention of the deep-learning frameworks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Activation(NamedTuple):
    """An elementwise nonlinearity: value ``f``, derivative ``d1``, second derivative ``d2``."""

    name: str
    f: callable
    d1: callable
    d2: callable


def tanh(z):
    return np.tanh(z)


def tanh_d1(z):
    t = np.tanh(z)
    return 1.0 - t * t  # sigma' = 1 - tanh^2


def tanh_d2(z):
    t = np.tanh(z)
    return -2.0 * t * (1.0 - t * t)  # sigma'' = -2 tanh (1 - tanh^2)


def relu(z):
    return np.maximum(z, 0.0)


def relu_d1(z):
    return (z > 0.0).astype(np.float64)


def relu_d2(z):
    return np.zeros_like(z, dtype=np.float64)


def sigmoid(z):
    # 0.5 (1 + tanh(z/2)) is the logistic function without overflow for large |z|
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def sigmoid_d1(z):
    s = sigmoid(z)
    return s * (1.0 - s)  # sigma' = s (1 - s)


def sigmoid_d2(z):
    s = sigmoid(z)
    return s * (1.0 - s) * (1.0 - 2.0 * s)  # sigma'' = s (1 - s)(1 - 2s)


def softplus(z):
    return np.logaddexp(0.0, z)  # log(1 + e^z), stable for large |z|


def softplus_d1(z):
    return sigmoid(z)  # softplus' = logistic


def softplus_d2(z):
    return sigmoid_d1(z)  # softplus'' = logistic'


def identity(z):
    return z


def identity_d1(z):
    return np.ones_like(z, dtype=np.float64)


def identity_d2(z):
    return np.zeros_like(z, dtype=np.float64)


ACTIVATIONS = {
    "tanh": Activation("tanh", tanh, tanh_d1, tanh_d2),
    "relu": Activation("relu", relu, relu_d1, relu_d2),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_d1, sigmoid_d2),
    "softplus": Activation("softplus", softplus, softplus_d1, softplus_d2),
    "identity": Activation("identity", identity, identity_d1, identity_d2),
}
"""Activations by name. Hidden layers may use any of them; the output layer is always identity."""
