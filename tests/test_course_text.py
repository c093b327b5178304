"""Figures quoted in the course text (derivations, notation, instructor material) are recomputed here.

Each test names the page that quotes the figure. A figure that changes must be changed in the
text too: the test fails until it is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinymeta as tm

ROOT = Path(__file__).resolve().parent.parent


def _median_rho(k):
    """Median relative dropped term over 100 sine tasks at net.init(0), alpha = 0.01 (tutorial 4's cell)."""
    net = tm.MLP([1, 40, 40, 1], "relu")
    phi = net.init(0)
    tasks = tm.Sine(K=10, K_query=10).sample(np.random.default_rng(0), 100)
    return float(np.median([tm.dropped_term(net, phi, t, 0.01, k)[1] for t in tasks]))


@pytest.mark.parametrize(("k", "quoted"), [(1, 0.33), (2, 0.54), (5, 1.13)])
def test_median_relative_dropped_term_quoted_in_derivations(k, quoted):
    """docs/derivations/maml.md: 'the median of rho ... is 0.33 for k = 1, 0.54 for k = 2 and 1.13 ...'."""
    assert round(_median_rho(k), 2) == quoted
    text = (ROOT / "docs" / "derivations" / "maml.md").read_text()
    assert f"{quoted:.2f}" in text


def test_no_false_sentence_about_avg_grad_inner():
    """Following -AvgGradInner *decreases* the inner product; no page may say it increases it."""
    wrong = re.compile(r"-\s*\$?\\?(text|mathrm)?\{?AvgGradInner\}?\$?\*?\s+\*?increases", re.IGNORECASE)
    paths = [*ROOT.glob("tutorials/*.py"), *ROOT.glob("docs/**/*.md"), ROOT / "tinymeta" / "taylor.py"]
    paths += list(ROOT.glob("instructor/**/*.md")) + list(ROOT.glob("instructor/**/*.py"))
    for path in paths:
        flat = " ".join(path.read_text().replace("#", " ").split())
        assert not wrong.search(flat), path


# ---------------------------------------------------------------- tutorials: displayed equations
def _cells(path):
    """(kind, text) of each cell of a percent-format tutorial; kind is "markdown" or "code"."""
    cells, kind, lines = [], None, []
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            if kind is not None:
                cells.append((kind, "\n".join(lines)))
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line[2:] if kind == "markdown" and line.startswith("# ") else line)
    cells.append((kind, "\n".join(lines)))
    return cells


def display_equations(path):
    """[(equation, is_definition, checked_later)] for every $$ ... $$ display of a tutorial."""
    cells = _cells(path)
    out = []
    for i, (kind, text) in enumerate(cells):
        if kind != "markdown":
            continue
        for eq in re.findall(r"\$\$(.*?)\$\$", text, flags=re.S):
            later_assert = any(k == "code" and re.search(r"^\s*assert ", t, re.M) for k, t in cells[i + 1 :])
            out.append((eq.strip(), "(definition)" in eq, later_assert))
    return out


@pytest.mark.parametrize("path", sorted(ROOT.glob("tutorials/[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_every_displayed_equation_is_checked_or_a_definition(path):
    """Tutorials: each display is marked (definition) or followed by a cell with an assert."""
    for eq, definition, checked in display_equations(path):
        assert definition or checked, f"{path.name}: {eq[:60]}"


# ---------------------------------------------------------------- instructor answer keys
ANSWERS = sorted((ROOT / "instructor" / "course" / "answers").glob("answers_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", ANSWERS, ids=lambda p: p.stem)
def test_answer_key_runs(path):
    """instructor/course/answers: every claim of an answer is an assert; the file must run clean."""
    env = {**os.environ, "TINYMETA_FAST": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
