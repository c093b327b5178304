"""The classroom exercises: reference solutions pass, stubs are "not attempted", mistakes are named."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tinymeta.exercises as ex
from tinymeta.exercises import make_student
from tinymeta.exercises.cli import main
from tinymeta.params import flatten, unflatten

pytestmark = pytest.mark.fast

NAMES = ex.names()


def sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def test_there_are_at_least_six_exercises_in_order():
    assert len(NAMES) >= 6
    assert [n[:2] for n in NAMES] == [f"{i:02d}" for i in range(1, len(NAMES) + 1)]


@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes(name):
    report = ex.check(name, ex.solution(name))
    assert report.status == "passed" and report.passed, report.text
    assert all(it.check.error < it.check.threshold for it in report.items)
    assert "PASSED" in str(report) and "rel. error" in report.text


@pytest.mark.parametrize("name", NAMES)
def test_untouched_stub_is_not_attempted(name):
    path = ex.student_files()[NAMES.index(name)]
    report = ex.check_file(name, path)
    assert report.status == "not attempted" and not report.passed
    assert f"exercise {name[:2]}:" in report.text


def test_other_exceptions_and_bad_outputs_fail_without_crashing():
    def boom(*args):
        raise ValueError("boom at line 3")

    report = ex.check("03", boom)
    assert report.status == "failed" and "ValueError: boom at line 3" in report.text
    assert ex.check("01", lambda z: None).status == "failed"
    assert ex.check("08", lambda k: {"maml": (1, 2)}).status == "failed"
    assert ex.check("02", 42).status == "failed"


def test_names_and_lookup():
    assert ex.check("3", ex.solution("mlp_backward")).passed
    assert ex.solution("03_mlp_backward") is not None
    with pytest.raises(KeyError, match="no exercise"):
        ex.check("99", lambda: None)


# ---------------------------------------------------------------------------- wrong answers
def act_sign(z):
    return sig(-z), sig(z) * (1 - sig(z))


def act_third(z):
    s = sig(z)
    return s, s * (1 - s) * (1 - 2 * s)


def act_overflow(z):
    s = np.exp(z) / (1 + np.exp(z))
    return s, s * (1 - s)


def act_neg_d2(z):
    return sig(z), -sig(z) * (1 - sig(z))


def dense(a, W, b, delta, d1=True, da_W=False, mean_b=False, dW_T=False, z2=False):
    z = a @ W + b
    dz = delta * ((1 - z**2) if z2 else (1 - np.tanh(z) ** 2) if d1 else 1.0)
    dW = dz.T @ a if dW_T else a.T @ dz
    return dW, dz.mean(0) if mean_b else dz.sum(0), dz @ W if da_W else dz @ W.T


def mlp(phi, X, y, sizes, n=True, two=2.0, d1=True, transpose=False, tanh_out=False):
    layers, a, zs = unflatten(sizes, phi), [X], []
    for l, (W, b) in enumerate(layers):
        zs.append(a[-1] @ W + b)
        a.append(np.tanh(zs[-1]) if l < 2 or tanh_out else zs[-1])
    delta = two * (a[-1] - y) / (len(X) if n else 1)
    delta = delta * (1 - a[-1] ** 2) if tanh_out else delta
    grads = [None] * 3
    for l in (2, 1, 0):
        grads[l] = (a[l].T @ delta, delta.sum(0))
        if l:
            delta = (1 - a[l] ** 2 if d1 else 1.0) * (delta @ (layers[l][0] if transpose else layers[l][0].T))
    return flatten(grads)


def hvp(phi, X, y, v, sizes, d2=True, dV=True, Ra=True, n=True):
    (W1, b1), (W2, b2) = unflatten(sizes, phi)
    (V1, c1), (V2, c2) = unflatten(sizes, v)
    m = len(X) if n else 1
    t = np.tanh(X @ W1 + b1)
    delta2, Rz1 = 2 * (t @ W2 + b2 - y) / m, X @ V1 + c1
    Ra1 = (1 - t**2) * Rz1
    Rd2 = 2 * (Ra1 @ W2 + t @ V2 + c2) / m
    Rd1 = (-2 * t * (1 - t**2) * Rz1 * (delta2 @ W2.T) if d2 else 0) + (1 - t**2) * (
        Rd2 @ W2.T + (delta2 @ V2.T if dV else 0)
    )
    return flatten([(X.T @ Rd1, Rd1.sum(0)), ((Ra1.T @ delta2 if Ra else 0) + t.T @ Rd2, Rd2.sum(0))])


def maml(
    net, phi, task, alpha, k, fo=False, no_alpha=False, at_phi=False, ltr=False, h_next=False, plus=False
):
    xs, ys, xq, yq = task
    traj = [phi]
    for _ in range(k):
        traj.append(traj[-1] - alpha * net.loss_and_grad(traj[-1], xs, ys)[1])
    v = net.loss_and_grad(phi if at_phi else traj[-1], xq, yq)[1]
    for i in [] if fo else range(k) if ltr else range(k - 1, -1, -1):
        hv = net.hvp(traj[i + 1] if h_next else traj[i], xs, ys, v)
        v = v + hv * (1 if no_alpha else alpha) * (1 if plus else -1)
    return v


def reptile(
    net, phi, tasks, alpha, k, eps, away=False, no_eps=False, total=False, at_phi=False, inplace=False
):
    acc = np.zeros_like(phi)
    for t in tasks:
        p = phi.copy()
        for _ in range(k):
            p -= alpha * net.loss_and_grad(phi if at_phi else p, t.x_support, t.y_support)[1]
        acc += p - phi
    step = (-1 if away else 1) * (1 if no_eps else eps) * acc / (1 if total else len(tasks))
    if inplace:
        phi += step
        return phi
    return phi + step


def taylor(maml_=(1, 2), fomaml=(1, 1), reptile_=(1, 0.5)):
    return lambda k: {"maml": (maml_[0], maml_[1] * (k - 1)), "fomaml": (fomaml[0], fomaml[1] * (k - 1)),
                      "reptile": (k if reptile_[0] else 1, reptile_[1] * k * (k - 1))}  # fmt: skip


WRONG = [
    ("01", act_sign, "sign error inside the logistic"),
    ("01", act_third, "one derivative too many"),
    ("01", act_overflow, "overflows float64"),
    ("01", act_neg_d2, "sign error"),
    ("02", lambda *a: dense(*a, d1=False), "missing sigma'(z)"),
    ("02", lambda *a: dense(*a, da_W=True), "transposed weight"),
    ("02", lambda *a: dense(*a, mean_b=True), "spurious 1/n"),
    ("02", lambda *a: dense(*a, dW_T=True), "transposed"),
    ("02", lambda *a: dense(*a, z2=True), "1 - z^2 is not tanh'(z)"),
    ("03", lambda *a: mlp(*a, n=False), "missing 1/n"),
    ("03", lambda *a: mlp(*a, two=1.0), "missing factor 2"),
    ("03", lambda *a: mlp(*a, d1=False), "missing sigma'(z)"),
    ("03", lambda *a: mlp(*a, transpose=True), "transposed weight"),
    ("03", lambda *a: mlp(*a, tanh_out=True), "output layer is linear"),
    ("04", lambda *a: hvp(*a, d2=False), "missing sigma'' term"),
    ("04", lambda *a: hvp(*a, d2=False, dV=False, Ra=False), "Gauss-Newton"),
    ("04", lambda *a: hvp(*a, dV=False), "missing delta_2 V_2^T"),
    ("04", lambda *a: hvp(*a, Ra=False), "missing R{a_1}^T delta_2"),
    ("04", lambda *a: hvp(*a, n=False), "missing 1/n"),
    ("05", lambda n, p, t, a: maml(n, p, t, a, 1, fo=True), "first-order MAML (FOMAML)"),
    ("05", lambda n, p, t, a: maml(n, p, t, a, 1, no_alpha=True), "missing alpha"),
    ("05", lambda n, p, t, a: maml(n, p, t, a, 1, at_phi=True), "used phi instead of phi_1"),
    ("05", lambda n, p, t, a: maml(n, p, t, a, 1, h_next=True), "Hessian at the wrong point"),
    ("05", lambda n, p, t, a: maml(n, p, t, a, 1, plus=True), "sign error in the factors"),
    ("06", lambda *a: maml(*a, fo=True), "first-order MAML (FOMAML)"),
    ("06", lambda *a: maml(*a, ltr=True), "wrong order"),
    ("06", lambda *a: maml(*a, h_next=True), "Hessian at the wrong point"),
    ("06", lambda *a: maml(*a, at_phi=True), "used phi instead of phi_k"),
    ("06", lambda *a: maml(*a, no_alpha=True), "missing alpha"),
    ("07", lambda *a: reptile(*a, away=True), "wrong direction"),
    ("07", lambda *a: reptile(*a, no_eps=True), "missing epsilon"),
    ("07", lambda *a: reptile(*a, total=True), "missing 1/n over the tasks"),
    ("07", lambda *a: reptile(*a, at_phi=True), "taken at phi"),
    ("07", lambda *a: reptile(*a, inplace=True), "in place"),
    ("08", taylor(maml_=(1, 1)), "these are FOMAML's"),
    ("08", taylor(reptile_=(1, 1)), "k (k - 1) / 2, not k (k - 1)"),
    ("08", taylor(reptile_=(0, 0.5)), "sum of k gradients"),
    ("08", taylor(maml_=(1, -2), fomaml=(1, -1), reptile_=(1, -0.5)), "sign of c1"),
    ("08", lambda k: {"maml": (1, 2 * k), "fomaml": (1, k), "reptile": (k, k * (k - 1) / 2)}, "off by one"),
]


@pytest.mark.parametrize(("name", "fn", "hint"), WRONG, ids=[f"{n}-{h[:24]}" for n, _, h in WRONG])
def test_wrong_answer_is_rejected_with_its_hint(name, fn, hint):
    report = ex.check(name, fn)
    assert report.status == "failed" and not report.passed
    assert hint in " ".join(report.text.split()), report.text  # the text wraps long hints
    assert "FAIL" in report.text


def test_a_wrong_answer_misses_by_far_more_than_the_threshold():
    # negative control for the thresholds: FOMAML vs exact MAML errors are orders above 1e-6
    report = ex.check("05", lambda n, p, t, a: maml(n, p, t, a, 1, fo=True))
    assert min(it.check.error for it in report.items) > 1e-4, report.text


# ---------------------------------------------------------------------------- files and CLI
def test_student_files_equal_the_generated_ones():
    assert make_student.stale() == []
    assert make_student.main(["--check"]) == 0


def test_student_files_have_stub_marker_and_expected_error():
    for exer, path in zip(ex.EXERCISES, ex.student_files(), strict=True):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "### YOUR CODE HERE" in text
        assert f'raise NotImplementedError("exercise {exer.number}: {exer.todo}")' in text
        after = text[text.index(f"def {exer.function}(") :]
        check = after[after.index("# CHECK:") :]
        assert after.index("# CHECK:") < after.index('if __name__ == "__main__"')
        assert f"threshold {exer.threshold:.0e}" in check.split("if __name__")[0]
        assert f"gives relative error {exer.expect.split(' against')[0]}" in " ".join(check.split())


@pytest.mark.parametrize(("text", "match"), [
    ("x = 1\n", "no BEGIN SOLUTION"),
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("    # END SOLUTION\n", "without a BEGIN"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n", "inside the block"),
])  # fmt: skip
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


def test_cli_check_prints_the_table_and_exit_codes(tmp_path, capsys):
    good = tmp_path / "mine.py"
    good.write_text((ex.registry.SOLUTIONS / "03_mlp_backward.py").read_text())
    assert main(["check", "03", str(good)]) == 0
    out = capsys.readouterr().out
    assert "rel. error" in out and "threshold" in out and "PASSED" in out
    assert main(["check", "03", str(ex.student_files()[2])]) == 1
    assert "not attempted" in capsys.readouterr().out
    bad = tmp_path / "bad.py"
    bad.write_text("def mlp_loss_grad(phi, X, y, sizes):\n    return -phi\n")
    assert main(["check", "03", str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out
    broken = tmp_path / "broken.py"
    broken.write_text("def mlp_loss_grad(:\n")
    assert main(["check", "03", str(broken), str(good)]) == 1
    assert "SyntaxError" in capsys.readouterr().out
    assert main(["check", "77", str(good)]) == 2
    assert main(["nonsense"]) == 2


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
    assert "not attempted" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "tinymeta.exercises", "list"], capture_output=True, text=True)
    assert res.returncode == 0 and NAMES[0] in res.stdout


def test_a_student_file_checks_itself_when_run(tmp_path):
    path = tmp_path / "07_reptile_step.py"
    path.write_text((ex.registry.SOLUTIONS / "07_reptile_step.py").read_text())
    res = subprocess.run([sys.executable, str(path)], capture_output=True, text=True)
    assert res.returncode == 0 and "PASSED" in res.stdout, res.stdout + res.stderr
