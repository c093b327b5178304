"""Grader of exercise 08: the first-order Taylor coefficients of MAML, FOMAML and Reptile.

Setting (Nichol, Achiam & Schulman 2018, Sec. 5, with the iterates indexed as in tutorials 03
and 04): k mini-batches with losses L_0 .. L_{k-1}, phi_0 = phi, phi_{i+1} = phi_i - alpha
grad L_i(phi_i); gbar_i = grad L_i(phi) and Hbar_i = hess L_i(phi). MAML and FOMAML take k - 1
steps on batches 0 .. k-2 and use batch k-1 as the query; Reptile takes all k steps and
g_Reptile = (phi_0 - phi_k) / alpha. In expectation over the order of the batches::

    E[g] = c0 AvgGrad + c1 alpha AvgGradInner + O(alpha^2),
    AvgGrad = E[gbar_i],   AvgGradInner = E[Hbar_i gbar_j]  (i != j)

the sign convention of :func:`tinymeta.taylor.taylor_coefficients` and tutorial 04 (c1 <= 0).
The checker obtains (c0, c1) twice, independently: symbolically (:func:`first_order_coefficients`,
exact rational arithmetic) and, for k <= 4, numerically (:func:`measured_coefficients`: the
three algorithms on a small tanh MLP, averaged over all k! orders of the batches, which makes
the expectation exact, and differentiated in alpha at 0 with step 1e-6, error ~1e-10).
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from functools import partial

import numpy as np

from ..gradcheck import rel_error
from ..mlp import MLP
from ..taylor import avg_grad, avg_grad_inner
from .checks import Case
from .compare import GradeError, compare

ALGORITHMS = ("maml", "fomaml", "reptile")
SYMBOLIC_THRESHOLD = 1e-9  # the coefficients are integers or halves; only float round-off is tolerated
NUMERIC_THRESHOLD = 1e-5  # the measured values carry the error of the alpha-difference, ~1e-10
THRESHOLD = SYMBOLIC_THRESHOLD
MEASURED_UP_TO = 4  # 4! orderings; above that only the symbolic check runs (k! grows fast)
NOTES = {("k", "low"): "with one batch there is no AvgGradInner term (c1 = 0): look at c1 and its sign"}


def first_order_coefficients(algorithm, k):
    """Exact (c0, c1) as Fractions from a term-by-term first-order expansion.

    Terms: ``("g", i)`` for gbar_i and ``("Hg", i, j)`` for alpha Hbar_i gbar_j, batches 0..k-1.
    To first order grad L_i(phi_i) = gbar_i - alpha sum_{j<i} Hbar_i gbar_j, and every Hessian
    along the way is Hbar_i. In expectation each gbar_i gives AvgGrad and each Hbar_i gbar_j
    (i != j) gives AvgGradInner.
    """
    terms = {}

    def add(key, c):
        terms[key] = terms.get(key, 0) + Fraction(c)

    def grad_at_iterate(i):  # grad L_i(phi_i)
        add(("g", i), 1)
        for j in range(i):
            add(("Hg", i, j), -1)

    if algorithm == "reptile":
        for i in range(k):
            grad_at_iterate(i)
    else:
        grad_at_iterate(k - 1)
        if algorithm == "maml":  # (I - alpha Hbar_0) ... (I - alpha Hbar_{k-2}) applied to gbar_{k-1}
            for i in range(k - 1):
                add(("Hg", i, k - 1), -1)
    if any(key[0] == "Hg" and key[1] == key[2] for key in terms):
        raise AssertionError("a Hbar_i gbar_i term has no AvgGradInner expectation")
    c0 = sum((c for key, c in terms.items() if key[0] == "g"), Fraction(0))
    c1 = sum((c for key, c in terms.items() if key[0] == "Hg"), Fraction(0))
    return c0, c1


def measured_coefficients(k, seed=808, h=1e-6):
    """``{algorithm: (c0, c1)}`` measured on a [1, 6, 1] tanh MLP with k batches of 4 sine points."""
    rng = np.random.default_rng(seed)
    net = MLP([1, 6, 1], "tanh")
    phi = net.init(rng)
    x = rng.uniform(-5, 5, (k, 4, 1))
    batches = [(x[i], 2.0 * np.sin(x[i] - 0.5)) for i in range(k)]
    grad, inner = avg_grad(net, phi, batches), avg_grad_inner(net, phi, batches)
    orders = list(itertools.permutations(batches))
    mean_g = lambda alg, a: np.mean([_g(alg, net, phi, list(o), a) for o in orders], axis=0)
    out = {}
    for alg in ALGORITHMS:
        g0, dg = mean_g(alg, 0.0), (mean_g(alg, h) - mean_g(alg, -h)) / (2 * h)
        c0 = np.vdot(g0, grad) / np.vdot(grad, grad)
        c1 = np.vdot(dg, inner) / np.vdot(inner, inner) if k > 1 else 0.0
        if rel_error(g0, c0 * grad) > 1e-10 or np.linalg.norm(dg - c1 * inner) > 1e-5 * (
            np.linalg.norm(dg) + 1e-12
        ):
            raise AssertionError(f"{alg}, k={k}: the update is not c0 AvgGrad + c1 alpha AvgGradInner")
        out[alg] = (float(c0), float(c1))
    return out


def _g(algorithm, net, phi, batches, alpha):
    """The direction of one ordering of the batches, for any alpha (0 and negative included)."""
    grad = lambda p, b: net.loss_and_grad(p, *b)[1]
    if algorithm == "reptile":  # (phi_0 - phi_k) / alpha = sum_i grad L_i(phi_i)
        p, total = phi, np.zeros_like(phi)
        for b in batches:
            g = grad(p, b)
            total, p = total + g, p - alpha * g
        return total
    traj = [phi]
    for b in batches[:-1]:
        traj.append(traj[-1] - alpha * grad(traj[-1], b))
    v = grad(traj[-1], batches[-1])
    if algorithm == "maml":
        for i in range(len(batches) - 2, -1, -1):
            v = v - alpha * net.hvp(traj[i], *batches[i], v)
    return v


def cases(rng):
    big = int(rng.integers(5, 8))
    for k in (3, 1, 2, 4, big):
        yield Case(f"k={k}", (k,), partial(grade, k=k), tags={"k": k}, expected=partial(_exact_dict, k))


def _exact_dict(k):
    return {a: tuple(float(c) for c in first_order_coefficients(a, k)) for a in ALGORITHMS}


def _student_vector(out):
    if not isinstance(out, dict) or set(out) != set(ALGORITHMS):
        got = sorted(map(str, out)) if isinstance(out, dict) else type(out).__name__
        raise GradeError(f"expected a dict with keys {list(ALGORITHMS)}; got {got}")
    try:
        pairs = [tuple(float(c) for c in out[a]) for a in ALGORITHMS]
    except (TypeError, ValueError) as e:
        raise GradeError(f"each value must be a pair of numbers (c0, c1); {e}") from None
    if any(len(p) != 2 for p in pairs):
        raise GradeError("each value must be a pair of numbers (c0, c1)")
    return np.array(pairs)


def _coeffs(alg, k):
    return np.array([float(c) for c in first_order_coefficients(alg, k)])


def hint_for(student, k):
    """Name the mistake in the coefficients of each wrong algorithm (``student``: (3, 2) array)."""
    hints = []
    for row, alg in zip(student, ALGORITHMS, strict=True):
        c0, c1 = _coeffs(alg, k)
        if np.allclose(row, (c0, c1)):
            continue
        said = f"{alg} (got ({row[0]:g}, {row[1]:g}))"
        if c1 and np.allclose(row, (c0, -c1)):
            hints.append(
                f"{said}: sign of c1. Here, as in tinymeta.taylor.taylor_coefficients and tutorial "
                "04, E[g] = c0 AvgGrad + c1 alpha AvgGradInner: every inner step contributes "
                "-alpha H g, so c1 is negative"
            )
        elif c1 != c0 and np.allclose(row, (c1, c0)):
            hints.append(
                f"{said}: the pair is in the order (c0, c1): c0 multiplies AvgGrad, c1 alpha AvgGradInner"
            )
        elif alg == "maml" and np.allclose(row, _coeffs("fomaml", k)):
            hints.append(
                f"{said}: these are FOMAML's; MAML also keeps the Jacobian of the inner steps, "
                "(I - alpha Hbar_0)...(I - alpha Hbar_{k-2}), which adds k - 1 more -alpha H g terms"
            )
        elif alg == "fomaml" and np.allclose(row, _coeffs("maml", k)):
            hints.append(f"{said}: these are MAML's; FOMAML drops the Jacobian of the inner steps")
        elif alg != "reptile" and np.allclose(row, _coeffs(alg, k + 1)):
            hints.append(
                f"{said}: off by one; with k batches MAML and FOMAML take k - 1 inner steps "
                "(the last batch is the query)"
            )
        elif alg == "reptile" and c1 and np.isclose(abs(row[1]), 2 * abs(c1)):
            hints.append(f"{said}: each pair j < i appears once, so |c1| = k (k - 1) / 2, not k (k - 1)")
        elif alg == "reptile" and np.isclose(row[0], 1.0) and k > 1:
            hints.append(f"{said}: (phi_0 - phi_k) / alpha is the sum of k gradients, so c0 = k")
        else:
            hints.append(
                f"{said}: expand grad L_i(phi_i) = gbar_i - alpha sum_(j<i) Hbar_i gbar_j and count the terms"
            )
    return "; ".join(hints)


def grade(out, measured, k):
    student = _student_vector(out)
    exact = np.array([_coeffs(a, k) for a in ALGORITHMS])
    hint = hint_for(student, k)
    items = [compare("(c0, c1) vs the first-order expansion", student, exact, SYMBOLIC_THRESHOLD, hint=hint)]
    if k <= MEASURED_UP_TO:
        got = measured_coefficients(k)
        values = np.array([got[a] for a in ALGORITHMS])
        items.append(
            compare("(c0, c1) vs values measured on an MLP", student, values, NUMERIC_THRESHOLD, hint=hint)
        )
    return items
