"""Plausible wrong answers to every exercise: each is rejected, with a hint that names the mistake.

The mistakes (instructor/mistakes/*.py) are written the way a student would write them, not
taken from the graders' own lists of wrong answers. Each must fail, and the report must contain
the phrase that names it; none may get the generic "no known mistake matches".
"""

from __future__ import annotations

import collections
import importlib.util

import pytest

import tinymeta.exercises as ex
from tinymeta.exercises.instructor import CHECKOUT


def _load(name):
    spec = importlib.util.spec_from_file_location(f"mistakes_{name}", CHECKOUT / "mistakes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MISTAKES


LAYERS, META, BEYOND = _load("layers"), _load("meta"), _load("beyond")

pytestmark = pytest.mark.fast

MISTAKES = LAYERS + META + BEYOND
GENERIC = "no known mistake matches"


@pytest.mark.parametrize(("name", "what", "fn", "phrase"), MISTAKES, ids=[f"{m[0]}-{m[1]}" for m in MISTAKES])
def test_a_mistake_is_rejected_and_named(name, what, fn, phrase):
    report = ex.check(name, fn)
    text = " ".join(report.text.split())  # the report wraps long hints
    assert report.status == "failed" and not report.passed and report.score < 1, text
    assert phrase in text, text
    assert GENERIC not in text, text


def test_the_battery_covers_every_exercise_with_at_least_five_mistakes():
    counts = collections.Counter(m[0] for m in MISTAKES)
    assert sorted(counts) == [n[:2] for n in ex.names()]
    assert min(counts.values()) >= 5 and len(MISTAKES) >= 75, counts


@pytest.mark.parametrize("seed", ["hidden-1", "hidden-2"])
def test_mistakes_are_rejected_on_hidden_cases_too(seed):
    for name, what, fn, _ in MISTAKES[::4]:
        assert not ex.check(name, fn, seed=seed).passed, f"{name}: {what}"
