"""iMAML, Meta-SGD and ANIL on the one training loop: each iteration is outer Adam on the algorithm's own
direction, Meta-SGD optimises [phi; alphas], evaluations use each algorithm's test-time inner loop,
checkpoints resume bit for bit, and the settings of one algorithm are refused for the others."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tinymeta.training.loop as loop_mod
from tinymeta import (
    MLP,
    Adam,
    CheckpointError,
    Sine,
    TrainConfig,
    evaluate,
    load_checkpoint,
    meta_train,
    save_checkpoint,  # fmt: skip
)
from tinymeta.adapters import anil_adapter, imaml_adapter, imaml_solve_adapter, metasgd_adapter
from tinymeta.anil import anil_batch
from tinymeta.imaml import imaml_batch
from tinymeta.imaml_approx import imaml_approx_batch
from tinymeta.metasgd import metasgd_batch
from tinymeta.tasks import TaskBatch

pytestmark = pytest.mark.fast

RELU, TANH = MLP([1, 40, 40, 1], "relu"), MLP([1, 10, 10, 1], "tanh")
FAMILY = Sine()
EVAL = FAMILY.evaluation_tasks(4, seed=1, K_query=20)[0]


def run(net, algo, iterations, **kw):
    return meta_train(net, FAMILY, algo, iterations, alpha=0.01, seed=5, backend="numpy", progress=False,
                      **kw)  # fmt: skip


def first_batch(seed=5):
    return TaskBatch(*FAMILY.sample_arrays(np.random.default_rng(seed + 1), 25)[2:])  # the stream is seed + 1


def adam_step(params, g):
    return Adam(1e-3).update(params, g, Adam(1e-3).init(params.size))[0]


def test_metasgd_optimises_phi_and_alphas_with_outer_adam():
    result = run(RELU, "metasgd", 1, k=1)
    phi0, alphas0 = RELU.init(5), np.full(RELU.num_params, 0.01)  # the step sizes start at alpha
    value, g_phi, g_alphas = metasgd_batch(RELU, phi0, alphas0, first_batch(), 1)
    expected = adam_step(np.concatenate([phi0, alphas0]), np.concatenate([g_phi, g_alphas]))
    np.testing.assert_array_equal(result.params, expected)
    np.testing.assert_array_equal(result.phi, expected[: RELU.num_params])
    assert result.history["meta_loss"] == [value]
    assert result.optimizer_state["m"].shape == (2 * RELU.num_params,)


@pytest.mark.parametrize(
    ("algo", "net", "kw", "direction"),
    [
        ("anil", RELU, dict(k=2), lambda phi, b: anil_batch(RELU, phi, b, 0.01, 2)),
        ("imaml", RELU, dict(k=3, lam=2.0, cg_iterations=4),
         lambda phi, b: imaml_approx_batch(RELU, phi, b, 2.0, 0.01, 3, 4)),
        ("imaml", TANH, dict(k=0, lam=5.0), lambda phi, b: imaml_batch(TANH, phi, b, 5.0, tol=1e-8)),
    ],
    ids=["anil", "imaml-practical", "imaml-exact"],
)  # fmt: skip
def test_one_iteration_is_outer_adam_on_the_algorithms_direction(algo, net, kw, direction):
    result = run(net, algo, 1, **kw)
    value, g = direction(net.init(5), first_batch())
    np.testing.assert_array_equal(result.phi, adam_step(net.init(5), g))
    assert result.history["meta_loss"] == [value] and result.params is result.phi


@pytest.mark.parametrize(
    ("algo", "net", "kw", "adapter"),
    [
        ("metasgd", RELU, dict(k=1), lambda r: metasgd_adapter(RELU, r.params[RELU.num_params :])),
        ("anil", RELU, dict(k=1), lambda r: anil_adapter(RELU, 0.01)),
        ("imaml", RELU, dict(k=2, cg_iterations=2), lambda r: imaml_adapter(RELU, 2.0, 0.01)),
        ("imaml", TANH, dict(k=0, lam=5.0), lambda r: imaml_solve_adapter(TANH, 5.0, 1e-8)),
    ],
    ids=["metasgd", "anil", "imaml-practical", "imaml-exact"],
)  # fmt: skip
def test_evaluations_use_the_algorithms_test_time_inner_loop(algo, net, kw, adapter):
    result = run(net, algo, 3, eval_tasks=EVAL, eval_every=3, eval_steps=(0, 2), **kw)
    mine = evaluate(net, result.phi, EVAL, 0.01, (0, 2), adapt=adapter(result)).mean.tolist()
    plain = evaluate(net, result.phi, EVAL, 0.01, (0, 2)).mean.tolist()  # plain SGD: differs after steps
    assert result.history["evaluations"][-1]["loss"] == mine and mine[1] != plain[1]


def test_metasgd_resumes_bit_for_bit_and_its_checkpoint_holds_2p_entries(monkeypatch, tmp_path):
    full = run(RELU, "metasgd", 6, k=1)
    path, real, calls = tmp_path / "run.npz", loop_mod.batch_functions, {"n": 0}

    def crashing(*how):  # (backend, dtype), as the loop asks
        def metasgd(*args, **kw):
            calls["n"] += 1
            if calls["n"] == 5:
                raise KeyboardInterrupt
            return real(*how)["metasgd"](*args, **kw)

        return {**real(*how), "metasgd": metasgd}

    monkeypatch.setattr(loop_mod, "batch_functions", crashing)
    with pytest.raises(KeyboardInterrupt):
        run(RELU, "metasgd", 6, k=1, checkpoint_path=path)
    monkeypatch.undo()
    assert load_checkpoint(path).phi.shape == (2 * RELU.num_params,) and load_checkpoint(path).iteration == 4
    resumed = run(RELU, "metasgd", 6, k=1, checkpoint_path=path, resume=True)
    assert resumed.params.tobytes() == full.params.tobytes() and resumed.start_iteration == 4


def test_a_checkpoint_of_the_wrong_size_is_refused(tmp_path):
    path = tmp_path / "run.npz"
    run(RELU, "metasgd", 2, k=1, checkpoint_path=path)
    ckpt = load_checkpoint(path)
    save_checkpoint(path, ckpt._replace(phi=ckpt.phi[: RELU.num_params], outer_state={}))
    with pytest.raises(CheckpointError, match="has 1761 entries; metasgd on this network optimises 3522"):
        run(RELU, "metasgd", 4, k=1, checkpoint_path=path, resume=True)


BASE = dict(iterations=2, alpha=0.01, backend="numpy", net={"sizes": [1, 40, 40, 1], "activation": "relu"})
REFUSED = [
    (dict(algo="maml", k=1, lam=1.0), "lam is a setting of algo='imaml'"),
    (dict(algo="anil", k=1, cg_iterations=5), "cg_iterations is a setting of algo='imaml'"),
    (dict(algo="imaml", k=0), "exact iMAML needs a smooth activation"),
    (dict(algo="imaml", k=3, tol=1e-8), "exact iMAML solves its inner problem to tol, not in k steps"),
    (dict(algo="imaml", k=3, tol=1e-8, cg_iterations=5), "pass one of the two"),
    (dict(algo="imaml", k=3, cg_iterations=0), "cg_iterations must be an integer >= 1"),
    (dict(algo="imaml", k=3, cg_iterations=5, lam=-1.0), "lam must be a finite number > 0"),
    (dict(algo="imaml", k=0, tol=1.5, net={"sizes": [1, 4, 1], "activation": "tanh"}), "tol must be"),
    (dict(algo="metasgd", k=1, epsilon=0.1), "epsilon is used only by algo='reptile'"),
]


@pytest.mark.parametrize(("settings", "message"), REFUSED)
def test_settings_of_another_algorithm_are_refused_by_name(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**(BASE | settings))


def test_imaml_defaults_and_an_old_config_without_the_new_fields():
    exact = TrainConfig(**(BASE | dict(algo="imaml", k=0, net={"sizes": [1, 4, 1], "activation": "tanh"})))
    assert (exact.lam, exact.tol, exact.cg_iterations) == (2.0, 1e-8, None)
    practical = TrainConfig(**(BASE | dict(algo="imaml", k=5, cg_iterations=5)))
    assert (practical.lam, practical.tol) == (2.0, None)
    old = {k: v for k, v in json.loads(TrainConfig(**(BASE | dict(algo="maml", k=1))).to_json()).items()
           if k not in ("lam", "tol", "cg_iterations")}  # fmt: skip
    assert TrainConfig.from_json(json.dumps(old)).lam is None  # a checkpoint from before the fields existed
