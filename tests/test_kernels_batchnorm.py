"""The Numba kernels on MLPs with batch norm against the NumPy reference: same numbers, same errors.

Tolerance: relative 1e-12 with an absolute floor of 1e-12 * max|reference|, as in
test_kernels_parity.py, for the same reason (BLAS sums its products in another order than NumPy; the
column means are summed in the reference's order, the R-forward uses the VJP's formula, equal in exact
arithmetic). The hidden biases' gradients, which cancel to rounding noise against the mean
(test_batchnorm.py), are covered by the floor.

The inner step is alpha = 0.01, not the 0.1 of test_kernels_parity.py. With n = 2 rows a normalised unit
is a soft sign of width sqrt(EPS) ~ 0.03, gradients reach hundreds, and k = 3 inner steps of 0.1 make the
meta-gradient chaotic in phi: the reference itself then moved by up to 9e-12 (relative to its largest
entry) when phi moved by one ulp, so no implementation could meet 1e-12 there. With alpha = 0.01, over
9,900 random cases of this file's kind (30 seeds; widths 2-8, every activation, both losses, k = 0..3),
the kernel-reference difference had median 1.7e-16 and 99.9th percentile 4.3e-14; 2 cases exceeded
1e-12 (worst 7.3e-12), each one where a hidden unit's batch variance nears 0 after the inner steps and
the reference's own response to a one-ulp change of phi was as large (1.4e-11). The seeds below are
fixed. A width-1 bottleneck (as in test_batchnorm.py) is checked at the layer level, without the inner
loop's amplification.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from test_kernels_parity import ACTIVATIONS, LOSSES, assert_close

from tinymeta import MLP, Adam, kernels
from tinymeta.batch import fomaml_batch, maml_batch, reptile_adam_batch, reptile_batch
from tinymeta.kernels import layers, workspace
from tinymeta.kernels import losses as klosses
from tinymeta.reptile import inner_batch_indices
from tinymeta.tasks import TaskBatch

PAIRS = [(kernels.maml_batch, maml_batch), (kernels.fomaml_batch, fomaml_batch),
         (kernels.reptile_batch, reptile_batch)]  # fmt: skip
ALPHA = 0.01  # see the module docstring


def bn_problem(seed, activation, loss, B, K, Kq, sizes=None):
    """A random batch-norm network (1-3 hidden layers, widths 2-8), phi with nonzero shifts (zero shifts
    would hide a misplaced beta), and a meta-batch of B tasks with K support and Kq query rows."""
    rng = np.random.default_rng(seed)
    if sizes is None:
        sizes = [int(s) for s in rng.integers(2, 9, rng.integers(3, 6))]
        sizes[-1] = max(sizes[-1], 2) if loss == "cross_entropy" else sizes[-1]
    net = MLP(sizes, activation, batch_norm=True)
    phi = net.init(rng)
    for beta in net.shifts(phi):
        beta[:] = 0.5 * rng.standard_normal(beta.shape)
    d0, dL = sizes[0], sizes[-1]

    def targets(n):
        return rng.standard_normal((B, n, dL)) if loss == "mse" else rng.integers(0, dL, (B, n))

    xs, xq = rng.standard_normal((B, K, d0)), rng.standard_normal((B, Kq, d0))
    return net, phi, TaskBatch(xs, targets(K), xq, targets(Kq)), rng


@pytest.mark.fast
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
def test_meta_batch_matches_reference(activation, loss):
    """MAML, FOMAML, Reptile (full and mini-batches), k = 0..3, meta-batches of 1 and 3, 2 to 6 rows."""
    seed = 100 * ACTIVATIONS.index(activation) + 10 * LOSSES.index(loss)
    for B, K, Kq in ((1, 2, 3), (3, 5, 2), (2, 6, 4)):
        net, phi, batch, rng = bn_problem(seed + K, activation, loss, B, K, Kq)
        for k in range(4):
            for fast, ref in PAIRS:
                value, g = fast(net, phi, batch, ALPHA, k, loss)
                ref_value, ref_g = ref(net, phi, batch, ALPHA, k, loss)
                assert isinstance(value, float) and g.shape == (net.num_params,)
                assert_close(value, ref_value)
                assert_close(g, ref_g)
            if k:  # Reptile on mini-batches of at least 2 rows
                idx = inner_batch_indices(rng, B, K, 2, k)
                got = kernels.reptile_batch(net, phi, batch, ALPHA, k, loss, idx)
                for a, b in zip(got, reptile_batch(net, phi, batch, ALPHA, k, loss, idx), strict=True):
                    assert_close(a, b)


@pytest.mark.fast
@pytest.mark.parametrize("loss", LOSSES)
def test_reptile_adam_matches_reference(loss):
    for activation in ("tanh", "relu"):
        net, phi, batch, rng = bn_problem(3 + LOSSES.index(loss), activation, loss, 3, 6, 2)
        state = {"m": 0.01 * rng.standard_normal(net.num_params), "v": 0.01 * rng.random(net.num_params),
                 "t": 4}  # fmt: skip
        for k in range(4):
            for idx in (None, inner_batch_indices(rng, 3, 6, 3, k)):
                got = kernels.reptile_adam_batch(net, phi, batch, 0.01, k, state, loss, 0.0, idx)
                ref = reptile_adam_batch(net, phi, batch, 0.01, k, state, loss, 0.0, idx)
                for a, b in ((got[0], ref[0]), (got[1], ref[1]), (got[2]["m"], ref[2]["m"]),
                             (got[2]["v"], ref[2]["v"])):  # fmt: skip
                    assert_close(a, b)


@pytest.mark.fast
@pytest.mark.parametrize("activation", ["tanh", "softplus", "relu"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("sizes", [[3, 6, 4, 3], [4, 1, 3, 2]], ids=str)
def test_layer_kernels_match_mlp(activation, loss, n, sizes):
    """forward + loss + backward = MLP.loss_and_grad and R-passes = MLP.hvp, through the batch statistics."""
    net, phi, batch, rng = bn_problem(7 + n, activation, loss, 1, n, 2, sizes=sizes)
    X, y, v = batch.xs[0], batch.ys[0], rng.standard_normal(net.num_params)
    sizes, L = np.array(net.sizes), len(net.sizes) - 1
    off, _, size = workspace.layout(net.sizes, [n], 1, 0, paired=1, bn=True)
    buf, poff = np.zeros(size), workspace.param_offsets(net.sizes, bn=True)
    code, lcode = kernels.ACTIVATION_CODES[activation], kernels.LOSS_CODES[loss]
    yf, yi = (y, np.zeros(1, np.int64)) if loss == "mse" else (np.zeros((1, 1)), y)
    scratch, cols = np.zeros(n * max(sizes)), np.zeros(4 * max(sizes))

    def view(t, role):  # the (n, d_L) buffer of the last layer
        o = off[t][role, L - 1]
        return buf[o : o + n * sizes[L]].reshape(n, sizes[L])

    layers.forward(code, phi, sizes, poff, X, buf, off[0], n, True)
    assert_close(view(0, layers.ACT), net.forward(phi, X))
    g = np.empty(net.num_params)
    value = klosses.value_and_grad(lcode, view(0, layers.ACT), yf, yi, view(0, layers.DELTA))
    layers.backward(phi, sizes, poff, X, buf, off[0], n, g, True, cols)
    ref_value, ref_g = net.loss_and_grad(phi, X, y, loss)
    assert_close(value, ref_value)
    assert_close(g, ref_g)
    layers.r_forward(phi, v, sizes, poff, X, buf, off[0], off[1], n, scratch, True, cols)
    klosses.hvp(lcode, view(0, layers.ACT), view(1, layers.DACT), view(1, layers.DELTA))
    hv = np.empty(net.num_params)
    layers.r_backward(code, phi, v, sizes, poff, X, buf, off[0], off[1], n, hv, scratch, True, cols)
    assert_close(hv, net.hvp(phi, X, y, v, loss))


@pytest.mark.fast
def test_parity_has_teeth():
    """Negative control: the same weights without batch norm give a gradient the tolerance rejects."""
    net, phi, batch, _ = bn_problem(1, "tanh", "mse", 2, 4, 3, sizes=[2, 5, 1])
    plain = MLP(net.sizes, "tanh")
    g = kernels.maml_batch(net, phi, batch, 0.1, 2)[1]
    g_plain = maml_batch(plain, phi[: plain.num_params], batch, 0.1, 2)[1]
    with pytest.raises(AssertionError):
        assert_close(g[: plain.num_params], g_plain)


@pytest.mark.fast
def test_result_does_not_depend_on_thread_count():
    net, phi, batch, _ = bn_problem(3, "tanh", "mse", 5, 4, 3, sizes=[1, 8, 8, 1])
    before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}) * 2:
            numba.set_num_threads(threads)
            results.append([fn(net, phi, batch, 0.05, 2)[1] for fn, _ in PAIRS])
    finally:
        numba.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)  # bit for bit


@pytest.mark.fast
@pytest.mark.parametrize("K,Kq,m,raising", [(1, 3, None, "all"), (3, 1, None, "maml"), (4, 3, 1, "reptile")])
def test_one_row_raises_like_reference(K, Kq, m, raising):
    """One row has variance 0: the reference refuses it, and so do the kernels, with its message
    (a one-row support set for every algorithm, a one-row query set for MAML, a one-row mini-batch)."""
    net, phi, batch, rng = bn_problem(5, "tanh", "cross_entropy", 2, K, Kq, sizes=[2, 4, 3])
    idx = None if m is None else inner_batch_indices(rng, 2, K, m, 2)
    state, ce = Adam(0.01).init(net.num_params), "cross_entropy"
    adam = (kernels.reptile_adam_batch, reptile_adam_batch, (state, ce, 0.0, idx))
    calls = {"maml": [(kernels.maml_batch, maml_batch, (ce,)), (kernels.fomaml_batch, fomaml_batch, (ce,))],
             "reptile": [(kernels.reptile_batch, reptile_batch, (ce, idx)), adam]}  # fmt: skip
    for fast, ref, extra in calls["maml"] + calls["reptile"] if raising == "all" else calls[raising]:
        args = (net, phi, batch, 0.1, 2, *extra)
        with pytest.raises(ValueError) as expected:
            ref(*args)
        with pytest.raises(ValueError) as got:
            fast(*args)
        assert str(got.value) == str(expected.value) and "row" in str(got.value)


def test_omniglot_sized_network():
    """784-256-128-64-64-5 with batch norm, 5-way 1-shot (5 support rows) and 2 query images per class."""
    net, phi, batch, _ = bn_problem(9, "relu", "cross_entropy", 2, 5, 10, sizes=[784, 256, 128, 64, 64, 5])
    for fast, ref in PAIRS:
        value, g = fast(net, phi, batch, 0.4, 1, "cross_entropy")
        ref_value, ref_g = ref(net, phi, batch, 0.4, 1, "cross_entropy")
        assert_close(value, ref_value)
        assert_close(g, ref_g)
