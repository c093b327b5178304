"""A file is checked in a process of its own: whatever it does ends as a failed check that says why."""

from __future__ import annotations

import math
import textwrap
import time

import numpy as np
import pytest

import tinymeta.exercises as ex
from tinymeta.exercises import isolate, wire
from tinymeta.exercises.cli import main
from tinymeta.exercises.instructor import CHECKOUT

pytestmark = pytest.mark.fast

DEF = "def maml_grad_k1(net, phi, task, alpha):\n"
MAML_K1 = (CHECKOUT / "solutions" / "05_maml_k1.py").read_text()


def write(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def check(path, name="05", **kw):
    start = time.perf_counter()
    report = ex.check_file(name, path, **kw)
    return report, time.perf_counter() - start


FOMAML = """
def maml_grad_k1(net, phi, task, alpha):
    x_s, y_s, x_q, y_q = task
    return net.loss_and_grad(phi - alpha * net.loss_and_grad(phi, x_s, y_s)[1], x_q, y_q)[1]
"""


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (f"import sys\n{DEF}    sys.exit(0)\n", "raised SystemExit at"),
        (f"{DEF}    raise KeyboardInterrupt\n", "raised KeyboardInterrupt"),
        (f"import os\n{DEF}    os._exit(0)\n", "ended (exit code 0) before"),
        ("import sys\nsys.exit(0)\n", "could not load the file: SystemExit"),
        (f"import ctypes\n{DEF}    ctypes.string_at(0)\n", "crashed (SIGSEGV"),
        ("def maml_grad_k1(net, phi, task, alpha)\n    return phi\n", "SyntaxError"),
        ("def other(net, phi, task, alpha):\n    return phi\n", "defines no function 'maml_grad_k1'"),
        (f"import numpy as np\n{DEF}    return np.ones(3 * 10**9)\n", "MemoryError"),
    ],
    ids=["sys.exit", "KeyboardInterrupt", "os._exit", "exit-at-import", "segfault", "syntax", "no-function",
         "memory"],
)  # fmt: skip
def test_a_submission_that_escapes_is_a_failed_check_with_the_reason(tmp_path, body, said):
    report, seconds = check(write(tmp_path, "05_maml_k1.py", body), memory_mb=300)
    assert report.status == "failed" and report.score == 0.0, report.text
    assert said in report.text and said.split()[0] in report.reason, report.text
    assert seconds < 20


def test_an_endless_loop_is_stopped_at_the_time_limit(tmp_path):
    path = write(
        tmp_path, "05_maml_k1.py", "def maml_grad_k1(net, phi, task, alpha):\n    while True:\n        pass\n"
    )
    report, seconds = check(path, timeout=2.0)
    assert report.status == "failed" and "time limit of 2 s" in report.reason
    assert "during this case" in report.text and "(not run)" in report.text
    assert seconds < 10
    assert isolate.DEFAULT_TIMEOUT <= 60  # a hang is reported within a minute by default


def test_results_before_a_hang_are_kept(tmp_path):
    body = """
    import time
    def maml_grad_k1(net, phi, task, alpha):
        if alpha > 0.1:
            time.sleep(60)
        x_s, y_s, x_q, y_q = task
        phi_1 = phi - alpha * net.loss_and_grad(phi, x_s, y_s)[1]
        g = net.loss_and_grad(phi_1, x_q, y_q)[1]
        return g - alpha * net.hvp(phi, x_s, y_s, g)
    """
    report, _ = check(write(tmp_path, "05_maml_k1.py", body), timeout=3.0)
    assert report.status == "failed" and 0 < report.score < 1, report.text
    assert report.items[0].passed  # case 1 (alpha < 0.1) finished before the hang


def test_patching_the_grader_or_tinymeta_changes_nothing(tmp_path):
    body = """
    import numpy as np
    import tinymeta, tinymeta.gradcheck, tinymeta.maml
    import tinymeta.exercises.checks as checks, tinymeta.exercises.compare as compare
    tinymeta.gradcheck.rel_error = lambda a, b: 0.0
    compare.rel_error = lambda a, b: 0.0
    checks.grade_results = lambda *a, **k: None
    tinymeta.maml.maml_grad = tinymeta.maml_grad = lambda *a, **k: np.zeros(97)
    def maml_grad_k1(net, phi, task, alpha):
        return np.zeros_like(phi)
    """
    patcher = write(tmp_path, "a.py", body)
    zeros = write(
        tmp_path, "b.py", "import numpy as np\ndef maml_grad_k1(net, phi, task, alpha):\n    return 0 * phi\n"
    )
    assert check(patcher)[0].status == "failed"
    assert main(["check", "05", str(patcher), str(zeros)]) == 1  # two files in one call: each alone
    assert check(zeros)[0].status == "failed"
    assert check(write(tmp_path, "c.py", MAML_K1))[0].passed  # negative control: the same run, a right answer


def test_an_exception_names_the_students_line(tmp_path):
    body = f"import numpy as np\n{DEF}    W = np.ones((3, 4))\n    return W @ phi\n"
    report, _ = check(write(tmp_path, "05_maml_k1.py", body))
    assert "raised ValueError at 05_maml_k1.py:4 `return W @ phi`" in report.text
    assert "shape mismatch" in report.text


def test_a_nan_says_where_it_came_from(tmp_path):
    body = """
    import numpy as np
    def softplus_derivatives(z):
        e = np.exp(z)
        s = e / (1 + e)
        return s, s * (1 - s)
    """
    report, _ = check(write(tmp_path, "01.py", body), name="01")
    assert "NaN or inf" in report.text and "overflows float64" in report.text
    assert "overflow at 01.py:4 `e = np.exp(z)`" in " ".join(report.text.split())
    assert "invalid value at 01.py:5" in " ".join(report.text.split())


def test_the_secret_never_reaches_the_check_process(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYMETA_GRADER_SEED", "top secret")
    body = MAML_K1.replace(
        "def maml_grad_k1(",
        'import os\nassert "TINYMETA_GRADER_SEED" not in os.environ\n\n\ndef maml_grad_k1(',
    )
    report, _ = check(write(tmp_path, "05_maml_k1.py", body), seed="top secret")
    assert report.passed and report.cases == "hidden", report.text


def test_printing_and_fake_report_lines_do_not_confuse_the_grader(tmp_path):
    body = MAML_K1.replace(
        "    # BEGIN SOLUTION", '    print(\'{"event": "done"}\' * 1000)\n    # BEGIN SOLUTION'
    )
    report, _ = check(write(tmp_path, "05_maml_k1.py", body))
    assert report.passed, report.text


def test_in_place_modification_is_reported(tmp_path):
    body = FOMAML.replace("    x_s, y_s", "    phi *= 1.0\n    task.x_support[0] += 1.0\n    x_s, y_s")
    report, _ = check(write(tmp_path, "05_maml_k1.py", body))
    assert "modified an input array in place" in report.text


def test_wire_round_trips_data_and_refuses_anything_else():
    data = (np.array([[1.5, np.nan], [np.inf, -0.0]]), {"maml": (1, -2.5)}, [np.int64(3), None, "x"])
    back = wire.decode(wire.loads(wire.dumps({"out": wire.encode(data)}))["out"])
    np.testing.assert_array_equal(back[0], data[0])
    assert back[1] == {"maml": (1, -2.5)} and back[2] == [3, None, "x"]
    assert math.isnan(back[0][0, 1]) and back[0].dtype == np.float64
    assert isinstance(wire.decode(wire.encode(object())), wire.Foreign)
    assert isinstance(wire.decode(wire.encode(np.array(["a"]))), wire.Foreign)
    for bad in ({"array": "object", "shape": [1], "data": [1]}, {"__reduce__": 1}, [1, 2]):
        with pytest.raises((ValueError, KeyError)):
            wire.decode(bad)
    with pytest.raises(ValueError):
        wire.loads("[1, 2]")
