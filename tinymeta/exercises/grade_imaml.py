"""Grader of exercise 15: the implicit iMAML meta-gradient at a given inner solution phi*.

phi* minimises L_A(u) + (lam/2) ||u - phi||^2; differentiating its stationarity condition
grad L_A(phi*) + lam (phi* - phi) = 0 in phi gives d phi*/d phi = (I + H_A(phi*)/lam)^{-1}, so::

    g = (I + H_A(phi*) / lam)^{-1} grad L_B(phi*)

The exact answer is a dense solve with the explicit Hessian (the sizes are small); the test suite
compares it with central differences of F(phi) = L_B(phi*(phi)), each phi* solved again.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gradcheck import numerical_grad
from ..imaml import imaml_adapt
from ..mlp import MLP
from .checks import Case
from .compare import compare
from .diagnose import switches
from .grade_maml import sample_tasks
from .layout import blocks

THRESHOLD = 1e-8
"""A dense solve agrees with the exact answer to < 1e-14 and CG asked for a relative residual of
1e-10 to < 1e-9 (the residual times cond(I + H/lam) <= 10 here; measured). CG at scipy's default
rtol = 1e-5 misses by ~1e-6 and a wrong formula by > 1e-3."""

APPROX = (
    "close but not exact: CG stopped at a loose tolerance (scipy's default rtol is 1e-5); ask for "
    "rtol=1e-10, or solve densely with net.hessian at these sizes"
)
SOLVE_TOL = 1e-12
"""Proximal-gradient norm of the phi* the cases are built with (the round-off floor is ~1e-15)."""


def implicit(net, phi, phi_star, task, lam, no_solve=False, lam_times=False, hess_at_phi=False,
             grad_at_phi=False, hess_query=False, minus=False, multiplied=False, neumann=False,
             support_grad=False, no_lam=False):  # fmt: skip
    """(I + H_A(phi*)/lam)^{-1} grad L_B(phi*) by a dense solve; each switch makes one mistake."""
    xs, ys, xq, yq = task
    v = net.loss_and_grad(phi if grad_at_phi else phi_star, *((xs, ys) if support_grad else (xq, yq)))[1]
    if no_solve:
        return v
    H = net.hessian(phi if hess_at_phi else phi_star, *((xq, yq) if hess_query else (xs, ys)))
    scaled = H if no_lam else (lam * H if lam_times else H / lam)
    A = np.eye(v.size) + (-scaled if minus else scaled)
    if multiplied:
        return A @ v
    if neumann:
        return v - scaled @ v
    return np.linalg.solve(A, v)


NAMED = [
    ("the implicit Jacobian is missing (first-order iMAML): the gradient solves "
     "(I + H_A(phi*)/lam) g = grad L_B(phi*)", dict(no_solve=True)),
    ("lam multiplies the Hessian instead of dividing it: (I + H/lam), from d phi*/d phi = "
     "lam (H + lam I)^{-1}", dict(lam_times=True)),
    ("lam is missing: the system is (I + H/lam) g = grad L_B(phi*), not (I + H) g", dict(no_lam=True)),
    ("Hessian taken at phi: the implicit Jacobian is evaluated at the inner solution phi*",
     dict(hess_at_phi=True)),
    ("the query gradient is taken at phi: it belongs at the inner solution phi*", dict(grad_at_phi=True)),
    ("the Hessian is of the support loss L_A (the inner problem's loss), not of the query loss",
     dict(hess_query=True)),
    ("the right-hand side is the query gradient grad L_B(phi*), not the support gradient",
     dict(support_grad=True)),
    ("sign error: the system is (I + H/lam) g = grad L_B(phi*), not (I - H/lam)", dict(minus=True)),
    ("you multiplied by (I + H/lam): the gradient SOLVES a linear system with it (conjugate gradients "
     "on HVPs, or a dense solve)", dict(multiplied=True)),
    ("a truncated series: (I - H/lam) v is the first term of the Neumann series of (I + H/lam)^{-1}; "
     "solve the system instead", dict(neumann=True)),
]  # fmt: skip


def grade(out, measured, args):
    net = args[0]
    found = switches(lambda **bug: implicit(*args, **bug), NAMED)
    return [compare("meta-gradient", out, implicit(*args), THRESHOLD, **found, blocks=blocks(net.sizes),
                    approx=APPROX)]  # fmt: skip


def cases(rng):
    lam = [float(np.round(rng.uniform(lo, hi), 2)) for lo, hi in ((1.0, 3.0), (3.0, 10.0), (0.8, 2.0))]
    specs = [
        (f"case 1 (sine task, tanh, lam={lam[0]})", MLP([1, 5, 5, 1], "tanh"), "sine", lam[0]),
        (f"case 2 (sine task, softplus, lam={lam[1]})", MLP([1, 5, 5, 1], "softplus"), "sine", lam[1]),
        (f"case 3 ([2, 5, 3] regression, lam={lam[2]})", MLP([2, 5, 3], "tanh"), "wide", lam[2]),
        ("case 4 (edge: large lam = 100, phi* near phi)", MLP([1, 5, 5, 1], "tanh"), "sine", 100.0),
    ]
    for label, net, kind, lam_ in specs:
        phi, task = net.init(rng), sample_tasks(kind, rng)[0]
        phi_star = imaml_adapt(net, phi, task.x_support, task.y_support, lam_, tol=SOLVE_TOL)
        args = (net, phi, phi_star, task, lam_)
        yield Case(label, args, partial(grade, args=args), tags={"lam": lam_},
                   expected=lambda args=args: implicit(*args), oracle=partial(oracle, *args))  # fmt: skip


def oracle(net, phi, phi_star, task, lam):
    """Central differences of F(phi) = L_B(phi*(phi)), every phi* solved again to SOLVE_TOL."""

    def F(p):
        star = imaml_adapt(net, p, task.x_support, task.y_support, lam, tol=SOLVE_TOL)
        return net.loss(star, task.x_query, task.y_query)

    return numerical_grad(F, phi)
