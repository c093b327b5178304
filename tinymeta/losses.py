"""Losses on the network output: value, gradient w.r.t. the prediction, output-space HVP.

Conventions (fixed in docs/notation, used by every equation):

* ``mse``: L = (1/n) sum_i ||yhat_i - y_i||^2 -- mean over examples of the
  squared error summed over outputs, **without** a factor 1/2. For one output
  this is the mean squared error of the MAML code. dL/dyhat = 2 (yhat - y) / n,
  and the output-space Hessian is (2/n) I.
* ``cross_entropy``: L = -(1/n) sum_i log softmax(yhat_i)[y_i], the plain mean
  negative log-likelihood with integer labels y of shape (n,).
  dL/dyhat = (p - onehot(y)) / n with p = softmax(yhat), and the output-space
  Hessian of example i is (diag(p_i) - p_i p_i^T) / n, positive semi-definite.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Loss(NamedTuple):
    """A loss: ``value(yhat, y)``, ``grad(yhat, y)`` and ``hvp(yhat, y, u)`` (all on outputs)."""

    name: str
    value: callable
    grad: callable
    hvp: callable


def mse_value(yhat, y):
    n = yhat.shape[0]
    r = yhat - y
    return float(np.sum(r * r) / n)


def mse_grad(yhat, y):
    return (2.0 / yhat.shape[0]) * (yhat - y)


def mse_hvp(yhat, y, u):
    return (2.0 / yhat.shape[0]) * u


def softmax(yhat):
    """Row-wise softmax, shifted by the row maximum for stability. ``(n, c) -> (n, c)``."""
    z = yhat - yhat.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy_value(yhat, y):
    n = yhat.shape[0]
    m = yhat.max(axis=1, keepdims=True)
    log_z = (m + np.log(np.exp(yhat - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.sum(log_z - yhat[np.arange(n), y]) / n)


def cross_entropy_grad(yhat, y):
    n = yhat.shape[0]
    g = softmax(yhat)
    g[np.arange(n), y] -= 1.0
    return g / n


def cross_entropy_hvp(yhat, y, u):
    # (diag(p) - p p^T) u / n, row by row, without forming the c x c matrices
    p = softmax(yhat)
    return (p * u - p * np.sum(p * u, axis=1, keepdims=True)) / yhat.shape[0]


LOSSES = {
    "mse": Loss("mse", mse_value, mse_grad, mse_hvp),
    "cross_entropy": Loss("cross_entropy", cross_entropy_value, cross_entropy_grad, cross_entropy_hvp),
}
"""Losses by name."""
