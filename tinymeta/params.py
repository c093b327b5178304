r"""The flat parameter vector phi and its per-layer views.

Layout: for each layer l = 1..L in order, the weight matrix W_l of shape
(d_{l-1}, d_l) in row-major order, then the bias b_l of shape (d_l,). A layer
computes z_l = a_{l-1} W_l + b_l on a batch of rows a_{l-1} of shape (n, d_{l-1}).

A network with batch norm (``MLP(..., batch_norm=True)``, tutorial 9) appends, after that
unchanged layout, the shift beta_l of shape (d_l,) of each hidden layer l = 1..L-1 in order:
P = sum_l (d_{l-1} + 1) d_l + sum_{l<L} d_l. So ``phi[:num_params(sizes)]`` is always the
(W_l, b_l) part, and a network without batch norm has no shifts at all.

Keeping phi flat makes the papers' formulas literal linear algebra:
phi - alpha * g, (I - alpha H) v, phi + epsilon (phi~ - phi).

Math
----
\varphi = \big(\operatorname{vec}(W_1), b_1, \operatorname{vec}(W_2), b_2, \dots,
\operatorname{vec}(W_L), b_L\big) \in \mathbb R^P,
\qquad z_l = a_{l-1} W_l + b_l, \quad W_l \in \mathbb R^{d_{l-1} \times d_l}
(eq. :eq:`eq-forward`; vec: row-major)

P = \sum_{l=1}^{L} (d_{l-1} + 1)\, d_l \quad \text{without batch norm},
\qquad P = \sum_{l=1}^{L} (d_{l-1} + 1)\, d_l + \sum_{l=1}^{L-1} d_l \quad \text{with it}
"""

from __future__ import annotations

import numpy as np


def layer_shapes(sizes):
    """``[(d_0, d_1), (d_1, d_2), ...]``: the weight shape of each layer."""
    return [(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]


def num_params(sizes) -> int:
    r"""P = sum_l (d_{l-1} + 1) d_l: the number of weights and biases.

    Math
    ----
    P = \sum_{l=1}^{L} (d_{l-1} + 1)\, d_l
    """
    return sum((a + 1) * b for a, b in layer_shapes(sizes))


def unflatten(sizes, phi):
    """Per-layer ``[(W_1, b_1), ...]`` as **views** into ``phi`` (no copy).

    Parameters
    ----------
    sizes : sequence of int, ``[d_0, ..., d_L]``
    phi : ndarray, shape (P,)

    Returns
    -------
    list of (W, b) with W of shape (d_{l-1}, d_l) and b of shape (d_l,).
    Writing into a view writes into ``phi``.
    """
    layers, offset = [], 0
    for d_in, d_out in layer_shapes(sizes):
        W = phi[offset : offset + d_in * d_out].reshape(d_in, d_out)
        offset += d_in * d_out
        b = phi[offset : offset + d_out]
        offset += d_out
        layers.append((W, b))
    return layers


def flatten(layers) -> np.ndarray:
    """Inverse of :func:`unflatten`: concatenate ``[(W_1, b_1), ...]`` into one float64 vector."""
    parts = [np.ravel(p) for layer in layers for p in layer]
    return np.concatenate(parts).astype(np.float64, copy=False)


def num_shifts(sizes) -> int:
    r"""Number of batch-norm shifts, sum_{l<L} d_l: one beta per hidden unit.

    Math
    ----
    \sum_{l=1}^{L-1} d_l
    """
    return sum(sizes[1:-1])


def unflatten_shifts(sizes, phi):
    """Batch-norm shifts ``[beta_1, ..., beta_{L-1}]`` as **views** into ``phi`` (no copy).

    Parameters
    ----------
    sizes : sequence of int, ``[d_0, ..., d_L]``
    phi : ndarray, shape (num_params(sizes) + num_shifts(sizes),)

    Returns
    -------
    list of ndarray, beta_l of shape (d_l,), stored after every (W_l, b_l).
    """
    shifts, offset = [], num_params(sizes)
    for d in sizes[1:-1]:
        shifts.append(phi[offset : offset + d])
        offset += d
    return shifts


def flatten_with_shifts(layers, shifts) -> np.ndarray:
    """Inverse of :func:`unflatten` and :func:`unflatten_shifts`: every (W_l, b_l), then every beta_l."""
    parts = [np.ravel(p) for layer in layers for p in layer] + [np.ravel(s) for s in shifts]
    return np.concatenate(parts).astype(np.float64, copy=False)  # one copy of P floats, not two
