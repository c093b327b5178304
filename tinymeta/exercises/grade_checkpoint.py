"""Grader of exercise 11: the exact MAML gradient with checkpoints, storing fewer iterates.

Only phi_0, phi_m, phi_2m, ... are kept on the way forward; on the way back each segment's
iterates are recomputed from its checkpoint, once, and its factors (I - alpha H_i) applied
right to left. Three things are checked per case: the gradient (against
:func:`tinymeta.maml_grad`; recomputation repeats the same arithmetic, so a correct answer
agrees to round-off), the peak memory allocated during the call (``tracemalloc``, in vectors
of P floats) and the number of gradient evaluations (by handing the student a counting
network).
"""

from __future__ import annotations

import math
from functools import partial

from ..gradcheck import CheckReport
from ..maml import maml_grad as exact_maml_grad
from ..mlp import MLP
from ..tasks import Sine
from .checks import Case, Item
from .compare import compare
from .grade_maml import clues, maml

THRESHOLD = 1e-12
"""Recomputed iterates repeat the forward pass's arithmetic: a correct answer agrees with
tinymeta.maml_grad to < 1e-15 (measured); a wrong formula misses by > 1e-4."""

SLACK = 10
"""P-vectors allowed beyond the ceil(k/m) checkpoints and the m iterates of one segment: the
gradient, the running vector and the temporaries of net.hvp. A correct answer peaks at 5-6
above ceil(k/m) + m (measured, P = 1761 and 4353); storing every iterate takes k + 6."""

NOTES = {("every", "low"): "with m = 1 every iterate is a checkpoint: look at what is kept when m > 1"}


def cases(rng):
    h = int(rng.integers(32, 48))
    k1, m1, k2, m2 = (int(x) for x in rng.integers((30, 5, 19, 4), (41, 8, 26, 6)))
    k2 += int(k2 % m2 == 0)  # a last segment shorter than the others
    net = MLP([1, h, h, 1], "tanh")
    for label, k, every, alpha in [
        (f"case 1 (k={k1}, m={m1})", k1, m1, 0.01),
        (f"case 2 (k={k2}, m={m2}, last segment shorter)", k2, m2, 0.01),
        ("case 3 (k=12, m=4)", 12, 4, 0.02),
        ("case 4 (edge: m=1, k=7)", 7, 1, 0.03),
        ("case 5 (edge: m > k, k=5, m=8)", 5, 8, 0.03),
    ]:
        phi, task = net.init(rng), Sine(K=10, K_query=10).sample(rng, 1)[0]
        args = (net, phi, task, alpha, k, every)
        yield Case(
            label,
            args,
            partial(grade, args=args),
            tags={"k": k, "every": every},
            probes=("calls", "memory"),
            expected=partial(exact_maml_grad, *args[:5]),
        )


def grade(out, measured, args):
    net, phi, task, alpha, k, every = args
    floor_k = (k // every) * every
    found = clues(net, phi, task, alpha, k)
    found["variants"] = found["variants"] + [
        (
            "the last, shorter segment is missing: with k not a multiple of m the last segment has "
            "k - m floor(k/m) steps",
            lambda: maml(net, phi, task, alpha, floor_k),
        ),
    ]
    items = [compare("meta-gradient", out, exact_maml_grad(net, phi, task, alpha, k), THRESHOLD, **found)]
    peak = measured.get("peak_bytes")
    if peak is not None:
        vectors, limit = peak / (8 * net.num_params), math.ceil(k / every) + every + SLACK
        check = CheckReport(f"memory {vectors:.1f} P-vectors / limit {limit}", vectors / limit, 1.0)
        hint = (
            f"you keep more than the checkpoints and one segment (every iterate is k + 1 = {k + 1} vectors): "
            "keep phi_0, phi_m, phi_2m, ... on the way forward and recompute each segment's iterates from "
            "its checkpoint on the way back, one segment at a time"
        )
        items.append(Item(check, "" if check.passed else hint))
    calls = measured.get("calls")
    if calls is not None:
        used, limit = calls["loss_and_grad"], 2 * k + 1
        check = CheckReport(f"gradients {used} / limit 2k+1 = {limit}", used / max(limit, 1), 1.0 + 1e-9)
        hint = (
            "too many gradient evaluations: recompute each segment once, from its checkpoint, and walk it "
            "backwards; recomputing from the checkpoint for every i costs O(k m) gradients"
        )
        items.append(Item(check, "" if check.passed else hint))
    return items
