"""Grader of exercise 03: backprop through an MLP with two hidden tanh layers and MSE.

The exact answer is :meth:`tinymeta.MLP.loss_and_grad`; the oracle the test suite compares it
with is the central-difference gradient of the loss. The known wrong answers come from
:func:`backprop`, whose switches reproduce one mistake each.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gradcheck import numerical_grad
from ..mlp import MLP
from ..params import flatten, unflatten
from .checks import Case
from .compare import compare, mean_loss_factors
from .diagnose import switches
from .grade_dense import wrong_tanh_d1
from .layout import blocks

THRESHOLD = 1e-12
"""Correct backprop in any order of operations agrees with tinymeta's to < 1e-15 on these cases
(measured); a central difference reaches ~1e-10; a wrong formula misses by > 1e-3."""

NOTES = {("n", "low"): "right for one example only: the mean over the n examples (the 1/n) is off"}


def backprop(
    sizes,
    phi,
    X,
    y,
    factor=2.0,
    mean=True,
    d1=None,
    transpose=False,
    tanh_out=False,
    d1_out=False,
    bias_mean=False,
    d1_next=False,
):
    """The MSE gradient by backprop, with switches that reproduce the usual mistakes."""
    d1 = (lambda z: 1.0 - np.tanh(z) ** 2) if d1 is None else d1
    layers = unflatten(sizes, phi)
    a, zs = [X], []
    for l, (W, b) in enumerate(layers):
        zs.append(a[-1] @ W + b)
        a.append(np.tanh(zs[-1]) if (l < len(layers) - 1 or tanh_out) else zs[-1])
    delta = factor * (a[-1] - y) / (len(X) if mean else 1.0)
    if tanh_out or d1_out:
        delta = delta * d1(zs[-1])
    grads = [None] * len(layers)
    for l in range(len(layers) - 1, -1, -1):
        W = layers[l][0]
        grads[l] = (a[l].T @ delta, delta.mean(axis=0) if bias_mean else delta.sum(axis=0))
        if l > 0:
            delta = d1(zs[l] if d1_next else zs[l - 1]) * (delta @ (W if transpose else W.T))
    return flatten(grads)


def cases(rng):
    d0, h, d3 = (int(x) for x in rng.integers((1, 5, 1), (3, 9, 3)))
    s = int(rng.integers(3, 6))
    n1, n2 = (int(x) for x in rng.integers((8, 5), (12, 8)))
    specs = [
        (f"case 1 (sizes [{d0}, {h}, {h - 2}, {d3}], n={n1})", [d0, h, h - 2, d3], n1, 1.0),
        (f"case 2 (square layers [3, {s}, {s}, {s}], n={n2})", [3, s, s, s], n2, 1.0),
        ("case 3 (edge: one example, [2, 5, 3, 2])", [2, 5, 3, 2], 1, 1.0),
        ("case 4 (edge: saturated units, weights x 3)", [2, 4, 4, 2], 7, 3.0),
    ]
    for label, sizes, n, scale in specs:
        net = MLP(sizes, "tanh")
        phi = scale * net.init(rng)
        X, y = rng.standard_normal((n, sizes[0])), rng.standard_normal((n, sizes[-1]))
        yield Case(
            label,
            (phi, X, y, tuple(sizes)),
            partial(grade, net=net, phi=phi, X=X, y=y),
            tags={"n": n},
            expected=lambda net=net, phi=phi, X=X, y=y: net.loss_and_grad(phi, X, y)[1],
            oracle=lambda net=net, phi=phi, X=X, y=y: numerical_grad(lambda p: net.loss(p, X, y), phi),
        )


def grade(out, measured, net, phi, X, y):
    s, n = net.sizes, len(X)
    bp = lambda **bug: bug
    variants = [
        (
            "missing 1/n: the loss is the mean over the n examples, so dL/dyhat = 2 (yhat - y) / n",
            bp(mean=False),
        ),
        ("missing factor 2: tinymeta's mse has no 1/2, so dL/dyhat = 2 (yhat - y) / n", bp(factor=1.0)),
        *[(text, bp(d1=d1)) for text, d1 in wrong_tanh_d1()],
        (
            "transposed weight: delta_{l-1} = sigma'(z_{l-1}) * (delta_l W_l^T), not delta_l W_l",
            bp(transpose=True),
        ),
        ("the output layer is linear in tinymeta (yhat = z_L, no tanh)", bp(tanh_out=True)),
        (
            "sigma' applied to the linear output: the output layer has no activation, so "
            "delta_L = dL/dyhat = 2 (yhat - y) / n with no sigma'(z_L)",
            bp(d1_out=True),
        ),
        (
            "sigma' of the wrong layer: delta_{l-1} = sigma'(z_{l-1}) * (delta_l W_l^T) uses the "
            "pre-activation of layer l-1, not of layer l",
            bp(d1_next=True),
        ),
        (
            "a spurious 1/n in the bias gradients: dL/db_l = 1^T delta_l sums over the rows, it does "
            "not average",
            bp(bias_mean=True),
        ),
    ]
    factors = mean_loss_factors(n, s[-1])
    return [
        compare(
            "gradient",
            out,
            net.loss_and_grad(phi, X, y)[1],
            THRESHOLD,
            **switches(lambda **bug: backprop(s, phi, X, y, **bug), variants),
            factors=factors,
            blocks=blocks(s),
        )
    ]
