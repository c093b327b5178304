"""Grader of exercise 04: the Hessian-vector product of a one-hidden-layer net by the R-operator.

The oracle is the central difference of the exact gradient (:meth:`tinymeta.MLP.loss_and_grad`,
itself checked against differences of the loss) along v, step 1e-5: a correct H v lands at
~1e-11; the threshold is 1e-6. The known wrong answers drop one term of the R-pass at a time;
the one that drops them all is the Gauss-Newton product.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gradcheck import directional_derivative
from ..mlp import MLP
from ..params import flatten, unflatten
from .checks import Case, compare
from .grade_layers import THRESHOLD, blocks


def rop(sizes, phi, X, y, v, d2=True, dV=True, Ra=True, d2_sign=1.0):
    """H v of a one-hidden-layer tanh MLP with MSE by the R-operator; switches drop single terms."""
    (W1, b1), (W2, b2) = unflatten(sizes, phi)
    (V1, c1), (V2, c2) = unflatten(sizes, v)
    t = np.tanh(X @ W1 + b1)
    s1, s2 = 1 - t * t, d2_sign * (-2.0 * t * (1 - t * t))
    delta2 = 2.0 * (t @ W2 + b2 - y) / len(X)
    Rz1 = X @ V1 + c1
    Rd2 = 2.0 * ((s1 * Rz1) @ W2 + t @ V2 + c2) / len(X)
    Re1 = Rd2 @ W2.T + (delta2 @ V2.T if dV else 0.0)
    Rd1 = (s2 * Rz1 * (delta2 @ W2.T) if d2 else 0.0) + s1 * Re1
    RgW2 = ((s1 * Rz1).T @ delta2 if Ra else 0.0) + t.T @ Rd2
    return flatten([(X.T @ Rd1, Rd1.sum(0)), (RgW2, Rd2.sum(0))])


def hvp_cases():
    rng = np.random.default_rng(404)
    for label, sizes, n, kind in [
        ("case 1 (sizes [1, 10, 1], n=8)", [1, 10, 1], 8, "unit"),
        ("case 2 (sizes [2, 5, 3], n=6)", [2, 5, 3], 6, "unit"),
        ("case 3 (edge: one example, [3, 4, 2])", [3, 4, 2], 1, "unit"),
        ("case 4 (edge: v = a first-layer weight axis)", [2, 4, 2], 5, "axis"),
        ("case 5 (edge: v = 0)", [2, 3, 2], 4, "zero"),
    ]:
        net = MLP(sizes, "tanh")
        phi = net.init(rng)
        X, y = rng.standard_normal((n, sizes[0])), rng.standard_normal((n, sizes[-1]))
        v = rng.standard_normal(net.num_params)
        v = {"unit": v / np.linalg.norm(v), "axis": np.eye(net.num_params)[0], "zero": 0 * v}[kind]
        yield Case(
            label,
            (phi, X, y, v, tuple(sizes)),
            partial(_grade_hvp, label=label, net=net, phi=phi, X=X, y=y, v=v),
        )


def _grade_hvp(out, label, net, phi, X, y, v):
    s, n = net.sizes, len(X)
    R = lambda **bug: lambda: rop(s, phi, X, y, v, **bug)
    variants = [
        ("missing sigma'' term: R{delta_1} = sigma''(z_1) R{z_1} e_1 + sigma'(z_1) R{e_1}", R(d2=False)),
        ("sign error in sigma'': tanh''(z) = -2 tanh(z) (1 - tanh(z)^2)", R(d2_sign=-1.0)),
        (
            "missing delta_2 V_2^T in R{e_1} = R{delta_2} W_2^T + delta_2 V_2^T "
            "(the product rule on e_1 = delta_2 W_2^T)",
            R(dV=False),
        ),
        ("missing R{a_1}^T delta_2 in R{dL/dW_2} = R{a_1}^T delta_2 + a_1^T R{delta_2}", R(Ra=False)),
        (
            "this is the Gauss-Newton product J^T H_out J v: it drops every term with the residual delta_2 "
            "(the sigma'' term, delta_2 V_2^T and R{a_1}^T delta_2)",
            R(d2=False, dV=False, Ra=False),
        ),
    ]
    oracle = directional_derivative(lambda p: net.loss_and_grad(p, X, y)[1], phi, v, h=1e-5)
    return [
        compare(
            f"{label}: H v",
            out,
            oracle,
            THRESHOLD,
            exact=net.hvp(phi, X, y, v),
            variants=variants,
            factors={
                float(n): "missing 1/n: the output Hessian of the mean loss is (2/n) I",
                0.5: "missing factor 2: R{delta_2} = (2/n) R{yhat}",
            },
            blocks=blocks(s),
        )
    ]
