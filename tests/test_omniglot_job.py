"""The Omniglot job: cross-entropy meta-gradients on image tasks, Reptile's persistent inner Adam, a short
real run that learns, and the ``tinymeta omniglot`` command end to end.

Tests that need the real 28x28 files (``$TINYMETA_DATA`` or the checkout's sibling
``shared/data/omniglot``) skip when they are absent; the others build synthetic binary images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinymeta import MLP, evaluate, fomaml_grad, gradcheck, load_checkpoint, maml_grad, meta_objective, train
from tinymeta.backends import batch_functions
from tinymeta.cli.omniglot import main
from tinymeta.evaluation import mean_ci95
from tinymeta.jobs.omniglot import _adapter, omniglot_job
from tinymeta.omniglot import CharacterSet, OmniglotTasks, load_split
from tinymeta.tasks import TaskBatch
from tinymeta.training import he_normal as he_init


def job_net(job):
    return MLP(job.train.net["sizes"], job.train.net["activation"])


def evaluate_accuracy(net, phi, tests, job, steps, result):
    """Per-task query accuracy (n, len(steps)) after adapting with the job's test-time inner loop."""
    c = job.train
    return evaluate(net, phi, tests, c.alpha, steps, LOSS, adapt=_adapter(net, c, result)()).per_task_accuracy


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
LOSS = "cross_entropy"


def fake_characters(rng, chars=12, drawings=20):
    """Synthetic characters: each a random stroke mask, its drawings the mask with 5 % of pixels flipped;
    stored as the files store them (uint8, 255 = paper, 0 = ink)."""
    masks = rng.random((chars, 1, 28, 28)) < 0.15
    ink = masks ^ (rng.random((chars, drawings, 28, 28)) < 0.05)
    return CharacterSet(np.where(ink, 0, 255).astype(np.uint8), np.arange(1, chars + 1))


def tiny_task(rng, ways=2, shots=1, query=3):
    return OmniglotTasks(fake_characters(rng), ways, shots, query).sample(rng)


# ----------------------------------------------------------------------------- meta-gradients
# Central differences along 5 random unit directions with h = 1e-6: truncation O(h^2) ~ 1e-12 and rounding
# ~ 1e-16 / h = 1e-10 relative, so the exact meta-gradient agrees to far below the 1e-6 threshold. A step of
# 1e-6 along a unit direction in P = 3150 dimensions moves pre-activations by ~1e-7: no ReLU kink is crossed
# at these seeds (the exact check would fail loudly if one were).
@pytest.mark.fast
@pytest.mark.parametrize("k", [1, 2])
def test_maml_grad_matches_meta_objective_on_tiny_image_task(rng, k):
    net = MLP([784, 4, 2], "relu")
    phi, task = he_init(net, rng), tiny_task(rng)
    objective = lambda p: meta_objective(net, p, task, 0.4, k, LOSS)  # noqa: E731
    report = gradcheck.check_directional(
        objective, lambda p: maml_grad(net, p, task, 0.4, k, LOSS), phi, rng=1
    )
    assert report.passed, report
    # negative control: the first-order direction misses the (I - alpha H) factors by far more than 1e-6
    fo = gradcheck.check_directional(objective, lambda p: fomaml_grad(net, p, task, 0.4, k, LOSS), phi, rng=1)
    assert fo.error > 1e-3, fo


@pytest.mark.fast
def test_meta_batch_gradient_is_the_mean_and_matches_finite_differences(rng):
    net = MLP([784, 4, 3], "relu")
    phi = he_init(net, rng)
    tasks = [tiny_task(rng, ways=3) for _ in range(3)]
    batch = TaskBatch.stack(tasks)
    value, g = batch_functions("numpy")["maml"](net, phi, batch, 0.4, 1, LOSS)
    np.testing.assert_allclose(g, np.mean([maml_grad(net, phi, t, 0.4, 1, LOSS) for t in tasks], axis=0),
                               rtol=1e-12, atol=1e-15)  # fmt: skip  # same sums, reordered at most
    mean_objective = lambda p: np.mean([meta_objective(net, p, t, 0.4, 1, LOSS) for t in tasks])  # noqa: E731
    assert value == pytest.approx(mean_objective(phi), rel=1e-12)
    report = gradcheck.check_directional(mean_objective, lambda p: g, phi, rng=2)
    assert report.passed, report


@pytest.mark.fast
def test_maml_grad_on_real_images_with_a_tiny_net(shared, rng):
    train_chars, _ = load_split("maml", shared)
    task = OmniglotTasks(train_chars, ways=2, shots=1, query_shots=2).sample(rng)
    net = MLP([784, 4, 2], "relu")
    phi = he_init(net, rng)
    objective = lambda p: meta_objective(net, p, task, 0.4, 1, LOSS)  # noqa: E731
    report = gradcheck.check_directional(
        objective, lambda p: maml_grad(net, p, task, 0.4, 1, LOSS), phi, rng=3
    )
    assert report.passed, report


# ----------------------------------------------------------------------------- job pieces
@pytest.mark.fast
def test_mean_ci95():
    v = np.array([0.2, 0.4, 0.6, 0.8])
    mean, ci = mean_ci95(v)
    assert mean == pytest.approx(0.5)
    assert ci == pytest.approx(1.96 * np.std(v, ddof=1) / 2.0, rel=1e-12)


@pytest.mark.fast
def test_reptile_inner_adam_state_persists_across_tasks_and_iterations(rng):
    job = omniglot_job("reptile", ways=3, shots=2, query_shots=2, iterations=3, meta_batch=4, k=2,
                       inner_batch=3, hidden=(8,))  # fmt: skip
    net = job_net(job)
    r = train(net, OmniglotTasks(fake_characters(rng), 3, 2, 2), job.train, progress=False)
    assert r.inner_state["t"] == 3 * 4 * 2  # one Adam step per inner step of every task: never reset
    assert r.inner_state["v"].max() > 0 and len(r.history["meta_loss"]) == 3
    assert not np.array_equal(r.phi, he_init(net, job.train.seed))


@pytest.mark.fast
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_reptile_training_and_evaluation_agree_between_backends(rng, optimizer):
    """The kernel and the NumPy reference: same phi after 3 iterations, same test accuracies (relative
    1e-10: Adam's division by sqrt(v) + 1e-8 magnifies ulp-level differences, as in the parity tests)."""
    chars = fake_characters(rng)
    runs = []
    for backend in ("numpy", "numba"):
        job = omniglot_job("reptile", ways=3, shots=2, query_shots=2, iterations=3, meta_batch=2, k=3,
                           inner_batch=3, hidden=(8,), test_steps=4, inner_optimizer=optimizer,
                           alpha=1e-3 if optimizer == "adam" else 0.1, backend=backend)  # fmt: skip
        net = job_net(job)
        r = train(net, OmniglotTasks(chars, 3, 2, 2), job.train, progress=False)
        tests = OmniglotTasks(chars, 3, 2, 2).evaluation_tasks(6, seed=1)
        runs.append((r.phi, evaluate_accuracy(net, r.phi, tests, job, [0, 1, 4], r)))
    (phi0, acc0), (phi1, acc1) = runs
    np.testing.assert_allclose(phi1, phi0, rtol=0, atol=1e-10 * np.abs(phi0).max())
    np.testing.assert_array_equal(acc1, acc0)
    assert not np.array_equal(phi0, he_init(MLP([784, 8, 3], "relu"), 0))


class Interrupted(Exception):
    pass


class StopAt:
    """Task sampler that raises at its n-th batch, as a crash during training would."""

    def __init__(self, tasks, n):
        self.tasks, self.left = tasks, n

    def sample_batch(self, rng, size):
        self.left -= 1
        if self.left < 0:
            raise Interrupted
        return self.tasks.sample_batch(rng, size)


@pytest.mark.fast
@pytest.mark.parametrize("algo", ["maml", "reptile"])
def test_interrupted_run_resumes_bit_for_bit(rng, tmp_path, algo):
    """A checkpoint at every curve point; interrupted in iteration 4 and resumed, the run ends with the
    same phi (and inner Adam state) as one run straight through: exactly, not to a tolerance."""
    chars = fake_characters(rng)
    job = omniglot_job(algo, ways=3, shots=2, query_shots=2, iterations=6, meta_batch=2, k=2, hidden=(8,),
                       test_steps=2, curve_every_s=1e-9, curve_tasks=2, backend="numpy")  # fmt: skip
    net, tasks, c = job_net(job), OmniglotTasks(chars, 3, 2, 2), job.train
    curve = tasks.evaluation_tasks(2, seed=1)
    straight = train(net, tasks, c, eval_tasks=curve, progress=False)
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(Interrupted):
        train(net, StopAt(tasks, 3), c, eval_tasks=curve, progress=False, checkpoint_path=path)
    state = load_checkpoint(path)
    assert state.iteration == 3 and len(state.meta_loss) == 3
    resumed = train(net, tasks, c, eval_tasks=curve, progress=False, checkpoint_path=path, resume=True)
    np.testing.assert_array_equal(resumed.phi, straight.phi)
    assert resumed.history["meta_loss"] == straight.history["meta_loss"]
    if algo == "reptile":
        np.testing.assert_array_equal(resumed.inner_state["v"], straight.inner_state["v"])
    assert load_checkpoint(path).iteration == 6  # the end of training is saved too
    other = omniglot_job(algo, ways=3, shots=2, query_shots=2, iterations=6, meta_batch=2, k=2, hidden=(8,),
                         test_steps=2, curve_every_s=1e-9, curve_tasks=2, alpha=c.alpha / 2,
                         backend="numpy").train  # fmt: skip
    with pytest.raises(ValueError, match=r"settings differ from the checkpoint's \(alpha: checkpoint"):
        train(net, tasks, other, progress=False, checkpoint_path=path, resume=True)
    longer = omniglot_job(algo, ways=3, shots=2, query_shots=2, iterations=8, meta_batch=2, k=2, hidden=(8,),
                          test_steps=3, curve_every_s=1e-9, curve_tasks=2, backend="numba").train  # fmt: skip
    assert train(net, tasks, longer, progress=False, checkpoint_path=path, resume=True).iterations == 8


@pytest.mark.fast
def test_outer_learning_rate_schedule(rng):
    """outer_lr_final = outer_lr is the constant schedule, bit for bit; annealing to 0 changes phi."""
    chars = fake_characters(rng)
    tasks = OmniglotTasks(chars, 3, 2, 2)
    phis = []
    for final in (None, 1e-3, 0.0):
        job = omniglot_job("fomaml", ways=3, shots=2, query_shots=2, iterations=3, meta_batch=2, hidden=(8,),
                           outer_lr_final=final, backend="numpy")  # fmt: skip
        phis.append(train(job_net(job), tasks, job.train, progress=False).phi)
    np.testing.assert_array_equal(phis[0], phis[1])
    assert np.abs(phis[2] - phis[0]).max() > 1e-6
    with pytest.raises(ValueError, match=r"outer_lr_final must be in \[0, outer lr=0.001\]; got 0.002"):
        omniglot_job("fomaml", outer_lr_final=2e-3)


# ----------------------------------------------------------------------------- a short real run
@pytest.mark.slow
def test_short_maml_run_learns_5_way_1_shot(shared):
    """MAML, MLP 784-64-64-5, 800 iterations of 8 tasks (Numba kernels), 200 held-out tasks, 3 test steps.

    Measured: 58.3 % after training against 39.8 % for the untrained start adapted the same way (chance
    20 %; three steps of alpha = 0.4 from a random start already beat chance). Thresholds: > 48 % and at
    least 10 points above the untrained start.
    """
    job = omniglot_job("maml", ways=5, shots=1, iterations=800, meta_batch=8, test_steps=3, hidden=(64, 64),
                       seed=0, backend="numba")  # fmt: skip
    train_chars, test_chars = load_split("maml", shared)
    net = job_net(job)
    r = train(net, OmniglotTasks(train_chars, 5, 1, 15), job.train, progress=False)
    tests = OmniglotTasks(test_chars, 5, 1, 15).evaluation_tasks(200, seed=1)
    trained = evaluate_accuracy(net, r.phi, tests, job, [job.test_steps], r)[:, 0].mean()
    untrained = evaluate_accuracy(net, he_init(net, 0), tests, job, [job.test_steps], r)[:, 0].mean()
    print(f"5-way 1-shot accuracy: trained {trained:.1%}, untrained {untrained:.1%}")
    assert trained > 0.48 and trained > untrained + 0.10, (trained, untrained)


# ----------------------------------------------------------------------------- the command
SUMMARY_KEYS = {"accuracy", "ci95", "test_tasks", "iterations", "algo", "ways", "shots", "seed",
                "train_seconds", "wall_seconds", "iterations_per_second", "accuracy_vs_time",
                "accuracy_by_test_steps"}  # fmt: skip


@pytest.mark.fast
@pytest.mark.parametrize("algo", ["maml", "reptile"])
def test_cli_end_to_end_writes_summary_figure_and_checkpoint(shared, tmp_path, algo, capsys):
    out = tmp_path / algo
    argv = ["--algo", algo, "--ways", "5", "--shots", "1", "--iterations", "2", "--seed", "3",
            "--test-tasks", "4", "--test-steps", "2", "--hidden", "16", "--backend", "numpy",
            "--data-dir", str(shared), "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(s)
    assert 0.0 <= s["accuracy"] <= 1.0 and s["ci95"] >= 0.0
    assert (s["test_tasks"], s["iterations"], s["algo"], s["seed"]) == (4, 2, algo, 3)
    assert (out / "omniglot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ck = load_checkpoint(out / "checkpoint.npz")
    assert ck.phi.shape == (784 * 16 + 16 + 16 * 5 + 5,)
    assert ("v" in ck.inner_state) == (algo == "reptile")
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.fast
def test_cli_resume_continues_and_refuses_other_settings(shared, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--algo", "maml", "--shots", "1", "--seed", "3", "--test-tasks", "4", "--hidden", "16",
            "--backend", "numpy", "--data-dir", str(shared), "--out", str(out), "--no-progress"]  # fmt: skip
    assert main([*argv, "--iterations", "2", "--resume"]) == 2
    assert "there is no checkpoint at" in capsys.readouterr().err
    assert main([*argv, "--iterations", "2"]) == 0
    assert main([*argv, "--iterations", "2"]) == 2  # a run is there: never overwritten silently
    assert "already holds a run (summary.json); continue it with --resume" in capsys.readouterr().err
    assert main([*argv, "--iterations", "3", "--resume"]) == 0
    assert json.loads((out / "summary.json").read_text())["iterations"] == 3
    assert main([*argv, "--iterations", "4", "--resume", "--alpha", "0.1"]) == 2
    assert "settings differ from the checkpoint's (alpha: checkpoint 0.4, now 0.1)" in capsys.readouterr().err
    assert main([*argv, "--iterations", "2", "--overwrite"]) == 0
    assert json.loads((out / "summary.json").read_text())["iterations"] == 2


@pytest.mark.fast
def test_missing_data_dir_exits_2_with_the_message(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert (
        main(["--iterations", "1", "--data-dir", str(missing), "--out", str(tmp_path / "o"), "--no-progress"])
        == 2
    )
    err = capsys.readouterr().err
    assert "not found" in err and str(missing) in err and "omniglot-download" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o" / "summary.json").exists()


BAD = [["--hidden", "64,x"], ["--ways", "1"], ["--epsilon", "1", "0.5", "0"], ["--time-budget", "-1"]]
REFUSED = [["--epsilon", "0.5", "1.0"], ["--algo", "maml", "--inner-optimizer", "adam"],
           ["--shots", "10", "--query-shots", "15"], ["--algo", "maml", "--train-shots", "10"],
           ["--algo", "maml", "--test-batch", "5"], ["--outer-lr-final", "0.01"],
           ["--algo", "reptile", "--outer-lr-final", "0"], ["--hidden", "64,0"]]  # fmt: skip


@pytest.mark.fast
@pytest.mark.parametrize("bad", BAD)
def test_bad_arguments_exit_2(bad, capsys):
    with pytest.raises(SystemExit) as e:
        main(bad)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "error" in err and err.count("\n") == 1


@pytest.mark.fast
@pytest.mark.parametrize("bad", REFUSED)
def test_refused_settings_exit_2(bad, capsys, tmp_path):
    quick = ["--iterations", "1", "--test-tasks", "2", "--hidden", "4", "--backend", "numpy", "--no-progress"]
    assert main([*quick, *bad, "--out", str(tmp_path / "o")]) == 2  # (quick, should it not be refused)
    err = capsys.readouterr().err
    assert err.startswith("tinymeta omniglot: error: ") and err.count("\n") == 1


@pytest.mark.fast
def test_download_command_finds_existing_files_without_downloading(shared, tmp_path, capsys):
    from tinymeta.cli.download import main as download_main

    for name in ("omniglot28_binary_background.npz", "omniglot28_binary_evaluation.npz"):
        (tmp_path / name).symlink_to(Path(shared) / name)
    assert download_main(["--data-dir", str(tmp_path), "--base-url", "http://127.0.0.1:9/"]) == 0
    assert "nothing to do" in capsys.readouterr().out
