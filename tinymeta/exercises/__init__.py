"""Classroom exercises: derive a derivative, implement it, and get trustworthy feedback at once.

Eight exercises, easy to hard, from sigma' and sigma'' of an activation to the exact MAML
gradient and the Taylor coefficients of the Reptile paper. Each is a plain ``.py`` file with a
function to fill in, followed by a comment that states the error a correct answer gives::

    tinymeta exercises list                     # the exercises
    tinymeta exercises copy my_exercises/       # the student files, to start from
    tinymeta exercises check 03 my_exercises/03_mlp_backward.py

or, in a notebook::

    import tinymeta.exercises as ex
    report = ex.check("03", mlp_loss_grad)      # report.status, report.passed, print(report)

A checker runs the function on seeded float64 cases, reports per case the relative error of
:func:`tinymeta.gradcheck.rel_error`, the threshold and pass/fail, and, when a known mistake
is detected (a transposed weight, a missing sigma'' term, first-order MAML, ...), names it.
A function that raises ``NotImplementedError`` is "not attempted"; any other exception is
reported as "failed" with its message.

Reference solutions are in ``solutions/`` (for instructors); the student files in ``student/``
are generated from them (``python -m tinymeta.exercises.make_student``).
"""

from __future__ import annotations

from pathlib import Path

from .checks import FAILED, NOT_ATTEMPTED, PASSED, Item, Report, run
from .registry import EXERCISES, SOLUTIONS, STUDENT, Exercise, get, load_function

__all__ = [
    "names",
    "check",
    "check_file",
    "solution",
    "student_files",
    "Report",
    "Item",
    "Exercise",
    "EXERCISES",
    "PASSED",
    "FAILED",
    "NOT_ATTEMPTED",
]


def names() -> list[str]:
    """The exercise ids, easy to hard: ``["01_activation_derivatives", ...]``."""
    return [ex.id for ex in EXERCISES]


def check(name, fn) -> Report:
    """Check the function ``fn`` for exercise ``name`` (a number like ``"03"`` or an id).

    Returns
    -------
    Report
        ``.status`` in {"passed", "failed", "not attempted"}, ``.passed``, and ``.text`` (also
        ``str(report)``): a table of relative errors, thresholds, verdicts and hints.
    """
    return run(get(name), fn)


def check_file(name, path) -> Report:
    """Check the function of exercise ``name`` defined in the file ``path``.

    A file that cannot be imported, or that lacks the function, gives a "failed" report whose
    message says why; nothing is raised.
    """
    ex = get(name)
    try:
        fn = load_function(path, ex.function)
    except NotImplementedError as e:
        return Report(ex.id, ex.title, NOT_ATTEMPTED, message=str(e))
    except Exception as e:  # a file with a syntax error or a failing import is a failed attempt
        return Report(ex.id, ex.title, FAILED, message=f"could not load {path}: {type(e).__name__}: {e}")
    return run(ex, fn)


def solution(name):
    """The reference solution of exercise ``name``: the function itself."""
    ex = get(name)
    return load_function(SOLUTIONS / ex.filename, ex.function)


def student_files() -> list[Path]:
    """Paths of the student files shipped with the package, in exercise order."""
    return [STUDENT / ex.filename for ex in EXERCISES]
