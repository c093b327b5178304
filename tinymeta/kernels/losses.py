"""Compiled twins of :mod:`tinymeta.losses`: value, dL/dyhat and the output-space HVP, by int code.

Same conventions: ``mse`` is (1/n) sum ||yhat_i - y_i||^2 (no 1/2), targets ``yf`` of shape
(n, c); ``cross_entropy`` is the mean negative log-likelihood of softmax(yhat) with integer
labels ``yi`` of shape (n,). Both target arrays are always passed (the unused one may be a
dummy) so that one compiled kernel serves both losses.
"""

from __future__ import annotations

import math

from numba import njit

MSE, CROSS_ENTROPY = 0, 1
LOSS_CODES = {"mse": MSE, "cross_entropy": CROSS_ENTROPY}
"""Integer code of each loss in :data:`tinymeta.losses.LOSSES`."""


@njit(cache=True)
def _softmax_row(Y, i, out):
    """out[i] = softmax(Y[i]), shifted by the row maximum (as ``losses.softmax``)."""
    c = Y.shape[1]
    m = Y[i, 0]
    for j in range(1, c):
        m = max(m, Y[i, j])
    s = 0.0
    for j in range(c):
        out[i, j] = math.exp(Y[i, j] - m)
        s += out[i, j]
    for j in range(c):
        out[i, j] /= s


@njit(cache=True)
def _logsumexp_row(Y, i):
    """log sum_j exp(Y[i, j]), shifted by the row maximum; minus the true logit it is row i's NLL."""
    m = Y[i, 0]
    for j in range(1, Y.shape[1]):
        m = max(m, Y[i, j])
    s = 0.0
    for j in range(Y.shape[1]):
        s += math.exp(Y[i, j] - m)
    return m + math.log(s)


@njit(cache=True)
def value_and_grad(code, Y, yf, yi, D):
    """L(yhat) and D = dL/dyhat (n, c): mse 2 (yhat - y) / n; cross-entropy (p - onehot(y)) / n."""
    n, c = Y.shape
    total = 0.0
    if code == MSE:
        scale = 2.0 / n
        for i in range(n):
            for j in range(c):
                r = Y[i, j] - yf[i, j]
                total += r * r
                D[i, j] = scale * r
        return total / n
    for i in range(n):
        total += _logsumexp_row(Y, i) - Y[i, yi[i]]
        _softmax_row(Y, i, D)
        D[i, yi[i]] -= 1.0
        for j in range(c):
            D[i, j] /= n
    return total / n


@njit(cache=True)
def value(code, Y, yf, yi):
    """L(yhat) alone (no gradient)."""
    n, c = Y.shape
    total = 0.0
    for i in range(n):
        if code == MSE:
            for j in range(c):
                r = Y[i, j] - yf[i, j]
                total += r * r
        else:
            total += _logsumexp_row(Y, i) - Y[i, yi[i]]
    return total / n


@njit(cache=True)
def hvp(code, Y, U, out):
    """out = H_out U with H_out the Hessian of L in yhat: mse (2/n) U; cross-entropy, row by row,
    (diag(p) - p p^T) u / n = (p * u - p (p . u)) / n."""
    n, c = Y.shape
    if code == MSE:
        scale = 2.0 / n
        for i in range(n):
            for j in range(c):
                out[i, j] = scale * U[i, j]
        return
    for i in range(n):
        _softmax_row(Y, i, out)  # out[i] = p_i for now
        pu = 0.0
        for j in range(c):
            pu += out[i, j] * U[i, j]
        for j in range(c):
            p = out[i, j]
            out[i, j] = (p * U[i, j] - p * pu) / n
