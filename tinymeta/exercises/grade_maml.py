"""Graders of exercises 05 and 06: the exact MAML gradient, one inner step and then k.

With phi_0 = phi, phi_{i+1} = phi_i - alpha grad L_A(phi_i) and H_i = hess L_A(phi_i)
(i = 0 .. k-1), the meta-gradient of F(phi) = L_B(phi_k) is
(I - alpha H_0) ... (I - alpha H_{k-1}) grad L_B(phi_k). The exact answer is
:func:`tinymeta.maml_grad`; the test suite compares it with the central-difference gradient
of the meta-objective itself (:func:`tinymeta.meta_objective`), which knows nothing about
Hessians. The known wrong answers come from :func:`maml`, one switch per mistake.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gradcheck import numerical_grad
from ..maml import maml_grad as exact_maml_grad
from ..maml import meta_objective
from ..mlp import MLP
from ..tasks import Sine, Task
from .checks import Case
from .compare import compare
from .diagnose import switches
from .layout import blocks

THRESHOLD = 1e-12
"""Exact implementations agree with tinymeta.maml_grad to < 1e-15 (measured); the same
product with finite-difference Hessian-vector products misses by 1e-11..1e-8; a wrong
formula misses by > 1e-4 (first-order MAML at alpha = 0.01 by ~1e-2)."""

APPROX = (
    "close to the exact gradient but not exact: finite-difference Hessian-vector products or a "
    "finite-difference gradient of F give this; use net.hvp, which is exact to round-off"
)
NOTES = {
    ("k", "low"): "with one factor the order of the factors and the iterates of the Hessians beyond "
    "phi_0 play no part: look at them",
}


def maml(
    net,
    phi,
    task,
    alpha,
    k,
    first_order=False,
    left_to_right=False,
    hess_shift=0,
    hess_alpha=None,
    sign=-1.0,
    skip=None,
    extra_factor=False,
    outer_at=None,
    hess_query=False,
    outer_support=False,
    swap=False,
    hvp_support_grad=False,
    linearised=False,
    steps=None,
    hess_at=None,
    inner_query=False,
    fixed_v=False,
):
    """g_MAML = (I - alpha H_0) ... (I - alpha H_{k-1}) grad L_B(phi_k); each switch makes one mistake."""
    xs, ys, xq, yq = (task[2], task[3], task[0], task[1]) if swap else tuple(task)
    xs, ys = (xq, yq) if inner_query else (xs, ys)
    grad = lambda p, X, Y: net.loss_and_grad(p, X, Y)[1]
    traj = [phi]
    for _ in range(k if steps is None else steps):
        traj.append(traj[-1] - alpha * grad(traj[-1], xs, ys))
    v = grad(traj[-1] if outer_at is None else traj[outer_at], *((xs, ys) if outer_support else (xq, yq)))
    if first_order:
        return v
    xh, yh = (xq, yq) if hess_query else (xs, ys)
    a = alpha if hess_alpha is None else hess_alpha
    at = lambda i: traj[hess_at] if hess_at is not None else traj[min(max(i + hess_shift, 0), len(traj) - 1)]
    factors = range(k + 1 if extra_factor else k)
    if linearised:
        return v + sign * a * sum((net.hvp(at(i), xh, yh, v) for i in factors), np.zeros_like(v))
    v0 = v
    for i in factors if left_to_right else reversed(factors):
        if i != skip:
            base = v0 if fixed_v else v
            w = grad(traj[i], xs, ys) if hvp_support_grad else base
            v = base + sign * a * net.hvp(at(i), xh, yh, w)
    return v


def variants(m, k, alpha):
    kname = "phi_1" if k == 1 else "phi_k"
    jacobian = (
        "I - alpha H_0 with H_0 = hess L_A(phi_0)" if k == 1 else "(I - alpha H_0) ... (I - alpha H_{k-1})"
    )
    return [
        (
            f"this is first-order MAML (FOMAML): grad L_B({kname}) alone. The exact gradient multiplies "
            f"it by the Jacobian of the inner steps, {jacobian}",
            m(first_order=True),
        ),
        (
            f"used phi instead of {kname}: the query gradient is taken at the adapted parameters {kname}",
            m(outer_at=0),
        ),
        ("query gradient at phi_{k-1}: it belongs at phi_k, after all k inner steps", m(outer_at=-2)),
        ("missing alpha: each factor is (I - alpha H_i), not (I - H_i)", m(hess_alpha=1.0)),
        ("alpha^2 in the factors: each factor is (I - alpha H_i), alpha once", m(hess_alpha=alpha**2)),
        ("sign error in the factors: (I - alpha H_i), not (I + alpha H_i)", m(sign=1.0)),
        (
            "Hessian taken at the wrong iterate: H_i belongs at phi_i, the point where inner step i starts, "
            "not at phi_{i+1}",
            m(hess_shift=1),
        ),
        ("Hessian taken at the wrong iterate: H_i belongs at phi_i, not at phi_{i-1}", m(hess_shift=-1)),
        (
            "Hessian taken at the wrong iterate: every H_i was taken at phi = phi_0; H_i belongs at phi_i",
            m(hess_at=0),
        ),
        (
            "Hessian taken at the wrong iterate: every H_i was taken at phi_k, the end of the inner loop; "
            "H_i belongs at phi_i",
            m(hess_at=-1),
        ),
        (
            "the inner steps use the support set A, not the query set: phi_{i+1} = phi_i - alpha grad "
            "L_A(phi_i), and the Hessians are of L_A",
            m(inner_query=True),
        ),
        (
            "each factor was applied to grad L_B(phi_k) afresh, so only one factor survives: carry the "
            "running vector, v <- (I - alpha H_i) v",
            m(fixed_v=True),
        ),
        (
            "the Hessians are of the support loss L_A (the loss of the inner steps), not of the query loss",
            m(hess_query=True),
        ),
        (
            f"the outer gradient is of the query loss L_B({kname}), not of the support loss",
            m(outer_support=True),
        ),
        (
            "support and query swapped: the inner steps use the support set A, the outer gradient the "
            "query set B",
            m(swap=True),
        ),
        (
            "H g_s instead of H_i v: each Hessian multiplies the running vector v (starting from "
            "grad L_B(phi_k)), not the support gradient",
            m(hvp_support_grad=True),
        ),
        (
            "the linearised product I - alpha sum_i H_i: multiply the factors one after the other, "
            "v <- (I - alpha H_i) v, which keeps the alpha^2 H_i H_j terms",
            m(linearised=True),
        ),
        (
            "the factors are applied in the wrong order: v <- (I - alpha H_i) v for i = k-1 down to 0, "
            "H_{k-1} first (the Jacobians chain from the last step back)",
            m(left_to_right=True),
        ),
        (
            "one factor short: the product has k factors, i = 0 .. k-1 (k - 1 down to 0); H_0's is missing",
            m(skip=0),
        ),
        ("one factor short: the product has k factors, i = 0 .. k-1; H_{k-1}'s is missing", m(skip=k - 1)),
        (
            "one factor too many: the product has k factors, i = 0 .. k-1; there is no H_k",
            m(extra_factor=True),
        ),
        ("k + 1 inner steps: phi_k is the result of exactly k steps", m(steps=k + 1)),
        ("k - 1 inner steps: phi_k is the result of exactly k steps", m(steps=max(k - 1, 0))),
    ]


def sample_tasks(kind, rng, count=1):
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


def case_net(kind):
    return MLP([1, 8, 8, 1], "tanh") if kind in ("sine", "same") else MLP([2, 6, 3], "tanh")


def _cases(rng, specs, with_k):
    for label, kind, alpha, k in specs:
        net = case_net(kind)
        phi = net.init(rng)
        task = sample_tasks("sine" if kind == "same" else kind, rng)[0]
        if kind == "same":
            task = Task(task.x_support, task.y_support, task.x_support, task.y_support)
        args = (net, phi, task, alpha, k) if with_k else (net, phi, task, alpha)
        yield Case(
            label,
            args,
            partial(grade, net=net, phi=phi, task=task, alpha=alpha, k=k),
            tags={"k": k},
            expected=partial(exact_maml_grad, net, phi, task, alpha, k),
            oracle=lambda net=net, phi=phi, task=task, alpha=alpha, k=k: numerical_grad(
                lambda p: meta_objective(net, p, task, alpha, k), phi
            ),
        )


def clues(net, phi, task, alpha, k):
    """The known mistakes (alone and in pairs), the terms and the blocks of a MAML gradient."""
    named = variants(lambda **bug: bug, k, alpha)
    found = switches(lambda **bug: maml(net, phi, task, alpha, k, **bug), named)
    traj = [phi]
    for _ in range(k):
        traj.append(traj[-1] - alpha * net.loss_and_grad(traj[-1], task.x_support, task.y_support)[1])
    terms = [(f"grad L_{s}(phi_{i})", lambda p=p, X=X, Y=Y: net.loss_and_grad(p, X, Y)[1])
             for s, X, Y in (("A", task.x_support, task.y_support), ("B", task.x_query, task.y_query))
             for i, p in enumerate(traj)]  # fmt: skip
    return dict(**found, terms=terms, blocks=blocks(net.sizes), approx=APPROX)


def grade(out, measured, net, phi, task, alpha, k):
    exact = exact_maml_grad(net, phi, task, alpha, k)
    return [compare("meta-gradient", out, exact, THRESHOLD, **clues(net, phi, task, alpha, k))]


def random_alpha(rng, low, high):
    return float(np.round(rng.uniform(low, high), 3))


def k1_cases(rng):
    a = [
        random_alpha(rng, 0.005, 0.02),
        random_alpha(rng, 0.05, 0.15),
        random_alpha(rng, 0.03, 0.08),
        0.05,
        0.1,
    ]
    return _cases(
        rng,
        [
            (f"case 1 (sine task, alpha={a[0]})", "sine", a[0], 1),
            (f"case 2 (sine task, alpha={a[1]})", "sine", a[1], 1),
            (f"case 3 ([2, 6, 3] regression, alpha={a[2]})", "wide", a[2], 1),
            ("case 4 (edge: query set = support set)", "same", a[3], 1),
            ("case 5 (edge: one support point)", "one", a[4], 1),
        ],
        with_k=False,
    )


def k_cases(rng):
    k2, k5 = int(rng.integers(2, 4)), int(rng.integers(4, 6))
    a = [random_alpha(rng, 0.03, 0.08), random_alpha(rng, 0.01, 0.03), random_alpha(rng, 0.05, 0.15)]
    return _cases(
        rng,
        [
            (f"case 1 (sine task, k={k2}, alpha={a[0]})", "sine", a[0], k2),
            (f"case 2 (sine task, k={k5}, alpha={a[1]})", "sine", a[1], k5),
            ("case 3 (edge: k=0, no inner step)", "sine", 0.05, 0),
            ("case 4 (edge: k=1)", "wide", 0.1, 1),
            (f"case 5 ([2, 6, 3] regression, k=3, alpha={a[2]})", "wide", a[2], 3),
        ],
        with_k=True,
    )
