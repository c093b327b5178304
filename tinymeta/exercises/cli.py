"""Command line: ``tinymeta exercises list | copy DIR | check NAME FILE... | grade CLASS_DIR --out OUT_DIR``.

``main(argv)`` returns the exit code. ``check``: 0 when every checked file passes, 1 when one
fails or is not attempted. ``grade``: 0 whatever the students' results. Both: 2 for the
grader's own errors (bad arguments, a missing folder), with a one-line message on stderr.
Also ``python -m tinymeta.exercises``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

from . import EXERCISES, check_file, get, student_files
from .classroom import GraderError, find_students, grade_class, prepare_out, summary_table, write_outputs
from .isolate import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
from .report import NOT_ATTEMPTED, Report
from .secret import ENV, seed_from_env

EPILOG = f"""examples:
  tinymeta exercises list
  tinymeta exercises copy my_exercises
  tinymeta exercises check 03 my_exercises/03_mlp_backward.py
  tinymeta exercises check all my_exercises        (every exercise file in the folder)
  tinymeta exercises grade submissions --out grades --seed SECRET   (instructors)

Hidden cases: --seed S or ${ENV}. Each file runs in a process of its own, with a time and
a memory limit; this is not a security sandbox."""


class UsageError(Exception):
    """A bad command line; the message is one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr and exit code 2, instead of usage + exit
        raise UsageError(f"{message} (see {self.prog} --help)")


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0; got {text!r}")
    return value


def _count(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}")
    return int(text)


def _limits(p):
    p.add_argument("--seed", help=f"instructor's secret: check on hidden cases (default ${ENV}, else public)")
    p.add_argument(
        "--timeout", type=_positive, default=DEFAULT_TIMEOUT, help="seconds per file (default %(default)g)"
    )
    p.add_argument(
        "--memory",
        type=_count,
        default=DEFAULT_MEMORY_MB,
        metavar="MB",
        help="memory per check process (default %(default)d)",
    )


def build_parser():
    """The parser of ``tinymeta exercises`` and its sub-commands (also read by the docs' CLI reference)."""
    p = _Parser(
        prog="tinymeta exercises",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Exercises with checkers: derive, implement, check.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the exercises, easy to hard")
    cp = sub.add_parser("copy", help="copy the student files into DIR (existing files are kept)")
    cp.add_argument("dir", type=Path)
    cp.add_argument("--force", action="store_true", help="overwrite files that already exist")
    ck = sub.add_parser("check", help="check the function of exercise NAME in each FILE")
    ck.add_argument("name", help="exercise number or id (e.g. 03 or 03_mlp_backward), or 'all'")
    ck.add_argument("files", nargs="+", type=Path, help="solution files (with 'all': folders)")
    _limits(ck)
    gr = sub.add_parser("grade", help="grade a class: CLASS_DIR/<student>/NN_name.py -> OUT_DIR")
    gr.add_argument("class_dir", type=Path, metavar="CLASS_DIR")
    gr.add_argument("--out", type=Path, required=True, metavar="OUT_DIR")
    gr.add_argument("--exercises", help="comma-separated numbers or ids (default: all)")
    gr.add_argument("--jobs", type=_count, default=1, help="check processes at once (default 1)")
    _limits(gr)
    return p


def _list() -> int:
    print(f"{'exercise':<28} {'function':<24} {'threshold':>9}  title")
    for ex in EXERCISES:
        print(f"{ex.id:<28} {ex.function:<24} {ex.threshold:>9.0e}  {ex.title}")
    print("\nstart with: tinymeta exercises copy DIR;  check with: tinymeta exercises check NN FILE")
    return 0


def _copy(dest: Path, force: bool) -> int:
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GraderError(f"cannot create {dest}: {e.strerror or e}") from None
    for src in student_files():
        target = dest / src.name
        if target.exists() and not force:
            print(f"kept      {target} (exists; --force overwrites)")
            continue
        shutil.copyfile(src, target)
        print(f"copied    {target}")
    first = EXERCISES[0]
    print(
        f"\nnext: open {dest / first.filename}, fill in the function, and run\n"
        f"  tinymeta exercises check {first.number} {dest / first.filename}"
    )
    return 0


def _seed(args):
    seed = args.seed if args.seed is not None else seed_from_env()
    if seed is not None and not str(seed).strip():
        raise UsageError("--seed: expected a non-empty secret")
    return seed


def _check(args) -> int:
    seed, limits = _seed(args), dict(timeout=args.timeout, memory_mb=args.memory)
    if args.name == "all":
        reports = []
        for folder in args.files:
            if not folder.is_dir():
                raise GraderError(f"with 'all', each argument is a folder; {folder} is not one")
            for ex in EXERCISES:
                path = folder / ex.filename
                missing = Report(ex.id, ex.title, NOT_ATTEMPTED, message=f"no file {path}")
                reports.append((path, check_file(ex.id, path, seed, **limits) if path.is_file() else missing))
    else:
        ex = _exercise(args.name)
        reports = [(path, check_file(ex.id, path, seed, **limits)) for path in args.files]
    for path, report in reports:
        if len(reports) > 1:
            print(f"== {path}")
        print(report.text)
    if len(reports) > 1:
        counts = {s: sum(r.status == s for _, r in reports) for s in ("passed", "failed", NOT_ATTEMPTED)}
        print("== summary: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0 if all(r.passed for _, r in reports) else 1


def _exercise(name):
    try:
        return get(name)
    except KeyError as e:
        raise UsageError(e.args[0]) from None


def _grade(args) -> int:
    seed = _seed(args)
    chosen = (
        [_exercise(n) for n in args.exercises.split(",") if n.strip()] if args.exercises else list(EXERCISES)
    )
    if not chosen:
        raise UsageError("--exercises: expected at least one exercise")
    find_students(args.class_dir)  # the grader's own errors first, before any grading
    prepare_out(args.out)
    if seed is None:
        print(f"note: no --seed and no ${ENV}: grading on the public cases students can see", file=sys.stderr)
    kind = "hidden" if seed is not None else "public"
    start = time.perf_counter()
    results = grade_class(
        args.class_dir,
        chosen,
        seed=seed,
        timeout=args.timeout,
        memory_mb=args.memory,
        jobs=args.jobs,
        progress=lambda s, reps: print(
            f"graded {s}: {sum(r.passed for r in reps)} of {len(reps)} passed", flush=True
        ),
    )
    settings = {"timeout_s": args.timeout, "memory_mb": args.memory, "exercises": [ex.id for ex in chosen]}
    written = write_outputs(args.out, results, kind, settings)
    print(f"\n{summary_table(results, chosen)}\n")
    print(
        f"{kind} cases, {len(results)} students, {time.perf_counter() - start:.1f} s; wrote {written[0]}, "
        f"{written[1]} and {args.out / 'students'}/<student>/results.json (Gradescope)"
    )
    return 0


def main(argv=None) -> int:
    """Run ``tinymeta exercises`` with the arguments ``argv`` (a list of str); returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            return _list()
        if args.command == "copy":
            return _copy(args.dir, args.force)
        if args.command == "grade":
            return _grade(args)
        return _check(args)
    except SystemExit as e:  # --help (0)
        return int(e.code or 0)
    except (UsageError, GraderError) as e:
        print(f"tinymeta exercises: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
