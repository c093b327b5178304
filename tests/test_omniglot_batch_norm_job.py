"""``tinymeta omniglot --batch-norm`` (the MAML paper's MLP) and ``--algo fomaml-tail``: the settings the
job builds and the command end to end on a tiny network, batch norm on both backends."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinymeta import load_checkpoint
from tinymeta.cli.omniglot import main
from tinymeta.jobs.omniglot import omniglot_job
from tinymeta.training.config import make_net
from tinymeta.training.init import initial_phi, truncated_normal


@pytest.mark.fast
def test_batch_norm_job_names_its_network():
    job = omniglot_job("maml", batch_norm=True, backend="numba")
    assert job.train.net == {"sizes": [784, 256, 128, 64, 64, 5], "activation": "relu", "batch_norm": True}
    assert job.train.backend == "numba"  # the kernels have batch norm: no backend is refused
    assert omniglot_job("maml", batch_norm=True, backend="numpy").train.backend == "numpy"
    assert omniglot_job("maml").train.net["batch_norm"] is False
    with pytest.raises(TypeError, match="batch_norm must be True or False; got 'yes'"):
        omniglot_job("maml", batch_norm="yes")


@pytest.mark.fast
def test_truncated_normal_start_is_maml_codes():
    """init="truncnormal": weights N(0, 0.01^2) cut at 0.02 (drawn again beyond), biases and shifts 0."""
    job = omniglot_job("maml", batch_norm=True, init="truncnormal", backend="numpy")
    assert job.train.init == "truncnormal"
    net = make_net(job.train.net)
    phi = initial_phi(net, job.train)
    weights = np.concatenate([W.ravel() for W, _ in net.unflatten(phi)])
    assert np.abs(weights).max() <= 0.02
    assert abs(weights.std() - 0.0088) < 3e-4  # the standard deviation of N(0, 1) cut at +-2 is 0.88
    assert np.count_nonzero(phi) == weights.size  # biases and shifts are 0
    np.testing.assert_array_equal(phi, truncated_normal(net, job.train.seed))
    with pytest.raises(ValueError, match="init must be one of"):
        omniglot_job("maml", init="zeros")


@pytest.mark.fast
def test_fomaml_tail_job_takes_reptiles_data_and_inner_loop():
    job = omniglot_job("fomaml-tail", shots=1, tail="separate", tail_shots=1)
    c = job.train
    assert (c.algo, c.tail, c.tail_shots, c.inner_optimizer, c.inner_batch_size, c.k) == (
        "fomaml-tail", "separate", 1, "adam", 10, 5)  # fmt: skip
    assert (job.train_shots, job.test_steps, c.outer_optimizer, c.epsilon) == (10, 50, None, (1.0, 0.0))
    assert "query_shots=1" in c.family  # no query set in training, as Reptile
    assert omniglot_job("fomaml-tail").train.tail == "shared"
    with pytest.raises(ValueError, match="tail is a setting of algo='fomaml-tail'"):
        omniglot_job("reptile", tail="shared")


@pytest.mark.fast
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_cli_batch_norm_end_to_end(shared, tmp_path, backend):
    out = tmp_path / "bn"
    argv = ["--batch-norm", "--shots", "1", "--iterations", "2", "--meta-batch", "2", "--test-tasks", "4",
            "--hidden", "8,8", "--backend", backend, "--data-dir", str(shared), "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert (s["batch_norm"], s["backend"], s["iterations"]) == (True, backend, 2)
    # phi: the weights and biases, then one shift per hidden unit (8 + 8)
    assert load_checkpoint(out / "checkpoint.npz").phi.shape == (784 * 8 + 8 + 8 * 8 + 8 + 8 * 5 + 5 + 8 + 8,)


@pytest.mark.fast
def test_cli_fomaml_tail_end_to_end(shared, tmp_path, capsys):
    out = tmp_path / "ft"
    argv = ["--algo", "fomaml-tail", "--tail", "separate", "--tail-shots", "2", "--shots", "1",
            "--iterations", "3", "--test-tasks", "4", "--test-steps", "3", "--hidden", "8", "--backend",
            "numpy", "--data-dir", str(shared), "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert (s["algo"], s["config"]["train"]["tail"], s["config"]["train"]["tail_shots"]) == (
        "fomaml-tail",
        "separate",
        2,
    )
    assert "v" in load_checkpoint(out / "checkpoint.npz").inner_state  # the inner Adam's state is kept
    assert main([*argv[:4], "--iterations", "1", "--out", str(tmp_path / "o")]) == 2
    assert "tail_shots must be an integer >= 1; got NoneType None" in capsys.readouterr().err
