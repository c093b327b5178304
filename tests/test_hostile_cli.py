"""Hostile use of the commands: bad outputs, environment, checkpoints, data, sizes, kills and resumes.

The bar: every user error is one line on stderr with exit status 2 and no traceback; no run is lost
(a kill leaves a checkpoint to resume from, bit for bit); nothing is overwritten silently; no temporary
file stays behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinymeta import load_checkpoint
from tinymeta.cli import main

pytestmark = pytest.mark.fast
QUICK = ["--backend", "numpy", "--eval-tasks", "4", "--no-progress", "--iterations", "3"]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


def one_line_error(capsys, status, expected):
    err = capsys.readouterr().err
    assert status == 2, err
    assert expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def sine(*args):
    return main(["sine", *QUICK, *args])


def test_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    one_line_error(capsys, sine("--out", str(tmp_path / "f")), "is a file; choose a directory")


def test_out_under_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    one_line_error(capsys, sine("--out", str(tmp_path / "f" / "run")), "cannot create the output directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_out_not_writable(tmp_path, capsys):
    (tmp_path / "ro").mkdir(mode=0o500)
    one_line_error(capsys, sine("--out", str(tmp_path / "ro")), "is not writable")


def test_an_existing_run_is_never_overwritten_silently(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert sine("--out", out) == 0
    before = (tmp_path / "run" / "summary.json").read_bytes()
    one_line_error(capsys, sine("--out", out), "already holds a run")
    assert (tmp_path / "run" / "summary.json").read_bytes() == before
    one_line_error(capsys, sine("--out", out, "--resume", "--overwrite"), "choose one")
    assert sine("--out", out, "--overwrite", "--seed", "1") == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["seed"] == 1


@pytest.mark.parametrize(("value", "status"), [("cuda", 2), ("", 0), ("numpy", 0)])
def test_the_backend_variable(tmp_path, capsys, monkeypatch, value, status):
    monkeypatch.setenv("TINYMETA_BACKEND", value)
    argv = ["sine", "--eval-tasks", "4", "--no-progress", "--iterations", "2", "--out", str(tmp_path / "r")]
    if status:
        one_line_error(capsys, main(argv), "TINYMETA_BACKEND='cuda' is not a backend")
    else:
        assert main(argv) == 0


def _broken_checkpoints(good: Path):
    data = good.read_bytes()
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    yield "truncated", data[: len(data) // 2], "not a readable .npz checkpoint"
    yield "random bytes", os.urandom(2000), "not a readable .npz checkpoint"
    yield "empty", b"", "not a readable .npz checkpoint"
    yield "foreign npz", {"weights": np.zeros(3)}, "is not a tinymeta checkpoint"
    yield (
        "older format",
        {**arrays, "format": np.array("tinymeta-checkpoint-1")},
        "another version of tinymeta",
    )
    yield "phi with nan", {**arrays, "phi": np.full_like(arrays["phi"], np.nan)}, "phi must be a finite"
    yield "phi of another net", {**arrays, "phi": arrays["phi"][:10]}, "outer m must be a finite float64"
    yield "config not JSON", {**arrays, "config": np.array("{")}, "inconsistent checkpoint"
    yield "bad rng", {**arrays, "rng_state": np.array('{"bit_generator": "MT19937"}')}, "PCG64"
    yield "negative iteration", {**arrays, "iteration": np.array(-1)}, "iteration must be a number >= 0"
    yield "a pickle", {**arrays, "phi": np.array([object()], dtype=object)}, "not a readable .npz checkpoint"


def test_broken_checkpoints_are_refused_by_name(tmp_path, capsys):
    out = tmp_path / "run"
    assert sine("--out", str(out)) == 0
    good = out / "checkpoint.npz"
    saved = good.read_bytes()
    for name, content, message in _broken_checkpoints(good):
        if isinstance(content, bytes):
            good.write_bytes(content)
        else:
            with open(good, "wb") as f:
                np.savez(f, **content)
        err = one_line_error(capsys, sine("--out", str(out), "--resume"), message)
        assert str(good) in err, name
        good.write_bytes(saved)
    assert sine("--out", str(out), "--resume") == 0  # the good one still resumes


def test_resume_with_other_settings_is_refused_and_names_them(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert sine("--out", out) == 0
    one_line_error(
        capsys, sine("--out", out, "--resume", "--alpha", "0.02"), "alpha: checkpoint 0.01, now 0.02"
    )
    one_line_error(capsys, sine("--out", out, "--resume", "--seed", "4"), "seed: checkpoint 0, now 4")


def test_sizes_that_cannot_fit_are_refused_up_front(tmp_path, capsys):
    one_line_error(capsys, sine("--shots", str(10**10), "--out", str(tmp_path / "r")), "would need about")
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the Omniglot data beside the checkout")
@pytest.mark.parametrize(
    ("args", "message"),
    [(["--ways", "1300", "--query-shots", "1"], "ways must be <= the 1200 classes"),
     (["--ways", "1000", "--query-shots", "1", "--split", "lake"], "ways must be <= the 964 classes"),
     (["--ways", "20000"], "would need about"), (["--hidden", str(10**9)], "would need about")],
)  # fmt: skip
def test_omniglot_settings_the_data_cannot_serve(tmp_path, capsys, args, message):
    argv = ["omniglot", "--iterations", "1", "--test-tasks", "2", "--backend", "numpy", "--no-progress",
            "--data-dir", str(SHARED), "--out", str(tmp_path / "o"), *args]  # fmt: skip
    one_line_error(capsys, main(argv), message)


def test_altered_omniglot_data_is_refused_by_the_command(tmp_path, capsys):
    """A full-size set of random characters passes every structural check, not the content hash."""
    rng, d = np.random.default_rng(0), tmp_path / "data"
    d.mkdir()
    for part, n, first, alphabets in (("background", 964, 1, 30), ("evaluation", 659, 965, 20)):
        np.savez(
            d / f"omniglot28_binary_{part}.npz",
            images=np.where(rng.random((n, 20, 28, 28)) < 0.1, 0, 255).astype(np.uint8),
            char_id=np.arange(first, first + n),
            alphabet=(np.arange(n) * alphabets // n).astype(np.int16),
            character=np.arange(1, n + 1),
            alphabet_names=np.array([f"A{i}" for i in range(alphabets)]),
        )
    argv = ["omniglot", "--iterations", "1", "--test-tasks", "2", "--backend", "numpy", "--no-progress",
            "--data-dir", str(d), "--out", str(tmp_path / "o")]  # fmt: skip
    err = one_line_error(capsys, main(argv), "altered or is not Omniglot")
    assert "omniglot28_binary_background.npz" in err


def _spawn(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.Popen([sys.executable, "-m", "tinymeta", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_for_checkpoint(path, proc, seconds=60):
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < seconds, "no checkpoint appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_run_saves_exits_cleanly_and_resumes_bit_for_bit(tmp_path, how):
    """SIGTERM or Ctrl-C mid-run: exit 130 with advice, a checkpoint of the last finished iteration, no
    temporary file; --resume then ends exactly where an uninterrupted run ends."""
    args = ["sine", "--algo", "fomaml", "--backend", "numpy", "--eval-tasks", "2", "--no-progress",
            "--iterations", "100000", "--checkpoint-every", "50"]  # fmt: skip
    out = tmp_path / "run"
    proc = _spawn([*args, "--out", str(out)], tmp_path)
    _wait_for_checkpoint(out / "checkpoint.npz", proc)
    time.sleep(0.3)
    proc.send_signal(how)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    stopped = load_checkpoint(out / "checkpoint.npz")
    assert 0 < stopped.iteration < 100000 and not list(out.glob("*.tmp"))
    target = stopped.iteration + 40
    assert main(["sine", *args[1:-4], "--iterations", str(target), "--checkpoint-every", "50",
                 "--out", str(out), "--resume"]) == 0  # fmt: skip
    straight = tmp_path / "straight"
    assert main(["sine", *args[1:-4], "--iterations", str(target), "--checkpoint-every", "50",
                 "--out", str(straight)]) == 0  # fmt: skip
    a, b = load_checkpoint(out / "checkpoint.npz"), load_checkpoint(straight / "checkpoint.npz")
    assert a.iteration == b.iteration == target
    assert a.phi.tobytes() == b.phi.tobytes() and a.meta_loss == b.meta_loss


def test_a_killed_run_leaves_a_usable_directory(tmp_path):
    """SIGKILL cannot be caught: the last checkpoint stays, a temporary file a write left behind is
    removed by the next run, and --resume continues."""
    args = ["sine", "--algo", "fomaml", "--backend", "numpy", "--eval-tasks", "2", "--no-progress",
            "--iterations", "100000", "--checkpoint-every", "20"]  # fmt: skip
    out = tmp_path / "run"
    proc = _spawn([*args, "--out", str(out)], tmp_path)
    _wait_for_checkpoint(out / "checkpoint.npz", proc)
    time.sleep(0.2)
    proc.kill()
    proc.communicate(timeout=60)
    (out / "checkpoint.npz.abcd1234.tmp").write_bytes(b"half a write")  # what a kill mid-write leaves
    done = load_checkpoint(out / "checkpoint.npz").iteration
    assert main(["sine", *args[1:-4], "--iterations", str(done + 5), "--out", str(out), "--resume"]) == 0
    assert load_checkpoint(out / "checkpoint.npz").iteration == done + 5
    assert not list(out.glob("*.tmp"))


def test_two_runs_never_share_a_directory(tmp_path):
    args = ["sine", "--algo", "fomaml", "--backend", "numpy", "--eval-tasks", "2", "--no-progress",
            "--iterations", "100000", "--checkpoint-every", "20"]  # fmt: skip
    out = tmp_path / "run"
    first = _spawn([*args, "--out", str(out)], tmp_path)
    try:
        _wait_for_checkpoint(out / "checkpoint.npz", first)
        second = _spawn([*args, "--out", str(out), "--resume"], tmp_path)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2 and "another tinymeta run is using" in err and err.count("\n") == 1
    finally:
        first.terminate()
        first.communicate(timeout=60)
    assert first.returncode == 130


def test_a_figure_that_fails_warns_and_keeps_the_results(tmp_path, capsys, monkeypatch):
    import tinymeta.plots

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts on this machine")

    monkeypatch.setattr(tinymeta.plots, "sine_figure", broken)
    out = tmp_path / "run"
    assert sine("--out", str(out)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["figure"] is None and "no fonts on this machine" in summary["figure_error"]
    assert summary["mse_after_steps"]["10"] > 0 and not (out / "sine.png").exists()
    assert "warning: the figure" in capsys.readouterr().out
    assert not list(out.glob("*.tmp"))
