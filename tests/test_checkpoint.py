"""Checkpoints: round trip, atomic writes, clear errors; resumed runs equal uninterrupted ones bit for bit."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tinymeta.training.loop as loop_mod
from tinymeta import MLP, CheckpointError, Sine, load_checkpoint, meta_train, save_checkpoint

NET = MLP([1, 40, 40, 1], "relu")
FAMILY = Sine()
RUNS = {  # reptile with inner mini-batches, so the generator also draws inner indices
    "maml": dict(algo="maml", k=1),
    "reptile": dict(algo="reptile", k=5, inner_batch_size=4),
}


EVAL = FAMILY.evaluation_tasks(3, seed=1, K_query=20)[0]


def run(name, iterations=12, **kw):
    return meta_train(NET, FAMILY, iterations=iterations, alpha=0.01, seed=7, backend="numpy", progress=False,
                      **RUNS[name], **kw)  # fmt: skip


def crash_at_call(monkeypatch, n, exc):
    """Make the n-th meta-batch computation raise ``exc`` (a crash in the middle of a run)."""
    real, calls = loop_mod.batch_functions, {"n": 0}

    def patched(backend=None, dtype="float64"):
        def wrap(fn):
            def inner(*args, **kw):
                calls["n"] += 1
                if calls["n"] == n:
                    raise exc
                return fn(*args, **kw)

            return inner

        return {name: wrap(fn) for name, fn in real(backend, dtype).items()}

    monkeypatch.setattr(loop_mod, "batch_functions", patched)


def untimed(history):
    """The history without the seconds of training at each evaluation (those are measured, not computed)."""
    return {
        **history,
        "evaluations": [{k: v for k, v in e.items() if k != "seconds"} for e in history["evaluations"]],
    }


def assert_same_run(a, b):
    assert a.phi.tobytes() == b.phi.tobytes()
    assert untimed(a.history) == untimed(b.history)
    assert a.optimizer_state.keys() == b.optimizer_state.keys()
    for key, value in a.optimizer_state.items():
        assert np.asarray(value).tobytes() == np.asarray(b.optimizer_state[key]).tobytes()


@pytest.mark.parametrize("name", sorted(RUNS))
def test_resume_after_a_crash_is_bit_identical(name, monkeypatch, tmp_path):
    """12 iterations, checkpoints every 5, a crash in iteration 8: resuming from iteration 5 ends equal."""
    evals = dict(eval_tasks=EVAL, eval_every=4, eval_steps=(0, 3))  # the history's evaluations must match too
    full = run(name, **evals)
    path = tmp_path / "run.npz"
    crash_at_call(monkeypatch, 8, RuntimeError("simulated crash"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(name, checkpoint_path=path, checkpoint_every=5, **evals)
    monkeypatch.undo()
    assert load_checkpoint(path).iteration == 5
    resumed = run(name, checkpoint_path=path, checkpoint_every=5, resume=True, **evals)
    assert [e["iteration"] for e in resumed.history["evaluations"]] == [4, 8, 12]
    assert resumed.start_iteration == 5
    assert_same_run(resumed, full)
    assert load_checkpoint(path).iteration == 12


def test_interrupt_saves_the_last_finished_iteration_and_resumes_exactly(monkeypatch, tmp_path):
    full = run("maml")
    path = tmp_path / "run.npz"
    crash_at_call(monkeypatch, 4, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run("maml", checkpoint_path=path)
    monkeypatch.undo()
    assert load_checkpoint(path).iteration == 3
    assert_same_run(run("maml", checkpoint_path=path, resume=True), full)


def test_negative_control_resuming_without_the_generator_state_differs(tmp_path):
    """The resume test can fail: restarting from the saved phi with a fresh task stream ends elsewhere."""
    path = tmp_path / "run.npz"
    run("maml", iterations=5, checkpoint_path=path)
    ckpt = load_checkpoint(path)
    save_checkpoint(path, ckpt._replace(rng_state=np.random.default_rng(123).bit_generator.state))
    assert run("maml", checkpoint_path=path, resume=True).phi.tobytes() != run("maml").phi.tobytes()


def test_round_trip_keeps_every_field(tmp_path):
    path = tmp_path / "sub" / "ck.npz"  # the directory is created
    result = run("maml", iterations=3, checkpoint_path=path)
    ckpt = load_checkpoint(path)
    assert ckpt.iteration == 3
    assert ckpt.phi.tobytes() == result.phi.tobytes()
    assert ckpt.config == result.config
    assert ckpt.meta_loss == result.history["meta_loss"] and ckpt.evaluations == result.history["evaluations"]
    assert ckpt.outer_state["t"] == 3 and ckpt.inner_state == {}
    np.testing.assert_array_equal(ckpt.outer_state["m"], result.optimizer_state["m"])
    np.testing.assert_array_equal(ckpt.outer_state["v"], result.optimizer_state["v"])
    assert ckpt.rng_state["bit_generator"] == "PCG64" and ckpt.train_seconds > 0


def test_a_failed_write_leaves_the_previous_checkpoint_intact(monkeypatch, tmp_path):
    path = tmp_path / "ck.npz"
    run("maml", iterations=2, checkpoint_path=path)
    before = path.read_bytes()
    ckpt = load_checkpoint(path)

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, ckpt._replace(phi=ckpt.phi + 1.0))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path).phi.tobytes() == ckpt.phi.tobytes()
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"], "the temporary file must be removed"


def test_missing_and_corrupt_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="not a readable .npz checkpoint"):
        load_checkpoint(garbage)
    other = tmp_path / "other.npz"
    np.savez(other, phi=np.zeros(3))
    with pytest.raises(CheckpointError, match=r"lacks \['format', 'iteration'"):
        load_checkpoint(other)
    old = tmp_path / "old.npz"
    np.savez(old, format=np.array("tinymeta-checkpoint-1"), phi=np.zeros(3))
    with pytest.raises(CheckpointError, match="written by another version of tinymeta"):
        load_checkpoint(old)


def test_inconsistent_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "ck.npz"
    run("maml", iterations=2, checkpoint_path=path)
    ckpt = load_checkpoint(path)
    save_checkpoint(path, ckpt._replace(iteration=5))
    with pytest.raises(CheckpointError, match="meta_loss holds 2 values for 5 iterations"):
        load_checkpoint(path)
    save_checkpoint(path, ckpt._replace(outer_state=dict(ckpt.outer_state, m=np.zeros(4))))
    with pytest.raises(CheckpointError, match=r"outer m must be a finite float64 \(1761,\) vector"):
        load_checkpoint(path)


def test_resume_refuses_different_settings(tmp_path):
    path = tmp_path / "ck.npz"
    run("maml", iterations=4, checkpoint_path=path)
    with pytest.raises(ValueError, match=r"settings differ.*alpha: checkpoint 0.01, now 0.02"):
        meta_train(NET, FAMILY, "maml", 12, alpha=0.02, k=1, seed=7, backend="numpy", progress=False,
                   checkpoint_path=path, resume=True)  # fmt: skip
    with pytest.raises(ValueError, match="at iteration 4, beyond iterations=3"):
        run("maml", iterations=3, checkpoint_path=path, resume=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run("maml", checkpoint_path=tmp_path / "missing.npz", resume=True)
