"""Grade a whole class: one folder per student, each exercise file in a check process of its own.

``CLASS_DIR/<student>/NN_name.py`` (the file may also sit in one sub-folder, as unpacked
archives often do). Writes, in ``OUT_DIR``:

* ``grades.csv``: one row per student and exercise -- student, exercise, status, score, reason;
* ``results.json``: everything, including each report's table and per-check errors;
* ``students/<student>/results.json``: the Gradescope autograder format
  (``{"score", "tests": [{"name", "score", "max_score", "output"}]}``), one point per exercise;
* ``students/<student>/report.txt``: the reports as the student would see them.

A missing file is "not attempted" with score 0; every other outcome is a report from
:func:`tinymeta.exercises.isolate.run_file`. ``score`` is the fraction of an exercise's checks
that pass (1 when it passed).
"""

from __future__ import annotations

import csv
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .isolate import run_file
from .report import NOT_ATTEMPTED, PASSED, Report

FIELDS = ("student", "exercise", "status", "score", "reason")


class GraderError(Exception):
    """A problem with the grader's own input (a missing folder, an unwritable output); one line."""


def find_students(class_dir) -> list[Path]:
    """The student folders of ``class_dir``, sorted by name (hidden and ``_``-prefixed ones skipped)."""
    class_dir = Path(class_dir)
    if not class_dir.is_dir():
        raise GraderError(f"CLASS_DIR {class_dir} is not a folder; expected one folder per student")
    students = sorted(p for p in class_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    if not students:
        raise GraderError(
            f"CLASS_DIR {class_dir} has no student folders; expected {class_dir}/<student>/NN_name.py"
        )
    return students


def prepare_out(out_dir) -> Path:
    """Create ``out_dir`` (and its parents) now, so that a bad path fails before any grading."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GraderError(f"cannot write the results to {out_dir}: {e.strerror or e}") from None
    return out_dir


def find_file(student_dir, exercise):
    """The student's file for ``exercise``: at the top of the folder, else the only one below it."""
    top = Path(student_dir) / exercise.filename
    if top.is_file():
        return top
    below = sorted(p for p in Path(student_dir).rglob(exercise.filename) if p.is_file())
    return below[0] if len(below) == 1 else None


def grade_class(class_dir, exercises, *, seed=None, timeout=30.0, memory_mb=1024, jobs=1, progress=None):
    """``{student: [Report, ...]}`` for every student folder and every exercise, in order.

    Parameters
    ----------
    class_dir : folder with one sub-folder per student
    exercises : sequence of Exercise to grade
    seed : the instructor's secret (hidden cases), or None (public cases)
    timeout, memory_mb : limits of each check process
    jobs : int >= 1, check processes run at the same time
    progress : called as ``progress(student, reports)`` when a student is done
    """
    students = find_students(class_dir)
    work = [(s, ex) for s in students for ex in exercises]

    def one(item):
        student, ex = item
        path = find_file(student, ex)
        if path is None:
            return Report(ex.id, ex.title, NOT_ATTEMPTED, message=f"no file {ex.filename}", expect=ex.expect)
        return run_file(ex, path, seed=seed, timeout=timeout, memory_mb=memory_mb)

    results = {s.name: [] for s in students}
    with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
        for (student, _), report in zip(work, pool.map(one, work), strict=True):
            results[student.name].append(report)
            if progress and len(results[student.name]) == len(exercises):
                progress(student.name, results[student.name])
    return results


def _checks(report):
    return [
        {
            "name": it.check.name,
            "error": it.check.error if math.isfinite(it.check.error) else None,
            "threshold": it.check.threshold,
            "passed": it.passed,
            "hint": it.hint,
        }
        for it in report.items
    ]


def gradescope(reports, kind) -> dict:
    """The Gradescope autograder ``results.json`` of one student's reports."""
    tests = [
        {
            "name": f"{r.exercise}: {r.title}",
            "score": round(r.score, 4),
            "max_score": 1.0,
            "status": "passed" if r.passed else "failed",
            "output": r.text,
        }
        for r in reports
    ]
    return {
        "score": round(sum(t["score"] for t in tests), 4),
        "visibility": "visible",
        "output": f"tinymeta exercises, {kind} cases",
        "tests": tests,
    }


def write_outputs(out_dir, results, kind, settings) -> list[Path]:
    """Write grades.csv, results.json and the per-student files; returns the paths written."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [out_dir / "grades.csv", out_dir / "results.json"]
        with open(written[0], "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(FIELDS)
            for student, reports in results.items():
                for r in reports:
                    w.writerow([student, r.exercise, r.status, f"{r.score:.3f}", r.reason])
        everything = {
            "cases": kind,
            **settings,
            "students": [
                {
                    "student": s,
                    "score": round(sum(r.score for r in reps), 4),
                    "max_score": len(reps),
                    "exercises": [
                        {
                            "exercise": r.exercise,
                            "status": r.status,
                            "score": round(r.score, 4),
                            "reason": r.reason,
                            "pattern": r.pattern,
                            "checks": _checks(r),
                            "report": r.text,
                        }
                        for r in reps
                    ],
                }
                for s, reps in results.items()
            ],
        }
        written[1].write_text(json.dumps(everything, indent=1), encoding="utf-8")
        for student, reports in results.items():
            folder = out_dir / "students" / student
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "results.json").write_text(
                json.dumps(gradescope(reports, kind), indent=1), encoding="utf-8"
            )
            (folder / "report.txt").write_text("\n\n".join(r.text for r in reports) + "\n", encoding="utf-8")
            written += [folder / "results.json", folder / "report.txt"]
    except OSError as e:
        raise GraderError(f"cannot write the results to {out_dir}: {e.strerror or e}") from None
    return written


def summary_table(results, exercises) -> str:
    """A table: one row per student, one column per exercise (pass / FAIL / -), and the total."""
    width = max([len(s) for s in results] + [7])
    head = f"{'student':<{width}}  " + " ".join(f"{ex.number:>4}" for ex in exercises) + "   score"
    mark = {PASSED: "pass", NOT_ATTEMPTED: "-"}
    lines = [head]
    for student, reports in results.items():
        cells = " ".join(f"{mark.get(r.status, 'FAIL'):>4}" for r in reports)
        lines.append(f"{student:<{width}}  {cells}  {sum(r.score for r in reports):5.2f}/{len(reports)}")
    passed = [sum(reps[i].passed for reps in results.values()) for i in range(len(exercises))]
    lines.append(f"{'passed':<{width}}  " + " ".join(f"{p:>4}" for p in passed))
    return "\n".join(lines)
