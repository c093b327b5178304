"""Grader of exercise 13: the two gradients of Meta-SGD, with respect to phi and to the step sizes.

phi_0 = phi, phi_{i+1} = phi_i - alphas * g_i with g_i = grad L_A(phi_i) (elementwise), F = L_B(phi_k).
Right to left, with v_k = grad L_B(phi_k)::

    dF/dalphas += -g_i * v_{i+1},    v_i = v_{i+1} - H_i (alphas * v_{i+1})     (i = k-1 .. 0)

and dF/dphi = v_0. The exact answer is :func:`tinymeta.metasgd_value_and_grad`; the test suite
compares it with central differences of F in phi and in alphas. The known wrong answers come
from :func:`metasgd`, one switch per mistake.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..gradcheck import numerical_grad
from ..metasgd import metasgd_trajectory, metasgd_value_and_grad
from .checks import Case
from .compare import compare, unpack
from .diagnose import switches
from .grade_maml import case_net, sample_tasks
from .layout import blocks

THRESHOLD = 1e-12
"""Exact implementations (HVPs or explicit Hessians, any order of the products) agree with
tinymeta.metasgd_value_and_grad to < 1e-15 (measured); central differences miss by ~1e-10; a wrong
formula misses by > 1e-4."""

NOTES = {
    ("k", "low"): "with one inner step v_1 = grad L_B(phi_1) needs no Jacobian and dF/dalphas has one "
    "term: look at how v is carried back through several steps, and which v each g_i is paired with",
}


def metasgd(net, phi, alphas, task, k, first_order=False, alphas_after=False, new_v=False, sign=-1.0,
            last_only=False, grads_at_phi=False, hess_shift=0, scalar=False, no_alphas=False):  # fmt: skip
    """``(dF/dphi, dF/dalphas)``; each switch makes one mistake."""
    xs, ys, xq, yq = task
    traj, grads = metasgd_trajectory(net, phi, alphas, xs, ys, k)
    if grads_at_phi:
        grads = [net.loss_and_grad(phi, xs, ys)[1]] * k
    v = net.loss_and_grad(traj[-1], xq, yq)[1]
    d_alphas = np.zeros_like(phi)
    for i in range(k - 1, -1, -1):
        if not (new_v or (last_only and i < k - 1)):
            d_alphas += sign * grads[i] * v
        if not first_order:
            at = traj[min(i + hess_shift, k)]
            if alphas_after:
                v = v - alphas * net.hvp(at, xs, ys, v)
            else:
                w = v if no_alphas else (np.mean(alphas) * v if scalar else alphas * v)
                v = v - net.hvp(at, xs, ys, w)
        if new_v and not (last_only and i < k - 1):
            d_alphas += sign * grads[i] * v
    return v, d_alphas


NAMED = [
    ("the Jacobians of the inner steps are missing (first-order Meta-SGD): carry v back through every "
     "step, v_i = v_{i+1} - H_i (alphas * v_{i+1})", dict(first_order=True)),
    ("the step sizes are on the wrong side of the Hessian: the transpose of I - diag(alphas) H_i is "
     "I - H_i diag(alphas), so v_i = v_{i+1} - H_i (alphas * v_{i+1}), not alphas * (H_i v_{i+1})",
     dict(alphas_after=True)),
    ("each g_i pairs with v_{i+1} = dF/dphi_{i+1}, the sensitivity after step i: add -g_i * v before "
     "v is carried back through step i, not after", dict(new_v=True)),
    ("sign of dF/dalphas: d phi_{i+1} / d alphas = -diag(g_i), so dF/dalphas = -sum_i g_i * v_{i+1}",
     dict(sign=1.0)),
    ("dF/dalphas from the last step only: the same alphas act in all k steps, so sum over i = 0 .. k-1",
     dict(last_only=True)),
    ("the support gradients were taken at phi: g_i = grad L_A(phi_i), at the iterate of step i",
     dict(grads_at_phi=True)),
    ("Hessian taken at the wrong iterate: H_i belongs at phi_i, where step i starts, not at phi_{i+1}",
     dict(hess_shift=1)),
    ("a scalar step size in the Jacobian: each parameter has its own, so H_i (alphas * v), not "
     "mean(alphas) H_i v", dict(scalar=True)),
    ("the step sizes are missing from the Jacobian: v_i = v_{i+1} - H_i (alphas * v_{i+1}), not "
     "v_{i+1} - H_i v_{i+1}", dict(no_alphas=True)),
]  # fmt: skip


def grade(out, measured, args):
    net, phi = args[0], args[1]
    d_phi, d_alphas = unpack(out, 2, "(dF/dphi, dF/dalphas)")
    _, exact_phi, exact_alphas = metasgd_value_and_grad(*args)
    items = []
    for j, (name, got, exact) in enumerate([("dF/dphi", d_phi, exact_phi), ("dF/dalphas", d_alphas,
                                                                              exact_alphas)]):  # fmt: skip
        found = switches(lambda j=j, **bug: metasgd(*args, **bug)[j], NAMED)
        shapes = {(): f"{name} has one entry per parameter, shape ({phi.size},); one number is the "
                      "derivative in a single shared step size"}  # fmt: skip
        items.append(compare(name, got, exact, THRESHOLD, **found, blocks=blocks(net.sizes),
                             shape_hints=shapes))  # fmt: skip
    return items


def _alphas(rng, size, low, high):
    return np.round(rng.uniform(low, high, size), 4)


def cases(rng):
    k2, k4 = int(rng.integers(2, 4)), int(rng.integers(4, 6))
    specs = [
        ("case 1 (sine task, k=1, alphas in [0.01, 0.1])", "sine", (0.01, 0.1), 1),
        (f"case 2 (sine task, k={k2})", "sine", (0.01, 0.06), k2),
        (f"case 3 (sine task, k={k4}, small steps)", "sine", (0.002, 0.02), k4),
        ("case 4 (edge: k=0, F does not depend on alphas)", "sine", (0.01, 0.05), 0),
        ("case 5 ([2, 6, 3] regression, k=3, some steps negative)", "wide", (-0.03, 0.12), 3),
    ]
    for label, kind, (low, high), k in specs:
        net = case_net(kind)
        phi, task = net.init(rng), sample_tasks(kind, rng)[0]
        alphas = _alphas(rng, phi.size, low, high)
        args = (net, phi, alphas, task, k)
        yield Case(label, args, partial(grade, args=args), tags={"k": k},
                   expected=lambda args=args: metasgd_value_and_grad(*args)[1:],
                   oracle=partial(oracle, *args))  # fmt: skip


def oracle(net, phi, alphas, task, k):
    """Central differences of F(phi, alphas) = L_B(phi_k) in phi and in alphas (no Hessian, no HVP)."""

    def F(p, a):
        end = metasgd_trajectory(net, p, a, task.x_support, task.y_support, k)[0][-1]
        return net.loss(end, task.x_query, task.y_query)

    return numerical_grad(lambda p: F(p, alphas), phi), numerical_grad(lambda a: F(phi, a), alphas)
