"""The float32 build of the kernels against the float64 NumPy reference.

``dtype="float32"`` runs the same kernels on float32 buffers (BLAS sgemm), so the results differ from
the reference by float32 rounding, not float64's. Tolerances, relative to the reference:

* vectors (meta-gradients, Reptile's directions, Adam's moments): ||got - ref|| <= 1e-4 ||ref|| and
  max|got - ref| <= 1e-4 max|ref|. Why 1e-4: phi is rounded to float32 (unit roundoff u = 6e-8) and
  every product sums up to 784 terms, whose rounding grows like sqrt(d) u ~ 2e-6 per product in a
  typical case (up to d u ~ 5e-5 in the worst), over a chain of about ten products per inner step.
  Measured worst case: 1.7e-5 over 2 x 3 x 5 x 2 x 2 random small networks (k = 0..3, with and without
  batch norm; batch norm's soft signs amplify rounding most), 1e-6 on the Omniglot network
  (784-256-128-64-64-5, P ~ 245k) and 3e-6 on it with batch norm at k = 1 (3.4e-5 at k = 2, which is
  why the Omniglot-sized check stays at k = 1): 6-100x inside the bound, while a wrong answer
  (first-order MAML for MAML, a relative error of 1e-3) lies far outside it (the negative control below).
* loss values: relative 1e-5 (measured worst 2e-7: each value is one mean over many rows).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_kernels_batchnorm import bn_problem
from test_kernels_parity import ACTIVATIONS, LOSSES, _corruptions, problem

from tinymeta import MLP, kernels
from tinymeta.backends import batch_functions
from tinymeta.batch import fomaml_batch, maml_batch, reptile_adam_batch, reptile_batch
from tinymeta.tasks import TaskBatch

VEC_RTOL, VALUE_RTOL = 1e-4, 1e-5
PAIRS = [(kernels.maml_batch, maml_batch), (kernels.fomaml_batch, fomaml_batch),
         (kernels.reptile_batch, reptile_batch)]  # fmt: skip


def assert_float32_close(got, ref, rtol=VEC_RTOL):
    """Norm-wise and max-wise relative error within ``rtol`` (module docstring); got must be float64."""
    got, ref = np.asarray(got), np.asarray(ref, dtype=float)
    assert got.dtype == np.float64
    norm_error = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    max_error = np.abs(got - ref).max(initial=0.0) / np.abs(ref).max(initial=0.0)
    assert norm_error <= rtol and max_error <= rtol, (norm_error, max_error)


def adam_state(net, rng):
    return {"m": 0.01 * rng.standard_normal(net.num_params), "v": 0.01 * rng.random(net.num_params), "t": 7}


@pytest.mark.fast
@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batch_norm"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
def test_float32_matches_float64_reference(batch_norm, activation, loss):
    for B in (1, 3):
        seed = 100 * ACTIVATIONS.index(activation) + 10 * LOSSES.index(loss) + B
        make = (lambda *a: bn_problem(*a, 4, 3)) if batch_norm else problem
        net, phi, batch, rng = make(seed, activation, loss, B)
        alpha = 0.01 if batch_norm else 0.1  # as in the float64 parity tests (test_kernels_batchnorm.py)
        for k in range(4):
            for fast, ref in PAIRS:
                value, g = fast(net, phi, batch, alpha, k, loss, dtype="float32")
                ref_value, ref_g = ref(net, phi, batch, alpha, k, loss)
                assert isinstance(value, float)
                np.testing.assert_allclose(value, ref_value, rtol=VALUE_RTOL)
                if k or ref is not reptile_batch:  # Reptile's direction is 0 at k = 0
                    assert_float32_close(g, ref_g)
            if k:
                state = adam_state(net, rng)
                got = kernels.reptile_adam_batch(net, phi, batch, 0.01, k, state, loss, dtype="float32")
                want = reptile_adam_batch(net, phi, batch, 0.01, k, state, loss)
                for key in ("m", "v"):
                    assert_float32_close(got[2][key], want[2][key])
                assert_float32_close(got[1], want[1])
                assert got[2]["t"] == want[2]["t"]


@pytest.mark.fast
def test_tolerance_has_teeth():
    """Negative controls: first-order MAML for MAML, and a 1e-3 relative error, are rejected."""
    net, phi, batch, _ = problem(1, "tanh", "mse", 3, sizes=[1, 6, 1])
    g = kernels.maml_batch(net, phi, batch, 0.1, 2, dtype="float32")[1]
    ref = maml_batch(net, phi, batch, 0.1, 2)[1]
    for wrong in (fomaml_batch(net, phi, batch, 0.1, 2)[1], ref * (1 + 1e-3)):
        with pytest.raises(AssertionError):
            assert_float32_close(g, wrong)


@pytest.mark.fast
def test_state_and_results_are_float64_and_the_callers_state_stays():
    net, phi, batch, rng = problem(3, "tanh", "mse", 2)
    state = adam_state(net, rng)
    before = {key: np.copy(value) for key, value in state.items()}
    _, delta, new = kernels.reptile_adam_batch(net, phi, batch, 0.01, 2, state, dtype="float32")
    for key in ("m", "v"):
        np.testing.assert_array_equal(state[key], before[key])
        assert new[key].dtype == np.float64
        np.testing.assert_array_equal(new[key], new[key].astype(np.float32))  # float32 values, kept exactly
    assert delta.dtype == np.float64 and np.array_equal(delta, delta.astype(np.float32))


@pytest.mark.fast
@pytest.mark.parametrize("name,algos,change", _corruptions()[:8], ids=[c[0] for c in _corruptions()[:8]])
def test_bad_input_raises_like_reference(name, algos, change):
    net, phi, batch, _ = problem(11, "tanh", "mse", 3, sizes=[2, 5, 3])
    for algo in algos:
        fast, ref = dict(zip(("maml", "fomaml", "reptile"), PAIRS, strict=True))[algo]
        args = change(net, phi, batch, 0.1, 2, "mse")
        with pytest.raises(Exception) as expected:
            ref(*args)
        with pytest.raises(type(expected.value)) as got:
            fast(*args, dtype="float32")
        assert str(got.value) == str(expected.value), (algo, name)


@pytest.mark.fast
def test_backends_route_the_dtype():
    functions = batch_functions("numba", "float32")
    net, phi, batch, _ = problem(2, "relu", "cross_entropy", 2, sizes=[3, 5, 3])
    got = functions["maml"](net, phi, batch, 0.1, 1, "cross_entropy")[1]
    np.testing.assert_array_equal(got, kernels.maml_batch(net, phi, batch, 0.1, 1, "cross_entropy",
                                                          dtype="float32")[1])  # fmt: skip
    assert not np.array_equal(got, kernels.maml_batch(net, phi, batch, 0.1, 1, "cross_entropy")[1])
    assert batch_functions("numba", "float64")["maml"] is kernels.maml_batch
    with pytest.raises(ValueError, match="float64 only"):
        batch_functions("numpy", "float32")
    with pytest.raises(ValueError, match="dtype must be one of"):
        batch_functions("numba", "float16")
    with pytest.raises(ValueError, match="no float32 kernel"):
        functions["metasgd"](net, phi, batch)
    with pytest.raises(ValueError, match="dtype must be one of"):
        kernels.maml_batch(net, phi, batch, 0.1, 1, "cross_entropy", dtype=np.float32)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batch_norm"])
def test_omniglot_sized_network(batch_norm):
    """784-256-128-64-64-5, 5-way 1-shot with 3 query images per class, binary images as Omniglot's."""
    rng = np.random.default_rng(9)
    net = MLP([784, 256, 128, 64, 64, 5], "relu", batch_norm=batch_norm)
    phi = net.init(rng)
    B, K, Kq = 2, 5, 15
    images = [(rng.random((B, n, 784)) < 0.2).astype(float) for n in (K, Kq)]
    batch = TaskBatch(images[0], np.tile(np.arange(5), (B, 1)), images[1], np.tile(np.arange(5), (B, 3)))
    for fast, ref in PAIRS:
        value, g = fast(net, phi, batch, 0.4, 1, "cross_entropy", dtype="float32")
        ref_value, ref_g = ref(net, phi, batch, 0.4, 1, "cross_entropy")
        np.testing.assert_allclose(value, ref_value, rtol=VALUE_RTOL)
        assert_float32_close(g, ref_g)


@pytest.mark.fast
def test_training_config_carries_the_dtype():
    """dtype is a TrainConfig field: checked, kept through JSON (older configs read as float64), not
    changeable on resume (it changes the trajectory), and the loop runs the float32 kernels with it."""
    from tinymeta import Sine, meta_train
    from tinymeta.training.config import TrainConfig, check_resumable

    net = MLP([1, 8, 1], "tanh")
    runs = {dt: meta_train(net, Sine(), "maml", 3, alpha=0.01, k=1, backend="numba", progress=False, dtype=dt)
            for dt in ("float64", "float32")}  # fmt: skip
    config = runs["float32"].config
    assert config.dtype == "float32" and TrainConfig.from_json(config.to_json()) == config
    older = {key: value for key, value in json.loads(config.to_json()).items() if key != "dtype"}
    assert TrainConfig.from_json(json.dumps({**older, "backend": "numpy"})).dtype == "float64"
    with pytest.raises(ValueError, match="dtype: checkpoint 'float64', now 'float32'"):
        check_resumable(runs["float64"].config, config, 3, "run.npz")
    with pytest.raises(ValueError, match="float64 only"):
        TrainConfig(**{**config.to_dict(), "backend": "numpy"})
    a, b = runs["float32"].phi, runs["float64"].phi
    assert a.dtype == np.float64 and not np.array_equal(a, b)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())  # 3 Adam steps of lr 1e-3


@pytest.mark.fast
def test_algorithms_without_a_float32_kernel_are_refused_when_configured():
    from tinymeta.training.config import TrainConfig

    with pytest.raises(ValueError, match="anil has no float32 kernel"):
        TrainConfig(algo="anil", iterations=1, alpha=0.1, k=1, backend="numba", dtype="float32")
