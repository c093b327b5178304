"""Graders of exercises 01-03: activation derivatives, a dense layer's VJP, backprop.

Every oracle is a central difference (:mod:`tinymeta.gradcheck`) of a quantity the answer is
the derivative of, in float64: sigma' from softplus, sigma'' from the exact sigma', the layer's
gradients from L = sum(delta * tanh(a W + b)) and the MLP gradient from its loss. A correct
answer lands at 1e-10..1e-12; the threshold is 1e-6.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .. import activations
from ..gradcheck import numerical_grad
from ..mlp import MLP
from ..params import flatten, layer_shapes, unflatten
from .checks import Case, compare, unpack

THRESHOLD = 1e-6
SIGN = "a sign error: your answer is minus the correct one"
MISSING_D1 = "missing sigma'(z): multiply delta by sigma'(z) = 1 - tanh(z)^2 before the matrix products"
Z_SQUARED = "1 - z^2 is not tanh'(z): tanh'(z) = 1 - tanh(z)^2 (the square of the activation, not of z)"
SPURIOUS_N = "a spurious 1/n: sum over the rows of the batch (dL/db = 1^T dL/dz), do not average"


def blocks(sizes):
    """``[("W1", slice), ("b1", slice), ...]``: the blocks of tinymeta's flat layout."""
    out, offset = [], 0
    for l, (d_in, d_out) in enumerate(layer_shapes(sizes), 1):
        out += [
            (f"W{l}", slice(offset, offset + d_in * d_out)),
            (f"b{l}", slice(offset + d_in * d_out, offset + (d_in + 1) * d_out)),
        ]
        offset += (d_in + 1) * d_out
    return out


# ---------------------------------------------------------------------------- 01: sigma', sigma''
OVERFLOW = (
    "e^z overflows float64 above z ~ 709; write the logistic as 0.5 * (1 + tanh(z / 2)) "
    "or use np.exp(-np.abs(z)) so that no exponent is large"
)


def activation_cases():
    rng = np.random.default_rng(101)
    zs = [
        ("case 1 (z ~ N(0, 9), 50 values)", 3.0 * rng.standard_normal(50)),
        ("case 2 (z of shape (4, 5))", rng.standard_normal((4, 5))),
        ("case 3 (edge: z = +-800, +-40, +-1e-8, 0)", np.array([-800.0, -40, -1e-8, 0, 1e-8, 40, 800])),
    ]
    for label, z in zs:
        yield Case(label, (z,), partial(_grade_activation, label=label, z=z))


def _grade_activation(out, label, z):
    d1, d2 = unpack(out, 2, "(d1, d2)")
    s = activations.sigmoid(z)
    fd = lambda f: (f(z + 1e-5) - f(z - 1e-5)) / 2e-5
    wrong1 = [
        (
            "sign error inside the logistic: sigma'(z) = 1 / (1 + e^(-z)), which tends to 1 as z -> +inf",
            lambda: activations.sigmoid(-z),
        ),
        ("d/dz log(1 + e^z) = e^z / (1 + e^z): the denominator 1 + e^z is missing", lambda: np.exp(z)),
    ]
    wrong2 = [
        (
            "that is the logistic's second derivative s (1 - s)(1 - 2 s), i.e. softplus''': "
            "one derivative too many",
            lambda: s * (1 - s) * (1 - 2 * s),
        ),
        ("you returned sigma' again; sigma'' = d/dz logistic(z) = s (1 - s)", lambda: s),
        ("1 - s^2 is the pattern of tanh; the logistic's derivative is s (1 - s)", lambda: 1 - s * s),
    ]
    return [
        compare(
            f"{label}: sigma'",
            d1,
            fd(activations.softplus),
            THRESHOLD,
            exact=s,
            variants=wrong1,
            nonfinite=OVERFLOW,
        ),
        compare(
            f"{label}: sigma''",
            d2,
            fd(activations.softplus_d1),
            THRESHOLD,
            exact=s * (1 - s),
            variants=wrong2,
            nonfinite=OVERFLOW,
        ),
    ]


# ---------------------------------------------------------------------------- 02: dense-layer VJP
def dense_cases():
    rng = np.random.default_rng(202)
    for label, n, d_in, d_out, scale in [
        ("case 1 (n=5, 3 -> 4)", 5, 3, 4, 1.0),
        ("case 2 (square layer 3 -> 3, n=4)", 4, 3, 3, 1.0),
        ("case 3 (edge: one example, 2 -> 3)", 1, 2, 3, 1.0),
        ("case 4 (edge: saturated, |z| up to ~20)", 6, 3, 3, 4.0),
    ]:
        a, W = rng.standard_normal((n, d_in)), scale * rng.standard_normal((d_in, d_out))
        b, delta = rng.standard_normal(d_out), rng.standard_normal((n, d_out))
        yield Case(label, (a, W, b, delta), partial(_grade_dense, label=label, a=a, W=W, b=b, delta=delta))


def _grade_dense(out, label, a, W, b, delta):
    dW, db, da = unpack(out, 3, "(dL/dW, dL/db, dL/da)")
    L = lambda a_, W_, b_: np.sum(delta * np.tanh(a_ @ W_ + b_))
    z = a @ W + b
    dz = delta * (1.0 - np.tanh(z) ** 2)
    n = len(a)
    transposed = "transposed: dL/dW = a^T dL/dz has the shape of W, (d_in, d_out)"
    return [
        compare(
            f"{label}: dL/dW",
            dW,
            numerical_grad(lambda W_: L(a, W_, b), W),
            THRESHOLD,
            exact=a.T @ dz,
            variants=[
                (MISSING_D1, a.T @ delta),
                (Z_SQUARED, a.T @ (delta * (1 - z * z))),
                (transposed, (a.T @ dz).T),
            ],
            factors={1.0 / n: SPURIOUS_N},
        ),
        compare(
            f"{label}: dL/db",
            db,
            numerical_grad(lambda b_: L(a, W, b_), b),
            THRESHOLD,
            exact=dz.sum(0),
            variants=[(MISSING_D1, delta.sum(0)), (Z_SQUARED, (delta * (1 - z * z)).sum(0))],
            factors={1.0 / n: SPURIOUS_N},
        ),
        compare(
            f"{label}: dL/da",
            da,
            numerical_grad(lambda a_: L(a_, W, b), a),
            THRESHOLD,
            exact=dz @ W.T,
            variants=[
                (MISSING_D1, delta @ W.T),
                (Z_SQUARED, (delta * (1 - z * z)) @ W.T),
                ("transposed weight: dL/da = dL/dz W^T, not dL/dz W", lambda: dz @ W),
            ],
        ),
    ]


# ---------------------------------------------------------------------------- 03: MLP backward
def backprop(sizes, phi, X, y, factor=2.0, mean=True, d1=None, transpose=False, tanh_out=False):
    """The MSE gradient by backprop, with switches that reproduce the usual mistakes."""
    d1 = (lambda z: 1.0 - np.tanh(z) ** 2) if d1 is None else d1
    layers = unflatten(sizes, phi)
    a, zs = [X], []
    for l, (W, b) in enumerate(layers):
        zs.append(a[-1] @ W + b)
        a.append(np.tanh(zs[-1]) if (l < len(layers) - 1 or tanh_out) else zs[-1])
    delta = factor * (a[-1] - y) / (len(X) if mean else 1.0)
    if tanh_out:
        delta = delta * d1(zs[-1])
    grads = [None] * len(layers)
    for l in range(len(layers) - 1, -1, -1):
        W = layers[l][0]
        grads[l] = (a[l].T @ delta, delta.sum(axis=0))
        if l > 0:
            delta = d1(zs[l - 1]) * (delta @ (W if transpose else W.T))
    return flatten(grads)


def mlp_cases():
    rng = np.random.default_rng(303)
    for label, sizes, n, scale in [
        ("case 1 (sizes [1, 8, 6, 1], n=10)", [1, 8, 6, 1], 10, 1.0),
        ("case 2 (sizes [3, 4, 4, 4], n=6)", [3, 4, 4, 4], 6, 1.0),
        ("case 3 (edge: one example, [2, 5, 3, 2])", [2, 5, 3, 2], 1, 1.0),
        ("case 4 (edge: saturated units, weights x 5)", [2, 4, 4, 2], 7, 5.0),
    ]:
        net = MLP(sizes, "tanh")
        phi = scale * net.init(rng)
        X, y = rng.standard_normal((n, sizes[0])), rng.standard_normal((n, sizes[-1]))
        yield Case(
            label, (phi, X, y, tuple(sizes)), partial(_grade_mlp, label=label, net=net, phi=phi, X=X, y=y)
        )


def _grade_mlp(out, label, net, phi, X, y):
    s = net.sizes
    bp = lambda **bug: lambda: backprop(s, phi, X, y, **bug)
    variants = [
        (
            "missing 1/n: the loss is the mean over the n examples, so dL/dyhat = 2 (yhat - y) / n",
            bp(mean=False),
        ),
        ("missing factor 2: tinymeta's mse has no 1/2, so dL/dyhat = 2 (yhat - y) / n", bp(factor=1.0)),
        (
            "missing sigma'(z) when propagating delta back through a hidden layer",
            bp(d1=lambda z: 1.0 + 0 * z),
        ),
        (Z_SQUARED, bp(d1=lambda z: 1.0 - z * z)),
        (
            "sigma' applied to the activation a = tanh(z) instead of to z: 1 - tanh(a)^2",
            bp(d1=lambda z: 1.0 - np.tanh(np.tanh(z)) ** 2),
        ),
        (
            "transposed weight: delta_{l-1} = sigma'(z_{l-1}) * (delta_l W_l^T), not delta_l W_l",
            bp(transpose=True),
        ),
        ("the output layer is linear in tinymeta (yhat = z_L, no tanh)", bp(tanh_out=True)),
    ]
    oracle = numerical_grad(lambda p: net.loss(p, X, y), phi)
    exact = net.loss_and_grad(phi, X, y)[1]
    return [
        compare(
            f"{label}: gradient", out, oracle, THRESHOLD, exact=exact, variants=variants, blocks=blocks(s)
        )
    ]
