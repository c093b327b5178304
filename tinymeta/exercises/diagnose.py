"""What a wrong answer looks like: a known mistake, a sign, a factor, a term, a layout, a size.

The evidence, tried in this order (:func:`diagnose`):

1. **known wrong answers** that the grader computes itself (a missing sigma'' term, first-order
   MAML, a transposed weight, ...): a student who made exactly that mistake reproduces the
   wrong answer to round-off, far below ``VARIANT_TOL``;
2. the **structure** of the error: zeros, c times the right answer (c = -1: a sign flipped;
   c = n: a missing 1/n; ...), a transposed matrix;
3. the **size** of the error: close but not exact (below ``APPROX_LIMIT``) is what a finite
   difference, float32 or a truncated series gives;
4. an **extra term**: the answer is the right one plus c times a vector the grader can name
   (a gradient at some iterate, ...);
5. the **layout** of a flat parameter vector (biases before weights, every W column-major);
6. **two known mistakes at once** (every pair of the grader's switches, tried last: it costs);
7. the **blocks** of a flat vector (W1, b1, ...) that are right and wrong, each with its own
   sign, factor or transposition; the entries that are wrong;

and otherwise how the answer differs in length and direction.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..gradcheck import rel_error

VARIANT_TOL = 1e-6
"""An output within this relative error of a known wrong answer is taken to be that mistake.

The same formula computed in another order agrees to ~1e-14; a correct answer is O(1) away
from every wrong one, so any value between those works."""

APPROX_LIMIT = 1e-5
"""Above the threshold but below this: the right quantity, approximated (finite differences
reach 1e-12..1e-8, float32 1e-8..1e-6); a wrong formula misses by 1e-3 or more."""

SIGN = "sign flipped: your answer is minus the correct one"
APPROX = (
    "close but not exact: this is what a finite-difference approximation or float32 arithmetic "
    "gives; the check wants the exact derivative in float64"
)


def mean_loss_factors(n, d_out=1, mse=True) -> dict:
    """``{c: hint}`` for the usual scaling mistakes with a loss that is a mean over n examples."""
    out = {
        float(n): "a missing 1/n (the loss is a mean over the n examples)",
        1.0 / n: "a spurious 1/n (the loss is already a mean; do not divide again)",
        2.0: "a spurious factor 2",
        0.5: "a missing factor 2 (tinymeta's MSE has no 1/2)" if mse else "a factor 1/2",
    }
    extra = {
        1.0 / d_out: "a spurious 1/d_out: the loss sums over the outputs, it does not average them",
        1.0 / (n * d_out): "a mean over all n * d_out entries: the loss averages over examples only",
        float(d_out): "a spurious factor d_out",
    }
    for c, text in extra.items():  # where two readings give the same number, the first one is kept
        if d_out > 1 and not any(math.isclose(c, f) for f in out):
            out[c] = text
    return out


@dataclass
class Clues:
    """What a grader knows about the usual mistakes of one output.

    Attributes
    ----------
    variants : sequence of ``(hint, wrong)``; ``wrong`` is an array or a function returning one
        (called only when needed; one that raises, e.g. for a shape that does not fit, is skipped)
    combos : callable returning more ``(hint, wrong)`` pairs (two mistakes at once), tried late
    factors : dict ``{c: hint}`` for outputs equal to ``c * exact``
    blocks : sequence of ``(label, slice, shape)``: the parts of a flat vector (``shape`` is the
        matrix shape of a weight block, or None)
    terms : sequence of ``(name, vector)`` the answer may have one too many (or too few) of
    approx : the hint for an answer that is close but not exact
    where : callable, a boolean mask of the wrong entries -> text saying where they are
    """

    variants: list = field(default_factory=list)
    combos: object = None
    factors: dict = None
    blocks: list = None
    terms: list = field(default_factory=list)
    approx: str = APPROX
    where: object = None

    def shifted(self, shift):
        """The clues for ``got - shift`` (known wrong answers and terms moved by ``shift``)."""
        move = lambda pairs: [(t, lambda w=w: _value(w) - shift) for t, w in pairs]  # noqa: E731
        combos = (lambda: move(self.combos())) if self.combos else None
        return Clues(move(self.variants), combos, self.factors, self.blocks, self.terms, self.approx)


def switches(fn, named):
    """``{"variants", "combos"}`` from ``named = [(hint, kwargs)]``: each mistake alone, every pair.

    ``fn(**kwargs)`` computes the answer with those mistakes; a pair is tried only when its two
    mistakes set different switches. An entry whose second element is not a dict is a known
    wrong answer already (an array or a function): it is kept alone.
    """
    variants = [(hint, (lambda kw=kw: fn(**kw)) if isinstance(kw, dict) else kw) for hint, kw in named]
    named = [(hint, kw) for hint, kw in named if isinstance(kw, dict)]

    def combos():
        for (h1, k1), (h2, k2) in itertools.combinations(named, 2):
            if not set(k1) & set(k2):
                text = f"two mistakes at once: {_short(h1)}; and {_short(h2)}"
                yield text, lambda kw={**k1, **k2}: fn(**kw)

    return {"variants": variants, "combos": combos}


def _short(text):
    return text.split(":")[0]


def _value(wrong):
    return np.asarray(wrong() if callable(wrong) else wrong, dtype=np.float64)


def _match(got, exact, pairs):
    for text, wrong in pairs:
        try:
            w = _value(wrong)
        except Exception:  # a known mistake that does not apply to this case (shapes, k = 0)
            continue
        if w.shape != got.shape or not np.all(np.isfinite(w)) or rel_error(w, exact) < VARIANT_TOL:
            continue  # a mistake that makes no difference on this case cannot be told apart here
        if rel_error(got, w) < VARIANT_TOL:
            return text
    return ""


def diagnose(got, exact, clues=None, threshold=1e-6, error=None) -> str:
    """The hint for a wrong ``got`` (see the module docstring for the order of the evidence)."""
    clues = clues or Clues()
    error = rel_error(got, exact) if error is None else error
    with np.errstate(all="ignore"):
        found = _match(got, exact, clues.variants) or structure(got, exact, clues.factors)
        if not found and error < APPROX_LIMIT:
            found = f"{clues.approx} (rel. error {error:.1e})"
        found = found or _term(got, exact, clues.terms) or _layout(got, exact, clues.blocks)
        if not found and clues.combos:
            found = _match(got, exact, clues.combos())
        if not found and clues.blocks:
            found = _blocks_hint(got, exact, clues.blocks, threshold, clues.factors)
        if not found and clues.where is not None and got.ndim:
            wrong = _entry_errors(got, exact) > threshold
            if wrong.any() and not wrong.all():
                found = f"wrong {clues.where(wrong)}; right elsewhere"
        return found or fallback(got, exact, error)


def _term(got, exact, terms):
    r = got - exact
    for name, t in terms:
        t = _value(t)
        tt = float(np.vdot(t, t))
        if t.shape != r.shape or tt == 0.0:
            continue
        c = float(np.vdot(r, t)) / tt
        if rel_error(r, c * t) < VARIANT_TOL:
            sign = "plus" if c > 0 else "minus"
            return (
                f"your answer is the right one {sign} {abs(c):.4g} x {name}: an extra term, a missing "
                "one, or a term with the wrong coefficient"
            )
    return ""


def _layout(got, exact, blocks):
    if not blocks or got.ndim != 1:
        return ""
    W = [(exact[sl], shape) for label, sl, shape in blocks if label.startswith("W")]
    b = [exact[sl] for label, sl, _ in blocks if label.startswith("b")]
    layers = list(zip(W, b, strict=True))
    layouts = [
        ("the flat layout puts each weight before its bias (W1, b1, W2, b2, ...); you put the bias first",
         [x for (w, _), bias in layers for x in (bias, w)]),
        ("the flat layout is W1, b1, W2, b2, ... (layer by layer); you put every W before every b",
         [w for w, _ in W] + b),
        ("every W is stored transposed (column-major); tinymeta stores W_l, shape (d_in, d_out), row by row",
         [x for (w, sh), bias in layers for x in (w.reshape(sh).T.ravel(), bias)]),
    ]  # fmt: skip
    for text, parts in layouts:
        arranged = np.concatenate(parts)
        if arranged.shape == got.shape and rel_error(arranged, exact) > VARIANT_TOL:
            if rel_error(got, arranged) < VARIANT_TOL:
                return text
    return ""


def fallback(got, exact, error) -> str:
    """No mistake recognised: say how the answer differs (length, direction), which still teaches."""
    ng, ne = float(np.linalg.norm(got)), float(np.linalg.norm(exact))
    if ne == 0.0:
        return "the right answer is exactly zero on this case (look at its label): yours is not"
    head = f"no known mistake matches (rel. error {error:.1e})"
    if got.size == 1:
        return f"{head}: your value is {float(got.ravel()[0]):.6g}; work the formula out by hand and compare"
    cos = float(np.vdot(got, exact)) / max(ng * ne, 1e-300)
    if cos > 0.99:
        what = "nearly the right direction, so most terms are right: one small term is missing or extra"
    elif cos > 0.5:
        what = "roughly the right direction: a term of the same size as the answer is missing or extra"
    elif cos > -0.5:
        what = "a different direction altogether: the formula itself differs"
    else:
        what = "pointing the other way: look for a sign inside the formula"
    return (
        f"{head}; your answer is {ng / ne:.3g} times as long as the right one, cosine {cos:.3f} with it: "
        f"{what}. Work it out by hand on the smallest case and compare"
    )


def structure(got, exact, factors=None) -> str:
    """Zeros, a sign, a constant factor or a transposition; empty if ``got`` is none of them."""
    if not np.any(got) and np.any(exact):
        return "your answer is zero everywhere: a term is missing, or nothing was accumulated"
    ee = float(np.vdot(exact, exact))
    if ee > 0.0:
        c = float(np.vdot(got, exact)) / ee
        if c != 0.0 and abs(c - 1.0) > 1e-6 and rel_error(got, c * exact) < VARIANT_TOL:
            if math.isclose(c, -1.0, rel_tol=1e-6):
                return SIGN
            for f, text in (factors or {}).items():
                if math.isclose(c, f, rel_tol=1e-6):
                    return f"off by a factor {c:.6g}: {text}"
            if got.size > 1:  # any wrong number is some multiple of the right one: say it for vectors only
                return f"off by a constant factor: your answer is {c:.6g} times the correct one"
    if got.ndim == 2 and got.shape[0] == got.shape[1] > 1 and rel_error(got, exact.T) < VARIANT_TOL:
        return "transposed: your matrix is the transpose of the correct one"
    return ""


def _blocks_hint(got, exact, blocks, threshold, factors):
    wrong, right = [], []
    for label, sl, shape in blocks:
        g, e = got[sl], exact[sl]
        if rel_error(g, e) < threshold:
            right.append(label)
            continue
        what = structure(g, e, factors).split(":")[0]
        if not what and shape is not None and shape[0] != shape[1]:
            if rel_error(g.reshape(shape[::-1]).T.ravel(), e) < VARIANT_TOL:
                what = f"stored transposed (as {shape[1]} x {shape[0]}; W is (d_in, d_out), row-major)"
        wrong.append(f"{label} ({what})" if what else label)
    if not (wrong and right):
        if wrong and all("(" in w for w in wrong):
            return "every block is wrong: " + ", ".join(wrong)
        return ""
    return (
        f"right: {', '.join(right)}; wrong: {', '.join(wrong)}. Look at the step where the wrong "
        "blocks get their value."
    )


def blocks_with(mask, blocks):
    """``"in W1, b2"``: the blocks where ``mask`` is set (empty without blocks)."""
    if not blocks or mask.ndim != 1:
        return ""
    names = [label for label, sl, _ in blocks if mask[sl].any()]
    return "in " + ", ".join(names) if names else ""


def _entry_errors(got, exact):
    return np.abs(got - exact) / np.maximum(np.abs(got) + np.abs(exact), 1e-300)
