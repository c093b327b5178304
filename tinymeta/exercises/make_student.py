"""Generate the student files from the reference solutions, so that the two never drift apart.

In a solution file every block between a ``# BEGIN SOLUTION`` line and a ``# END SOLUTION``
line is replaced, at the indentation of the ``BEGIN`` line, by::

    ### YOUR CODE HERE
    raise NotImplementedError("exercise NN: <what to write>")

with the message of the exercise's ``todo`` in :mod:`tinymeta.exercises.registry`. A block at
column 0 is removed with nothing in its place (for notes meant for instructors only).

The solutions are instructor material (``instructor/solutions/`` in a checkout of the
repository, see :mod:`tinymeta.exercises.instructor`), so this runs only where they are.

Usage::

    python -m tinymeta.exercises.make_student            # rewrite student/ from the solutions
    python -m tinymeta.exercises.make_student --check    # exit 1 if student/ is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .instructor import InstructorMaterialMissing, instructor_dir
from .registry import EXERCISES, STUDENT

BEGIN = re.compile(r"^(?P<indent>[ ]*)# BEGIN SOLUTION[ ]*$")
END = re.compile(r"^[ ]*# END SOLUTION[ ]*$")


def strip_solutions(text, number, todo, source="<text>") -> str:
    """The student version of the solution file ``text`` (see the module docstring).

    Raises
    ------
    ValueError
        For a ``BEGIN`` without ``END`` (or the reverse), nested blocks, or no block at all;
        the message names ``source`` and the line.
    """
    out, indent, start, blocks = [], None, 0, 0
    for lineno, line in enumerate(text.splitlines(keepends=True), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if indent is not None:
                raise ValueError(f"{source}:{lineno}: BEGIN SOLUTION inside the block opened on line {start}")
            indent, start = begin["indent"], lineno
        elif end:
            if indent is None:
                raise ValueError(f"{source}:{lineno}: END SOLUTION without a BEGIN SOLUTION")
            if indent:
                out += [
                    f"{indent}### YOUR CODE HERE\n",
                    f'{indent}raise NotImplementedError("exercise {number}: {todo}")\n',
                ]
            indent, blocks = None, blocks + 1
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise ValueError(f"{source}:{start}: BEGIN SOLUTION is never closed by END SOLUTION")
    if not blocks:
        raise ValueError(f"{source}: no BEGIN SOLUTION / END SOLUTION block; nothing for the student to do")
    return "".join(out)


def generate(solutions=None) -> dict[str, str]:
    """``{filename: student text}`` for every exercise, from the files in ``solutions``.

    ``solutions`` defaults to the instructor material's ``solutions/`` folder.
    """
    solutions = instructor_dir() / "solutions" if solutions is None else solutions
    files = {}
    for ex in EXERCISES:
        path = Path(solutions) / ex.filename
        files[ex.filename] = strip_solutions(path.read_text(encoding="utf-8"), ex.number, ex.todo, str(path))
    return files


def stale(student=STUDENT) -> list[str]:
    """Names of student files that differ from the generated ones, are missing, or are extra."""
    want = generate()
    have = {p.name: p.read_text(encoding="utf-8") for p in Path(student).glob("*.py")}
    return sorted(name for name in set(want) | set(have) if want.get(name) != have.get(name))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinymeta.exercises.make_student", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if student files are out of date"
    )
    parser.add_argument("--out", type=Path, default=STUDENT, help=f"where to write (default {STUDENT})")
    args = parser.parse_args(argv)
    try:
        instructor_dir()
    except InstructorMaterialMissing as e:
        print(f"make_student: {e}", file=sys.stderr)
        return 2
    if args.check:
        bad = stale(args.out)
        for name in bad:
            print(f"out of date: {args.out / name}")
        print("student files are up to date" if not bad else "run: python -m tinymeta.exercises.make_student")
        return 1 if bad else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
