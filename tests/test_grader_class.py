"""`tinymeta exercises grade`: a class folder in, grades.csv, results.json and Gradescope files out."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from tinymeta.exercises.cli import main
from tinymeta.exercises.instructor import CHECKOUT

pytestmark = pytest.mark.fast

SOLUTION = CHECKOUT / "solutions" / "05_maml_k1.py"
FOMAML = """
def maml_grad_k1(net, phi, task, alpha):
    x_s, y_s, x_q, y_q = task
    return net.loss_and_grad(phi - alpha * net.loss_and_grad(phi, x_s, y_s)[1], x_q, y_q)[1]
"""


@pytest.fixture
def klass(tmp_path):
    root = tmp_path / "class"
    for student in ("alice", "bob", "carol"):
        (root / student).mkdir(parents=True)
    shutil.copy(SOLUTION, root / "alice" / "05_maml_k1.py")
    (root / "bob" / "05_maml_k1.py").write_text(FOMAML)
    (root / "carol" / "work").mkdir()  # an unpacked archive: the file one folder down
    (root / "carol" / "work" / "05_maml_k1.py").write_text(
        "import sys\ndef maml_grad_k1(*a):\n    sys.exit(0)\n"
    )
    shutil.copy(CHECKOUT / "solutions" / "07_reptile_step.py", root / "carol" / "07_reptile_step.py")
    (root / ".hidden").mkdir()
    return root


def rows(out):
    with open(out / "grades.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_class_of_three_gives_three_right_rows(klass, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["grade", str(klass), "--out", str(out), "--exercises", "05", "--seed", "spring"]) == 0
    got = {r["student"]: r for r in rows(out)}
    assert list(got) == ["alice", "bob", "carol"]
    assert (
        got["alice"]["status"] == "passed"
        and float(got["alice"]["score"]) == 1.0
        and not got["alice"]["reason"]
    )
    assert got["bob"]["status"] == "failed" and float(got["bob"]["score"]) == 0.0
    assert "first-order MAML" in got["bob"]["reason"]
    assert got["carol"]["status"] == "failed" and "SystemExit" in got["carol"]["reason"]
    table = capsys.readouterr().out
    assert "alice" in table and "pass" in table and "FAIL" in table and "hidden cases, 3 students" in table


def test_the_json_and_gradescope_files(klass, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["grade", str(klass), "--out", str(out), "--exercises", "05,07"]) == 0
    assert "public cases" in capsys.readouterr().err  # no secret: said on stderr
    everything = json.loads((out / "results.json").read_text())
    assert everything["cases"] == "public" and everything["exercises"] == ["05_maml_k1", "07_reptile_step"]
    carol = next(s for s in everything["students"] if s["student"] == "carol")
    assert [e["status"] for e in carol["exercises"]] == ["failed", "passed"] and carol["score"] == 1.0
    bob = json.loads((out / "students" / "bob" / "results.json").read_text())
    assert set(bob) >= {"score", "tests"} and bob["score"] == 0.0
    for test in bob["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output"} and test["max_score"] == 1.0
    assert bob["tests"][1]["output"].endswith("NOT ATTEMPTED: no file 07_reptile_step.py")
    assert "FAIL" in (out / "students" / "bob" / "report.txt").read_text()
    assert {r["status"] for r in rows(out) if r["student"] == "alice"} == {"passed", "not attempted"}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["grade", "{missing}", "--out", "{out}"], "is not a folder"),
        (["grade", "{empty}", "--out", "{out}"], "has no student folders"),
        (["grade", "{klass}", "--out", "{file}"], "cannot write the results"),
        (["grade", "{klass}", "--out", "{out}", "--exercises", "99"], "no exercise '99'"),
        (["grade", "{klass}", "--out", "{out}", "--timeout", "-1"], "expected a number of seconds > 0"),
        (["grade", "{klass}"], "--out"),
    ],
)
def test_the_graders_own_errors_exit_2_with_one_line(klass, tmp_path, capsys, args, said):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    paths = {
        "missing": tmp_path / "nope",
        "empty": tmp_path / "empty",
        "out": tmp_path / "out",
        "file": tmp_path / "file",
        "klass": klass,
    }
    assert main([a.format(**paths) for a in args]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1 and "Traceback" not in err, err
