"""Compare one output with the exact answer; on a mismatch, ask :mod:`.diagnose` what went wrong.

Also the checks every grader shares before any comparison: the output has the expected number
of parts (:func:`unpack`), is numeric, has the expected shape (:func:`as_array`); and the
wording of an exception raised by the student's code (:func:`describe_exception`).
"""

from __future__ import annotations

import numpy as np

from ..gradcheck import CheckReport, rel_error
from .diagnose import APPROX, SIGN, Clues, blocks_with, diagnose, mean_loss_factors
from .report import Item

__all__ = [
    "APPROX",
    "SIGN",
    "Clues",
    "GradeError",
    "as_array",
    "compare",
    "describe_exception",
    "mean_loss_factors",
    "unpack",
]

SHAPE_HINT = (
    "a shape mismatch: write the shape of every array next to each line "
    "(a transposed matrix is the usual cause)"
)


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
    name, got, exact, threshold, *, case=-1, hint="", nonfinite="", shape_hints=None, shift=None, **clues
) -> Item:
    """One :class:`Item`: ``rel_error(got, exact)`` against ``threshold``, with a hint on failure.

    Parameters
    ----------
    got : the student's output, converted to float64
    exact : ndarray, the exact right answer (computed outside the student's process)
    hint : if given, the hint for any failure (the grader has already diagnosed the output)
    nonfinite : what to say about NaN or inf in the output
    shape_hints : dict ``{shape: text}`` for outputs of a wrong shape that mean something
    shift : diagnose ``got - shift`` against ``exact - shift`` (e.g. the step phi_new - phi, whose
        factors and signs mean something when phi_new's do not)
    **clues : what :class:`~tinymeta.exercises.diagnose.Clues` takes (known wrong answers,
        factors, blocks, terms, ...)
    """
    clues = Clues(**clues)
    exact = np.asarray(exact, dtype=np.float64)
    try:
        got = as_array(name, got, exact.shape, shape_hints)
    except GradeError as e:
        return Item.error(name, str(e), threshold, case)
    if not np.all(np.isfinite(got)):
        bad = ~np.isfinite(got)
        msg = f"{int(bad.sum())} of {got.size} value(s) are NaN or inf"
        place = blocks_with(bad, clues.blocks) or (clues.where(bad) if clues.where and got.ndim else "")
        msg += f" ({place})" if place else ""
        return Item.error(name, f"{msg}. {nonfinite}".strip(), threshold, case, kind="nonfinite")
    report = CheckReport(name, rel_error(got, exact), threshold)
    if report.passed:
        return Item(report, case=case)
    if not hint and shift is not None:
        hint = diagnose(got - shift, exact - shift, clues.shifted(shift), threshold)
    elif not hint:
        hint = diagnose(got, exact, clues, threshold, report.error)
    return Item(report, hint, case)


def describe_exception(error) -> str:
    """``raised T at FILE:LINE `code`: message``, with a hint for shape and memory errors."""
    where = f" at {error['where']}" if error.get("where") else ""
    msg = f"raised {error['type']}{where}: {error['message']}".rstrip(": ")
    if any(w in error["message"] for w in ("shape", "mismatch", "broadcast", "aligned")):
        msg += f" -- {SHAPE_HINT}"
    if error["type"] == "MemoryError":
        msg += " -- the memory limit was reached: does a list or an array grow without bound?"
    return msg
