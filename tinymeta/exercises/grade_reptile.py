"""Grader of exercise 07: one outer step of Reptile on a meta-batch of M tasks.

phi_new = phi + epsilon (1/M) sum_j (phi~_j - phi), phi~_j after k SGD steps (step alpha) on
task j's support set. There is no derivative to difference: the exact answer is
:func:`tinymeta.reptile_step`, and the same arithmetic in another order agrees to round-off.
Mistakes are diagnosed on the step phi_new - phi (a sum instead of a mean is a factor M there).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..reptile import reptile_step as exact_reptile_step
from .checks import Case
from .compare import compare
from .diagnose import switches
from .grade_maml import case_net, sample_tasks

THRESHOLD = 1e-10
"""Any order of the same arithmetic agrees with tinymeta.reptile_step to ~1e-16 relative to
phi; a wrong step misses by > 1e-4 (the step itself is ~1e-2 of phi here)."""

NOTES = {
    ("tasks", "low"): "with one task a sum and a mean agree, and nothing carries over from one task "
    "to the next: look at how the M displacements are combined",
    ("k", "low"): "with at most one inner step every gradient is taken at phi: look at the iterate "
    "each inner gradient is taken at, and the number of steps",
}


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
    steps=None,
    update_only=False,
    eps_inner=None,
    serial=False,
    last_only=False,
    both_sets=False,
    ascent=False,
    no_minus=False,
    joint=False,
):
    """phi + epsilon * mean_j(phi~_j - phi) with SGD inner steps; each switch makes one mistake."""
    total, start = np.zeros_like(phi), phi.copy()
    for t in tasks:
        x, y = (t.x_query, t.y_query) if query else (t.x_support, t.y_support)
        if both_sets:
            x, y = np.concatenate([t.x_support, t.x_query]), np.concatenate([t.y_support, t.y_query])
        p = start
        for _ in range(k if steps is None else steps):
            step = alpha if eps_inner is None else {"times": alpha * epsilon, "instead": epsilon}[eps_inner]
            at = start if grads_at_phi else p
            g = net.loss_and_grad(at, x, y)[1]
            if joint:
                g = np.mean([net.loss_and_grad(at, s.x_support, s.y_support)[1] for s in tasks], axis=0)
            p = p + step * g if ascent else p - step * g
        if serial:
            start = start + epsilon * (p - start)
            continue
        moved = p if no_minus else p - phi
        total = moved if last_only else total + moved
    if serial:
        return start
    eps = 1.0 if (not use_epsilon or eps_inner) else epsilon
    step = direction * eps * total / (len(tasks) if mean and not last_only else 1)
    return step if update_only else phi + step


def variants(r, M, k):
    return [
        (
            "phi + epsilon * mean(phi~): the step is epsilon times the displacement, phi~ - phi, not phi~",
            r(no_minus=True),
        ),
        (
            "gradient ascent in the inner loop: each inner step goes downhill, phi_{i+1} = phi_i - alpha "
            "grad L_A(phi_i)",
            r(ascent=True),
        ),
        (
            "the inner steps used the mean gradient of all M tasks: each task is adapted on its own support "
            "set, from phi",
            r(joint=True),
        ),
        (
            "wrong direction: Reptile moves phi toward the adapted parameters, phi + epsilon (phi~ - phi)",
            r(direction=-1.0),
        ),
        (
            "missing epsilon: phi + epsilon * mean(phi~ - phi); without it you return the mean of the phi~",
            r(use_epsilon=False),
        ),
        (
            "missing 1/M over the tasks: average the displacements phi~_j - phi of the M tasks, do not sum "
            "them",
            r(mean=False),
        ),
        (
            "you returned the step epsilon * mean(phi~ - phi); return the new parameters phi + step",
            r(update_only=True),
        ),
        (
            "every inner gradient was taken at phi; inner step i uses the gradient at the iterate phi_i",
            r(grads_at_phi=True),
        ),
        ("Reptile adapts on the support sets only; the query sets are not used", r(query=True)),
        ("Reptile adapts on the support sets only; the query sets are not added to them", r(both_sets=True)),
        (f"Reptile with k + 1 inner steps: phi~ is the result of exactly k = {k} SGD steps", r(steps=k + 1)),
        (
            f"Reptile with k - 1 inner steps: phi~ is the result of exactly k = {k} SGD steps",
            r(steps=max(k - 1, 0)),
        ),
        ("you took one inner step; Reptile takes k SGD steps per task", r(steps=min(k, 1))),
        (
            "epsilon inside each inner step: the inner steps use alpha alone; epsilon scales only the outer "
            "step phi + epsilon (phi~ - phi)",
            r(eps_inner="times"),
        ),
        (
            "epsilon used as the inner step size: the inner steps use alpha; epsilon is the outer step size",
            r(eps_inner="instead"),
        ),
        (
            "phi was updated after each task (serial Reptile); the batched step measures every displacement "
            "phi~_j - phi from the same phi and averages them",
            r(serial=True),
        ),
        (
            "only the last task's displacement was kept: accumulate phi~_j - phi over all M tasks",
            r(last_only=True),
        ),
    ]


def cases(rng):
    M2, M4, k2 = (int(x) for x in rng.integers((3, 4, 4), (5, 7, 7)))
    e = [float(np.round(rng.uniform(0.2, 0.8), 2)) for _ in range(2)]
    for label, kind, M, alpha, k, eps in [
        ("case 1 (one task, k=1: one SGD step on the support loss)", "sine", 1, 0.02, 1, e[0]),
        (f"case 2 (M={M2} tasks, k={k2}, epsilon={e[1]})", "sine", M2, 0.02, k2, e[1]),
        ("case 3 (edge: k=0, phi is unchanged)", "sine", 3, 0.02, 0, 0.5),
        (f"case 4 (M={M4} tasks, k=3, epsilon=1)", "sine", M4, 0.02, 3, 1.0),
        ("case 5 (M=3 tasks, [2, 6, 3] regression, k=2)", "wide", 3, 0.1, 2, 0.3),
        ("case 6 (one task, k=4)", "sine", 1, 0.03, 4, 0.5),
    ]:
        net = case_net(kind)
        phi, tasks = net.init(rng), sample_tasks(kind, rng, M)
        args = (net, phi, tasks, alpha, k, eps)
        yield Case(
            label,
            args,
            partial(grade, args=args),
            tags={"tasks": M, "k": k},
            expected=partial(exact_reptile_step, *args),
        )


def grade(out, measured, args):
    net, phi, tasks, alpha, k, eps = args
    r = lambda **bug: bug
    M = len(tasks)
    factors = {
        float(M): "a sum over the M tasks instead of a mean",
        1.0 / eps: "epsilon is missing",
        eps: "epsilon applied twice",
        -eps: "a step away from phi~, and epsilon applied twice",
    }
    exact = exact_reptile_step(*args)
    found = switches(lambda **bug: reptile(*args, **bug), variants(r, M, k))
    return [compare("new phi", out, exact, THRESHOLD, **found, factors=factors, shift=phi)]
