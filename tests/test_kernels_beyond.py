"""The Numba twins of Meta-SGD, ANIL and iMAML's practical variant against the NumPy reference.

Tolerance RTOL = 1e-12 as in test_kernels_parity.py (BLAS sums in another order; measured worst
2e-15 for Meta-SGD and ANIL). iMAML's CG iterations amplify those differences by up to the
condition number of I + H_A/lam per iteration, and without bound when that matrix is indefinite
(lam <= -lambda_min(H_A)), which iMAML excludes: measured 2e-16 on positive definite systems, but
2e-12 at 5 iterations on indefinite ones. So its cases are positive definite, and the test says so.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from test_kernels_parity import assert_close, problem

from tinymeta import MLP, Sine, kernels
from tinymeta.anil import anil_batch
from tinymeta.backends import batch_functions
from tinymeta.imaml_approx import CG_RTOL, imaml_approx_batch, imaml_gd_trajectory
from tinymeta.inner import DivergenceError
from tinymeta.kernels import imaml as kimaml
from tinymeta.metasgd import metasgd_batch
from tinymeta.spectrum import lambda_min
from tinymeta.tasks import TaskBatch

pytestmark = pytest.mark.fast


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_metasgd_and_anil_match_the_reference(activation, loss):
    for seed, k in [(1, 0), (2, 1), (3, 3)]:
        net, phi, batch, rng = problem(seed, activation, loss, B=5)
        alphas = rng.uniform(-0.05, 0.2, phi.size)  # Meta-SGD's steps may have either sign
        got = kernels.metasgd_batch(net, phi, alphas, batch, k, loss)
        for g, r in zip(got, metasgd_batch(net, phi, alphas, batch, k, loss), strict=True):
            assert_close(g, r)
        assert_close(kernels.anil_batch(net, phi, batch, 0.3, k, loss)[1], anil_batch(net, phi, batch, 0.3, k,
                                                                                      loss)[1])  # fmt: skip


def test_parity_check_has_teeth():
    net, phi, batch, rng = problem(4, "tanh", "mse", B=3)
    _, g, _ = kernels.metasgd_batch(net, phi, np.full(phi.size, 0.1), batch, 2)
    _, ref, _ = metasgd_batch(net, phi, np.full(phi.size, 0.1 * (1 + 1e-9)), batch, 2)  # a relative 1e-9 off
    with pytest.raises(AssertionError):
        assert_close(g, ref)


def sine_problem(activation, seed=0, B=6):
    net = MLP([1, 40, 40, 1], activation)
    return net, net.init(seed), TaskBatch(*Sine().sample_arrays(np.random.default_rng(seed + 1), B)[2:])


@pytest.mark.parametrize(("k", "n"), [(0, 1), (2, 3), (5, 5)])
def test_imaml_practical_variant_matches_the_reference_on_positive_definite_systems(k, n):
    net, phi, batch = sine_problem("tanh")
    lam = 40.0
    for i in range(batch.num_tasks):  # the precondition of iMAML (and of this tolerance)
        t = batch.task(i)
        phi_k = imaml_gd_trajectory(net, phi, t.x_support, t.y_support, lam, 0.01, k)[-1]
        assert 1 + lambda_min(net, phi_k, t.x_support, t.y_support) / lam > 0
    got = kernels.imaml_approx_batch(net, phi, batch, lam, 0.01, k, n)
    ref = imaml_approx_batch(net, phi, batch, lam, 0.01, k, n)
    assert got[0] == pytest.approx(ref[0], rel=1e-12) and kimaml.CG_RTOL == CG_RTOL
    assert_close(got[1], ref[1])


def test_imaml_one_cg_iteration_matches_on_relu():
    net, phi, batch = sine_problem("relu")  # indefinite systems here; one iteration amplifies nothing
    assert_close(kernels.imaml_approx_batch(net, phi, batch, 2.0, 0.01, 3, 1)[1],
                 imaml_approx_batch(net, phi, batch, 2.0, 0.01, 3, 1)[1])  # fmt: skip


def test_results_do_not_depend_on_the_thread_count():
    net, phi, batch = sine_problem("relu", B=7)
    alphas = np.full(phi.size, 0.02)
    threads = numba.get_num_threads()
    runs = []
    for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
        numba.set_num_threads(n)
        try:
            runs.append([kernels.metasgd_batch(net, phi, alphas, batch, 2)[1],
                         kernels.imaml_approx_batch(net, phi, batch, 2.0, 0.01, 2, 3)[1]])  # fmt: skip
        finally:
            numba.set_num_threads(threads)
    for a, b in zip(runs[0], runs[-1], strict=True):
        assert a.tobytes() == b.tobytes()


def _raises_like_reference(twin, reference, *args):
    with pytest.raises(Exception) as expected, np.errstate(all="ignore"):
        reference(*args)
    with pytest.raises(expected.type) as got, np.errstate(all="ignore"):
        twin(*args)
    assert str(got.value) == str(expected.value)


def test_errors_are_the_references():
    net, phi, batch = sine_problem("relu", B=3)
    bad_alphas = np.full(phi.size, 0.01)
    bad_alphas[5] = np.nan
    _raises_like_reference(kernels.metasgd_batch, metasgd_batch, net, phi, bad_alphas, batch, 1)
    _raises_like_reference(kernels.metasgd_batch, metasgd_batch, net, phi, np.full(phi.size, 1e6), batch, 3)
    _raises_like_reference(kernels.anil_batch, anil_batch, net, phi, batch, -0.1, 1)
    _raises_like_reference(kernels.imaml_approx_batch, imaml_approx_batch, net, phi, batch, 1e6, 1.0, 40, 2)
    _raises_like_reference(kernels.imaml_approx_batch, imaml_approx_batch, net, phi, batch, 2.0, 0.01, 2, 0)
    with pytest.raises(DivergenceError), np.errstate(all="ignore"):
        kernels.metasgd_batch(net, phi, np.full(phi.size, 1e6), batch, 3)


def test_the_numba_backend_uses_the_twins():
    functions = batch_functions("numba")
    assert functions["metasgd"] is kernels.metasgd_batch and functions["anil"] is kernels.anil_batch
    assert functions["imaml_approx"] is kernels.imaml_approx_batch


def test_batch_norm_nets_match_too():
    net = MLP([1, 12, 12, 1], "tanh", batch_norm=True)  # hidden layers normalised over each batch (K >= 2)
    phi, batch = net.init(0), TaskBatch(*Sine().sample_arrays(np.random.default_rng(1), 5)[2:])
    alphas = np.random.default_rng(2).uniform(0.0, 0.05, phi.size)
    got, ref = kernels.metasgd_batch(net, phi, alphas, batch, 2), metasgd_batch(net, phi, alphas, batch, 2)
    for g, r in zip(got, ref, strict=True):
        assert_close(g, r)
    assert_close(kernels.anil_batch(net, phi, batch, 0.1, 2)[1], anil_batch(net, phi, batch, 0.1, 2)[1])
