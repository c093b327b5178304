"""The grading machinery every exercise shares: cases, and turning raw results into a report.

A grader makes a few seeded *cases*. The student's function runs on each case's inputs (in a
check process of its own for a file, see :mod:`tinymeta.exercises.isolate`; in the caller's
process for :func:`run`); what comes back -- the outputs, an exception with its line, the first
NaN, measurements -- is judged here, in the grading process, against exact answers computed
here: nothing the student's code does can change them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from . import patterns
from .compare import APPROX, SIGN, GradeError, as_array, compare, describe_exception, unpack
from .diagnose import diagnose
from .harness import NOT_ATTEMPTED as RAN_NOT_ATTEMPTED
from .harness import OK, call_case
from .report import FAILED, NOT_ATTEMPTED, PASSED, Item, Report
from .trace import describe_fp

__all__ = [
    "Case",
    "Item",
    "Report",
    "GradeError",
    "PASSED",
    "FAILED",
    "NOT_ATTEMPTED",
    "compare",
    "diagnose",
    "unpack",
    "as_array",
    "grade_results",
    "run",
    "APPROX",
    "SIGN",
]

LOST = "lost"
"""Status of a case whose result never came back (a time-out, a crash)."""

INPLACE = "modified an input array in place; compute new arrays (phi - alpha * g, not phi -= alpha * g)"
NO_FP = (
    "NumPy reported no overflow or invalid operation in your code, so the NaN or inf was put there "
    "directly: an array from np.empty that was never filled, an explicit np.nan or np.inf, or a "
    "value returned before it was computed"
)


@dataclass(frozen=True)
class Case:
    """One seeded input and how to judge the output.

    Attributes
    ----------
    label : str, e.g. ``"case 2 (k=5, alpha=0.02)"``
    args : tuple, the inputs of the student's function
    grade : ``grade(out, measured) -> [Item]``, run in the grading process
    tags : dict of numbers describing the case (``{"k": 5}``), for the pattern line
    probes : what to measure during the call (see :mod:`tinymeta.exercises.harness`)
    expected : ``expected() -> output``, the exact answer (for tests and the answer key)
    oracle : ``oracle() -> output``, an independent approximation (central differences) that
        the test suite compares with ``expected()``; None where there is no derivative to take
    """

    label: str
    args: tuple
    grade: Callable
    tags: dict = field(default_factory=dict)
    probes: tuple = ()
    expected: Callable | None = None
    oracle: Callable | None = None


def grade_results(exercise, cases, results, kind="public", message="") -> Report:
    """The report of ``exercise`` from one raw result per case (see :func:`harness.call_case`).

    Parameters
    ----------
    cases : list of Case
    results : list of dict, one per case, in order; status ``"lost"`` for a case with no result
    kind : ``"public"`` or ``"hidden"``, how the cases were drawn
    message : what happened to the check process (a time-out, a crash), if anything
    """
    ex, thr = exercise, exercise.threshold
    items, skipped = [], 0
    for i, (case, res) in enumerate(zip(cases, results, strict=True)):
        if res["status"] == RAN_NOT_ATTEMPTED:
            skipped += 1
            text = describe_exception(res["error"])
            items.append(Item.error(case.label, f"{text} (not attempted)", thr, i))
            continue
        if res["status"] == LOST:
            items.append(Item.error(case.label, res["error"]["message"], thr, i))
            continue
        if res["status"] != OK:
            items.append(Item.error(case.label, describe_exception(res["error"]), thr, i))
            continue
        if res.get("inplace"):
            items.append(Item.error(f"{case.label}: inputs", INPLACE, thr, i))
        try:
            new = list(case.grade(res["out"], res.get("measured") or {}))
        except GradeError as e:
            new = [Item.error(case.label, str(e), thr)]
        except Exception as e:  # an output so odd that a comparison itself fails: still a verdict
            new = [
                Item.error(
                    case.label, f"the checker could not compare this output ({type(e).__name__}: {e})", thr
                )
            ]
        fp = describe_fp(res.get("fp") or ())
        for it in new:
            if not it.check.name.startswith(case.label):
                it = replace(it, check=replace(it.check, name=f"{case.label}: {it.check.name}"))
            if it.kind == "nonfinite":
                it = replace(it, hint=f"{it.hint.rstrip('. ')}. {fp or NO_FP}")
            items.append(replace(it, case=i))
    if skipped and skipped == len(cases):
        first = next(r for r in results if r["status"] == RAN_NOT_ATTEMPTED)
        reason = first["error"]["message"] or "NotImplementedError"
        return Report(ex.id, ex.title, NOT_ATTEMPTED, message=reason, expect=ex.expect, cases=kind)
    status = PASSED if items and all(it.passed for it in items) else FAILED
    pattern = patterns.describe(cases, items, getattr(ex, "notes", None)) if status == FAILED else ""
    return Report(ex.id, ex.title, status, tuple(items), message, ex.expect, pattern, kind)


def run(exercise, fn, seed=None) -> Report:
    """Grade the function ``fn`` in this process on every case of ``exercise``.

    For a function defined in a notebook; a file is better checked in a process of its own
    (:func:`tinymeta.exercises.isolate.run_file`). ``SystemExit`` is reported as a failure;
    ``KeyboardInterrupt`` (Ctrl-C) stops the check.
    """
    ex = exercise
    if not callable(fn):
        return Report(ex.id, ex.title, FAILED, message=f"expected a function; got {type(fn).__name__}")
    cases, kind = ex.make_cases(seed)
    code = getattr(fn, "__code__", None)
    path = os.path.realpath(code.co_filename) if code is not None else None
    results = []
    for case in cases:
        results.append(call_case(fn, case.args, path=path, probes=case.probes, catch_interrupt=False))
        if results[-1]["status"] == RAN_NOT_ATTEMPTED and len(results) == 1:
            results += [results[0]] * (len(cases) - 1)  # a stub: the other cases would say the same
            break
    return grade_results(ex, cases, results, kind)
