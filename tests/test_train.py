"""meta_train: short real sine runs learn, runs are deterministic, divergence stops with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

import tinymeta.training.loop as loop_mod
from tinymeta import MLP, SGD, Adam, DivergenceError, Sine, Task, evaluate, load_checkpoint, meta_train
from tinymeta.tasks import TaskBatch

NET = MLP([1, 40, 40, 1], "relu")
FAMILY = Sine()
K_OF = {"maml": 1, "fomaml": 1, "reptile": 5, "joint": 0}


@pytest.fixture(scope="module")
def held_out():
    """100 held-out tasks with 50 query points each (its own seed: never seen in training)."""
    return FAMILY.evaluation_tasks(100, seed=12345, K_query=50)[0]


def train(algo, iterations, **kw):
    kw.setdefault("k", K_OF[algo])
    return meta_train(NET, FAMILY, algo, iterations, alpha=0.01, backend="numpy", progress=False, **kw)


# After 300 iterations (seed 0, numpy backend) on these held-out tasks, measured:
#   initial phi (net.init(0)): MSE 3.796 / 3.497 / 3.288 after 0 / 1 / 10 steps
#   maml    k=1: 2.590 / 2.095 / 1.575   (seeds 1, 2 after 10 steps: 1.928, 1.555)
#   fomaml  k=1: 2.632 / 2.238 / 1.798   (seeds 1, 2: 2.089, 1.715)
#   reptile k=5: 3.059 / 2.966 / 2.992   (seeds 1, 2 after 1 step: 2.980, 2.926)
#   joint   k=0: 2.700 / 2.653 / 2.203   (seeds 1, 2 after 0 steps: 2.735, 2.649)
# Each threshold sits between the measured value (with the seed spread) and the untrained value,
# which the test also checks, so the test fails if training does not lower the MSE.
LEARNS = [("maml", 10, 2.3), ("fomaml", 10, 2.5), ("reptile", 1, 3.25), ("joint", 0, 3.2)]


@pytest.mark.slow
@pytest.mark.parametrize(("algo", "steps", "threshold"), LEARNS)
def test_short_sine_run_lowers_held_out_mse(algo, steps, threshold, held_out):
    before = evaluate(NET, NET.init(0), held_out, 0.01, [steps]).mean[0]
    assert before > threshold + 0.2, "negative control: the untrained network must fail the threshold"
    result = train(algo, 300, seed=0)
    after = evaluate(NET, result.phi, held_out, 0.01, [steps]).mean[0]
    assert after < threshold, f"{algo}: held-out MSE after {steps} steps {after:.3f} >= {threshold}"
    assert len(result.history["meta_loss"]) == 300 and result.iterations == 300


def test_same_seed_gives_identical_phi_and_another_seed_does_not():
    a, b = train("maml", 15, seed=3), train("maml", 15, seed=3)
    assert a.phi.tobytes() == b.phi.tobytes()
    assert a.history["meta_loss"] == b.history["meta_loss"]
    assert train("maml", 15, seed=4).phi.tobytes() != a.phi.tobytes()


def test_reptile_inner_minibatches_are_seeded_and_change_the_run():
    a = train("reptile", 10, seed=1, inner_batch_size=4)
    b = train("reptile", 10, seed=1, inner_batch_size=4)
    full = train("reptile", 10, seed=1)
    assert a.phi.tobytes() == b.phi.tobytes()
    assert not np.array_equal(a.phi, full.phi)


def test_reptile_outer_step_follows_the_epsilon_schedule():
    """One iteration with epsilon (0.3, 0.0): phi_1 = phi_0 + 0.3 * mean(phi~ - phi_0), eq. (4.1)."""
    from tinymeta.batch import reptile_batch

    result = train("reptile", 1, seed=2, epsilon=(0.3, 0.0))
    batch = TaskBatch(*FAMILY.sample_arrays(np.random.default_rng(3), 25)[2:])  # the stream is seed + 1
    _, delta = reptile_batch(NET, NET.init(2), batch, 0.01, 5)
    np.testing.assert_array_equal(result.phi, NET.init(2) + 0.3 * delta)


def test_joint_is_adam_on_the_query_loss_at_phi():
    """joint = first-order MAML with k = 0: one Adam step along the mean query gradient at phi."""
    from tinymeta.batch import fomaml_batch

    result = train("joint", 1, seed=5)
    batch = TaskBatch(*FAMILY.sample_arrays(np.random.default_rng(6), 25)[2:])
    value, g = fomaml_batch(NET, NET.init(5), batch, 0.01, 0)
    expected, _ = Adam(1e-3).update(NET.init(5), g, Adam(1e-3).init(NET.num_params))
    np.testing.assert_array_equal(result.phi, expected)
    assert result.history["meta_loss"] == [value]


def test_a_family_with_sample_batch_is_used_as_is():
    class SineBatches:  # the sample_batch protocol of other families (e.g. Omniglot)
        def sample_batch(self, rng, B):
            return TaskBatch(*FAMILY.sample_arrays(rng, B)[2:])

    a = meta_train(NET, SineBatches(), "fomaml", 5, alpha=0.01, k=1, backend="numpy", progress=False)
    b = meta_train(NET, FAMILY, "fomaml", 5, alpha=0.01, k=1, backend="numpy", progress=False)
    assert a.phi.tobytes() == b.phi.tobytes()


def test_periodic_evaluation_is_recorded(held_out):
    result = train("fomaml", 6, eval_tasks=held_out[:5], eval_every=3, eval_steps=(0, 2))
    evaluations = result.history["evaluations"]
    assert [e["iteration"] for e in evaluations] == [3, 6]
    assert np.array([e["loss"] for e in evaluations]).shape == (2, 2)
    final = evaluate(NET, result.phi, held_out[:5], 0.01, (0, 2))
    assert evaluations[-1]["loss"] == final.mean.tolist()
    assert evaluations[-1]["steps"] == [0, 2] and "accuracy" not in evaluations[-1]


def test_progress_bar_runs(capsys):
    meta_train(NET, FAMILY, "joint", 30, alpha=0.01, k=0, backend="numpy", progress=True)
    assert "joint" in capsys.readouterr().err


def test_outer_sgd_is_accepted_and_recorded():
    result = train("fomaml", 2, outer_optimizer=SGD(0.05))
    assert result.config.outer_optimizer == {"name": "sgd", "lr": 0.05}
    assert result.optimizer_state == {}


@pytest.mark.parametrize("algo", ["maml", "reptile"])
def test_a_huge_inner_step_raises_divergence_error_naming_the_iteration(algo):
    with pytest.raises(
        DivergenceError, match=r"diverged at iteration 1 of 20.*smaller inner step size \(alpha=50"
    ):
        meta_train(NET, FAMILY, algo, 20, alpha=50.0, k=5, backend="numpy", progress=False)


def test_divergence_saves_the_last_good_state(monkeypatch, tmp_path):
    """A NaN meta-loss at iteration 5: the error names it, the checkpoint holds iteration 4 exactly."""
    real = loop_mod.batch_functions
    calls = {"n": 0}

    def patched(backend=None, dtype="float64"):
        maml = real(backend, dtype)["maml"]

        def poisoned(*args, **kw):
            calls["n"] += 1
            value, g = maml(*args, **kw)
            return (np.nan if calls["n"] == 5 else value), g

        return {"maml": poisoned}

    monkeypatch.setattr(loop_mod, "batch_functions", patched)
    path = tmp_path / "run.npz"
    with pytest.raises(DivergenceError, match=r"iteration 5 of 10: the meta-loss is not finite.*iteration 4"):
        train("maml", 10, seed=2, checkpoint_path=path)
    monkeypatch.undo()
    ckpt = load_checkpoint(path)
    assert ckpt.iteration == 4
    assert ckpt.phi.tobytes() == train("maml", 4, seed=2).phi.tobytes()


BAD = [
    (dict(algo="sgd"), ValueError, "algo must be one of"),
    (dict(iterations=0), ValueError, "iterations must be an integer >= 1"),
    (dict(alpha=0.0), ValueError, "alpha must be a finite number > 0"),
    (dict(alpha=-0.1), ValueError, "alpha must be a finite number > 0"),
    (dict(k=-1), ValueError, "k must be an integer >= 0"),
    (dict(k=1.5), TypeError, "k must be an integer"),
    (dict(meta_batch=0), ValueError, "meta_batch must be an integer >= 1"),
    (dict(seed=-1), ValueError, "seed must be an integer >= 0"),
    (dict(backend="torch"), ValueError, "backend must be one of"),
    (dict(time_budget=0.0), ValueError, "time_budget must be a finite number > 0"),
    (dict(outer_lr_final=0.5), ValueError, r"outer_lr_final must be in \[0, outer lr=0.001\]"),
    (dict(inner_optimizer="adam"), ValueError, "inner_optimizer='adam' is for algo='reptile' only"),
    (dict(algo="reptile", k=5, inner_optimizer="rmsprop"), ValueError, "inner_optimizer must be"),
    (dict(init="zeros"), ValueError, "init must be one of"),
    (dict(init="phi0"), ValueError, "init='phi0' needs phi0"),
    (dict(algo="joint", k=1), ValueError, "k must be 0"),
    (dict(epsilon=0.1), ValueError, "epsilon is used only by algo='reptile'"),
    (
        dict(algo="reptile", k=5, outer_optimizer=Adam(1e-3)),
        ValueError,
        "outer_optimizer is not used by reptile",
    ),
    (dict(algo="reptile", k=5, epsilon=(0.1, 0.5)), ValueError, "epsilon end must be in"),
    (dict(outer_optimizer="adam"), TypeError, "outer_optimizer must be"),
    (dict(resume=True), ValueError, "need a checkpoint_path"),
    (dict(eval_tasks=[]), ValueError, "eval_tasks is empty"),
    (dict(eval_steps=[]), ValueError, "steps is empty"),
    (dict(phi0=np.zeros(3)), ValueError, "phi0 has shape"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD)
def test_bad_arguments_are_named(change, error, message):
    kw = dict(algo="maml", iterations=3, alpha=0.01, k=1, backend="numpy", progress=False) | change
    with pytest.raises(error, match=message):
        meta_train(NET, FAMILY, **kw)


def test_evaluate_scores_a_diverging_task_as_inf_and_keeps_the_others():
    # Linear regression on task 0's support set has Hessian 2 mean(x^2) ~ 7e5 >> 2 / alpha: plain SGD
    # grows the error ~1e5-fold per step and overflows within 60 steps. Task 1 is benign.
    net = MLP([1, 1], "identity")
    phi = net.init(0)
    x = np.linspace(-1.0, 1.0, 5)[:, None]
    calm = Task(x, 0.5 * x, x, 0.5 * x)
    wild = Task(1000.0 * x, 0.5 * x, x, 0.5 * x)
    alpha = 0.1
    res = evaluate(net, phi, [wild, calm], alpha, steps=range(61))
    assert res.diverged[0] == 0 and res.diverged[-1] == 1  # diverges on the way, not at step 0
    assert np.isinf(res.per_task[0, -1]) and np.all(np.isfinite(res.per_task[1]))
    assert np.isinf(res.mean[-1])  # never hidden in a finite mean
    alone = evaluate(net, phi, [calm], alpha, steps=range(61))
    np.testing.assert_array_equal(res.per_task[1], alone.per_task[0])
