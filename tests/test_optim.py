"""Optimizers on flat vectors: Adam and SGD against hand computations; schedule; factory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinymeta import SGD, Adam, linear_schedule
from tinymeta.optim import make_optimizer

pytestmark = pytest.mark.fast


def _adam_by_hand(phi, grads, lr, beta1, beta2, eps):
    """Adam written out scalar by scalar with Python floats (no NumPy broadcasting)."""
    phi = [float(p) for p in phi]
    m, v = [0.0] * len(phi), [0.0] * len(phi)
    for t, g in enumerate(grads, start=1):
        for j, gj in enumerate(g):
            m[j] = beta1 * m[j] + (1 - beta1) * gj
            v[j] = beta2 * v[j] + (1 - beta2) * gj * gj
            m_hat = m[j] / (1 - beta1**t)
            v_hat = v[j] / (1 - beta2**t)
            phi[j] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return np.array(phi), np.array(m), np.array(v)


@pytest.mark.parametrize("beta1", [0.9, 0.0])
def test_adam_two_steps_by_hand(beta1):
    phi0 = np.array([0.5, -1.0, 2.0, 0.0])
    grads = [np.array([0.1, -2.0, 0.0, 3e-4]), np.array([-0.3, 1.0, 5.0, 3e-4])]
    opt = Adam(0.01, beta1=beta1)
    state = opt.init(4)
    phi = phi0
    for g in grads:
        phi, state = opt.update(phi, g, state)
    ref_phi, ref_m, ref_v = _adam_by_hand(phi0, grads, 0.01, beta1, 0.999, 1e-8)
    # the same formula; NumPy and Python may round the power and sqrt differently by one ulp
    np.testing.assert_allclose(phi, ref_phi, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(state["m"], ref_m, rtol=1e-15, atol=0)
    np.testing.assert_allclose(state["v"], ref_v, rtol=1e-15, atol=0)
    assert state["t"] == 2


def test_adam_first_step_is_a_signed_lr_step():
    # bias correction makes step 1 exactly lr * g / (|g| + eps) whatever beta1 and beta2
    g = np.array([0.1, -2.0, 0.0, 3e-4])
    for beta1 in (0.0, 0.5, 0.9):
        phi, _ = Adam(0.01, beta1=beta1).update(np.zeros(4), g, Adam(0.01).init(4))
        np.testing.assert_allclose(phi, -0.01 * g / (np.abs(g) + 1e-8), rtol=1e-14, atol=0)


def test_adam_beta1_zero_keeps_no_momentum():
    opt = Adam(0.01, beta1=0.0)
    _, state = opt.update(np.zeros(2), np.array([1.0, -1.0]), opt.init(2))
    np.testing.assert_array_equal(state["m"], [1.0, -1.0])  # m is just the last gradient
    phi, state = opt.update(np.zeros(2), np.array([-3.0, 0.5]), state)
    np.testing.assert_array_equal(state["m"], [-3.0, 0.5])
    v_hat = (0.999 * 0.001 * np.array([1.0, 1.0]) + 0.001 * np.array([9.0, 0.25])) / (1 - 0.999**2)
    np.testing.assert_allclose(phi, -0.01 * np.array([-3.0, 0.5]) / (np.sqrt(v_hat) + 1e-8), rtol=1e-14)


def test_adam_is_pure():
    opt = Adam(0.01)
    state = opt.init(3)
    phi, g = np.ones(3), np.array([1.0, 2.0, 3.0])
    for a in (phi, g, state["m"], state["v"]):
        a.flags.writeable = False
    new_phi, new_state = opt.update(phi, g, state)
    assert state["t"] == 0 and new_state["t"] == 1
    np.testing.assert_array_equal(phi, np.ones(3))
    assert new_state is not state
    # lr override
    np.testing.assert_allclose(opt.update(phi, g, state, lr=0.02)[0] - phi, 2 * (new_phi - phi), rtol=1e-15)


def test_sgd():
    opt = SGD(0.1)
    assert opt.init(5) == {}
    phi, g = np.array([1.0, 2.0]), np.array([0.5, -4.0])
    new, state = opt.update(phi, g, {})
    np.testing.assert_array_equal(new, phi - 0.1 * g)
    assert state == {}
    np.testing.assert_array_equal(opt.update(phi, g, {}, lr=1.0)[0], phi - g)
    np.testing.assert_array_equal(phi, [1.0, 2.0])


def test_linear_schedule():
    assert linear_schedule(1.0, 0.0, 0, 100) == 1.0
    assert linear_schedule(1.0, 0.0, 100, 100) == 0.0
    assert linear_schedule(1.0, 0.0, 25, 100) == 0.75
    assert linear_schedule(0.1, 0.5, 50, 100) == pytest.approx(0.3, abs=1e-16)
    # clamped outside [0, total]
    assert linear_schedule(1.0, 0.0, 150, 100) == 0.0
    assert linear_schedule(1.0, 0.0, -5, 100) == 1.0
    # total = 0 does not divide by zero
    assert linear_schedule(1.0, 0.0, 0, 0) == 1.0
    values = [linear_schedule(1.0, 0.0, i, 10) for i in range(11)]
    assert all(b < a for a, b in zip(values, values[1:], strict=False))


def test_make_optimizer():
    assert make_optimizer("sgd", 0.1) == SGD(0.1)
    assert make_optimizer("adam", 0.001, beta1=0.0) == Adam(0.001, beta1=0.0)
    assert make_optimizer("adam", 1) == Adam(1.0)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(TypeError, match="optimizer"):
        make_optimizer(["sgd"], 0.1)
    for lr in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr"):
            make_optimizer("sgd", lr)
    with pytest.raises(TypeError, match="lr"):
        make_optimizer("sgd", "0.1")
    for beta1 in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="beta1"):
            make_optimizer("adam", 0.1, beta1=beta1)
