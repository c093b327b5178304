"""Graders of exercises 05-07: the exact MAML gradient (k = 1, then any k) and the Reptile step.

The MAML oracle is the central-difference gradient, coordinate by coordinate, of the full
meta-objective F(phi) = L_query(U^k(phi)) (:func:`tinymeta.maml.meta_objective`): nothing in
it knows about Hessians, so first-order MAML fails it. The Reptile step has no derivative to
check; its oracle is :func:`tinymeta.reptile.reptile_step`, and the same arithmetic in another
order agrees to round-off (~1e-16).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gradcheck import numerical_grad
from ..maml import maml_grad as exact_maml_grad
from ..maml import meta_objective
from ..mlp import MLP
from ..reptile import reptile_step as exact_reptile_step
from ..tasks import Sine, Task
from .checks import Case, compare
from .grade_layers import blocks

THRESHOLD = 1e-6
REPTILE_THRESHOLD = 1e-10


def maml(
    net,
    phi,
    task,
    alpha,
    k,
    first_order=False,
    left_to_right=False,
    hess_at_next=False,
    hess_at_phi=False,
    hess_alpha=None,
    sign=-1.0,
    skip_first=False,
    outer_at_phi=False,
    hess_query=False,
    outer_support=False,
):
    """g_MAML = (I - alpha H_0) ... (I - alpha H_{k-1}) grad L_query(phi_k); switches make it wrong."""
    xs, ys, xq, yq = task
    grad = lambda p, X, Y: net.loss_and_grad(p, X, Y)[1]
    traj = [phi]
    for _ in range(k):
        traj.append(traj[-1] - alpha * grad(traj[-1], xs, ys))
    v = grad(phi if outer_at_phi else traj[k], *((xs, ys) if outer_support else (xq, yq)))
    if first_order:
        return v
    xh, yh = (xq, yq) if hess_query else (xs, ys)
    for i in range(k) if left_to_right else range(k - 1, -1, -1):
        if not (skip_first and i == 0):
            p = traj[0] if hess_at_phi else traj[i + 1 if hess_at_next else i]
            v = v + sign * (alpha if hess_alpha is None else hess_alpha) * net.hvp(p, xh, yh, v)
    return v


def _maml_variants(m, kname):
    return [
        (
            f"this is first-order MAML (FOMAML): grad L_query({kname}) alone. The exact gradient "
            "multiplies it by the Jacobian of the inner steps, (I - alpha H_0) ... (I - alpha H_{k-1})",
            m(first_order=True),
        ),
        (
            f"used phi instead of {kname}: the query gradient is taken at the adapted parameters {kname}",
            m(outer_at_phi=True),
        ),
        ("missing alpha: each factor is (I - alpha H_i), not (I - H_i)", m(hess_alpha=1.0)),
        ("sign error in the factors: (I - alpha H_i), not (I + alpha H_i)", m(sign=1.0)),
        (
            "Hessian at the wrong point: H_i belongs at phi_i, the point where inner step i starts, "
            "not at phi_{i+1}",
            m(hess_at_next=True),
        ),
        (
            "the Hessians are of the support loss (the loss of the inner steps), not of the query loss",
            m(hess_query=True),
        ),
        (
            f"the outer gradient is of the query loss L_query({kname}), not of the support loss",
            m(outer_support=True),
        ),
        (
            "the factors are applied in the wrong order: v <- (I - alpha H_i) v for i = k-1 down to 0, "
            "H_{k-1} first (the Jacobians chain from the last step back)",
            m(left_to_right=True),
        ),
        (
            "every Hessian was taken at phi: H_i belongs at phi_i, the iterate inner step i starts from",
            m(hess_at_phi=True),
        ),
        (
            "one factor short: the product has k factors, i = 0 .. k-1 (range(k - 1, -1, -1))",
            m(skip_first=True),
        ),
    ]


def _tasks(kind, rng, count=1):
    if kind == "sine":
        return Sine(K=10, K_query=10).sample(rng, count)
    n_s, n_q = {"wide": (5, 7), "one": (1, 6)}[kind]
    return [
        Task(
            rng.standard_normal((n_s, 2)),
            rng.standard_normal((n_s, 3)),
            rng.standard_normal((n_q, 2)),
            rng.standard_normal((n_q, 3)),
        )
        for _ in range(count)
    ]


def _net(kind):
    return MLP([1, 8, 8, 1], "tanh") if kind in ("sine", "same") else MLP([2, 6, 3], "tanh")


def _maml_cases(seed, specs, with_k):
    rng = np.random.default_rng(seed)
    for label, kind, alpha, k in specs:
        net = _net(kind)
        phi = net.init(rng)
        task = _tasks("sine" if kind == "same" else kind, rng)[0]
        if kind == "same":
            task = Task(task.x_support, task.y_support, task.x_support, task.y_support)
        args = (net, phi, task, alpha, k) if with_k else (net, phi, task, alpha)
        yield Case(
            label, args, partial(_grade_maml, label=label, net=net, phi=phi, task=task, alpha=alpha, k=k)
        )


def _grade_maml(out, label, net, phi, task, alpha, k):
    m = lambda **bug: lambda: maml(net, phi, task, alpha, k, **bug)
    oracle = numerical_grad(lambda p: meta_objective(net, p, task, alpha, k), phi)
    return [
        compare(
            f"{label}: meta-gradient",
            out,
            oracle,
            THRESHOLD,
            exact=exact_maml_grad(net, phi, task, alpha, k),
            variants=_maml_variants(m, "phi_1" if k == 1 else "phi_k"),
            blocks=blocks(net.sizes),
        )
    ]


def maml_k1_cases():
    return _maml_cases(
        505,
        [
            ("case 1 (sine task, alpha=0.01)", "sine", 0.01, 1),
            ("case 2 (sine task, alpha=0.1)", "sine", 0.1, 1),
            ("case 3 ([2, 6, 3] regression, alpha=0.05)", "wide", 0.05, 1),
            ("case 4 (edge: query set = support set)", "same", 0.05, 1),
            ("case 5 (edge: one support point)", "one", 0.1, 1),
        ],
        with_k=False,
    )


def maml_cases():
    return _maml_cases(
        606,
        [
            ("case 1 (sine task, k=2, alpha=0.05)", "sine", 0.05, 2),
            ("case 2 (sine task, k=5, alpha=0.02)", "sine", 0.02, 5),
            ("case 3 (edge: k=0, no inner step)", "sine", 0.05, 0),
            ("case 4 (edge: k=1)", "wide", 0.1, 1),
            ("case 5 ([2, 6, 3] regression, k=3, alpha=0.1)", "wide", 0.1, 3),
        ],
        with_k=True,
    )


# ---------------------------------------------------------------------------- 07: Reptile
def reptile(
    net,
    phi,
    tasks,
    alpha,
    k,
    epsilon,
    direction=1.0,
    use_epsilon=True,
    mean=True,
    grads_at_phi=False,
    query=False,
    one_step=False,
    update_only=False,
):
    """phi + epsilon * mean_i(phi~_i - phi) with SGD inner steps; switches make it wrong."""
    total = np.zeros_like(phi)
    for t in tasks:
        x, y = (t.x_query, t.y_query) if query else (t.x_support, t.y_support)
        p = phi
        for _ in range(min(k, 1) if one_step else k):
            p = p - alpha * net.loss_and_grad(phi if grads_at_phi else p, x, y)[1]
        total += p - phi
    step = direction * (epsilon if use_epsilon else 1.0) * total / (len(tasks) if mean else 1)
    return step if update_only else phi + step


def reptile_cases():
    rng = np.random.default_rng(707)
    for label, kind, count, alpha, k, eps in [
        ("case 1 (one task, k=1: one SGD step on the support loss)", "sine", 1, 0.02, 1, 0.5),
        ("case 2 (4 tasks, k=5, epsilon=0.5)", "sine", 4, 0.02, 5, 0.5),
        ("case 3 (edge: k=0, phi is unchanged)", "sine", 3, 0.02, 0, 0.5),
        ("case 4 (5 tasks, k=3, epsilon=1)", "sine", 5, 0.02, 3, 1.0),
        ("case 5 (3 tasks, [2, 6, 3] regression, k=2)", "wide", 3, 0.1, 2, 0.3),
    ]:
        net = _net(kind)
        phi, tasks = net.init(rng), _tasks(kind, rng, count)
        yield Case(
            label,
            (net, phi, tasks, alpha, k, eps),
            partial(_grade_reptile, label=label, args=(net, phi, tasks, alpha, k, eps)),
        )


def _grade_reptile(out, label, args):
    r = lambda **bug: lambda: reptile(*args, **bug)
    variants = [
        (
            "wrong direction: Reptile moves phi toward the adapted parameters, phi + epsilon (phi~ - phi)",
            r(direction=-1.0),
        ),
        (
            "missing epsilon: phi + epsilon * mean(phi~ - phi); without it you return the mean of the phi~",
            r(use_epsilon=False),
        ),
        (
            "missing 1/n over the tasks: average the displacements phi~_i - phi, do not sum them",
            r(mean=False),
        ),
        (
            "you returned the update epsilon * mean(phi~ - phi); return the new parameters phi + update",
            r(update_only=True),
        ),
        (
            "every inner gradient was taken at phi; inner step i uses the gradient at the current iterate",
            r(grads_at_phi=True),
        ),
        ("Reptile adapts on the support sets only; the query sets are not used", r(query=True)),
        ("you took one inner step; Reptile takes k SGD steps per task", r(one_step=True)),
    ]
    return [
        compare(f"{label}: new phi", out, exact_reptile_step(*args), REPTILE_THRESHOLD, variants=variants)
    ]
