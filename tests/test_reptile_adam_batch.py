"""Reptile with a persistent inner Adam on a meta-batch: the NumPy reference against reptile_step_adam,
and the Numba kernel against the reference (same numbers, same state, same errors).

Tolerances: reference vs reptile_step_adam: both run the same float64 operations on the same mini-batches,
so phi agrees to absolute 1e-14 on |phi_j| <= 1 (the order of the final additions differs) and the Adam
moments exactly. Kernel vs reference: relative 1e-12 as in test_kernels_parity.py (BLAS sums in another
order; the kernel's Adam step divides once where the reference divides three times). Adam divides by
sqrt(v) + 1e-8, which magnifies ulp-level differences of small gradient entries: the worst case measured
over test_kernel_matches_reference is 5.8e-14 relative to the largest entry, still 17x below 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_kernels_parity import ACTIVATIONS, LOSSES, _corruptions, assert_close, problem

from tinymeta import Adam, kernels, reptile_step_adam
from tinymeta.backends import batch_functions
from tinymeta.batch import reptile_adam_batch, reptile_batch
from tinymeta.inner import DivergenceError
from tinymeta.reptile import inner_batch_indices
from tinymeta.tasks import TaskBatch

pytestmark = pytest.mark.fast
ATOL = 1e-14


def random_state(net, rng, t=7):
    """A used Adam state: m of either sign, v > 0, step count t."""
    P = net.num_params
    return {"m": 0.01 * rng.standard_normal(P), "v": 0.01 * rng.random(P), "t": t}


def test_reference_is_reptile_step_adam_with_the_same_minibatches():
    net, phi, batch, _ = problem(1, "tanh", "mse", 3, K=6, sizes=[2, 8, 1])
    state = Adam(1e-2).init(net.num_params)
    idx = inner_batch_indices(np.random.default_rng(5), 3, 6, 4, 3)
    value, delta, new = reptile_adam_batch(net, phi, batch, 1e-2, 3, state, "mse", 0.0, idx)
    tasks = [batch.task(i) for i in range(3)]
    expected, expected_state = reptile_step_adam(net, phi, tasks, 1e-2, 3, 0.5, state, "mse", 0.0, 4,
                                                 np.random.default_rng(5))  # fmt: skip
    np.testing.assert_allclose(phi + 0.5 * delta, expected, rtol=0, atol=ATOL)
    for key in ("m", "v", "t"):
        np.testing.assert_array_equal(new[key], expected_state[key])
    assert new["t"] == 9 and state["t"] == 0 and not state["v"].any()  # the caller's state is untouched
    np.testing.assert_allclose(value, reptile_batch(net, phi, batch, 1e-2, 0)[0], rtol=1e-15)


def test_state_runs_through_the_tasks():
    """Task 1 adapted alone from a fresh state differs from task 1 after task 0: the state is carried."""
    net, phi, batch, _ = problem(2, "tanh", "mse", 2, sizes=[2, 8, 1])
    state = Adam(1e-2).init(net.num_params)
    _, both, _ = reptile_adam_batch(net, phi, batch, 1e-2, 3, state)
    _, first, after_first = reptile_adam_batch(net, phi, TaskBatch(*(a[:1] for a in batch)), 1e-2, 3, state)
    second = TaskBatch(*(a[1:] for a in batch))
    _, carried, _ = reptile_adam_batch(net, phi, second, 1e-2, 3, after_first)
    _, fresh, _ = reptile_adam_batch(net, phi, second, 1e-2, 3, state)
    np.testing.assert_allclose(both, (first + carried) / 2, rtol=0, atol=ATOL)
    assert np.abs(carried - fresh).max() > 1e-3 * np.abs(fresh).max()


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
def test_kernel_matches_reference(activation, loss):
    for B in (1, 3):
        seed = 100 * ACTIVATIONS.index(activation) + 10 * LOSSES.index(loss) + B
        net, phi, batch, rng = problem(seed, activation, loss, B)
        for k in range(4):
            for beta1, idx in ((0.0, None), (0.9, None), (0.0, inner_batch_indices(rng, B, 4, 3, k))):
                state = random_state(net, rng)
                got = kernels.reptile_adam_batch(net, phi, batch, 0.01, k, state, loss, beta1, idx)
                ref = reptile_adam_batch(net, phi, batch, 0.01, k, state, loss, beta1, idx)
                assert isinstance(got[0], float) and got[1].shape == (net.num_params,)
                assert_close(got[0], ref[0])
                assert_close(got[1], ref[1])
                assert_close(got[2]["m"], ref[2]["m"])
                assert_close(got[2]["v"], ref[2]["v"])
                assert got[2]["t"] == ref[2]["t"] == 7 + B * k


def test_kernel_matches_reference_omniglot_sized():
    """784-256-128-64-64-5, 5-way tasks of 10 images per class, mini-batches of 10, the Reptile settings."""
    net, phi, batch, rng = problem(9, "relu", "cross_entropy", 3, K=50, sizes=[784, 256, 128, 64, 64, 5])
    state, idx = random_state(net, rng), inner_batch_indices(rng, 3, 50, 10, 5)
    got = kernels.reptile_adam_batch(net, phi, batch, 1e-3, 5, state, "cross_entropy", 0.0, idx)
    ref = reptile_adam_batch(net, phi, batch, 1e-3, 5, state, "cross_entropy", 0.0, idx)
    for a, b in zip(got[:2], ref[:2], strict=True):
        assert_close(a, b)
    assert_close(got[2]["v"], ref[2]["v"])


def test_kernel_leaves_the_callers_state_alone_and_is_listed():
    net, phi, batch, rng = problem(3, "tanh", "mse", 2)
    state = random_state(net, rng)
    before = {key: np.copy(val) for key, val in state.items()}
    kernels.reptile_adam_batch(net, phi, batch, 0.01, 2, state)
    for key in state:
        np.testing.assert_array_equal(state[key], before[key])
    assert batch_functions("numba")["reptile_adam"] is kernels.reptile_adam_batch
    assert batch_functions("numpy")["reptile_adam"] is reptile_adam_batch


SUPPORT_CORRUPTIONS = [c for c in _corruptions() if "reptile" in c[1]]  # Reptile reads no query set


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name,algos,change", SUPPORT_CORRUPTIONS, ids=[c[0] for c in SUPPORT_CORRUPTIONS])
def test_bad_input_raises_like_reference(name, algos, change, loss):
    net, phi, batch, _ = problem(11, "tanh", loss, 3, sizes=[2, 5, 3])
    state = Adam(0.01).init(net.num_params)
    args = change(net, phi, batch, 0.1, 2, loss)
    with pytest.raises(Exception) as expected:
        reptile_adam_batch(*args[:5], state, args[5])
    with pytest.raises(type(expected.value)) as got:
        kernels.reptile_adam_batch(*args[:5], state, args[5])
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize(
    "state,err,msg",
    [
        ([0.0], TypeError, "adam_state must be a dict with keys 'm', 'v', 't'"),
        ({"m": 0.0, "v": 0.0}, TypeError, "adam_state must be a dict"),
        ({"m": np.zeros(3), "v": np.zeros(3), "t": 0}, ValueError, r"adam_state\['m'\] has shape \(3,\)"),
        ("v negative", ValueError, r"adam_state\['v'\] must be >= 0"),
        ("m nan", ValueError, r"adam_state\['m'\] contains 1 non-finite"),
        ("t negative", ValueError, r"adam_state\['t'\] must be an integer >= 0"),
    ],
)
def test_bad_adam_state(state, err, msg):
    net, phi, batch, _ = problem(4, "tanh", "mse", 2, sizes=[2, 3, 1])
    good = Adam(0.01).init(net.num_params)
    if isinstance(state, str):
        what, how = state.split()
        key = what
        value = {"negative": -1, "nan": np.nan}[how]
        state = {**good, key: value if key == "t" else np.where(np.arange(net.num_params) == 0, value, 0.0)}
    for fn in (reptile_adam_batch, kernels.reptile_adam_batch):
        with pytest.raises(err, match=msg):
            fn(net, phi, batch, 0.01, 2, state)
    for fn in (reptile_adam_batch, kernels.reptile_adam_batch):
        with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\); got 1.0"):
            fn(net, phi, batch, 0.01, 2, good, "mse", 1.0)


def test_divergence_raises_like_reference():
    """A huge step size makes the parameters non-finite at inner step 1 of task 0."""
    net, phi, batch, _ = problem(5, "identity", "mse", 3, sizes=[2, 4, 3])
    state = Adam(1e300).init(net.num_params)
    with pytest.raises(DivergenceError) as expected, np.errstate(over="ignore", invalid="ignore"):
        reptile_adam_batch(net, phi * 1e300, batch, 1e300, 3, state)
    with pytest.raises(DivergenceError) as got, np.errstate(over="ignore", invalid="ignore"):
        kernels.reptile_adam_batch(net, phi * 1e300, batch, 1e300, 3, state)
    assert str(got.value) == str(expected.value)
    assert "Reptile inner step" in str(got.value) and "of task 0" in str(got.value)
