"""Reptile: k = 1 is joint training, batching, mini-batches, the Adam inner loop, a short real run."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import (
    MLP,
    SGD,
    Adam,
    Sine,
    Task,
    adapt,
    linear_schedule,
    reptile_adapt,
    reptile_step,
    reptile_step_adam,
)

# Identities that hold in exact arithmetic are checked with an absolute tolerance of 1e-14 on
# parameter vectors with |phi_j| <= 1: Reptile forms phi + eps mean(phi~ - phi), and each of its
# few additions rounds by at most ulp(1) / 2 = 1.1e-16, so the difference from the direct formula
# is a few 1e-16 (measured <= 1.1e-16).
ATOL = 1e-14


def _setup(num_tasks=3, K=10, seed=0, sizes=(1, 16, 16, 1)):
    net = MLP(list(sizes), "tanh")
    rng = np.random.default_rng(seed)
    phi = net.init(rng)
    tasks = Sine(K, 5).sample(rng, num_tasks)
    return net, phi, tasks


def _sgd_steps(net, phi, batches, alpha):
    for x, y in batches:
        phi = phi - alpha * net.loss_and_grad(phi, x, y)[1]
    return phi


@pytest.mark.fast
@pytest.mark.parametrize("num_tasks", [1, 4])
def test_k1_is_sgd_on_the_mean_support_loss(num_tasks):
    # phi~ - phi = -alpha grad L_A(phi), so Reptile = phi - alpha eps mean_tasks grad L_A(phi), eq. (4.2)
    net, phi, tasks = _setup(num_tasks)
    alpha, eps = 0.02, 0.5
    mean_grad = np.mean([net.loss_and_grad(phi, t.x_support, t.y_support)[1] for t in tasks], axis=0)
    out = reptile_step(net, phi, tasks, alpha, 1, eps)
    np.testing.assert_allclose(out, phi - alpha * eps * mean_grad, rtol=0, atol=ATOL)
    assert np.linalg.norm(out - phi) > 1e3 * ATOL  # the step is not lost in the tolerance


@pytest.mark.fast
def test_query_set_is_not_used():
    net, phi, tasks = _setup(2)
    other = [t._replace(x_query=t.x_query + 1.0, y_query=-t.y_query) for t in tasks]
    np.testing.assert_array_equal(reptile_step(net, phi, tasks, 0.02, 3, 0.5),
                                  reptile_step(net, phi, other, 0.02, 3, 0.5))  # fmt: skip


@pytest.mark.fast
@pytest.mark.parametrize("k", [0, 1, 3])
def test_batched_is_the_mean_of_serial_deltas(k):
    net, phi, tasks = _setup(4)
    alpha, eps = 0.02, 0.3
    serial = [reptile_step(net, phi, t, alpha, k, 1.0) - phi for t in tasks]  # eps = 1: phi~ - phi
    for t, d in zip(tasks, serial, strict=True):
        np.testing.assert_allclose(
            d + phi, adapt(net, phi, t.x_support, t.y_support, alpha, k), rtol=0, atol=ATOL
        )
    batched = reptile_step(net, phi, tasks, alpha, k, eps)
    np.testing.assert_allclose(batched, phi + eps * np.mean(serial, axis=0), rtol=0, atol=ATOL)
    # a single Task and a one-element list are the same serial step
    np.testing.assert_array_equal(reptile_step(net, phi, tasks[0], alpha, k, eps),
                                  reptile_step(net, phi, tasks[:1], alpha, k, eps))  # fmt: skip


@pytest.mark.fast
def test_epsilon_one_single_task_lands_on_the_adapted_parameters():
    net, phi, tasks = _setup(1)
    t = tasks[0]
    expected = adapt(net, phi, t.x_support, t.y_support, 0.02, 5)
    np.testing.assert_allclose(reptile_step(net, phi, t, 0.02, 5, 1.0), expected, rtol=0, atol=ATOL)


@pytest.mark.fast
def test_reptile_step_does_not_mutate():
    net, phi, tasks = _setup(2)
    copies = [phi.copy()] + [np.copy(a) for t in tasks for a in t]
    arrays = [phi] + [a for t in tasks for a in t]
    for a in arrays:
        a.flags.writeable = False
    reptile_step(net, phi, tasks, 0.02, 3, 0.5, inner_batch_size=4, rng=0)
    state = Adam(0.001, beta1=0.0).init(net.num_params)
    state_copy = {key: np.copy(v) for key, v in state.items()}
    reptile_step_adam(net, phi, tasks, 0.001, 3, 0.5, state)
    for a, b in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, b)
    for key in state:
        np.testing.assert_array_equal(state[key], state_copy[key])


# ---------------------------------------------------------------- inner mini-batches
@pytest.mark.fast
def test_inner_minibatches_follow_the_documented_shuffle():
    # K = 10 support points, batches of 4, k = 3 steps: shuffle, take 0:4, 4:8, then the 2 left
    # over followed by the first 2 of a fresh shuffle.
    net, phi, tasks = _setup(2)
    alpha, eps, m = 0.02, 0.5, 4
    rng = np.random.default_rng(7)
    deltas = []
    for t in tasks:
        p1, p2 = rng.permutation(10), rng.permutation(10)
        idx = [p1[0:4], p1[4:8], np.concatenate([p1[8:10], p2[0:2]])]
        batches = [(t.x_support[i], t.y_support[i]) for i in idx]
        deltas.append(_sgd_steps(net, phi, batches, alpha) - phi)
    expected = phi + eps * np.mean(deltas, axis=0)
    out = reptile_step(net, phi, tasks, alpha, 3, eps, inner_batch_size=m, rng=np.random.default_rng(7))
    np.testing.assert_allclose(out, expected, rtol=0, atol=ATOL)


@pytest.mark.fast
def test_inner_minibatches_are_deterministic_in_the_rng():
    net, phi, tasks = _setup(3)
    run = lambda seed: reptile_step(net, phi, tasks, 0.02, 4, 0.5, inner_batch_size=3, rng=seed)
    np.testing.assert_array_equal(run(1), run(1))
    np.testing.assert_array_equal(run(1), run(np.random.default_rng(1)))
    assert np.abs(run(1) - run(2)).max() > 1e-6  # different shuffles, different steps
    # a batch at least as large as the support set is the full batch, and needs no shuffling
    full = reptile_step(net, phi, tasks, 0.02, 4, 0.5)
    np.testing.assert_array_equal(
        reptile_step(net, phi, tasks, 0.02, 4, 0.5, inner_batch_size=10, rng=1), full
    )


@pytest.mark.fast
def test_generator_is_advanced_not_reset():
    # two calls with the same Generator object see different shuffles (the stream moves on)
    net, phi, tasks = _setup(1)
    rng = np.random.default_rng(3)
    a = reptile_step(net, phi, tasks, 0.02, 2, 0.5, inner_batch_size=3, rng=rng)
    b = reptile_step(net, phi, tasks, 0.02, 2, 0.5, inner_batch_size=3, rng=rng)
    assert np.abs(a - b).max() > 1e-6


# ---------------------------------------------------------------- Adam inner loop
@pytest.mark.fast
def test_adam_state_is_carried_across_tasks_and_returned():
    net, phi, tasks = _setup(2)
    alpha, eps, k = 0.001, 0.5, 3
    opt = Adam(alpha, beta1=0.0)
    s0 = opt.init(net.num_params)
    t1, t2 = tasks
    p1, s1 = reptile_adapt(net, phi, t1.x_support, t1.y_support, k, opt, s0)
    p2, s2 = reptile_adapt(net, phi, t2.x_support, t2.y_support, k, opt, s1)
    out, state = reptile_step_adam(net, phi, tasks, alpha, k, eps, s0)
    np.testing.assert_allclose(out, phi + eps * ((p1 - phi) + (p2 - phi)) / 2, rtol=0, atol=ATOL)
    assert state["t"] == 2 * k
    for key in ("m", "v"):
        np.testing.assert_array_equal(state[key], s2[key])
    # the second task's update depends on the first task's state
    p2_fresh, _ = reptile_adapt(net, phi, t2.x_support, t2.y_support, k, opt, s0)
    assert np.abs(p2_fresh - p2).max() > 1e-2 * np.abs(p2 - phi).max()
    # and the returned state feeds the next call
    out2, state2 = reptile_step_adam(net, out, tasks[:1], alpha, k, eps, state)
    assert state2["t"] == 3 * k
    p3, _ = reptile_adapt(net, out, t1.x_support, t1.y_support, k, opt, state)
    np.testing.assert_allclose(out2, out + eps * (p3 - out), rtol=0, atol=ATOL)


@pytest.mark.fast
def test_adam_beta1_is_passed_through():
    net, phi, tasks = _setup(1)
    s0 = Adam(0.001).init(net.num_params)
    out0, _ = reptile_step_adam(net, phi, tasks, 0.001, 3, 1.0, s0, beta1=0.0)
    out9, _ = reptile_step_adam(net, phi, tasks, 0.001, 3, 1.0, s0, beta1=0.9)
    t = tasks[0]
    ref9, _ = reptile_adapt(net, phi, t.x_support, t.y_support, 3, Adam(0.001, beta1=0.9), s0)
    np.testing.assert_allclose(out9, ref9, rtol=0, atol=ATOL)
    assert np.abs(out0 - out9).max() > 1e-6


# ---------------------------------------------------------------- arguments
@pytest.mark.fast
@pytest.mark.parametrize("adam", [False, True])
def test_bad_arguments(adam):
    net, phi, tasks = _setup(2)
    state = Adam(0.001).init(net.num_params)

    def step(tasks=tasks, alpha=0.02, k=2, epsilon=0.5, **kw):
        if adam:
            return reptile_step_adam(net, phi, tasks, alpha, k, epsilon, state, **kw)
        return reptile_step(net, phi, tasks, alpha, k, epsilon, **kw)

    for eps in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="epsilon"):
            step(epsilon=eps)
    with pytest.raises(ValueError, match="alpha"):
        step(alpha=0.0)
    with pytest.raises(ValueError, match="tasks is empty"):
        step(tasks=[])
    with pytest.raises(ValueError, match="k"):
        step(k=-1)
    with pytest.raises(ValueError, match="rng"):
        step(inner_batch_size=3)
    with pytest.raises(ValueError, match="inner_batch_size"):
        step(inner_batch_size=0, rng=0)
    with pytest.raises(ValueError, match="x_support"):
        step(tasks=[Task(np.zeros((3, 2)), np.zeros((3, 1)), np.zeros((3, 1)), np.zeros((3, 1)))])


@pytest.mark.fast
def test_sgd_inner_optimizer_matches_plain_steps():
    net, phi, tasks = _setup(1)
    t = tasks[0]
    out, state = reptile_adapt(net, phi, t.x_support, t.y_support, 3, SGD(0.02), {})
    assert state == {}
    np.testing.assert_array_equal(out, _sgd_steps(net, phi, [(t.x_support, t.y_support)] * 3, 0.02))


# ---------------------------------------------------------------- a short real run
@pytest.mark.slow
def test_reptile_learns_a_better_initialization_for_sine():
    # 600 outer steps (meta-batch 5, k = 5, alpha = 0.01, eps annealed 1 -> 0) on a 1-32-32-1 net.
    # Query loss after 10 adaptation steps on 20 held-out tasks: measured 4.43 at the random
    # initialization, 1.04 after training; the test asks for at least a halving.
    net = MLP([1, 32, 32, 1], "tanh")
    rng = np.random.default_rng(0)
    phi0 = net.init(rng)
    family = Sine(10, 10)
    held_out, _, _ = family.evaluation_tasks(20, K_query=50)

    def score(p):
        return np.mean([net.loss(adapt(net, p, t.x_support, t.y_support, 0.01, 10), t.x_query, t.y_query)
                        for t in held_out])  # fmt: skip

    phi = phi0
    for it in range(600):
        phi = reptile_step(net, phi, family.sample(rng, 5), 0.01, 5, linear_schedule(1.0, 0.0, it, 600))
    assert score(phi) < 0.5 * score(phi0)
