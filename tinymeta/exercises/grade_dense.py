"""Grader of exercise 02: the vector-Jacobian product of one dense tanh layer.

h = tanh(a W + b) on a batch a of shape (n, d_in); given delta = dL/dh the student returns
dL/dW, dL/db and dL/da. The exact answers use dL/dz = delta * (1 - tanh(z)^2); the oracle the
test suite compares them with is the central difference of L = sum(delta * h).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gradcheck import numerical_grad
from .checks import Case
from .compare import compare, unpack

THRESHOLD = 1e-12
"""Correct answers (1 - tanh^2 or 1/cosh^2, any order of the products) agree to < 1e-15 on these
cases (measured); a central difference reaches ~1e-10; a wrong formula misses by > 1e-3."""

MISSING_D1 = "missing sigma'(z): multiply delta by sigma'(z) = 1 - tanh(z)^2 before the matrix products"
Z_SQUARED = "1 - z^2 is not tanh'(z): tanh'(z) = 1 - tanh(z)^2 (the square of the activation, not of z)"
NOT_SQUARED = "1 - tanh(z) is not tanh'(z): tanh'(z) = 1 - tanh(z)^2 (the square is missing)"
OF_H = (
    "sigma' was applied to the activation a = tanh(z): tanh'(z) = 1 - tanh(z)^2 = 1 - a^2, not 1 - tanh(a)^2"
)
SPURIOUS_N = "a spurious 1/n: sum over the rows of the batch (the loss already is a sum), do not average"
SQUARED_WRONG = "(1 - tanh(z))^2 is not tanh'(z): tanh'(z) = 1 - tanh(z)^2 (square tanh, then subtract)"
SECH = "1 / cosh(z) is not tanh'(z): tanh'(z) = 1 / cosh(z)^2 = 1 - tanh(z)^2"


def wrong_tanh_d1():
    """``[(hint, d1)]``: the usual wrong derivatives of tanh, each a function of the pre-activation z."""
    return [
        (MISSING_D1, lambda z: np.ones_like(z)),
        (Z_SQUARED, lambda z: 1.0 - z * z),
        (NOT_SQUARED, lambda z: 1.0 - np.tanh(z)),
        (SQUARED_WRONG, lambda z: (1.0 - np.tanh(z)) ** 2),
        (SECH, lambda z: 1.0 / np.cosh(z)),
        (OF_H, lambda z: 1.0 - np.tanh(np.tanh(z)) ** 2),
        (
            "1 + tanh(z)^2 is not tanh'(z): tanh'(z) = 1 - tanh(z)^2 (a minus sign)",
            lambda z: 1.0 + np.tanh(z) ** 2,
        ),
    ]


NOTES = {("n", "low"): "a factor that is 1 when n = 1: a 1/n (or a mean) that should not be there"}


def cases(rng):
    d_in, d_out = rng.integers(2, 5, size=2)
    d_sq, n1, n2 = (int(x) for x in rng.integers((2, 4, 3), (5, 7, 6)))
    specs = [
        (f"case 1 (n={n1}, {d_in} -> {d_out + 1})", n1, d_in, d_out + 1, 1.0),
        (f"case 2 (square layer {d_sq} -> {d_sq}, n={n2})", n2, d_sq, d_sq, 1.0),
        ("case 3 (edge: one example, 2 -> 3)", 1, 2, 3, 1.0),
        ("case 4 (edge: saturated units, |z| up to ~10)", int(rng.integers(5, 8)), 3, 3, 3.0),
    ]
    for label, n, di, do, scale in specs:
        a, W = rng.standard_normal((n, di)), scale * rng.standard_normal((di, do))
        b, delta = rng.standard_normal(do), rng.standard_normal((n, do))
        args = (a, W, b, delta)
        yield Case(
            label,
            args,
            partial(grade, args=args),
            tags={"n": n},
            expected=partial(exact, *args),
            oracle=partial(oracle, *args),
        )


def exact(a, W, b, delta):
    dz = delta * (1.0 - np.tanh(a @ W + b) ** 2)
    return a.T @ dz, dz.sum(axis=0), dz @ W.T


def oracle(a, W, b, delta):
    L = lambda a_, W_, b_: np.sum(delta * np.tanh(a_ @ W_ + b_))
    return (
        numerical_grad(lambda W_: L(a, W_, b), W),
        numerical_grad(lambda b_: L(a, W, b_), b),
        numerical_grad(lambda a_: L(a_, W, b), a),
    )


def grade(out, measured, args):
    a, W, b, delta = args
    dW, db, da = unpack(out, 3, "(dL/dW, dL/db, dL/da)")
    n, (d_in, d_out) = len(a), W.shape
    z = a @ W + b
    t = np.tanh(z)
    dz = delta * (1.0 - t**2)
    wrong_dz = {text: delta * d1(z) for text, d1 in wrong_tanh_d1()}
    wrong_dz["the upstream gradient delta is missing: dL/dz = delta * tanh'(z)"] = 1.0 - t**2
    factors = {1.0 / n: SPURIOUS_N}
    order = "the outputs are in the order (dL/dW, dL/db, dL/da)"
    shapes_b = {(n, d_out): "dL/db has the shape of b: sum dL/dz over the rows (examples)", (n, d_in): order}
    shapes_a = {(d_in, d_out): order, (d_out,): order, (n, d_out): "the shape of dL/dz: dL/da = dL/dz W^T"}
    return [
        compare(
            "dL/dW",
            dW,
            a.T @ dz,
            THRESHOLD,
            variants=[(h, a.T @ w) for h, w in wrong_dz.items()]
            + [("transposed: dL/dW = a^T dL/dz has the shape of W, (d_in, d_out)", (a.T @ dz).T)],
            factors=factors,
            shape_hints={(n, d_in): order, (d_out,): order},
        ),
        compare(
            "dL/db",
            db,
            dz.sum(0),
            THRESHOLD,
            variants=[(h, w.sum(0)) for h, w in wrong_dz.items()],
            factors=factors,
            shape_hints=shapes_b,
        ),
        compare(
            "dL/da",
            da,
            dz @ W.T,
            THRESHOLD,
            variants=[(h, w @ W.T) for h, w in wrong_dz.items()]
            + [
                ("transposed weight: dL/da = dL/dz W^T, not dL/dz W", lambda: dz @ W),
                ("that is dL/dz: dL/da = dL/dz W^T, the product with W^T is missing", dz),
            ],
            factors=factors,
            shape_hints=shapes_a,
        ),
    ]
