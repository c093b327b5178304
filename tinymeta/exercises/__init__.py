"""Classroom exercises: derive a derivative, implement it, and get trustworthy feedback at once.

Fifteen exercises, easy to hard, from sigma' and sigma'' of an activation to the exact MAML
gradient with checkpoints, its derivative in the step size, and the meta-gradients of Meta-SGD,
ANIL and iMAML. Each is a plain ``.py`` file
with a function to fill in, followed by a comment that states the error a correct answer
gives::

    tinymeta exercises list                     # the exercises
    tinymeta exercises copy my_exercises/       # the student files, to start from
    tinymeta exercises check 03 my_exercises/03_mlp_backward.py
    tinymeta exercises grade CLASS_DIR --out OUT_DIR --seed SECRET     (instructors)

or, in a notebook::

    import tinymeta.exercises as ex
    report = ex.check("03", mlp_loss_grad)      # report.status, report.passed, print(report)

A file is checked in a process of its own, with a time limit and a memory limit
(:mod:`tinymeta.exercises.isolate`); the right answers are computed in the grading process.
A checker reports per case the relative error, the threshold and pass/fail and, for a wrong
answer, what the mistake looks like: a known mistake by name (a transposed weight, a missing
sigma'' term, first-order MAML, ...), a sign or a factor, the wrong blocks, the line of an
exception or of the first NaN, and what the failing cases have in common.

Students check against public cases; an instructor's secret seed draws hidden ones
(:mod:`tinymeta.exercises.secret`). The reference solutions are for instructors and are not
installed: :func:`solution` finds them in a checkout of the repository (``instructor/``).
"""

from __future__ import annotations

from pathlib import Path

from . import instructor
from .checks import run
from .instructor import InstructorMaterialMissing
from .isolate import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, run_file
from .loader import load_function
from .registry import EXERCISES, STUDENT, Exercise, get
from .report import FAILED, NOT_ATTEMPTED, PASSED, Item, Report

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
    "InstructorMaterialMissing",
]


def names() -> list[str]:
    """The exercise ids, easy to hard: ``["01_activation_derivatives", ...]``."""
    return [ex.id for ex in EXERCISES]


def check(name, fn, seed=None) -> Report:
    """Check the function ``fn`` for exercise ``name`` (a number like ``"03"`` or an id), in this process.

    Parameters
    ----------
    name : exercise number or id
    fn : the function to check
    seed : None for the public cases; an instructor's secret for hidden ones

    Returns
    -------
    Report
        ``.status`` in {"passed", "failed", "not attempted"}, ``.passed``, ``.score`` and
        ``.text`` (also ``str(report)``): the table of errors, thresholds, verdicts and hints.
    """
    return run(get(name), fn, seed)


def check_file(name, path, seed=None, timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB) -> Report:
    """Check the function of exercise ``name`` defined in the file ``path``, in a process of its own.

    Anything the file does -- a syntax error, ``sys.exit``, ``os._exit``, an endless loop, a crash --
    gives a "failed" report that says why; nothing is raised.
    """
    return run_file(get(name), path, seed=seed, timeout=timeout, memory_mb=memory_mb)


def solution(name):
    """The reference solution of exercise ``name`` (the function), for instructors.

    Raises
    ------
    InstructorMaterialMissing
        When the instructor material is not on this machine (it is not installed with tinymeta:
        run from a checkout of the repository, or set ``TINYMETA_INSTRUCTOR``).
    """
    ex = get(name)
    return load_function(instructor.solution_path(ex.filename), ex.function)


def student_files() -> list[Path]:
    """Paths of the student files shipped with the package, in exercise order."""
    return [STUDENT / ex.filename for ex in EXERCISES]
