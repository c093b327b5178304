"""The exercise pages: the student page gives no answer and shows a real report; the answers are all there."""

from __future__ import annotations

import importlib.util
import re

import pytest

import tinymeta.exercises as ex
from tinymeta.exercises.instructor import CHECKOUT

pytestmark = pytest.mark.fast

STUDENT_PAGE = CHECKOUT.parent / "docs" / "exercises.md"
ANSWERS = CHECKOUT / "exercises.md"


def test_the_student_page_names_every_exercise_and_gives_no_answer():
    text = STUDENT_PAGE.read_text()
    assert all(f"`{name}`" in text for name in ex.names())
    assert "not a security sandbox" in text and "hidden" in text
    for answer in ("2(k-1)", "k(k-1)", "s(1-s)", "s (1 - s)", "onehot", "1 - \\tanh^2", "u_{i+1}", "p p^T"):
        assert answer not in text, answer  # each is part of an answer in instructor/exercises.md
    assert "BEGIN SOLUTION" not in text


def test_the_report_shown_on_the_student_page_is_what_the_checker_prints():
    spec = importlib.util.spec_from_file_location("mistakes_layers", CHECKOUT / "mistakes" / "layers.py")
    layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers)
    shown = re.search(r"```text\n(exercise 03_mlp_backward.*?)\n```", STUDENT_PAGE.read_text(), re.S).group(1)
    assert ex.check("03", layers.mlp(n=False)).text == shown


def test_the_answer_list_covers_every_exercise():
    text = ANSWERS.read_text()
    for name in ex.names():
        heading = "## 05 and 06" if name[:2] in ("05", "06") else f"## {name[:2]} "
        assert heading in text, name
    assert "$(1, -2(k-1))$" in text and "$(k, -\\tfrac12k(k-1))$" in text  # exercise 08, tutorial 04's signs
    assert "not a security sandbox" in (CHECKOUT / "README.md").read_text()
