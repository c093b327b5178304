"""The classroom exercises: reference solutions pass, stubs are "not attempted", files and CLI work."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import tinymeta.exercises as ex
from tinymeta import taylor
from tinymeta.exercises import instructor, make_student
from tinymeta.exercises.cli import main

pytestmark = pytest.mark.fast

NAMES = ex.names()
SOLUTIONS = instructor.CHECKOUT / "solutions"


def test_there_are_fifteen_exercises_in_order():
    assert len(NAMES) == 15
    assert [n[:2] for n in NAMES] == [f"{i:02d}" for i in range(1, len(NAMES) + 1)]


@pytest.mark.parametrize("seed", [None, "term-2 secret"])
@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes_public_and_hidden_cases(name, seed):
    report = ex.check(name, ex.solution(name), seed=seed)
    assert report.status == "passed" and report.passed and report.score == 1.0, report.text
    assert all(it.check.error < it.check.threshold for it in report.items)
    assert "PASSED" in str(report) and "rel. error" in report.text
    assert report.cases == ("public" if seed is None else "hidden")


@pytest.mark.parametrize("name", NAMES)
def test_hidden_cases_differ_from_the_public_ones_and_are_reproducible(name):
    exercise = ex.registry.get(name)
    public, _ = exercise.make_cases(None)
    hidden, kind = exercise.make_cases("s1")
    again, _ = exercise.make_cases("s1")
    other, _ = exercise.make_cases("s2")
    assert kind == "hidden" and len(hidden) == len(public)
    same = lambda a, b: repr(a.args) == repr(b.args)  # noqa: E731  (the arrays' printed values)
    assert all(same(a, b) for a, b in zip(hidden, again, strict=True))
    if name != "08_reptile_taylor":  # its inputs are values of k; the hidden set adds one larger k
        assert not any(same(a, b) for a, b in zip(hidden, public, strict=True))
        assert not any(same(a, b) for a, b in zip(hidden, other, strict=True))
    else:
        assert [c.args for c in hidden] != [c.args for c in public] or [c.args for c in other] != [
            c.args for c in hidden
        ]


@pytest.mark.parametrize("name", NAMES)
def test_untouched_stub_is_not_attempted(name):
    report = ex.check(
        name, ex.registry.load_function(ex.student_files()[NAMES.index(name)], ex.get(name).function)
    )
    assert report.status == "not attempted" and not report.passed and report.score == 0.0
    assert f"exercise {name[:2]}:" in report.text


def test_names_lookup_and_bad_inputs():
    assert ex.check("3", ex.solution("mlp_backward")).passed
    with pytest.raises(KeyError, match="no exercise"):
        ex.check("99", lambda: None)
    assert ex.check("02", 42).status == "failed"
    assert ex.check("08", lambda k: {"maml": (1, 2)}).status == "failed"
    assert ex.check("01", lambda z: None).status == "failed"


def test_solution_needs_the_instructor_material(monkeypatch, tmp_path):
    monkeypatch.setenv(instructor.ENV, str(tmp_path))
    with pytest.raises(ex.InstructorMaterialMissing, match="no solutions/ folder"):
        ex.solution("03")
    monkeypatch.delenv(instructor.ENV)
    monkeypatch.setattr(instructor, "CHECKOUT", tmp_path / "nowhere")
    with pytest.raises(ex.InstructorMaterialMissing, match="not installed with tinymeta"):
        ex.solution("03")
    assert not instructor.has_material()
    (tmp_path / "mine" / "solutions").mkdir(parents=True)
    (tmp_path / "mine" / "solutions" / "03_mlp_backward.py").write_text(
        (SOLUTIONS / "03_mlp_backward.py").read_text()
    )
    monkeypatch.setenv(instructor.ENV, str(tmp_path / "mine"))
    assert ex.check("03", ex.solution("03")).passed


# ---------------------------------------------------------------------------- one notation (issue 12)
def test_exercise_08_accepts_tutorial_04s_coefficients():
    # tutorial 04 prints its table with taylor.taylor_coefficients; a student who copies it passes
    copied = lambda k: {a: taylor.taylor_coefficients(a, k) for a in ("maml", "fomaml", "reptile")}  # noqa: E731
    assert ex.check("08", copied).passed
    assert ex.check("08", copied, seed="hidden").passed
    literal = lambda k: {"maml": (1, -2 * (k - 1)), "fomaml": (1, -(k - 1)), "reptile": (k, -k * (k - 1) / 2)}  # noqa: E731
    assert ex.check("08", literal).passed
    flipped = lambda k: {a: (c0, -c1) for a, (c0, c1) in copied(k).items()}  # noqa: E731  (the old convention)
    report = ex.check("08", flipped)
    assert not report.passed and "sign of c1" in report.text


@pytest.mark.parametrize("path", [*ex.student_files(), *sorted(SOLUTIONS.glob("*.py"))], ids=lambda p: p.name)
def test_exercise_texts_use_one_notation(path):
    text = path.read_text()
    assert not re.search(r"\bL_[sq]\b", text), "support/query losses are L_A and L_B"
    assert not re.search(r"\(n tasks\)|1/n\) sum_i \(phi~", text), "M is the number of tasks"
    assert "phi_1 = phi," not in text and "phi_{i-1}) on batches" not in text, "phi_0 = phi"
    if re.search(r"\bH_i\b", text):
        assert "phi_0 = phi" in text and "i = 0 .. k-1" in text


# ---------------------------------------------------------------------------- files
def test_student_files_equal_the_generated_ones():
    assert make_student.stale() == []
    assert make_student.main(["--check"]) == 0


def test_student_files_have_stub_marker_and_expected_error():
    for exer, path in zip(ex.EXERCISES, ex.student_files(), strict=True):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "### YOUR CODE HERE" in text
        assert f'raise NotImplementedError("exercise {exer.number}: {exer.todo}")' in text
        after = text[text.index(f"def {exer.function}(") :]
        check = " ".join(after[after.index("# CHECK:") : after.index('if __name__ == "__main__"')].split())
        assert f"threshold {exer.threshold:.0e}" in check


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("x = 1\n", "no BEGIN SOLUTION"),
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "never closed"),
        ("    # END SOLUTION\n", "without a BEGIN"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n", "inside the block"),
    ],
)
def test_make_student_rejects_unbalanced_markers(text, match):
    with pytest.raises(ValueError, match=match):
        make_student.strip_solutions(text, "09", "todo")


def test_make_student_check_detects_drift(tmp_path):
    for name, text in make_student.generate().items():
        (tmp_path / name).write_text(text)
    assert make_student.stale(tmp_path) == []
    (tmp_path / "03_mlp_backward.py").write_text("edited\n")
    assert make_student.stale(tmp_path) == ["03_mlp_backward.py"]
    assert make_student.main(["--check", "--out", str(tmp_path)]) == 1


# ---------------------------------------------------------------------------- CLI
def test_cli_check_prints_the_table_and_exit_codes(tmp_path, capsys):
    good = tmp_path / "mine.py"
    good.write_text((SOLUTIONS / "03_mlp_backward.py").read_text())
    assert main(["check", "03", str(good)]) == 0
    out = capsys.readouterr().out
    assert "rel. error" in out and "threshold" in out and "PASSED" in out
    assert main(["check", "03", str(ex.student_files()[2])]) == 1
    assert "NOT ATTEMPTED" in capsys.readouterr().out
    bad = tmp_path / "bad.py"
    bad.write_text("def mlp_loss_grad(phi, X, y, sizes):\n    return -phi\n")
    assert main(["check", "03", str(bad), "--seed", "x"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "hidden cases" in out
    broken = tmp_path / "broken.py"
    broken.write_text("def mlp_loss_grad(:\n")
    assert main(["check", "03", str(broken), str(good)]) == 1
    assert "SyntaxError" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "77", "x.py"],
        ["nonsense"],
        [],
        ["check", "03", "x.py", "--timeout", "0"],
        ["check", "all", "no_such_folder"],
        ["grade", "x"],
        ["check", "03", "x", "--seed", " "],
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_cli_list_and_copy(tmp_path, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in NAMES)
    dest = tmp_path / "class"
    assert main(["copy", str(dest)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in ex.student_files())
    mine = dest / "01_activation_derivatives.py"
    mine.write_text("my work\n")
    assert main(["copy", str(dest)]) == 0 and mine.read_text() == "my work\n"  # never overwrites work
    assert main(["check", "all", str(dest)]) == 1
    assert "NOT ATTEMPTED" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "tinymeta.exercises", "list"], capture_output=True, text=True)
    assert res.returncode == 0 and NAMES[0] in res.stdout


def test_a_student_file_checks_itself_when_run(tmp_path):
    path = tmp_path / "07_reptile_step.py"
    path.write_text((SOLUTIONS / "07_reptile_step.py").read_text())
    res = subprocess.run([sys.executable, str(path)], capture_output=True, text=True)
    assert res.returncode == 0 and "PASSED" in res.stdout, res.stdout + res.stderr
