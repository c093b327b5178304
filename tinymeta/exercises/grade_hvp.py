"""Grader of exercise 04: the Hessian-vector product of a one-hidden-layer net by the R-operator.

The answer is compared with the exact H v (:meth:`tinymeta.MLP.hvp`, the same R-operator
written for any depth) to 1e-13: an R-operator is exact up to round-off, a finite-difference
product is not, and the exercise asks for the R-operator. The test suite checks the exact H v
against central differences of the exact gradient. The known wrong answers drop or change one
term of the R-pass at a time (:func:`rop`); dropping every residual term is Gauss-Newton.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gradcheck import directional_derivative
from ..mlp import MLP
from ..params import flatten, unflatten
from .checks import Case
from .compare import compare, mean_loss_factors
from .diagnose import switches
from .grade_dense import wrong_tanh_d1
from .layout import blocks

THRESHOLD = 1e-13
"""Correct R-operators agree with tinymeta's to < 4e-16 (measured on 300 random networks);
central differences of the exact gradient reach 5e-12 at best (h = 1e-6; 2e-11 typically) and
Richardson extrapolation 4e-14 at best (3e-12 typically); a missing term misses by > 1e-3."""

FINITE_DIFFERENCE = (
    "close to H v but not exact: this is what a finite-difference product (g(phi + h v) - "
    "g(phi - h v)) / 2h gives (truncation h^2, round-off eps/h). The exercise asks for the "
    "R-operator, exact to round-off: apply R{.} to every line of the forward and backward pass"
)
NOTES = {("n", "low"): "right for one example only: the 1/n of the mean loss is off"}


def rop(
    sizes,
    phi,
    X,
    y,
    v,
    d2=True,
    dV=True,
    Ra=True,
    d2_sign=1.0,
    d1=None,
    d2_form="ok",
    c1=True,
    c2=True,
    tV2=True,
    RaW2=True,
    Vt=False,
    two_R=2.0,
    Ra_d1=True,
    Re_d1=True,
):
    """H v of a one-hidden-layer tanh MLP with MSE by the R-operator; switches change single terms."""
    (W1, b1), (W2, b2) = unflatten(sizes, phi)
    (V1, C1), (V2, C2) = unflatten(sizes, v)
    z1 = X @ W1 + b1
    t = np.tanh(z1)
    s1 = 1 - t * t if d1 is None else d1(z1)
    s2 = d2_sign * -2.0 * {"ok": t * (1 - t * t), "no_t": 1 - t * t, "one_minus_t": t * (1 - t)}[d2_form]
    delta2 = 2.0 * (t @ W2 + b2 - y) / len(X)
    Rz1 = X @ V1 + (C1 if c1 else 0.0)
    Ra1 = s1 * Rz1 if Ra_d1 else Rz1
    Ryhat = (Ra1 @ W2 if RaW2 else 0.0) + (t @ V2 if tV2 else 0.0) + (C2 if c2 else 0.0)
    Rd2 = two_R * Ryhat / len(X)
    Re1 = Rd2 @ W2.T + ((delta2 @ V2 if Vt else delta2 @ V2.T) if dV else 0.0)
    Rd1 = (s2 * Rz1 * (delta2 @ W2.T) if d2 else 0.0) + (s1 * Re1 if Re_d1 else Re1)
    RgW2 = (Ra1.T @ delta2 if Ra else 0.0) + t.T @ Rd2
    return flatten([(X.T @ Rd1, Rd1.sum(0)), (RgW2, Rd2.sum(0))])


def cases(rng):
    h, n1, n2 = (int(x) for x in rng.integers((6, 6, 4), (12, 10, 8)))
    for label, sizes, n, kind in [
        (f"case 1 (sizes [1, {h}, 1], n={n1})", [1, h, 1], n1, "unit"),
        (f"case 2 (sizes [2, 5, 3], n={n2})", [2, 5, 3], n2, "unit"),
        ("case 3 (edge: one example, [3, 4, 2])", [3, 4, 2], 1, "unit"),
        ("case 4 (edge: v = a first-layer weight axis, [2, 4, 4])", [2, 4, 4], 5, "axis"),
        ("case 5 (edge: v = 0)", [2, 3, 2], 4, "zero"),
    ]:
        net = MLP(sizes, "tanh")
        phi = net.init(rng)
        X, y = rng.standard_normal((n, sizes[0])), rng.standard_normal((n, sizes[-1]))
        v = rng.standard_normal(net.num_params)
        v = {
            "unit": v / np.linalg.norm(v),
            "axis": np.eye(net.num_params)[int(rng.integers(0, 4))],
            "zero": 0 * v,
        }[kind]
        args = (phi, X, y, v, tuple(sizes))
        yield Case(
            label,
            args,
            partial(grade, net=net, args=args),
            tags={"n": n},
            expected=partial(net.hvp, phi, X, y, v),
            oracle=lambda net=net, phi=phi, X=X, y=y, v=v: directional_derivative(
                lambda p: net.loss_and_grad(p, X, y)[1], phi, v, h=1e-5
            ),
        )


def grade(out, measured, net, args):
    phi, X, y, v, s = args
    n = len(X)
    R = lambda **bug: bug
    variants = [
        (
            "that is the gradient dL/dphi, not H v: the R-operator differentiates the gradient along v",
            lambda: net.loss_and_grad(phi, X, y)[1],
        ),
        ("missing sigma'' term: R{delta_1} = sigma''(z_1) R{z_1} e_1 + sigma'(z_1) R{e_1}", R(d2=False)),
        ("sign error in sigma'': tanh''(z) = -2 tanh(z) (1 - tanh(z)^2)", R(d2_sign=-1.0)),
        (
            "wrong sigma'': tanh''(z) = -2 tanh(z) (1 - tanh(z)^2); the factor tanh(z) is missing",
            R(d2_form="no_t"),
        ),
        (
            "wrong sigma'': tanh''(z) = -2 tanh(z) (1 - tanh(z)^2), not -2 tanh(z) (1 - tanh(z))",
            R(d2_form="one_minus_t"),
        ),
        *[(text, R(d1=d1)) for text, d1 in wrong_tanh_d1()[1:]],
        (
            "missing delta_2 V_2^T in R{e_1} = R{delta_2} W_2^T + delta_2 V_2^T "
            "(the product rule on e_1 = delta_2 W_2^T)",
            R(dV=False),
        ),
        (
            "transposed V_2: R{e_1} = R{delta_2} W_2^T + delta_2 V_2^T, with V_2 transposed like W_2",
            R(Vt=True),
        ),
        ("missing R{a_1}^T delta_2 in R{dL/dW_2} = R{a_1}^T delta_2 + a_1^T R{delta_2}", R(Ra=False)),
        (
            "missing factor 2 in R{delta_2} = (2/n) R{yhat} (the output Hessian of the MSE is (2/n) I)",
            R(two_R=1.0),
        ),
        (
            "missing sigma'(z_1) in R{a_1} = sigma'(z_1) * R{z_1} (the R-forward pass through the tanh)",
            R(Ra_d1=False),
        ),
        (
            "missing sigma'(z_1) before R{e_1}: R{delta_1} = sigma''(z_1) R{z_1} e_1 + sigma'(z_1) R{e_1}",
            R(Re_d1=False),
        ),
        ("missing c_1 in R{z_1} = X V_1 + c_1 (the bias has a direction too)", R(c1=False)),
        ("missing c_2 in R{yhat} = R{a_1} W_2 + a_1 V_2 + c_2", R(c2=False)),
        (
            "missing a_1 V_2 in R{yhat} = R{a_1} W_2 + a_1 V_2 + c_2 (the product rule on a_1 W_2)",
            R(tV2=False),
        ),
        (
            "missing R{a_1} W_2 in R{yhat} = R{a_1} W_2 + a_1 V_2 + c_2 (the product rule on a_1 W_2)",
            R(RaW2=False),
        ),
        (
            "this is the Gauss-Newton product J^T H_out J v: it drops every term with the residual delta_2 "
            "(the sigma'' term, delta_2 V_2^T and R{a_1}^T delta_2)",
            R(d2=False, dV=False, Ra=False),
        ),
    ]
    factors = {
        **mean_loss_factors(n, s[-1]),
        float(n): "missing 1/n: the output Hessian of the mean loss is (2/n) I",
        0.5: "missing factor 2: R{delta_2} = (2/n) R{yhat}",
    }
    return [
        compare(
            "H v",
            out,
            net.hvp(phi, X, y, v),
            THRESHOLD,
            **switches(lambda **bug: rop(s, phi, X, y, v, **bug), variants),
            factors=factors,
            blocks=blocks(s),
            approx=FINITE_DIFFERENCE,
        )
    ]
