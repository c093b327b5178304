"""Grader of exercise 08: the first-order Taylor coefficients of MAML, FOMAML and Reptile.

Setting (Nichol, Achiam & Schulman 2018, Sec. 5): k mini-batches with losses L_1 .. L_k,
gbar_i = grad L_i(phi), Hbar_i = hess L_i(phi). MAML and FOMAML take k - 1 SGD steps on
batches 1 .. k-1 and use batch k as the query; Reptile takes k steps on batches 1 .. k and
g_Reptile = (phi - phi_k) / alpha. In expectation over the order of the batches::

    E[g] = c0 AvgGrad - c1 alpha AvgGradInner + O(alpha^2),
    AvgGrad = E[gbar_i],   AvgGradInner = E[Hbar_i gbar_j]  (i != j)

The checker obtains (c0, c1) twice, independently:

* **symbolically**: :func:`first_order_coefficients` expands each update to first order in
  alpha, term by term, in exact rational arithmetic;
* **numerically**: :func:`measured_coefficients` runs the three algorithms on a small tanh MLP,
  averages over all k! orders of k batches (which makes the expectation exact) and reads c0 from
  g(0) and c1 from the central difference dg/dalpha at alpha = 0 (step 1e-6, error ~1e-10).
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from functools import partial

import numpy as np

from ..gradcheck import rel_error
from ..mlp import MLP
from .checks import Case, GradeError, compare

ALGORITHMS = ("maml", "fomaml", "reptile")
SYMBOLIC_THRESHOLD = 1e-9  # the coefficients are integers; only float round-off is tolerated
NUMERIC_THRESHOLD = 1e-5  # the measured values carry the error of the alpha-difference, ~1e-10
KS = (3, 1, 2, 4)


def first_order_coefficients(algorithm, k):
    """Exact (c0, c1) as Fractions from a term-by-term first-order expansion.

    Terms: ``("g", i)`` for gbar_i and ``("Hg", i, j)`` for alpha Hbar_i gbar_j. To first order,
    grad L_i(phi_{i-1}) = gbar_i - alpha sum_{j<i} Hbar_i gbar_j and every Hessian along the way
    is Hbar_i. Taking expectations, each gbar_i gives AvgGrad and each Hbar_i gbar_j (i != j)
    gives AvgGradInner.
    """
    terms = {}

    def add(key, c):
        terms[key] = terms.get(key, 0) + Fraction(c)

    def grad_at_iterate(i):  # grad L_i(phi_{i-1}), batches numbered 1..k
        add(("g", i), 1)
        for j in range(1, i):
            add(("Hg", i, j), -1)

    if algorithm == "reptile":
        for i in range(1, k + 1):
            grad_at_iterate(i)
    else:
        grad_at_iterate(k)
        if algorithm == "maml":  # (I - alpha Hbar_1) ... (I - alpha Hbar_{k-1}) applied to gbar_k
            for i in range(1, k):
                add(("Hg", i, k), -1)
    if any(key[0] == "Hg" and key[1] == key[2] for key in terms):
        raise AssertionError("a Hbar_i gbar_i term has no AvgGradInner expectation")
    c0 = sum((c for key, c in terms.items() if key[0] == "g"), Fraction(0))
    c1 = -sum((c for key, c in terms.items() if key[0] == "Hg"), Fraction(0))
    return c0, c1


def _g(algorithm, net, phi, batches, alpha):
    """The update direction of one ordering of the batches (Reptile's as sum_i grad L_i(phi_{i-1}))."""
    grad = lambda p, b: net.loss_and_grad(p, *b)[1]
    if algorithm == "reptile":  # (phi - phi_k) / alpha, written so that alpha = 0 is allowed
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


def measured_coefficients(k, seed=808, h=1e-6):
    """``{algorithm: (c0, c1)}`` measured on a [1, 6, 1] tanh MLP with k batches of 4 sine points."""
    rng = np.random.default_rng(seed)
    net = MLP([1, 6, 1], "tanh")
    phi = net.init(rng)
    x = rng.uniform(-5, 5, (k, 4, 1))
    batches = [(x[i], 2.0 * np.sin(x[i] - 0.5)) for i in range(k)]
    grads = [net.loss_and_grad(phi, *b)[1] for b in batches]
    avg_grad = np.mean(grads, axis=0)
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j] or [(0, 0)]  # k = 1: c1 is 0 anyway
    avg_inner = np.mean([net.hvp(phi, *batches[i], grads[j]) for i, j in pairs], axis=0)
    orders = list(itertools.permutations(batches))
    mean_g = lambda alg, a: np.mean([_g(alg, net, phi, list(o), a) for o in orders], axis=0)
    out = {}
    for alg in ALGORITHMS:
        g0, dg = mean_g(alg, 0.0), (mean_g(alg, h) - mean_g(alg, -h)) / (2 * h)
        c0 = np.vdot(g0, avg_grad) / np.vdot(avg_grad, avg_grad)
        c1 = -np.vdot(dg, avg_inner) / np.vdot(avg_inner, avg_inner)
        if rel_error(g0, c0 * avg_grad) > 1e-10 or np.linalg.norm(dg + c1 * avg_inner) > 1e-5 * (
            np.linalg.norm(dg) + 1e-12
        ):
            raise AssertionError(
                f"{alg}, k={k}: the update is not of the form c0 AvgGrad - c1 alpha AvgGradInner"
            )
        out[alg] = (float(c0), float(c1))
    return out


def taylor_cases():
    for k in KS:
        yield Case(f"k={k}", (k,), partial(_grade, k=k))


def _student_vector(out):
    if not isinstance(out, dict) or set(out) != set(ALGORITHMS):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise GradeError(f"expected a dict with keys {list(ALGORITHMS)}; got {got}")
    try:
        pairs = [tuple(float(c) for c in out[a]) for a in ALGORITHMS]
    except (TypeError, ValueError) as e:
        raise GradeError(f"each value must be a pair of numbers (c0, c1); {e}") from None
    if any(len(p) != 2 for p in pairs):
        raise GradeError("each value must be a pair of numbers (c0, c1)")
    return np.array(pairs)


def hint_for(student, k):
    """Name the mistake in the coefficients of each wrong algorithm (``student``: (3, 2) array)."""
    exact = {a: first_order_coefficients(a, k) for a in ALGORITHMS}
    hints = []
    for row, alg in zip(student, ALGORITHMS, strict=True):
        c0, c1 = (float(c) for c in exact[alg])
        if np.allclose(row, (c0, c1)):
            continue
        said = f"{alg} (got ({row[0]:g}, {row[1]:g}))"
        if alg == "maml" and np.allclose(row, [float(c) for c in exact["fomaml"]]):
            hints.append(
                f"{said}: these are FOMAML's; MAML also keeps the Jacobian of the inner steps, "
                "(I - alpha Hbar_1)...(I - alpha Hbar_{k-1}), which adds k - 1 more alpha H g terms"
            )
        elif alg != "reptile" and np.allclose(row, [float(c) for c in first_order_coefficients(alg, k + 1)]):
            hints.append(
                f"{said}: off by one; with k batches MAML and FOMAML take k - 1 inner steps "
                "(the last batch is the query)"
            )
        elif np.allclose(row, (c0, -c1)):
            hints.append(
                f"{said}: sign of c1; E[g] = c0 AvgGrad - c1 alpha AvgGradInner, "
                "and every inner step contributes -alpha H g"
            )
        elif alg == "reptile" and np.isclose(row[1], 2 * c1) and c1:
            hints.append(f"{said}: each pair j < i appears once, so c1 = k (k - 1) / 2, not k (k - 1)")
        elif alg == "reptile" and np.isclose(row[0], 1.0) and k > 1:
            hints.append(f"{said}: (phi - phi_k) / alpha is the sum of k gradients, so c0 = k")
        else:
            hints.append(
                f"{said}: expand grad L_i(phi_{{i-1}}) = gbar_i - alpha sum_(j<i) Hbar_i gbar_j "
                "and count the terms"
            )
    return "; ".join(hints)


def _grade(out, k):
    student = _student_vector(out)
    exact = np.array([[float(c) for c in first_order_coefficients(a, k)] for a in ALGORITHMS])
    measured = measured_coefficients(k)
    measured = np.array([measured[a] for a in ALGORITHMS])
    hint = hint_for(student, k)
    return [
        compare(
            f"k={k}: (c0, c1) vs the first-order expansion", student, exact, SYMBOLIC_THRESHOLD, hint=hint
        ),
        compare(
            f"k={k}: (c0, c1) vs values measured on an MLP",
            student,
            measured,
            NUMERIC_THRESHOLD,
            exact=exact,
            hint=hint,
        ),
    ]
