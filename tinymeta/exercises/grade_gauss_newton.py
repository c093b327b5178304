"""Grader of exercise 10: the Gauss-Newton vector product G v = J^T H_out J v.

One-hidden-layer tanh net, yhat = tanh(X W_1 + b_1) W_2 + b_2, J = d yhat / d phi, and H_out
the loss's output-space Hessian ((2/n) I for MSE, (diag(p) - p p^T)/n per row for
cross-entropy). G v is J v (the R-forward pass), H_out, then J^T (backprop of the result):
tutorial 02's R-operator without the terms that contain the residual. The exact answer is
:func:`gn`; the test suite compares it with J^T H_out J v built from a finite-difference
Jacobian of the network's output.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gradcheck import numerical_grad
from ..losses import LOSSES
from ..mlp import MLP
from ..params import flatten, unflatten
from .checks import Case
from .compare import compare, mean_loss_factors
from .diagnose import switches
from .grade_dense import wrong_tanh_d1
from .layout import blocks

THRESHOLD = 1e-12
"""Exact products in any order agree to < 1e-15 (measured); anything built from finite
differences misses by > 1e-10; a wrong term misses by > 1e-3."""

NOTES = {("cross_entropy", "low"): "right for MSE only: look at the output Hessian of cross-entropy"}


def gn(
    sizes,
    phi,
    X,
    y,
    v,
    loss,
    h_out=True,
    mse_out=False,
    RaW2=True,
    tV2=True,
    c=True,
    d1_back=True,
    d1=None,
    h_identity=False,
    transpose=False,
    V2t=False,
):
    """J^T H_out J v for a one-hidden-layer tanh net; each switch makes one mistake."""
    (W1, b1), (W2, b2) = unflatten(sizes, phi)
    (V1, C1), (V2, C2) = unflatten(sizes, v)
    z1 = X @ W1 + b1
    t = np.tanh(z1)
    s1 = 1 - t * t if d1 is None else d1(z1)
    Rz1 = X @ V1 + (C1 if c else 0.0)
    Ryhat = (
        ((s1 * Rz1) @ W2 if RaW2 else 0.0)
        + ((t @ V2.T if V2t else t @ V2) if tV2 else 0.0)
        + (C2 if c else 0.0)
    )
    Ryhat = Ryhat + np.zeros((len(X), sizes[-1]))
    if not h_out:
        u = Ryhat
    elif mse_out or loss == "mse":
        u = 2.0 * Ryhat / len(X)
    elif h_identity:
        u = Ryhat / len(X)
    else:
        u = LOSSES[loss].hvp(t @ W2 + b2, y, Ryhat)
    e1 = u @ (W2 if transpose else W2.T)
    r1 = s1 * e1 if d1_back else e1
    return flatten([(X.T @ r1, r1.sum(0)), (t.T @ u, u.sum(0))])


def oracle(net, phi, X, y, v, loss):
    """J^T H_out J v with J the central-difference Jacobian of the output: no R-operator in it."""
    J = numerical_grad(lambda p: net.forward(p, X), phi)  # shape (P, n, c): J^T
    Jv = np.tensordot(v, J, axes=1)
    yhat = net.forward(phi, X)
    return np.tensordot(J, LOSSES[loss].hvp(yhat, y, Jv), axes=([1, 2], [0, 1]))


def cases(rng):
    h, n1, n2 = (int(x) for x in rng.integers((5, 6, 5), (9, 10, 9)))
    for label, sizes, n, loss in [
        (f"case 1 (MSE, sizes [2, {h}, 2], n={n1})", [2, h, 2], n1, "mse"),
        (f"case 2 (cross-entropy, sizes [2, {h}, 3], n={n2})", [2, h, 3], n2, "cross_entropy"),
        ("case 3 (edge: MSE, one example, [3, 4, 3])", [3, 4, 3], 1, "mse"),
        ("case 4 (cross-entropy, square layers [3, 3, 3], n=6)", [3, 3, 3], 6, "cross_entropy"),
    ]:
        net = MLP(sizes, "tanh")
        phi = net.init(rng) * 1.5
        X = rng.standard_normal((n, sizes[0]))
        y = rng.standard_normal((n, sizes[-1])) if loss == "mse" else rng.integers(0, sizes[-1], size=n)
        v = rng.standard_normal(net.num_params)
        args = (phi, X, y, v / np.linalg.norm(v), tuple(sizes), loss)
        yield Case(
            label,
            args,
            partial(grade, net=net, args=args),
            tags={"n": n, "cross_entropy": int(loss == "cross_entropy")},
            expected=partial(gn, *args[4:5], *args[:4], loss),
            oracle=partial(oracle, net, *args[:4], loss),
        )


def grade(out, measured, net, args):
    phi, X, y, v, s, loss = args
    G = lambda **bug: bug
    variants = [
        ("that is the gradient dL/dphi, not G v", lambda: net.loss_and_grad(phi, X, y, loss)[1]),
        (
            "this is the full Hessian-vector product H v; Gauss-Newton keeps only J^T H_out J v and drops "
            "every term with the residual (the sigma'' term, delta_2 V_2^T, R{a_1}^T delta_2)",
            lambda: net.hvp(phi, X, y, v, loss),
        ),
        ("missing the output Hessian: G = J^T H_out J, not J^T J", G(h_out=False)),
        (
            "(2/n) I is the output Hessian of the MSE; cross-entropy's is (diag(p) - p p^T) / n per example",
            G(mse_out=True),
        ),
        ("J v misses R{a_1} W_2: R{yhat} = (sigma'(z_1) * R{z_1}) W_2 + a_1 V_2 + c_2", G(RaW2=False)),
        ("J v misses a_1 V_2: R{yhat} = (sigma'(z_1) * R{z_1}) W_2 + a_1 V_2 + c_2", G(tV2=False)),
        ("the bias directions are missing: R{z_1} = X V_1 + c_1 and R{yhat} = ... + c_2", G(c=False)),
        ("missing sigma'(z_1) in J^T: backpropagate u = H_out J v through the tanh layer", G(d1_back=False)),
        *[(text, G(d1=d1)) for text, d1 in wrong_tanh_d1()[1:]],
        (
            "(1/n) I is not the output Hessian of cross-entropy: it is (diag(p) - p p^T) / n per example",
            G(h_identity=True),
        ),
        ("transposed weight in J^T: e_1 = u W_2^T, not u W_2", G(transpose=True)),
        ("transposed V_2 in J v: R{yhat} = ... + a_1 V_2 + c_2, with V_2 shaped like W_2", G(V2t=True)),
    ]
    n = len(X)
    factors = mean_loss_factors(n, s[-1], mse=loss == "mse")
    exact = gn(s, phi, X, y, v, loss)
    found = switches(lambda **bug: gn(s, phi, X, y, v, loss, **bug), variants)
    return [compare("G v", out, exact, THRESHOLD, **found, factors=factors, blocks=blocks(s))]
