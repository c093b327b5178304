"""Grader of exercise 14: the ANIL meta-gradient, exact with respect to all of phi.

phi = (psi, w): w = (W_L, b_L) the head, psi the body. The inner loop moves the head only,
w_{i+1} = w_i - alpha grad_w L_A(psi, w_i), and F(phi) = L_B(psi, w_k). With m the 0/1 mask of
the head and g starting at grad L_B(psi, w_k) (both blocks)::

    g <- g - alpha H_i (m * g)        (i = k-1 .. 0),    H_i (0, v) = (H_psi_w v, H_ww v)

The exact answer is :func:`tinymeta.anil_value_and_grad`; the test suite compares it with central
differences of F. The known wrong answers come from :func:`anil`, one switch per mistake.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..anil import anil_trajectory, anil_value_and_grad, head_mask
from ..gradcheck import numerical_grad
from .checks import Case
from .compare import compare
from .diagnose import switches
from .grade_maml import case_net, random_alpha, sample_tasks
from .layout import blocks

THRESHOLD = 1e-12
"""Exact implementations (the masked HVP, the two blocks of H written out, explicit Hessians) agree
with tinymeta.anil_value_and_grad to < 1e-15 (measured); central differences miss by ~1e-10; a
wrong formula misses by > 1e-4."""

NOTES = {
    ("k", "high"): "with no inner step F = L_B(phi) and the gradient is grad L_B(phi): what goes wrong "
    "appears only once the head moves",
}


def anil(net, phi, task, alpha, k, first_order=False, mixed_dropped=False, body_zero=False,
         full_jacobian=False, maml=False, hess_shift=0, no_alpha=False, sign=-1.0):  # fmt: skip
    """The ANIL meta-gradient; each switch makes one mistake."""
    xs, ys, xq, yq = task
    mask = head_mask(net)
    step = alpha * (np.ones_like(phi) if maml else mask)
    traj = [phi]
    for _ in range(k):
        traj.append(traj[-1] - step * net.loss_and_grad(traj[-1], xs, ys)[1])
    g = net.loss_and_grad(traj[-1], xq, yq)[1]
    a = 1.0 if no_alpha else alpha
    for i in range(k - 1, -1, -1):
        if first_order:
            break
        h = net.hvp(traj[min(i + hess_shift, k)], xs, ys, g if (full_jacobian or maml) else mask * g)
        g = g + sign * a * (mask * h if mixed_dropped else h)
    return mask * g if body_zero else g


NAMED = [
    ("the Jacobian of the head's inner steps is missing (first-order ANIL): carry g back through each "
     "step, g <- g - alpha H_i (m * g)", dict(first_order=True)),
    ("the body's mixed term is missing: psi enters every inner step of the head, so the body also gets "
     "-alpha H_psi_w v at each step; the HVP along (0, v) gives both blocks at once",
     dict(mixed_dropped=True)),
    ("the body's gradient is zero: the outer loop updates all of phi, and psi reaches F through the "
     "query features and through every step of the head", dict(body_zero=True)),
    ("MAML's full factor (I - alpha H_i) in the backward pass: only the head moved, so the Hessian "
     "multiplies (0, v_head), i.e. g - alpha H_i (m * g)", dict(full_jacobian=True)),
    ("this is MAML's gradient: ANIL's inner loop moves the head (W_L, b_L) only, the body stays",
     dict(maml=True)),
    ("Hessian taken at the wrong iterate: H_i belongs at (psi, w_i), where step i starts, not at "
     "(psi, w_{i+1})", dict(hess_shift=1)),
    ("missing alpha: each step contributes -alpha H_i (m * g), alpha included", dict(no_alpha=True)),
    ("sign error in the Hessian term: g <- g - alpha H_i (m * g)", dict(sign=1.0)),
]  # fmt: skip


def grade(out, measured, args):
    net = args[0]
    exact = anil_value_and_grad(*args)[1]
    found = switches(lambda **bug: anil(*args, **bug), NAMED)
    return [compare("meta-gradient", out, exact, THRESHOLD, **found, blocks=blocks(net.sizes))]


def cases(rng):
    k2, k4 = int(rng.integers(2, 4)), int(rng.integers(4, 6))
    a = [
        random_alpha(rng, 0.05, 0.3),
        random_alpha(rng, 0.05, 0.2),
        random_alpha(rng, 0.02, 0.1),
        random_alpha(rng, 0.1, 0.3),
    ]
    specs = [
        (f"case 1 (sine task, k=1, alpha={a[0]})", "sine", a[0], 1),
        (f"case 2 (sine task, k={k2}, alpha={a[1]})", "sine", a[1], k2),
        (f"case 3 (sine task, k={k4}, alpha={a[2]})", "sine", a[2], k4),
        ("case 4 (edge: k=0, no inner step)", "sine", 0.1, 0),
        (f"case 5 ([2, 6, 3] regression, one hidden layer as the body, k=3, alpha={a[3]})", "wide", a[3], 3),
    ]
    for label, kind, alpha, k in specs:
        net = case_net(kind)
        args = (net, net.init(rng), sample_tasks(kind, rng)[0], alpha, k)
        yield Case(label, args, partial(grade, args=args), tags={"k": k},
                   expected=lambda args=args: anil_value_and_grad(*args)[1],
                   oracle=partial(oracle, *args))  # fmt: skip


def oracle(net, phi, task, alpha, k):
    """Central differences of F(phi) = L_B(psi, w_k) (no Hessian, no HVP)."""

    def F(p):
        end = anil_trajectory(net, p, task.x_support, task.y_support, alpha, k)[-1]
        return net.loss(end, task.x_query, task.y_query)

    return numerical_grad(F, phi)
