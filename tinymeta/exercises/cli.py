"""Command line: ``tinymeta exercises list | copy DIR | check NAME FILE...``.

``main(argv)`` returns the exit code: 0 when every checked file passes, 1 when one fails or is
not attempted (or ``copy`` cannot write), 2 for a usage error. Also ``python -m tinymeta.exercises``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from . import EXERCISES, check_file, get, student_files
from .checks import NOT_ATTEMPTED, Report

EPILOG = """examples:
  tinymeta exercises list
  tinymeta exercises copy my_exercises
  tinymeta exercises check 03 my_exercises/03_mlp_backward.py
  tinymeta exercises check 03 alice/03_mlp_backward.py bob/03_mlp_backward.py
  tinymeta exercises check all my_exercises        (every exercise file in the folder)"""


def _parser():
    p = argparse.ArgumentParser(
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
    return p


def _list() -> int:
    print(f"{'exercise':<28} {'function':<22} {'threshold':>9}  title")
    for ex in EXERCISES:
        print(f"{ex.id:<28} {ex.function:<22} {ex.threshold:>9.0e}  {ex.title}")
    print("\nstart with: tinymeta exercises copy DIR;  check with: tinymeta exercises check NN FILE")
    return 0


def _copy(dest: Path, force: bool) -> int:
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"cannot create {dest}: {e}")
        return 1
    for src in student_files():
        target = dest / src.name
        if target.exists() and not force:
            print(f"kept      {target} (exists; --force overwrites)")
            continue
        shutil.copyfile(src, target)
        print(f"copied    {target}")
    print(
        f"\nnext: open {dest / EXERCISES[0].filename}, fill in the function, and run\n"
        f"  tinymeta exercises check {EXERCISES[0].number} {dest / EXERCISES[0].filename}"
    )
    return 0


def _check(name, files) -> int:
    if name == "all":
        reports = []
        for folder in files:
            for ex in EXERCISES:
                path = folder / ex.filename
                if path.is_file():
                    reports.append((path, check_file(ex.id, path)))
                else:
                    reports.append((path, Report(ex.id, ex.title, NOT_ATTEMPTED, message=f"no file {path}")))
    else:
        try:
            ex = get(name)
        except KeyError as e:
            print(e.args[0])
            return 2
        reports = [(path, check_file(ex.id, path)) for path in files]
    for path, report in reports:
        if len(reports) > 1:
            print(f"== {path}")
        print(report.text)
    if len(reports) > 1:
        counts = {s: sum(r.status == s for _, r in reports) for s in ("passed", "failed", NOT_ATTEMPTED)}
        print("== summary: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0 if all(r.passed for _, r in reports) else 1


def main(argv=None) -> int:
    """Run ``tinymeta exercises`` with the arguments ``argv`` (a list of str); returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2): return the code instead of exiting
        return int(e.code or 0)
    if args.command == "list":
        return _list()
    if args.command == "copy":
        return _copy(args.dir, args.force)
    return _check(args.name, args.files)
