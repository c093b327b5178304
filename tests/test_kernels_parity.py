"""The Numba kernels against the NumPy reference: same numbers, same errors, for any thread count.

Tolerance: the kernels evaluate the same float64 equations as the reference, but BLAS
sums each product in another order than NumPy's matmul, so an entry differs by a few
ulps of the terms that were summed into it: relative 1e-12, with an absolute floor of
1e-12 * max|reference| for entries that cancel to near zero (their own relative error
says nothing). Measured worst case over these tests: about 2e-15.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from tinymeta import MLP, Sine, kernels
from tinymeta.batch import fomaml_batch, maml_batch, reptile_batch
from tinymeta.inner import DivergenceError
from tinymeta.kernels import layers, workspace
from tinymeta.kernels import losses as klosses
from tinymeta.reptile import inner_batch_indices
from tinymeta.tasks import TaskBatch

RTOL = 1e-12
ACTIVATIONS = ("tanh", "relu", "sigmoid", "softplus", "identity")
LOSSES = ("mse", "cross_entropy")
PAIRS = [(kernels.maml_batch, maml_batch), (kernels.fomaml_batch, fomaml_batch),
         (kernels.reptile_batch, reptile_batch)]  # fmt: skip


def assert_close(got, ref, rtol=RTOL):
    ref = np.asarray(ref, dtype=float)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * float(np.max(np.abs(ref), initial=0.0)))


def problem(seed, activation, loss, B, K=4, Kq=3, sizes=None):
    """A random network (1-3 layers, widths 1-12), its parameters and a meta-batch of B tasks."""
    rng = np.random.default_rng(seed)
    if sizes is None:
        sizes = [int(s) for s in rng.integers(1, 13, rng.integers(2, 5))]
        sizes[-1] = max(sizes[-1], 2) if loss == "cross_entropy" else sizes[-1]
    net = MLP(sizes, activation)
    d0, dL = sizes[0], sizes[-1]

    def targets(n):
        return rng.standard_normal((B, n, dL)) if loss == "mse" else rng.integers(0, dL, (B, n))

    xs, ys, xq, yq = (
        rng.standard_normal((B, K, d0)),
        targets(K),
        rng.standard_normal((B, Kq, d0)),
        targets(Kq),
    )
    return net, net.init(rng), TaskBatch(xs, ys, xq, yq), rng


@pytest.mark.fast
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
def test_meta_batch_matches_reference(activation, loss):
    for B in (1, 3):
        net, phi, batch, rng = problem(100 * ACTIVATIONS.index(activation) + 10 * LOSSES.index(loss) + B,
                                       activation, loss, B)  # fmt: skip
        for k in range(4):
            for fast, ref in PAIRS:
                value, g = fast(net, phi, batch, 0.1, k, loss)
                ref_value, ref_g = ref(net, phi, batch, 0.1, k, loss)
                assert isinstance(value, float) and g.shape == (net.num_params,)
                assert_close(value, ref_value)
                assert_close(g, ref_g)
            if k:  # Reptile on mini-batches of the support set
                idx = inner_batch_indices(rng, B, batch.xs.shape[1], 3, k)
                assert_close(kernels.reptile_batch(net, phi, batch, 0.1, k, loss, idx)[1],
                             reptile_batch(net, phi, batch, 0.1, k, loss, idx)[1])  # fmt: skip
                assert_close(kernels.reptile_batch(net, phi, batch, 0.1, k, loss, idx)[0],
                             reptile_batch(net, phi, batch, 0.1, k, loss, idx)[0])  # fmt: skip


@pytest.mark.fast
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
def test_layer_kernels_match_mlp(activation, loss):
    """forward + loss + backward = MLP.loss_and_grad; R-forward + loss HVP + R-backward = MLP.hvp."""
    net, phi, batch, rng = problem(7, activation, loss, 1, K=5)
    X, y, v = batch.xs[0], batch.ys[0], rng.standard_normal(net.num_params)
    sizes, n, L = np.array(net.sizes), X.shape[0], len(net.sizes) - 1
    off, xoff, size = workspace.layout(net.sizes, [n], 1, 0, paired=1)  # off[1]: the R-set of off[0]
    buf, poff = np.zeros(size), workspace.param_offsets(net.sizes)
    code, lcode = kernels.ACTIVATION_CODES[activation], kernels.LOSS_CODES[loss]
    yf, yi = (y, np.zeros(1, np.int64)) if loss == "mse" else (np.zeros((1, 1)), y)

    def view(t, role):  # the (n, d_L) buffer of the last layer
        o = off[t][role, L - 1]
        return buf[o : o + n * sizes[L]].reshape(n, sizes[L])

    layers.forward(code, phi, sizes, poff, X, buf, off[0], n, False)
    out = view(0, layers.ACT)
    assert_close(out, net.forward(phi, X))
    g = np.empty(net.num_params)
    value = klosses.value_and_grad(lcode, out, yf, yi, view(0, layers.DELTA))
    layers.backward(phi, sizes, poff, X, buf, off[0], n, g, False, np.zeros(0))
    ref_value, ref_g = net.loss_and_grad(phi, X, y, loss)
    assert_close(value, ref_value)
    assert_close(g, ref_g)
    scratch, no_cols = np.zeros(n * max(sizes)), np.zeros(0)  # no batch norm: no column means
    layers.r_forward(phi, v, sizes, poff, X, buf, off[0], off[1], n, scratch, False, no_cols)
    klosses.hvp(lcode, out, view(1, layers.DACT), view(1, layers.DELTA))
    hv = np.empty(net.num_params)
    layers.r_backward(code, phi, v, sizes, poff, X, buf, off[0], off[1], n, hv, scratch, False, no_cols)
    assert_close(hv, net.hvp(phi, X, y, v, loss))


@pytest.mark.fast
def test_parity_check_has_teeth():
    """Negative controls: the tolerance rejects FOMAML for MAML and a 1e-9 relative perturbation."""
    net, phi, batch, _ = problem(1, "tanh", "mse", 3, sizes=[1, 6, 1])
    g = kernels.maml_batch(net, phi, batch, 0.1, 2)[1]
    for wrong in (
        fomaml_batch(net, phi, batch, 0.1, 2)[1],
        maml_batch(net, phi, batch, 0.1, 2)[1] * (1 + 1e-9),
    ):
        with pytest.raises(AssertionError):
            assert_close(g, wrong)


@pytest.mark.fast
def test_result_does_not_depend_on_thread_count():
    net, phi, batch, _ = problem(3, "tanh", "mse", 5, sizes=[1, 8, 8, 1])
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


def _corruptions():
    """(name, algos, change) where change(net, phi, batch, alpha, k, loss) returns the bad arguments."""

    def nan_at(field, task):
        def f(net, phi, b, alpha, k, loss):
            arr = getattr(b, field).astype(float)
            arr[(task,) + (0,) * (arr.ndim - 1)] = np.nan
            return net, phi, b._replace(**{field: arr}), alpha, k, loss

        return f

    def replace(**kw):
        def f(net, phi, b, alpha, k, loss):
            args = dict(net=net, phi=phi, batch=b, alpha=alpha, k=k, loss=loss)
            args.update({n: (v(args) if callable(v) else v) for n, v in kw.items()})
            return args["net"], args["phi"], args["batch"], args["alpha"], args["k"], args["loss"]

        return f

    all_, meta = ("maml", "fomaml", "reptile"), ("maml", "fomaml")
    return [
        ("phi shape", all_, replace(phi=lambda a: a["phi"][:-1])),
        ("phi nan", all_, replace(phi=lambda a: np.full_like(a["phi"], np.nan))),
        ("phi strings", all_, replace(phi="abc")),
        ("xs nan in task 1", all_, nan_at("xs", 1)),
        ("ys nan in task 2", all_, nan_at("ys", 2)),
        ("xq nan in task 0", meta, nan_at("xq", 0)),
        ("yq nan in task 2", meta, nan_at("yq", 2)),
        ("xs width", all_, replace(batch=lambda a: a["batch"]._replace(xs=a["batch"].xs[..., :1]))),
        ("xs bool", all_, replace(batch=lambda a: a["batch"]._replace(xs=a["batch"].xs > 0))),
        ("yq rows", meta, replace(batch=lambda a: a["batch"]._replace(yq=a["batch"].yq[:, :-1]))),
        ("loss name", all_, replace(loss="mae")),
        ("loss unhashable", all_, replace(loss=["mse"])),
        ("alpha zero", all_, replace(alpha=0.0)),
        ("alpha string", all_, replace(alpha="0.1")),
        ("k negative", all_, replace(k=-1)),
        ("k float", all_, replace(k=1.0)),
        ("alpha inf and xs nan", meta, lambda *a: replace(alpha=np.inf)(*nan_at("xs", 0)(*a))),
        (
            "phi shape and loss name",
            all_,
            lambda *a: replace(loss="mae")(*replace(phi=lambda a: a["phi"][1:])(*a)),
        ),
        ("k negative and yq nan", meta, lambda *a: replace(k=-2)(*nan_at("yq", 1)(*a))),
    ]


@pytest.mark.fast
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name,algos,change", _corruptions(), ids=[c[0] for c in _corruptions()])
def test_bad_input_raises_like_reference(name, algos, change, loss):
    net, phi, batch, _ = problem(11, "tanh", loss, 3, sizes=[2, 5, 3])
    for algo in algos:
        fast, ref = dict(zip(("maml", "fomaml", "reptile"), PAIRS, strict=True))[algo]
        args = change(net, phi, batch, 0.1, 2, loss)
        with pytest.raises(Exception) as expected:
            ref(*args)
        with pytest.raises(type(expected.value)) as got:
            fast(*args)
        assert str(got.value) == str(expected.value), (algo, name)


@pytest.mark.fast
def test_labels_out_of_range_and_divergence_raise_like_reference():
    net, phi, batch, _ = problem(5, "tanh", "cross_entropy", 3, sizes=[2, 4, 3])
    bad = batch.ys.copy()
    bad[1, 2] = 3
    mse_net, mse_phi, mse_batch, _ = problem(5, "identity", "mse", 3, sizes=[2, 4, 3])
    cases = [
        (net, phi, batch._replace(ys=bad), 0.1, "cross_entropy"),
        (net, phi, batch._replace(ys=batch.ys.astype(float)), 0.1, "cross_entropy"),
        (mse_net, mse_phi, mse_batch, 1e300, "mse"),
    ]  # the support loss overflows at inner step 1
    for args in cases:
        for fast, ref in PAIRS[:2]:
            with pytest.raises((ValueError, TypeError, DivergenceError)) as expected, \
                    np.errstate(over="ignore", invalid="ignore"):  # fmt: skip
                ref(*args[:4], 3, args[4])
            with pytest.raises(type(expected.value)) as got, np.errstate(over="ignore", invalid="ignore"):
                fast(*args[:4], 3, args[4])  # (pure-Python runs under NUMBA_DISABLE_JIT=1 warn too)
            assert str(got.value) == str(expected.value)
    assert "inner step 1" in str(got.value)


@pytest.mark.fast
def test_unusual_but_valid_inputs_are_accepted():
    """float32, int, Fortran-ordered and list inputs: converted, same results as the reference."""
    net, phi, batch, _ = problem(2, "sigmoid", "mse", 3, sizes=[3, 4, 2])
    variants = [batch._replace(xs=batch.xs.astype(np.float32)),
                batch._replace(ys=np.asfortranarray(batch.ys)),
                batch._replace(xq=np.round(batch.xq * 3).astype(np.int32)),
                batch._replace(yq=list(batch.yq))]  # fmt: skip
    for b in variants:
        for fast, ref in PAIRS:
            assert_close(fast(net, list(phi), b, 0.1, 2)[1], ref(net, phi, b, 0.1, 2)[1])
    assert_close(kernels.maml_batch(net, phi, batch, 1, np.int64(2))[1], maml_batch(net, phi, batch, 1, 2)[1])


@pytest.mark.fast
def test_inner_indices_are_checked():
    net, phi, batch, _ = problem(4, "relu", "mse", 2, K=4)
    good = np.zeros((2, 3, 2), dtype=np.int64)
    cases = [(good[:, :2], ValueError, r"expected \(2, 3, m\)"), (good + 4, ValueError, r"\[0, 4\)"),
             (good - 1, ValueError, r"\[0, 4\)"), (good * 1.0, TypeError, "integer row indices")]  # fmt: skip
    for bad, err, msg in cases:
        with pytest.raises(err, match=msg):
            kernels.reptile_batch(net, phi, batch, 0.1, 3, "mse", bad)
    assert_close(
        kernels.reptile_batch(net, phi, batch, 0.1, 0, "mse", good[:, :0])[1], np.zeros(net.num_params)
    )


def test_omniglot_sized_network():
    """784-256-128-64-64-5, 5-way 1-shot with 2 query images per class, cross-entropy, k = 2."""
    net, phi, batch, _ = problem(9, "relu", "cross_entropy", 2, K=5, Kq=10, sizes=[784, 256, 128, 64, 64, 5])
    for fast, ref in PAIRS:
        value, g = fast(net, phi, batch, 0.4, 2, "cross_entropy")
        ref_value, ref_g = ref(net, phi, batch, 0.4, 2, "cross_entropy")
        assert_close(value, ref_value)
        assert_close(g, ref_g)


@pytest.mark.parametrize("algo,extra", [("maml", {}), ("fomaml", {}), ("joint", {}),
                                        ("reptile", {"inner_batch_size": 5})])  # fmt: skip
def test_meta_training_agrees_between_backends(algo, extra):
    """A few whole outer iterations (sampling, kernels, Adam / interpolation) give the same phi.

    Tolerance 1e-10 relative to max|phi|, looser than per call: Adam divides by sqrt(v) + 1e-8,
    which magnifies a gradient entry's ulp-level difference up to lr/1e-8 = 1e5 times.
    """
    from tinymeta import meta_train

    net = MLP([1, 16, 16, 1], "tanh")
    runs = [meta_train(net, Sine(), algo, 4, alpha=0.01, k=0 if algo == "joint" else 2, backend=backend,
                       progress=False, **extra) for backend in ("numpy", "numba")]  # fmt: skip
    assert_close(runs[1].phi, runs[0].phi, rtol=1e-10)
    assert_close(runs[1].history["meta_loss"], runs[0].history["meta_loss"], rtol=1e-10)
    assert not np.array_equal(runs[0].phi, net.init(0))  # training moved phi: the comparison has teeth
