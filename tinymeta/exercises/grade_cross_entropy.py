"""Grader of exercise 09: the cross-entropy loss's gradient and output-space Hessian-vector product.

L = -(1/n) sum_i log softmax(yhat_i)[y_i] (tinymeta's convention, tutorial 02 eq. (2.4)):
dL/dyhat = (p - onehot(y)) / n and, row by row, H_out u = (diag(p_i) - p_i p_i^T) u_i / n with
p = softmax(yhat). The exact answers are :mod:`tinymeta.losses`'; the test suite compares them
with central differences of the loss and of the exact gradient.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gradcheck import directional_derivative, numerical_grad
from ..losses import cross_entropy_grad, cross_entropy_hvp, cross_entropy_value
from .checks import Case
from .compare import compare, unpack

THRESHOLD = 1e-12
"""Stable formulas (p u - p (p.u), the explicit diag(p) - p p^T, log-softmax) agree to < 1e-15
on these cases (measured); central differences reach ~1e-10; a wrong formula misses by > 1e-3."""

OVERFLOW = (
    "e^yhat overflows float64 above yhat ~ 709: subtract each row's maximum before the exponential "
    "(softmax(yhat) = softmax(yhat - max(yhat)))"
)
FINITE_DIFFERENCE = (
    "close but not exact: a finite difference of the gradient along u gives this; derive "
    "H_out = (diag(p) - p p^T) / n row by row and multiply"
)
HUGE_THRESHOLD = 1e-9
"""For logits near 800: a log-domain formula carries an absolute error of ~800 eps = 2e-13 in
every log-probability, so correct answers differ by up to ~4e-12 there (measured); finite
differences still miss by more elsewhere."""

NOTES = {("n", "low"): "right for one example only: the 1/n of the mean loss is off"}


def softmax(yhat, axis=1):
    z = yhat - yhat.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def cases(rng):
    n1, c1 = (int(x) for x in rng.integers((5, 3), (8, 6)))
    specs = [
        (f"case 1 (n={n1}, c={c1} classes)", n1, c1, 2.0, False),
        ("case 2 (two classes, n=5)", 5, 2, 2.0, False),
        ("case 3 (edge: one example, c=5)", 1, 5, 2.0, False),
        ("case 4 (edge: logits up to +-800, n=4, c=3)", 4, 3, 2.0, True),
    ]
    for label, n, c, scale, huge in specs:
        yhat = scale * rng.standard_normal((n, c))
        if huge:  # rows with two large logits close together: softmax is well defined, e^yhat is not
            shift = rng.choice([-800.0, 800.0], size=(n, 1))
            shift[0] = 800.0
            yhat[:, :2] += shift + np.array([0.0, -0.5])
        y = rng.integers(0, c, size=n)
        u = rng.standard_normal((n, c))
        args = (yhat, y, u)
        yield Case(
            label,
            args,
            partial(grade, args=args),
            tags={"n": n, "max |yhat|": 800.0 if huge else 10.0},
            expected=lambda a=args: (cross_entropy_grad(a[0], a[1]), cross_entropy_hvp(*a)),
            oracle=partial(oracle, *args),
        )


def oracle(yhat, y, u):
    g = numerical_grad(lambda t: cross_entropy_value(t, y), yhat)
    return g, directional_derivative(lambda t: cross_entropy_grad(t, y), yhat, u, h=1e-5)


def _rows(mask):
    rows = np.flatnonzero(mask.any(axis=1))
    return f"in rows (examples) {', '.join(map(str, rows[:5]))}"


def grade(out, measured, args):
    yhat, y, u = args
    thr = HUGE_THRESHOLD if np.abs(yhat).max() > 100 else THRESHOLD
    g, Hu = unpack(out, 2, "(dL/dyhat, H_out u)")
    n, c = yhat.shape
    p, onehot = softmax(yhat), np.eye(c)[y]
    pc = softmax(yhat, axis=0)
    pu = np.sum(p * u, axis=1, keepdims=True)
    q = p - onehot
    grad_variants = [
        ("1 was subtracted from every class: -onehot(y) subtracts 1 at the label only", (p - 1.0) / n),
        ("-onehot(y) is missing: dL/dyhat = (p - onehot(y)) / n", p / n),
        (
            "softmax over the wrong axis: normalise each row (each example) over the c classes, axis=1",
            (pc - onehot) / n,
        ),
        (
            "log-softmax in place of softmax: dL/dyhat = (softmax(yhat) - onehot(y)) / n",
            lambda: (np.log(p) - onehot) / n,
        ),
    ]
    hvp_variants = [
        (
            "onehot(y) in place of p in the inner product: (diag(p) - p p^T) u = p * u - p (p . u)",
            (p * u - p * np.sum(onehot * u, axis=1, keepdims=True)) / n,
        ),
        (
            "only the diagonal of the output Hessian, p (1 - p) u: the off-diagonal -p_i p_j are missing",
            p * (1 - p) * u / n,
        ),
        (
            "diag(p) only: the Hessian of log-sum-exp is diag(p) - p p^T; the -p (p . u) term is missing",
            p * u / n,
        ),
        (
            "-p p^T only: the Hessian of log-sum-exp is diag(p) - p p^T; the p * u term is missing",
            -p * pu / n,
        ),
        (
            "sum(u) in place of p . u: (diag(p) - p p^T) u = p * u - p (p . u), the inner product weighted "
            "by p",
            (p * u - p * u.sum(axis=1, keepdims=True)) / n,
        ),
        ("(2/n) u is the output Hessian of the MSE; cross-entropy's is (diag(p) - p p^T) / n", 2.0 * u / n),
        (
            "p - onehot(y) in place of p: the output Hessian of cross-entropy does not depend on the labels",
            (q * u - q * np.sum(q * u, axis=1, keepdims=True)) / n,
        ),
        (
            "softmax over the wrong axis: normalise each row (each example) over the c classes, axis=1",
            (pc * u - pc * np.sum(pc * u, axis=1, keepdims=True)) / n,
        ),
    ]
    factors = {float(n): "a missing 1/n (the loss is a mean over the n examples)", 1.0 / n: "a spurious 1/n"}
    shapes = {(c, n): "transposed: one row per example, one column per class"}
    return [
        compare(
            "dL/dyhat",
            g,
            cross_entropy_grad(yhat, y),
            thr,
            variants=grad_variants,
            factors=factors,
            nonfinite=OVERFLOW,
            where=_rows,
            shape_hints=shapes,
            approx=FINITE_DIFFERENCE,
        ),
        compare(
            "H_out u",
            Hu,
            cross_entropy_hvp(yhat, y, u),
            thr,
            variants=hvp_variants,
            factors=factors,
            nonfinite=OVERFLOW,
            where=_rows,
            shape_hints=shapes,
            approx=FINITE_DIFFERENCE,
        ),
    ]
