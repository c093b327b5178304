"""Compare one output with the exact answer and, when it is wrong, say what the mistake looks like.

The checker knows three kinds of evidence, tried in this order:

* **known wrong answers** that it computes itself (a missing sigma'' term, first-order MAML, a
  transposed weight, ...): a student who made exactly that mistake reproduces the wrong answer
  to round-off, far below ``VARIANT_TOL``;
* the **structure** of the error: the output is c times the right answer (c = -1: a sign
  flipped; c = n: a missing 1/n; ...), a transposed matrix, zeros, or only some blocks of a flat
  parameter vector (W1, b1, ...) are wrong, each with its own sign, factor or transposition;
* the **size** of the error: close but not exact (below ``APPROX_LIMIT``) is what a finite
  difference, float32 or a truncated series gives.
"""

from __future__ import annotations

import math

import numpy as np

from ..gradcheck import CheckReport, rel_error
from .report import Item

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
SHAPE_HINT = (
    "a shape mismatch: write the shape of every array next to each line "
    "(a transposed matrix is the usual cause)"
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


class GradeError(Exception):
    """The output cannot be compared at all (wrong type, wrong shape); the message says why."""


def unpack(out, count, what):
    """``out`` as a tuple of ``count`` outputs, or a :class:`GradeError` saying what was expected."""
    if not isinstance(out, (tuple, list)) or len(out) != count:
        got = f"{type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list)) else repr(out)
        raise GradeError(f"expected a tuple {what}; got {got[:80]}")
    return tuple(out)


def as_array(name, got, shape, shape_hints=None):
    """``got`` as a float64 array of ``shape``, or a :class:`GradeError` naming what came back."""
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradeError(
            f"{name}: returned {type(got).__name__} {str(got)[:60]}; expected an array of shape {shape}"
        ) from None
    if arr.shape != tuple(shape):
        msg = f"{name}: returned shape {arr.shape}; expected {tuple(shape)}"
        extra = (shape_hints or {}).get(arr.shape)
        if extra:
            msg += f" -- {extra}"
        elif arr.ndim == 2 and arr.shape == tuple(shape)[::-1]:
            msg += " -- transposed: every gradient has the shape of its variable"
        raise GradeError(msg)
    return arr


def compare(
    name,
    got,
    exact,
    threshold,
    *,
    case=-1,
    variants=(),
    factors=None,
    blocks=None,
    nonfinite="",
    hint="",
    approx=APPROX,
    where=None,
    shape_hints=None,
    shift=None,
) -> Item:
    """One :class:`Item`: ``rel_error(got, exact)`` against ``threshold``, with a hint on failure.

    Parameters
    ----------
    got : the student's output, converted to float64
    exact : ndarray, the exact right answer (computed outside the student's process)
    variants : sequence of ``(hint, wrong)``; ``wrong`` is an array or a function returning one
        (called only when needed; one that raises, e.g. for a shape that does not fit, is skipped)
    factors : dict ``{c: hint}`` for outputs equal to ``c * exact``
    blocks : sequence of ``(label, slice, shape)``: the parts of a flat vector (``shape`` is the
        matrix shape of a weight block, or None)
    nonfinite : what to say about NaN or inf in the output
    hint : if given, the hint for any failure (the grader has already diagnosed the output)
    approx : the hint for an answer that is close but not exact
    where : function of a boolean mask of wrong entries -> text saying where they are
    shift : diagnose ``got - shift`` against ``exact - shift`` (e.g. the step phi_new - phi, whose
        factors and signs mean something when phi_new's do not)
    """
    exact = np.asarray(exact, dtype=np.float64)
    try:
        got = as_array(name, got, exact.shape, shape_hints)
    except GradeError as e:
        return Item.error(name, str(e), threshold, case)
    if not np.all(np.isfinite(got)):
        bad = ~np.isfinite(got)
        msg = f"{int(bad.sum())} of {got.size} value(s) are NaN or inf"
        place = _blocks_with(bad, blocks) or (where(bad) if where and got.ndim else "")
        msg += f" ({place})" if place else ""
        return Item.error(name, f"{msg}. {nonfinite}".strip(), threshold, case, kind="nonfinite")
    report = CheckReport(name, rel_error(got, exact), threshold)
    if report.passed:
        return Item(report, case=case)
    if not hint and shift is not None:
        moved = [(text, lambda w=w: (w() if callable(w) else w) - shift) for text, w in variants]
        hint = diagnose(got - shift, exact - shift, moved, factors, blocks, threshold, approx)
    elif not hint:
        hint = diagnose(got, exact, variants, factors, blocks, threshold, approx, report.error, where)
    return Item(report, hint, case)


def diagnose(
    got, exact, variants=(), factors=None, blocks=None, threshold=1e-6, approx=APPROX, error=None, where=None
) -> str:
    """The hint for a wrong ``got``: a known mistake, a constant factor, wrong blocks, or the size."""
    error = rel_error(got, exact) if error is None else error
    with np.errstate(all="ignore"):
        for text, wrong in variants:
            try:
                w = np.asarray(wrong() if callable(wrong) else wrong, dtype=np.float64)
            except Exception:  # a known mistake that does not apply to this case (shapes, k = 0)
                continue
            if w.shape != got.shape or not np.all(np.isfinite(w)) or rel_error(w, exact) < VARIANT_TOL:
                continue  # a mistake that makes no difference on this case cannot be told apart here
            if rel_error(got, w) < VARIANT_TOL:
                return text
        shape = structure(got, exact, factors)
        if shape:
            return shape
        if blocks:
            text = _blocks_hint(got, exact, blocks, threshold, factors)
            if text:
                return text
        if error < APPROX_LIMIT:
            return f"{approx} (rel. error {error:.1e})"
        if where is not None and got.ndim:
            wrong = _entry_errors(got, exact) > threshold
            if wrong.any() and not wrong.all():
                return f"wrong {where(wrong)}; right elsewhere"
        return fallback(got, exact, error)


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


def _blocks_with(mask, blocks):
    if not blocks or mask.ndim != 1:
        return ""
    names = [label for label, sl, _ in blocks if mask[sl].any()]
    return "in " + ", ".join(names) if names else ""


def _entry_errors(got, exact):
    return np.abs(got - exact) / np.maximum(np.abs(got) + np.abs(exact), 1e-300)


def describe_exception(error) -> str:
    """``raised T at FILE:LINE `code`: message``, with a hint for shape and memory errors."""
    where = f" at {error['where']}" if error.get("where") else ""
    msg = f"raised {error['type']}{where}: {error['message']}".rstrip(": ")
    if any(w in error["message"] for w in ("shape", "mismatch", "broadcast", "aligned")):
        msg += f" -- {SHAPE_HINT}"
    if error["type"] == "MemoryError":
        msg += " -- the memory limit was reached: does a list or an array grow without bound?"
    return msg
