"""The wheel students install holds the exercises and their checkers, and no reference solution."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import tinymeta.exercises as ex
from tinymeta.exercises.instructor import CHECKOUT

ROOT = CHECKOUT.parent
SKIP = shutil.ignore_patterns(
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
    "_build",
    "jupyter_execute",
    "runs",
    "out",
    "*.ipynb",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    import setuptools

    if tuple(int(x) for x in setuptools.__version__.split(".")[:2]) < (70, 1):
        pytest.importorskip("wheel", reason="setuptools < 70.1 builds wheels with the 'wheel' package")
    # built from a copy, so that the build leaves nothing in the shared checkout (build/, egg-info)
    src, dist = tmp_path_factory.mktemp("src") / "tinymeta", tmp_path_factory.mktemp("dist")
    shutil.copytree(ROOT, src, ignore=SKIP)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(dist),
        str(src),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    (path,) = dist.glob("tinymeta-*.whl")
    with zipfile.ZipFile(path) as z:
        return z.namelist(), {n: z.read(n) for n in z.namelist() if n.startswith("tinymeta/exercises/")}


def test_the_wheel_has_the_exercises_but_no_solution(wheel):
    names, files = wheel
    assert not [n for n in names if n.startswith("instructor/") or "/solutions/" in n or "mistakes" in n]
    students = {Path(n).name for n in names if n.startswith("tinymeta/exercises/student/")}
    assert students == {f.name for f in ex.student_files()}  # the negative control: files *are* packaged
    assert "tinymeta/exercises/isolate.py" in names and "tinymeta/exercises/grade_maml.py" in names
    assert not [n for n, data in files.items() if re.search(rb"^[ ]*# BEGIN SOLUTION[ ]*$", data, re.M)]
    solution_bodies = [
        line.strip()
        for p in (CHECKOUT / "solutions").glob("*.py")
        for line in p.read_text().split("# BEGIN SOLUTION")[1].split("# END SOLUTION")[0].splitlines()
        if len(line.strip()) > 40
    ]
    packaged = b"\n".join(data for n, data in files.items() if "/student/" in n).decode()
    assert solution_bodies and not [line for line in solution_bodies if line in packaged]


def test_the_wheel_ships_the_tutorials_and_the_omniglot_sample(wheel):
    """`tinymeta tutorials copy` and `tinymeta.omniglot.load_sample` work from an installed wheel too."""
    names, _ = wheel
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("tinymeta/tutorial_sources/")}
    assert shipped == {p.name for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.py")} != set()
    sample = {n.rsplit("/", 1)[1] for n in names if n.startswith("tinymeta/omniglot/sample/")}
    assert {
        "LICENSE",
        "README.md",
        "omniglot28_binary_background.npz",
        "omniglot28_binary_evaluation.npz",
    } <= sample
