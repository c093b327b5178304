"""Activations: sigma' and sigma'' against central differences, conventions and stability."""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta.activations import ACTIVATIONS
from tinymeta.gradcheck import directional_derivative, rel_error

pytestmark = pytest.mark.fast

NAMES = ["tanh", "relu", "sigmoid", "softplus", "identity"]

# Grid on [-6, 6] that stays 1e-2 away from ReLU's kink at 0: a central difference with
# h = 1e-5 then never straddles the kink, so it measures the one-sided derivative exactly.
GRID = np.concatenate([np.linspace(-6.0, -1e-2, 301), np.linspace(1e-2, 6.0, 301)])

# Central differences with h = 1e-5 on functions with |f'''| <= 1 and |f| <= 6 on the grid:
# truncation h^2 |f'''| / 6 ~ 2e-11, round-off ~ eps |f| / h ~ 1e-10. Over the whole grid the
# relative error is ~1e-11 (measured <= 1e-10); 1e-8 leaves a wide margin while a wrong
# derivative (sign, factor 2, missing term) gives an error of order 1e-1..1.
H = 1e-5
TOL = 1e-8


def test_registry_lists_every_activation():
    assert sorted(ACTIVATIONS) == sorted(NAMES)
    for name, act in ACTIVATIONS.items():
        assert act.name == name


@pytest.mark.parametrize("name", NAMES)
def test_first_derivative_matches_central_differences(name):
    act = ACTIVATIONS[name]
    numerical = directional_derivative(act.f, GRID, np.ones_like(GRID), H)
    assert rel_error(act.d1(GRID), numerical) < TOL


@pytest.mark.parametrize("name", NAMES)
def test_second_derivative_matches_central_differences_of_the_first(name):
    act = ACTIVATIONS[name]
    numerical = directional_derivative(act.d1, GRID, np.ones_like(GRID), H)
    # ReLU and identity have sigma'' = 0 and constant sigma' away from 0: both sides are exactly 0
    # and rel_error(0, 0) = 0; the check still fails if d2 returned anything nonzero.
    assert rel_error(act.d2(GRID), numerical) < TOL


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus"])
def test_second_derivative_matches_second_difference_of_the_value(name):
    # (f(z+h) - 2 f(z) + f(z-h)) / h^2 with h = 1e-4: truncation h^2 |f''''| / 12 ~ 1e-9, but
    # round-off up to 4 eps |f| / h^2 ~ 5e-7 per point for |f| <= 6, against |f''| <= 0.77.
    # Measured 1.3e-7 over the grid; hence the looser 1e-5 here (a wrong sigma'' gives ~1e-1).
    act = ACTIVATIONS[name]
    h = 1e-4
    numerical = (act.f(GRID + h) - 2.0 * act.f(GRID) + act.f(GRID - h)) / h**2
    assert rel_error(act.d2(GRID), numerical) < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_return_float64_of_the_input_shape(name):
    act = ACTIVATIONS[name]
    z = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    for fn in (act.f, act.d1, act.d2):
        out = fn(z)
        assert out.shape == z.shape
        assert out.dtype == np.float64


def test_closed_form_values_at_zero():
    # sigma(0) and sigma'(0) from the definitions: tanh 0 and 1, logistic 1/2 and 1/4,
    # softplus log 2 and 1/2; ReLU uses the convention relu'(0) = 0.
    z = np.zeros(1)
    expected = {
        "tanh": (0.0, 1.0, 0.0),
        "relu": (0.0, 0.0, 0.0),
        "sigmoid": (0.5, 0.25, 0.0),
        "softplus": (np.log(2.0), 0.5, 0.25),
        "identity": (0.0, 1.0, 0.0),
    }
    for name, (f0, d10, d20) in expected.items():
        act = ACTIVATIONS[name]
        # 1e-15: one or two roundings of O(1) numbers
        np.testing.assert_allclose([act.f(z)[0], act.d1(z)[0], act.d2(z)[0]], [f0, d10, d20], atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_no_overflow_for_large_inputs(name):
    act = ACTIVATIONS[name]
    z = np.array([-1e4, -800.0, -50.0, 50.0, 800.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        values = [act.f(z), act.d1(z), act.d2(z)]
    for v in values:
        assert np.all(np.isfinite(v))


def test_saturated_limits():
    # far tails: tanh -> +-1, logistic -> 0 / 1, softplus -> 0 / z; all derivatives -> 0 (or 1 for
    # softplus' on the right). 1e-12 absolute: the exact tails are below 1e-20 at |z| = 50.
    z = np.array([-50.0, 50.0])
    np.testing.assert_allclose(ACTIVATIONS["tanh"].f(z), [-1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(ACTIVATIONS["sigmoid"].f(z), [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(ACTIVATIONS["softplus"].f(z), [0.0, 50.0], atol=1e-12)
    np.testing.assert_allclose(ACTIVATIONS["softplus"].d1(z), [0.0, 1.0], atol=1e-12)
    for name in ("tanh", "sigmoid", "softplus"):
        np.testing.assert_allclose(ACTIVATIONS[name].d2(z), 0.0, atol=1e-12)


def test_negative_control_wrong_derivative_is_detected():
    # the check above must be able to fail: a tanh' without the square (1 - tanh) is wrong
    act = ACTIVATIONS["tanh"]
    numerical = directional_derivative(act.f, GRID, np.ones_like(GRID), H)
    assert rel_error(1.0 - np.tanh(GRID), numerical) > 1e-2
