"""The grading machinery every exercise shares.

A grader runs the student's function on a few seeded cases and compares each output with an
*oracle* (usually central differences of a quantity the answer is the derivative of) by the
relative error of :func:`tinymeta.gradcheck.rel_error`. When an output fails, the checker looks
for the mistake behind it:

* it compares the output with **known wrong answers** that it computes itself (a missing
  sigma'' term, first-order MAML, a transposed weight, ...): a student who made exactly that
  mistake reproduces the wrong answer to round-off, far below ``VARIANT_TOL``;
* it tests the **structure** of the error: the output is a constant multiple c of the right
  answer (c = -1 is a sign error, c = n a missing 1/n, ...), or only some blocks of a flat
  parameter vector are wrong.
"""

from __future__ import annotations

import copy
import math
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..gradcheck import CheckReport, rel_error

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"

VARIANT_TOL = 1e-6
"""An output within this relative error of a known wrong answer is taken to be that mistake.

The same formula computed in another order agrees to ~1e-14; a correct answer is O(1) away
from every wrong one, so any value between those works."""

SHAPE_HINT = (
    "a shape mismatch: write the shape of every array next to each line "
    "(a transposed matrix is the usual cause)"
)


class GradeError(Exception):
    """The output cannot be compared at all (wrong type, wrong shape); the message says why."""


@dataclass(frozen=True)
class Item:
    """One line of a report: a :class:`~tinymeta.gradcheck.CheckReport` and, if it failed, a hint."""

    check: CheckReport
    hint: str = ""

    @classmethod
    def error(cls, name, message, threshold):
        """A failed line that has no error value (an exception, a wrong shape)."""
        return cls(CheckReport(name, math.inf, threshold), message)

    @property
    def passed(self) -> bool:
        return self.check.passed


@dataclass(frozen=True)
class Case:
    """One seeded input: ``label`` for the report, ``args`` for the function, ``grade(out) -> [Item]``."""

    label: str
    args: tuple
    grade: Callable


@dataclass(frozen=True)
class Report:
    """The outcome of one exercise; ``str(report)`` (or ``report.text``) is the readable table.

    Attributes
    ----------
    exercise : str, the exercise id
    title : str
    status : str, ``"passed"``, ``"failed"`` or ``"not attempted"``
    items : tuple of Item, one per check (empty when the function was not attempted or not loaded)
    message : str, why it was not attempted or could not be loaded
    expect : str, the error a correct answer gives
    """

    exercise: str
    title: str
    status: str
    items: tuple = ()
    message: str = ""
    expect: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def text(self) -> str:
        """The report as a table: per check the relative error, the threshold, pass/FAIL, a hint."""
        head = f"exercise {self.exercise}: {self.title}"
        head += f"\n  (a correct answer gives {self.expect})" if self.expect else ""
        if self.status == NOT_ATTEMPTED or not self.items:
            return f"{head}\n  {self.status} ({self.message})"
        width = min(max([len(i.check.name) for i in self.items] + [5]), 64)
        lines = [head, f"  {'check':<{width}}  {'rel. error':>10}  {'threshold':>9}  result"]
        shown = set()
        for it in self.items:
            err = f"{it.check.error:.1e}" if math.isfinite(it.check.error) else "-"
            verdict = "pass" if it.passed else "FAIL"
            lines.append(f"  {it.check.name:<{width}}  {err:>10}  {it.check.threshold:>9.0e}  {verdict}")
            if it.hint and not it.passed:
                hint = "the same as above" if it.hint in shown else it.hint
                shown.add(it.hint)
                wrap = dict(initial_indent="      hint: ", subsequent_indent=" " * 12, break_on_hyphens=False)
                lines += textwrap.wrap(hint, 104, break_long_words=False, **wrap)
        done = sum(it.passed for it in self.items)
        tail = f"  {self.status.upper()}: {done} of {len(self.items)} checks passed"
        return "\n".join(lines + [tail + (f" ({self.message})" if self.message else "")])

    def __str__(self) -> str:
        return self.text

    def _repr_pretty_(self, p, cycle):  # IPython/Jupyter show the table, not the dataclass fields
        p.text(self.text)


def unpack(out, count, what):
    """``out`` as a tuple of ``count`` outputs, or a :class:`GradeError` saying what was expected."""
    if not isinstance(out, (tuple, list)) or len(out) != count:
        got = f"{type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list)) else repr(out)
        raise GradeError(f"expected a tuple {what}; got {got[:80]}")
    return tuple(out)


def _as_array(name, got, shape):
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradeError(
            f"{name}: returned {type(got).__name__}; expected an array of shape {shape}"
        ) from None
    if arr.shape != shape:
        msg = f"{name}: returned shape {arr.shape}; expected {shape}"
        if arr.ndim == 2 and arr.shape == shape[::-1]:
            msg += " -- transposed: every gradient has the shape of its variable"
        raise GradeError(msg)
    return arr


def compare(
    name, got, oracle, threshold, *, exact=None, variants=(), factors=None, blocks=None, nonfinite="", hint=""
):
    """One :class:`Item`: ``rel_error(got, oracle)`` against ``threshold``, with a hint on failure.

    Parameters
    ----------
    got : the student's output, converted to float64
    oracle : ndarray, what a correct answer must match (e.g. central differences)
    exact : ndarray, the exact right answer used to diagnose mistakes (default: ``oracle``)
    variants : sequence of ``(hint, wrong)``; ``wrong`` is an array or a function returning one
        (called only when needed; a ``ValueError``, e.g. a shape that does not fit, skips it)
    factors : dict ``{c: hint}`` for outputs equal to ``c * exact``
    blocks : sequence of ``(label, slice)``: name the parts of a flat vector that are wrong
    nonfinite : hint to give when the output holds NaN or inf
    hint : if given, the hint for any failure (the grader has already diagnosed the output)
    """
    oracle = np.asarray(oracle, dtype=np.float64)
    exact = oracle if exact is None else np.asarray(exact, dtype=np.float64)
    try:
        got = _as_array(name, got, oracle.shape)
    except GradeError as e:
        return Item.error(name, str(e), threshold)
    if not np.all(np.isfinite(got)):
        bad = int(got.size - np.count_nonzero(np.isfinite(got)))
        return Item.error(name, f"{bad} value(s) are NaN or inf. {nonfinite}".strip(), threshold)
    report = CheckReport(name, rel_error(got, oracle), threshold)
    if report.passed:
        return Item(report)
    return Item(report, hint or diagnose(got, exact, variants, factors, blocks, threshold))


def diagnose(got, exact, variants=(), factors=None, blocks=None, threshold=1e-6) -> str:
    """The hint for a wrong ``got``: a matching known mistake, a constant factor, or the wrong blocks."""
    with np.errstate(all="ignore"):
        for hint, wrong in variants:
            try:
                w = np.asarray(wrong() if callable(wrong) else wrong, dtype=np.float64)
            except ValueError:
                continue
            if w.shape == got.shape and np.all(np.isfinite(w)) and rel_error(got, w) < VARIANT_TOL:
                return hint
    ee = float(np.vdot(exact, exact))
    if ee > 0.0:
        c = float(np.vdot(got, exact)) / ee
        if c != 0.0 and abs(c - 1.0) > 1e-6 and rel_error(got, c * exact) < VARIANT_TOL:
            known = {-1.0: "a sign error: your answer is minus the correct one", **(factors or {})}
            for f, hint in known.items():
                if math.isclose(c, f, rel_tol=1e-6):
                    return f"{hint} (your answer is {c:.6g} times the correct one)"
            return f"your answer is {c:.6g} times the correct one: a constant factor is wrong"
    if blocks:
        wrong = [lab for lab, sl in blocks if rel_error(got[sl], exact[sl]) >= threshold]
        right = [lab for lab, sl in blocks if lab not in wrong]
        if wrong and right:
            return (
                f"right: {', '.join(right)}; wrong: {', '.join(wrong)}. Look at the step where the "
                "wrong blocks get their value."
            )
    return "no known mistake matches; work the formula out by hand on the smallest case and compare"


def describe_exception(e) -> str:
    msg = f"raised {type(e).__name__}: {e}"
    if any(w in str(e) for w in ("shape", "mismatch", "broadcast", "aligned")):
        msg += f" -- {SHAPE_HINT}"
    return msg


def _arrays(obj):
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            yield from _arrays(x)


def run(exercise, fn) -> Report:
    """Grade ``fn`` on every case of ``exercise``; never raises for anything ``fn`` does."""
    ex, thr = exercise, exercise.threshold
    if not callable(fn):
        return Report(ex.id, ex.title, FAILED, message=f"expected a function; got {type(fn).__name__}")
    items = []
    for case in ex.cases():
        args = copy.deepcopy(case.args)  # the student's function gets copies; the oracles keep theirs
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                out = fn(*args)
        except NotImplementedError as e:
            return Report(ex.id, ex.title, NOT_ATTEMPTED, message=str(e) or "NotImplementedError")
        except Exception as e:  # any error in the student's code is reported, never re-raised
            items.append(Item.error(f"{case.label}", describe_exception(e), thr))
            continue
        if not all(np.array_equal(a, b) for a, b in zip(_arrays(case.args), _arrays(args), strict=True)):
            items.append(
                Item.error(
                    f"{case.label}: inputs",
                    "modified an input array in place; "
                    "compute new arrays (phi - alpha * g, not phi -= alpha * g)",
                    thr,
                )
            )
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                items.extend(case.grade(out))
        except GradeError as e:
            items.append(Item.error(case.label, str(e), thr))
    status = PASSED if items and all(it.passed for it in items) else FAILED
    return Report(ex.id, ex.title, status, tuple(items), expect=ex.expect)
