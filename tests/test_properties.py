"""Property-based checks: gradients and HVPs of random small networks on random data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinymeta import MLP, gradcheck
from tinymeta.params import flatten

pytestmark = pytest.mark.fast

SMOOTH = ["tanh", "sigmoid", "softplus", "identity"]

# Same thresholds and reasons as test_mlp_grad / test_hvp: float64 central differences of
# smooth functions are accurate to ~1e-10 relative; a wrong derivative gives ~1e-1..1.
TOL = 1e-6
SETTINGS = settings(max_examples=25, deadline=None)

finite = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)


@st.composite
def problems(draw):
    """A random (net, phi, X, y, loss): depth 1-3, widths 1-8, batch 1-6, inputs in [-3, 3]."""
    depth = draw(st.integers(1, 3))
    loss = draw(st.sampled_from(["mse", "cross_entropy"]))
    widths = draw(st.lists(st.integers(1, 8), min_size=depth + 1, max_size=depth + 1))
    if loss == "cross_entropy":
        widths[-1] = max(widths[-1], 2)  # one class would make the loss identically 0
    net = MLP(widths, draw(st.sampled_from(SMOOTH)))
    n = draw(st.integers(1, 6))
    # init's U(-1/sqrt(fan_in), +) scaled by up to 2: pre-activations stay O(1..10)
    phi = draw(st.floats(0.25, 2.0)) * net.init(draw(st.integers(0, 2**32 - 1)))
    X = draw(hnp.arrays(np.float64, (n, widths[0]), elements=finite))
    if loss == "mse":
        y = draw(hnp.arrays(np.float64, (n, widths[-1]), elements=finite))
    else:
        y = np.array(draw(st.lists(st.integers(0, widths[-1] - 1), min_size=n, max_size=n)), dtype=np.int64)
    return net, phi, X, y, loss


def unit_directions(size):
    return hnp.arrays(np.float64, size, elements=st.floats(-1.0, 1.0)).filter(
        lambda v: np.linalg.norm(v) > 1e-3
    )


# A relative error is meaningless when the true derivative is zero: both sides are then round-off
# (e.g. cross-entropy at X = 0 along the softmax shift direction, where H v = 0 exactly). The
# difference quotients carry round-off ~eps |L| / h ~ 1e-11 |L| per coordinate, so examples whose
# gradient is below 1e-3 (1 + |L|), or whose H v is below 1e-4 ||H||_F ||v||, are discarded.


@SETTINGS
@given(problems())
def test_gradient_matches_central_differences(problem):
    net, phi, X, y, loss = problem
    value, g = net.loss_and_grad(phi, X, y, loss)
    assume(np.linalg.norm(g) > 1e-3 * (1.0 + abs(value)))
    report = gradcheck.check_model(net, phi, X, y, loss, h=1e-5, threshold=TOL)
    assert report.passed, f"{net!r} {loss}: {report}"


@SETTINGS
@given(problems(), st.data())
def test_hvp_matches_differences_of_the_gradient(problem, data):
    net, phi, X, y, loss = problem
    v = data.draw(unit_directions(net.num_params))
    v = v / np.linalg.norm(v)
    assume(np.linalg.norm(net.hvp(phi, X, y, v, loss)) > 1e-4 * np.linalg.norm(net.hessian(phi, X, y, loss)))
    report = gradcheck.check_hvp(
        lambda p: net.loss_and_grad(p, X, y, loss)[1],
        lambda p, w: net.hvp(p, X, y, w, loss),
        phi,
        v,
        h=1e-5,
        threshold=TOL,
    )
    assert report.passed, f"{net!r} {loss}: {report}"


@SETTINGS
@given(problems(), st.data())
def test_hvp_bilinear_form_is_symmetric(problem, data):
    net, phi, X, y, loss = problem
    u = data.draw(unit_directions(net.num_params))
    v = data.draw(unit_directions(net.num_params))
    Hu, Hv = net.hvp(phi, X, y, u, loss), net.hvp(phi, X, y, v, loss)
    # exact in real arithmetic; the round-off of either side is ~eps sqrt(P) ||u|| ||H|| ||v||
    # (P <= 216 here), so 1e-12 on that scale. ||H|| and not ||H v||: H v may be exactly 0.
    scale = np.linalg.norm(u) * np.linalg.norm(net.hessian(phi, X, y, loss)) * np.linalg.norm(v)
    assert abs(u @ Hv - v @ Hu) <= 1e-12 * scale


@SETTINGS
@given(st.lists(st.integers(1, 8), min_size=2, max_size=4), st.integers(0, 2**32 - 1))
def test_init_and_flatten_roundtrip(widths, seed):
    net = MLP(widths)
    phi = net.init(seed)
    np.testing.assert_array_equal(phi, net.init(np.random.default_rng(seed)))
    np.testing.assert_array_equal(flatten(net.unflatten(phi)), phi)


@SETTINGS
@given(hnp.arrays(np.float64, 5, elements=finite), hnp.arrays(np.float64, 5, elements=finite))
def test_rel_error_is_a_symmetric_number_in_0_1(a, b):
    # triangle inequality: ||a - b|| <= ||a|| + ||b||, so the relative error never exceeds 1
    e = gradcheck.rel_error(a, b)
    assert 0.0 <= e <= 1.0
    assert e == gradcheck.rel_error(b, a)
