"""Where the instructor-only material is: the reference solutions and the answer list.

It is not installed with tinymeta. It lives in the ``instructor/`` folder of a checkout of the
repository (``instructor/solutions/NN_name.py``, ``instructor/exercises.md``); set
``TINYMETA_INSTRUCTOR=/path/to/instructor`` to use a copy kept elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "TINYMETA_INSTRUCTOR"
CHECKOUT = Path(__file__).resolve().parents[2] / "instructor"


class InstructorMaterialMissing(LookupError):
    """The reference solutions are not on this machine; the message says where they are looked for."""


def instructor_dir() -> Path:
    """The folder holding ``solutions/``: ``$TINYMETA_INSTRUCTOR``, else the checkout's ``instructor/``.

    Raises
    ------
    InstructorMaterialMissing
        When neither holds a ``solutions/`` folder.
    """
    given = os.environ.get(ENV)
    if given:
        if (Path(given) / "solutions").is_dir():
            return Path(given)
        raise InstructorMaterialMissing(
            f"{ENV}={given} has no solutions/ folder; point it to the instructor/ folder of a "
            "checkout of the tinymeta repository"
        )
    if (CHECKOUT / "solutions").is_dir():
        return CHECKOUT
    raise InstructorMaterialMissing(
        "the reference solutions are for instructors and are not installed with tinymeta: run "
        f"from a checkout of the repository (its instructor/ folder), or set {ENV}=/path/to/instructor"
    )


def has_material() -> bool:
    """Whether :func:`instructor_dir` would find the solutions."""
    try:
        instructor_dir()
    except InstructorMaterialMissing:
        return False
    return True


def solution_path(filename) -> Path:
    """``instructor/solutions/<filename>``; raises :class:`InstructorMaterialMissing` if absent."""
    path = instructor_dir() / "solutions" / filename
    if not path.is_file():
        raise InstructorMaterialMissing(f"no reference solution {path}")
    return path
