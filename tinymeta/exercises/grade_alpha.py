"""Grader of exercise 12: dF/dalpha, the derivative of MAML's meta-objective w.r.t. the step size.

F(alpha) = L_B(phi_k) with phi_0 = phi and phi_{i+1} = phi_i - alpha grad L_A(phi_i). With
u_i = d phi_i / d alpha: u_0 = 0, u_{i+1} = (I - alpha H_i) u_i - grad L_A(phi_i), and
dF/dalpha = grad L_B(phi_k) . u_k (forward mode; a backward pass with the MAML vector gives the
same number). The exact answer is :func:`alpha_grad`; the test suite compares it with the
central difference of :func:`tinymeta.meta_objective` in alpha.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..maml import meta_objective
from .checks import Case
from .compare import compare
from .diagnose import switches
from .grade_maml import case_net, random_alpha, sample_tasks

THRESHOLD = 1e-11
"""Forward- and backward-mode implementations agree to < 1e-14 relative (measured); a central
difference in alpha reaches ~1e-10 at best; a wrong formula misses by > 1e-3."""

NOTES = {
    ("k", "low"): "with one inner step u_1 = -grad L_A(phi_0) needs no Hessian: look at how "
    "u_i carries the earlier steps through (I - alpha H_i)"
}


def alpha_grad(
    net,
    phi,
    task,
    alpha,
    k,
    sign=-1.0,
    hess=True,
    hess_alpha=None,
    last_only=False,
    at_phi=False,
    outer_support=False,
    hess_shift=0,
    hess_query=False,
    hess_at_phi=False,
    hess_of_grad=False,
    outer_at_phi=False,
):
    """dF/dalpha by forward mode; each switch makes one mistake."""
    xs, ys, xq, yq = task
    grad = lambda p, X, Y: net.loss_and_grad(p, X, Y)[1]
    traj = [phi]
    for _ in range(k):
        traj.append(traj[-1] - alpha * grad(traj[-1], xs, ys))
    u = np.zeros_like(phi)
    a = alpha if hess_alpha is None else hess_alpha
    for i in range(k):
        g = grad(traj[0] if at_phi else traj[i], xs, ys)
        if last_only:
            u = -g
            continue
        at = traj[0] if hess_at_phi else traj[min(i + hess_shift, k)]
        Hu = net.hvp(at, *((xq, yq) if hess_query else (xs, ys)), g if hess_of_grad else u) if hess else 0.0
        u = u + sign * a * Hu - g
    return float(np.dot(grad(traj[0 if outer_at_phi else k], *((xs, ys) if outer_support else (xq, yq))), u))


def cases(rng):
    k2, k4 = int(rng.integers(2, 4)), int(rng.integers(4, 6))
    a = [
        random_alpha(rng, 0.02, 0.06),
        random_alpha(rng, 0.01, 0.03),
        random_alpha(rng, 0.05, 0.1),
        random_alpha(rng, 0.05, 0.15),
    ]
    for label, kind, alpha, k in [
        (f"case 1 (sine task, k=1, alpha={a[3]})", "sine", a[3], 1),
        (f"case 2 (sine task, k={k2}, alpha={a[0]})", "sine", a[0], k2),
        (f"case 3 (sine task, k={k4}, alpha={a[1]})", "sine", a[1], k4),
        ("case 4 (edge: k=0, F does not depend on alpha)", "sine", 0.05, 0),
        (f"case 5 ([2, 6, 3] regression, k=3, alpha={a[2]})", "wide", a[2], 3),
    ]:
        net = case_net(kind)
        phi, task = net.init(rng), sample_tasks(kind, rng)[0]
        args = (net, phi, task, alpha, k)
        yield Case(
            label,
            args,
            partial(grade, args=args),
            tags={"k": k},
            expected=partial(alpha_grad, *args),
            oracle=partial(oracle, *args),
        )


def oracle(net, phi, task, alpha, k, h=1e-6):
    return (meta_objective(net, phi, task, alpha + h, k) - meta_objective(net, phi, task, alpha - h, k)) / (
        2 * h
    )


def grade(out, measured, args):
    net, phi, task, alpha, k = args
    d = lambda **bug: bug
    variants = [
        (
            "H_i multiplies u_i = d phi_i / d alpha, not the gradient: u_{i+1} = (I - alpha H_i) u_i - g_i",
            d(hess_of_grad=True),
        ),
        ("the query gradient is taken at phi_k: dF/dalpha = grad L_B(phi_k) . u_k", d(outer_at_phi=True)),
        (
            "Hessian taken at the wrong iterate: every H_i was taken at phi; H_i belongs at phi_i",
            d(hess_at_phi=True),
        ),
        (
            "the Hessian terms are missing: phi_i itself depends on alpha, so d phi_{i+1} / d alpha = "
            "(I - alpha H_i) d phi_i / d alpha - grad L_A(phi_i), not -grad L_A(phi_i) alone",
            d(hess=False),
        ),
        (
            "only the last inner step: every step moves phi_k, so d phi_k / d alpha collects all k steps",
            d(last_only=True),
        ),
        (
            "every inner gradient was taken at phi: grad L_A(phi_i) is taken at the current iterate",
            d(at_phi=True),
        ),
        ("sign error in the Hessian term: u_{i+1} = (I - alpha H_i) u_i - grad L_A(phi_i)", d(sign=1.0)),
        (
            "missing alpha in the Hessian term: u_{i+1} = (I - alpha H_i) u_i - grad L_A(phi_i)",
            d(hess_alpha=1.0),
        ),
        (
            "the outer gradient is of the query loss L_B(phi_k), not of the support loss",
            d(outer_support=True),
        ),
        (
            "Hessian taken at the wrong iterate: H_i belongs at phi_i, where step i starts, not at phi_{i+1}",
            d(hess_shift=1),
        ),
        (
            "the Hessians are of the support loss L_A (the loss of the inner steps), not of the query loss",
            d(hess_query=True),
        ),
    ]
    factors = {
        alpha: "multiplied by alpha",
        1.0 / alpha: "divided by alpha",
        float(max(k, 1)): "a factor k",
        1.0 / max(k, 1): "divided by k",
    }
    shapes = {(phi.size,): "dF/dalpha is one number; a vector of P values is dF/dphi"}
    return [
        compare(
            "dF/dalpha",
            out,
            alpha_grad(*args),
            THRESHOLD,
            **switches(lambda **bug: alpha_grad(*args, **bug), variants),
            factors=factors,
            shape_hints=shapes,
        )
    ]
