"""The tinymeta command: end to end in a temporary directory, bad arguments exit 2, divergence exits 1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tinymeta import load_checkpoint
from tinymeta.cli import main

FAST = ["--backend", "numpy", "--eval-tasks", "8", "--no-progress"]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("sine", "exercises", "omniglot"):
        assert command in out


def test_python_dash_m_runs_the_same_command():
    command = [sys.executable, "-m", "tinymeta", "sine", "--help"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for flag in (
        "--algo",
        "--iterations",
        "--seed",
        "--out",
        "--compare",
        "--resume",
        "--backend",
        "--time-budget",
        "--overwrite",
        "--inner-steps",
        "--shots",
    ):
        assert flag in proc.stdout


@pytest.mark.slow
def test_sine_end_to_end_with_compare(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["sine", "--algo", "maml", "--iterations", "6", "--out", str(out), "--compare", *FAST]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("algo", "iterations", "mse_after_steps", "seed", "config", "wall_time_s", "backend",
                "meta_iters_per_s", "compare", "diverged", "stopped_by"):  # fmt: skip
        assert key in summary
    assert summary["algo"] == "maml" and summary["iterations"] == 6 and summary["backend"] == "numpy"
    assert list(summary["mse_after_steps"]) == [str(s) for s in range(11)]
    assert sorted(summary["compare"]) == ["fomaml", "joint", "maml", "reptile"]
    assert summary["compare"]["reptile"]["k"] == 5 and summary["compare"]["joint"]["k"] == 0
    assert summary["compare"]["maml"]["mse_after_steps"] == summary["mse_after_steps"]
    assert (out / "sine.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_checkpoint(out / "checkpoint.npz").iteration == 6
    assert load_checkpoint(out / "checkpoint_reptile.npz").config.algo == "reptile"
    assert str(out / "sine.png") in capsys.readouterr().out
    assert summary["diverged"] is False and summary["stopped_by"] == "iterations"


def test_resume_continues_a_finished_run_without_changing_it(tmp_path):
    out = str(tmp_path / "run")
    assert main(["sine", "--algo", "reptile", "--iterations", "4", "--out", out, *FAST]) == 0
    first = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert main(["sine", "--algo", "reptile", "--iterations", "4", "--out", out, "--resume", *FAST]) == 0
    again = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert again["resumed_from_iteration"] == 4
    assert again["mse_after_steps"] == first["mse_after_steps"]


BAD = [
    (["--alpha", "0"], "argument --alpha: expected a number > 0; got '0'"),
    (["--time-budget", "0"], "argument --time-budget: expected a number > 0"),
    (["--shots", "0"], "argument --shots: expected an integer >= 1"),
    (["--alpha", "-1"], "argument --alpha: expected a number > 0"),
    (["--alpha", "nan"], "argument --alpha: expected a number > 0"),
    (["--k", "-1"], "argument --inner-steps/--k: expected an integer >= 0"),
    (["--iterations", "0"], "argument --iterations: expected an integer >= 1"),
    (["--iterations", "ten"], "argument --iterations: expected an integer >= 1; got 'ten'"),
    (["--meta-batch", "0"], "argument --meta-batch"),
    (["--eval-tasks", "1"], "argument --eval-tasks: expected an integer >= 2"),
    (["--algo", "sgd"], "argument --algo: invalid choice"),
    (["--backend", "torch"], "argument --backend: invalid choice"),
    (["--epsilon", "0.1", "0.2", "0.3"], "argument --epsilon: expected START and optionally END"),
]
# Settings the parser accepts but the job refuses (checked once, where the job is built)
REFUSED = [
    (["--algo", "joint", "--k", "2"], "k: algo='joint' trains at phi itself (k = 0); got k=2"),
    (["--epsilon", "0.1"], "epsilon is Reptile's outer step; it needs algo='reptile' or compare"),
    (["--algo", "reptile", "--epsilon", "0.1", "0.5"], "epsilon end must be in [0, start=0.1]"),
    (["--algo", "reptile", "--epsilon", "0", "0"], "epsilon start must be a finite number > 0"),
    (["--algo", "reptile", "--outer-lr", "0.01"], "outer_lr: reptile has no outer optimizer"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_arguments_exit_2_with_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sine", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(("args", "message"), REFUSED)
def test_refused_settings_exit_2_with_one_line(args, message, capsys, tmp_path):
    assert main(["sine", *args, "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinymeta sine: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_resume_without_a_checkpoint_exits_2(tmp_path, capsys):
    assert main(["sine", "--out", str(tmp_path / "empty"), "--resume", *FAST]) == 2
    assert "there is no checkpoint at" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_divergence_exits_1_with_the_iteration_and_advice(tmp_path, capsys, backend):
    out = tmp_path / "d"
    args = [
        "sine",
        "--alpha",
        "50",
        "--k",
        "5",
        "--iterations",
        "3",
        "--out",
        str(out),
        *FAST,
        "--backend",
        backend,
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "diverged at iteration 1 of 3" in err and "smaller inner step size" in err
    assert "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())  # strict JSON
    assert summary["diverged"] is True and "diverged at iteration 1" in summary["error"]
    assert load_checkpoint(out / "checkpoint.npz").iteration == 0  # the last good state: the start
    assert not list(out.glob("*.tmp"))
