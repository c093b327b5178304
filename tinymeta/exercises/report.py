"""What a check says: one :class:`Item` per compared output, one :class:`Report` per exercise.

A report is a table (relative error, threshold, pass/FAIL, hint per line), followed by a
*pattern* line when the failing cases share something (``fails for k >= 2``), and a verdict.
``Report.score`` is the fraction of checks passed and ``Report.reason`` one line for a grade
sheet.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

from ..gradcheck import CheckReport

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
STATUSES = (PASSED, FAILED, NOT_ATTEMPTED)


@dataclass(frozen=True)
class Item:
    """One line of a report: a :class:`~tinymeta.gradcheck.CheckReport` and, if it failed, a hint.

    Attributes
    ----------
    check : CheckReport, the name of the line, the relative error and the threshold
    hint : str, what is wrong (empty for a passed line)
    case : int, the index of the case the line belongs to (-1: the whole submission)
    kind : str, ``""``, ``"nonfinite"`` (NaN or inf in the output) or ``"error"`` (no value)
    """

    check: CheckReport
    hint: str = ""
    case: int = -1
    kind: str = ""

    @classmethod
    def error(cls, name, message, threshold, case=-1, kind="error"):
        """A failed line that has no error value (an exception, a wrong shape, a NaN)."""
        return cls(CheckReport(name, math.inf, threshold), message, case, kind)

    @property
    def passed(self) -> bool:
        return self.check.passed


@dataclass(frozen=True)
class Report:
    """The outcome of one exercise; ``str(report)`` (or ``report.text``) is the readable table.

    Attributes
    ----------
    exercise : str, the exercise id
    title : str
    status : str, ``"passed"``, ``"failed"`` or ``"not attempted"``
    items : tuple of Item, one per check (empty when nothing could be run)
    message : str, why it was not attempted, could not be loaded or did not finish
    expect : str, the error a correct answer gives
    pattern : str, what the failing cases have in common (empty if nothing)
    cases : str, ``"public"`` or ``"hidden"`` (cases drawn from an instructor's secret seed)
    """

    exercise: str
    title: str
    status: str
    items: tuple = ()
    message: str = ""
    expect: str = ""
    pattern: str = ""
    cases: str = "public"

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def score(self) -> float:
        """The fraction of checks passed: 1.0 when passed, 0.0 when nothing ran or passed."""
        if self.status == PASSED:
            return 1.0
        if not self.items:
            return 0.0
        return sum(it.passed for it in self.items) / len(self.items)

    @property
    def reason(self) -> str:
        """One line for a grade sheet: why it did not pass (empty when it passed)."""
        if self.status == PASSED:
            return ""
        if self.message:
            return _one_line(self.message)
        first = next((it for it in self.items if not it.passed), None)
        if first is None:
            return "no check ran"
        return _one_line(f"{first.check.name}: {first.hint or 'wrong value'}")

    @property
    def text(self) -> str:
        """The report as a table: per check the relative error, the threshold, pass/FAIL, a hint."""
        head = f"exercise {self.exercise}: {self.title}"
        if self.cases == "hidden":
            head += "\n  (hidden cases: drawn from the instructor's seed)"
        head += f"\n  (a correct answer gives {self.expect})" if self.expect else ""
        if not self.items:
            return f"{head}\n  {self.status.upper()}: {self.message}"
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
                lines += _wrap("hint: ", hint)
        if self.pattern:
            lines += _wrap("pattern: ", self.pattern, indent=2)
        done = sum(it.passed for it in self.items)
        tail = f"  {self.status.upper()}: {done} of {len(self.items)} checks passed"
        return "\n".join(lines + [tail + (f" ({self.message})" if self.message else "")])

    def __str__(self) -> str:
        return self.text

    def _repr_pretty_(self, p, cycle):  # IPython/Jupyter show the table, not the dataclass fields
        p.text(self.text)


def _wrap(label, text, indent=6):
    first = " " * indent + label
    wrap = dict(initial_indent=first, subsequent_indent=" " * len(first), break_on_hyphens=False)
    return textwrap.wrap(text, 104, break_long_words=False, **wrap)


def _one_line(text, limit=300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
