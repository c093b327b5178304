"""Batch norm in the MLP: exact gradients and HVPs through the batch statistics, the layout, and controls.

Thresholds, on gradcheck.rel_error of whole vectors:

* 1e-6 against central differences, with h = 1e-6 (per coordinate, along directions, and for
  differences of the gradient). Not the h = 1e-5 of the other gradient tests: with n = 2 rows a
  hidden unit's normalised value is c / sqrt(c^2 + EPS) with c = (z_1 - z_2) / 2, a soft sign of
  width sqrt(EPS) ~ 0.03 whose third derivative reaches ~EPS^(-3/2) ~ 3e4. The O(h^2 f''') truncation
  then measured up to 1.8e-6 at h = 1e-5 on 160 random n = 2 networks (up to 1e-5 over 40 two-row
  batches in tutorial 9), but 100 times less at h = 1e-6: worst 1.8e-8 on this file's checks (1e-7
  in the tutorial's search), while the O(eps_mach |L| / h) round-off is still ~2e-10 (the median
  measured error). A wrong rule lands at 8e-2..1 (the negative controls below).
* ReLU uses the same threshold: _setup redraws X until every hidden |ztilde| > MARGIN = 1e-3, while
  a step h moves ztilde by at most ~h / sqrt(EPS) ~ 3e-5, so no step crosses a kink.
* ROUNDOFF = 1e-12 for identities that hold exactly in real arithmetic (symmetry, zero sums).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinymeta import MLP, Task, batchnorm, fomaml_grad, gradcheck, maml_grad, meta_objective
from tinymeta.activations import ACTIVATIONS
from tinymeta.losses import LOSSES
from tinymeta.params import flatten, num_params, unflatten

pytestmark = pytest.mark.fast

H = 1e-6
TOL = 1e-6
ROUNDOFF = 1e-12
MARGIN = 1e-3
BAD = 1e-3  # a negative control must be off by at least this much: far above TOL, not a near miss

ACTS = ["tanh", "softplus", "relu", "sigmoid", "identity"]
LOSS_NAMES = ["mse", "cross_entropy"]
# depth 1..2 hidden layers, widths 1..8, a width-1 bottleneck
SIZES = [[3, 5, 3], [2, 4, 3, 3], [4, 1, 3, 2], [3, 8, 6, 3]]


def _hidden_ztilde(net, phi, X):
    """ztilde_l = zhat_l + beta_l of every hidden layer, from batchnorm's rules directly."""
    a, out = X, []
    for (W, b), beta in zip(net.unflatten(phi)[:-1], net.shifts(phi), strict=True):
        z = a @ W + b
        out.append(batchnorm.normalise(z, *batchnorm.statistics(z))[0] + beta)
        a = net.sigma.f(out[-1])
    return out


def _setup(sizes, activation, loss, n, seed=0):
    """A batch-norm net, phi with random shifts (beta = 0 at init would hide a wrong shift), a batch."""
    net = MLP(sizes, activation, batch_norm=True)
    rng = np.random.default_rng(seed)
    phi = net.init(rng)
    for beta in net.shifts(phi):
        beta[:] = 0.5 * rng.standard_normal(beta.shape)
    for _ in range(1000):  # ReLU: redraw the whole batch (the statistics couple the rows) until kink-free
        X = rng.standard_normal((n, sizes[0]))
        if activation != "relu" or min(np.abs(z).min() for z in _hidden_ztilde(net, phi, X)) > MARGIN:
            break
    else:
        raise RuntimeError("no kink-free batch")
    y = rng.standard_normal((n, sizes[-1])) if loss == "mse" else rng.integers(0, sizes[-1], n)
    return net, phi, X, y, rng


def _unit(rng, size):
    v = rng.standard_normal(size)
    return v / np.linalg.norm(v)


def _grad_report(net, phi, X, y, loss):
    return gradcheck.check_grad(
        lambda p: net.loss(p, X, y, loss),
        lambda p: net.loss_and_grad(p, X, y, loss)[1],
        phi,
        h=H,
        threshold=TOL,
    )


def _hvp_report(net, phi, X, y, loss, v):
    return gradcheck.check_hvp(
        lambda p: net.loss_and_grad(p, X, y, loss)[1],
        lambda p, w: net.hvp(p, X, y, w, loss),
        phi, v, h=H, threshold=TOL,
    )  # fmt: skip


# ---------------------------------------------------------------- gradient and HVP vs differences
@pytest.mark.parametrize("n", [2, 3, 7])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("sizes", SIZES, ids=str)
def test_grad_matches_central_differences(sizes, activation, loss, n):
    net, phi, X, y, _ = _setup(sizes, activation, loss, n)
    report = _grad_report(net, phi, X, y, loss)
    assert report.passed, f"{net!r} {loss} n={n}: {report}"


@pytest.mark.parametrize("n", [2, 3, 7])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("sizes", SIZES, ids=str)
def test_hvp_matches_differences_of_the_gradient(sizes, activation, loss, n):
    net, phi, X, y, rng = _setup(sizes, activation, loss, n)
    for _ in range(3):
        report = _hvp_report(net, phi, X, y, loss, _unit(rng, net.num_params))
        assert report.passed, f"{net!r} {loss} n={n}: {report}"


@pytest.mark.parametrize("n", [2, 25])
@pytest.mark.parametrize("activation", ["tanh", "softplus", "relu"])
@pytest.mark.parametrize("sizes", [[1, 40, 40, 1], [10, 40, 40, 5]], ids=str)
def test_grad_and_hvp_along_directions_on_bigger_nets(sizes, activation, n):
    for loss in LOSS_NAMES if sizes[-1] > 1 else ["mse"]:  # one output: cross-entropy is identically 0
        net, phi, X, y, rng = _setup(sizes, activation, loss, n, seed=1)
        report = gradcheck.check_directional(
            lambda p, net=net, X=X, y=y, loss=loss: net.loss(p, X, y, loss),
            lambda p, net=net, X=X, y=y, loss=loss: net.loss_and_grad(p, X, y, loss)[1],
            phi, rng=2, num_directions=10, h=H, threshold=TOL,
        )  # fmt: skip
        assert report.passed, f"{net!r} {loss} n={n}: {report}"
        report = _hvp_report(net, phi, X, y, loss, _unit(rng, net.num_params))
        assert report.passed, f"{net!r} {loss} n={n}: {report}"


@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", ["tanh", "softplus", "relu"])
def test_hessian_is_symmetric_and_matches_the_jacobian_of_the_gradient(activation, loss, n):
    net, phi, X, y, _ = _setup([3, 4, 3, 3], activation, loss, n)
    Hm = net.hessian(phi, X, y, loss)
    assert np.linalg.norm(Hm - Hm.T) <= ROUNDOFF * np.linalg.norm(Hm)
    J = gradcheck.numerical_grad(lambda p: net.loss_and_grad(p, X, y, loss)[1], phi, h=H)
    assert gradcheck.rel_error(Hm, J) < TOL


def test_hvp_is_linear_in_v_and_a_symmetric_bilinear_form():
    net, phi, X, y, rng = _setup([2, 7, 5, 3], "tanh", "cross_entropy", 9)
    u, v = rng.standard_normal((2, net.num_params))
    Hu, Hv = net.hvp(phi, X, y, u, "cross_entropy"), net.hvp(phi, X, y, v, "cross_entropy")
    combo = net.hvp(phi, X, y, 2.5 * u - 0.75 * v, "cross_entropy")
    assert gradcheck.rel_error(combo, 2.5 * Hu - 0.75 * Hv) < ROUNDOFF
    scale = np.linalg.norm(u) * np.linalg.norm(Hv) + np.linalg.norm(v) * np.linalg.norm(Hu)
    assert abs(u @ Hv - v @ Hu) <= ROUNDOFF * scale


# ---------------------------------------------------------------- the normalisation's rules on their own
def test_batchnorm_rules_against_differences():
    # vjp (9.2), rop (9.3) and rop_vjp (9.4) as functions of z alone, n = 4 rows, d = 3 columns
    rng = np.random.default_rng(0)
    z, g, Rz, Rg = rng.standard_normal((4, 4, 3))

    def zhat(z):
        return batchnorm.normalise(z, *batchnorm.statistics(z))[0]

    def inv_std(z):
        return batchnorm.normalise(z, *batchnorm.statistics(z))[1]

    def vjp_at(z, g):
        return batchnorm.vjp(g, zhat(z), inv_std(z))

    zh, r = zhat(z), inv_std(z)
    # the VJP is the transpose of the Jacobian: <g, J dz> for every coordinate direction dz
    num = gradcheck.numerical_grad(lambda zz: np.sum(g * zhat(zz)), z, h=H)
    assert gradcheck.rel_error(batchnorm.vjp(g, zh, r), num) < TOL
    # the R-forward is the Jacobian applied to R{z}, for zhat and for r
    R_zhat, R_r = batchnorm.rop(Rz, zh, r)
    assert gradcheck.rel_error(R_zhat, gradcheck.directional_derivative(zhat, z, Rz, H)) < TOL
    assert gradcheck.rel_error(R_r, gradcheck.directional_derivative(inv_std, z, Rz, H)) < TOL
    # the R-backward differentiates the VJP along (R{z}, R{g}): g moves too
    num = (vjp_at(z + H * Rz, g + H * Rg) - vjp_at(z - H * Rz, g - H * Rg)) / (2 * H)
    assert gradcheck.rel_error(batchnorm.rop_vjp(g, Rg, zh, r, R_zhat, R_r), num) < TOL


def test_batchnorm_identities():
    rng = np.random.default_rng(1)
    z, g, u, w = rng.standard_normal((4, 6, 4))
    zh, r = batchnorm.normalise(z, *batchnorm.statistics(z))
    mean, var = batchnorm.statistics(z)
    # eq. (9.1): columns of zhat have mean 0 and mean square var / (var + EPS) (not 1: EPS)
    np.testing.assert_allclose(zh.mean(axis=0), 0.0, atol=ROUNDOFF)
    np.testing.assert_allclose((zh * zh).mean(axis=0), var / (var + batchnorm.EPS), rtol=ROUNDOFF)
    np.testing.assert_allclose(var, z.var(axis=0), rtol=ROUNDOFF)  # divides by n, like np.var
    # a shift of z changes nothing, so dL/dz sums to zero over rows
    np.testing.assert_allclose(batchnorm.vjp(g, zh, r).sum(axis=0), 0.0, atol=ROUNDOFF)
    # the Jacobian of zhat is symmetric per column: R{zhat} along u equals the VJP of u
    np.testing.assert_allclose(batchnorm.rop(u, zh, r)[0], batchnorm.vjp(u, zh, r), rtol=1e-10, atol=ROUNDOFF)
    assert abs(np.sum(w * batchnorm.vjp(u, zh, r)) - np.sum(u * batchnorm.vjp(w, zh, r))) < ROUNDOFF


def test_forward_by_hand():
    # [2, 3, 1] tanh with batch norm: tanh((z1 - mean) / sqrt(var + 1e-3) + beta) W2 + b2
    net = MLP([2, 3, 1], "tanh", batch_norm=True)
    assert net.num_params == 13 + 3
    phi = np.arange(net.num_params, dtype=np.float64) / 10.0
    W1, b1, W2, b2, beta = phi[:6].reshape(2, 3), phi[6:9], phi[9:12].reshape(3, 1), phi[12:13], phi[13:16]
    X = np.array([[1.0, -1.0], [0.5, 2.0], [-0.3, 0.1]])
    z1 = X @ W1 + b1
    zt = (z1 - z1.mean(axis=0)) / np.sqrt(z1.var(axis=0) + 1e-3) + beta
    np.testing.assert_allclose(net.forward(phi, X), np.tanh(zt) @ W2 + b2, rtol=1e-14)
    assert batchnorm.EPS == 1e-3  # tf.contrib.layers.batch_norm's default, used by MAML's code


# ---------------------------------------------------------------- layout; nothing changed without batch norm
def test_layout_shifts_come_after_the_unchanged_layout():
    plain, bn = MLP([4, 6, 5, 3], "relu"), MLP([4, 6, 5, 3], "relu", batch_norm=True)
    P0 = num_params([4, 6, 5, 3])
    assert plain.num_params == P0 and bn.num_params == P0 + 6 + 5
    phi = bn.init(7)
    np.testing.assert_array_equal(phi[:P0], plain.init(7))  # the same draws for (W_l, b_l)
    np.testing.assert_array_equal(phi[P0:], 0.0)  # beta_l = 0 at init
    for (W, b), (W0, b0) in zip(bn.unflatten(phi), unflatten(bn.sizes, phi[:P0]), strict=True):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    beta1, beta2 = bn.shifts(phi)
    assert beta1.shape == (6,) and beta2.shape == (5,) and np.shares_memory(beta1, phi)
    beta1[2], beta2[4] = 3.0, -4.0
    assert phi[P0 + 2] == 3.0 and phi[-1] == -4.0
    assert plain.shifts(plain.init(0)) == []
    assert repr(bn) == "MLP([4, 6, 5, 3], activation='relu', batch_norm=True)"
    assert repr(plain) == "MLP([4, 6, 5, 3], activation='relu')"


def _frozen_passes(sizes, sigma, phi, X, y, v, fn):
    """loss_and_grad and hvp exactly as tinymeta computed them before batch norm existed (same
    operations in the same order), to hold the batch-norm-free network equal bit for bit."""
    layers, dirs = unflatten(sizes, phi), unflatten(sizes, v)
    a, z = [X], []
    for l, (W, b) in enumerate(layers):
        z.append(a[-1] @ W + b)
        a.append(sigma.f(z[-1]) if l < len(layers) - 1 else z[-1])
    grads, deltas, es = [None] * len(layers), [None] * len(layers), [None] * len(layers)
    delta = fn.grad(a[-1], y)
    for l in range(len(layers) - 1, -1, -1):
        deltas[l] = delta
        grads[l] = (a[l].T @ delta, delta.sum(axis=0))
        if l > 0:
            es[l - 1] = delta @ layers[l][0].T
            delta = sigma.d1(z[l - 1]) * es[l - 1]
    Ra, Rz = [np.zeros_like(X)], []
    for l, ((W, _), (V, c)) in enumerate(zip(layers, dirs, strict=True)):
        Rz.append(Ra[-1] @ W + a[l] @ V + c)
        Ra.append(sigma.d1(z[l]) * Rz[-1] if l < len(layers) - 1 else Rz[-1])
    Rdelta, out = fn.hvp(a[-1], y, Rz[-1]), [None] * len(layers)
    for l in range(len(layers) - 1, -1, -1):
        W, V = layers[l][0], dirs[l][0]
        out[l] = (Ra[l].T @ deltas[l] + a[l].T @ Rdelta, Rdelta.sum(axis=0))
        if l > 0:
            Re = Rdelta @ W.T + deltas[l] @ V.T
            Rdelta = sigma.d2(z[l - 1]) * Rz[l - 1] * es[l - 1] + sigma.d1(z[l - 1]) * Re
    return a[-1], fn.value(a[-1], y), flatten(grads), flatten(out)


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("sizes", [[3, 2], [1, 40, 40, 3], [4, 1, 3, 3]], ids=str)
def test_no_batch_norm_is_unchanged_bit_for_bit(sizes, activation, loss):
    rng = np.random.default_rng(3)
    for net in (MLP(sizes, activation), MLP(sizes, activation, batch_norm=False)):
        assert not net.batch_norm and net.num_params == num_params(sizes)
        phi, v = net.init(rng), rng.standard_normal(net.num_params)
        for n in (1, 6):
            X = rng.standard_normal((n, sizes[0]))
            y = rng.standard_normal((n, sizes[-1])) if loss == "mse" else rng.integers(0, sizes[-1], n)
            yhat, value, grad, hv = _frozen_passes(sizes, ACTIVATIONS[activation], phi, X, y, v, LOSSES[loss])
            np.testing.assert_array_equal(net.forward(phi, X), yhat)
            got_value, got_grad = net.loss_and_grad(phi, X, y, loss)
            assert got_value == value
            np.testing.assert_array_equal(got_grad, grad)
            np.testing.assert_array_equal(net.hvp(phi, X, y, v, loss), hv)


def test_hidden_biases_cancel_against_the_mean():
    # b_l of a hidden layer is removed by the mean subtraction: zero gradient, zero Hessian rows
    net, phi, X, y, _ = _setup([3, 5, 4, 3], "tanh", "mse", 6)
    g = net.loss_and_grad(phi, X, y)[1]
    Hm = net.hessian(phi, X, y)
    P_W1 = 3 * 5
    hidden_b = np.r_[P_W1 : P_W1 + 5, P_W1 + 5 + 20 : P_W1 + 5 + 20 + 4]
    assert np.abs(g[hidden_b]).max() <= ROUNDOFF * np.linalg.norm(g)
    assert np.abs(Hm[hidden_b]).max() <= ROUNDOFF * np.linalg.norm(Hm)
    moved = phi.copy()
    moved[hidden_b] += 0.7
    np.testing.assert_allclose(net.loss(moved, X, y), net.loss(phi, X, y), rtol=ROUNDOFF)


def test_no_argument_is_modified():
    net, phi, X, y, rng = _setup([2, 5, 3], "tanh", "cross_entropy", 4)
    v = rng.standard_normal(net.num_params)
    copies = [a.copy() for a in (phi, X, y, v)]
    net.loss_and_grad(phi, X, y, "cross_entropy")
    net.hvp(phi, X, y, v, "cross_entropy")
    net.forward_with_statistics(phi, X, net.batch_statistics(phi, X))
    for a, c in zip((phi, X, y, v), copies, strict=True):
        np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------- transductive, non-transductive, one row
def test_batch_norm_is_transductive():
    # with batch norm, changing row 1 changes the output of row 0; without, it cannot
    rng = np.random.default_rng(4)
    X = rng.standard_normal((5, 3))
    X2 = X.copy()
    X2[1] += 1.0
    for bn in (True, False):
        net = MLP([3, 6, 2], "tanh", batch_norm=bn)
        phi = net.init(0)
        changed = np.abs(net.forward(phi, X)[0] - net.forward(phi, X2)[0]).max()
        assert (changed > 1e-3) if bn else (changed == 0.0)


def test_forward_with_statistics_is_per_row_and_agrees_with_forward():
    net, phi, X, _, rng = _setup([3, 6, 4, 2], "softplus", "mse", 8)
    stats = net.batch_statistics(phi, X)
    assert [(m.shape, s.shape) for m, s in stats] == [((6,), (6,)), ((4,), (4,))]
    # with X's own statistics it is forward, bit for bit
    np.testing.assert_array_equal(net.forward_with_statistics(phi, X, stats), net.forward(phi, X))
    # with the support set's statistics each query row is mapped on its own, one row included
    Xq = rng.standard_normal((5, 3))
    together = net.forward_with_statistics(phi, Xq, stats)
    alone = np.vstack([net.forward_with_statistics(phi, Xq[i : i + 1], stats) for i in range(5)])
    np.testing.assert_allclose(alone, together, rtol=1e-13, atol=1e-15)  # only BLAS blocking differs
    assert np.abs(together - net.forward(phi, Xq)).max() > 1e-3  # and it is not the transductive output


def test_one_row_is_refused_with_a_clear_error():
    net, phi, X, y, _ = _setup([3, 4, 2], "tanh", "mse", 5)
    for call in (
        lambda: net.forward(phi, X[:1]),
        lambda: net.loss(phi, X[:1], y[:1]),
        lambda: net.loss_and_grad(phi, X[:1], y[:1]),
        lambda: net.hvp(phi, X[:1], y[:1], phi),
        lambda: net.batch_statistics(phi, X[:1]),
    ):
        with pytest.raises(
            ValueError, match=r"X has 1 row; this network has batch_norm=True.*at least 2 rows"
        ):
            call()
    task = Task(X, y, X[:1], y[:1])
    with pytest.raises(ValueError, match=r"x_query has 1 row"):
        meta_objective(net, phi, task, 0.1, 1)
    assert net.forward_with_statistics(phi, X[:1], net.batch_statistics(phi, X)).shape == (1, 2)
    MLP([3, 4, 2], "tanh").forward(MLP([3, 4, 2]).init(0), X[:1])  # without batch norm one row is fine


def test_argument_errors():
    with pytest.raises(TypeError, match=r"batch_norm must be True or False; got 'yes'"):
        MLP([2, 3, 1], batch_norm="yes")
    with pytest.raises(
        ValueError, match=r"batch_norm=True normalises hidden layers; sizes=\[2, 1\] has none"
    ):
        MLP([2, 1], batch_norm=True)
    plain, bn = MLP([2, 3, 1]), MLP([2, 3, 4, 1], batch_norm=True)
    X = np.zeros((3, 2))
    with pytest.raises(
        ValueError, match=r"forward_with_statistics needs a network built with batch_norm=True"
    ):
        plain.forward_with_statistics(plain.init(0), X, [])
    phi, good = bn.init(0), [(np.zeros(3), np.ones(3)), (np.zeros(4), np.ones(4))]
    with pytest.raises(ValueError, match=r"statistics must be a list of 2 \(mean, var\) pairs.*got length 1"):
        bn.forward_with_statistics(phi, X, good[:1])
    with pytest.raises(ValueError, match=r"statistics\[1\]\[0\] \(mean\) has shape \(3,\); expected \(4\)"):
        bn.forward_with_statistics(phi, X, [good[0], (np.zeros(3), np.ones(4))])
    with pytest.raises(ValueError, match=r"statistics\[0\]\[1\] \(var\) has a negative entry"):
        bn.forward_with_statistics(phi, X, [(np.zeros(3), -np.ones(3)), good[1]])
    with pytest.raises(ValueError, match=r"phi has shape \(22,\); expected \(37\)"):
        bn.forward(phi[:22], X)


# ---------------------------------------------------------------- negative controls: wrong rules must fail
def _frozen_statistics_vjp(g, zhat, inv_std):
    return inv_std * g  # mean and variance treated as constants


def _mean_only_vjp(g, zhat, inv_std):
    return inv_std * (g - g.mean(axis=0))  # the variance's dependence on z ignored


def _frozen_statistics_rop(Rz, zhat, inv_std):
    return Rz * inv_std, np.zeros_like(inv_std)  # R{mu} = R{s2} = 0: the common mistake


def _no_R_var_rop(Rz, zhat, inv_std):
    return (Rz - Rz.mean(axis=0)) * inv_std, np.zeros_like(inv_std)  # R{mu} kept, R{s2} dropped


_rop_vjp, _vjp = batchnorm.rop_vjp, batchnorm.vjp  # the correct rules, kept before any swap


def _no_R_inv_std_rop_vjp(g, Rg, zhat, inv_std, R_zhat, R_inv_std):
    return _rop_vjp(g, Rg, zhat, inv_std, R_zhat, np.zeros_like(R_inv_std))


def _jacobian_frozen_rop_vjp(g, Rg, zhat, inv_std, R_zhat, R_inv_std):
    return _vjp(Rg, zhat, inv_std)  # the change of the normalisation's Jacobian ignored


@pytest.mark.parametrize(
    ("rule", "wrong", "check"),
    [
        ("vjp", _frozen_statistics_vjp, "grad"),
        ("vjp", _mean_only_vjp, "grad"),
        ("rop", _frozen_statistics_rop, "hvp"),
        ("rop", _no_R_var_rop, "hvp"),
        ("rop_vjp", _no_R_inv_std_rop_vjp, "hvp"),
        ("rop_vjp", _jacobian_frozen_rop_vjp, "hvp"),
    ],
    ids=[
        "vjp-frozen-stats",
        "vjp-no-var",
        "rop-frozen-stats",
        "rop-no-R-var",
        "rop-vjp-no-R-r",
        "rop-vjp-no-RJ",
    ],
)
@pytest.mark.parametrize("n", [2, 7])
def test_negative_controls_fail(rule, wrong, check, n, monkeypatch):
    # the gradient check differences net.loss, which uses no VJP; the HVP check differences the
    # gradient, which uses no R-operator rule: in each, only the swapped rule is wrong
    net, phi, X, y, rng = _setup([3, 5, 4, 3], "tanh", "cross_entropy", n)
    v = _unit(rng, net.num_params)

    def run():
        return _grad_report(net, phi, X, y, "cross_entropy") if check == "grad" else (
            _hvp_report(net, phi, X, y, "cross_entropy", v))  # fmt: skip

    assert run().passed
    monkeypatch.setattr(batchnorm, rule, wrong)
    report = run()
    assert report.error > BAD, f"{rule} replaced by {wrong.__name__} passed: {report}"


# ---------------------------------------------------------------- MAML through batch norm
ALPHA = {"mse": 0.1, "cross_entropy": 1.0}  # large enough that the Hessian term matters (as in test_maml)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_maml_grad_through_batch_norm_matches_finite_differences(activation, loss, k):
    # support (5 rows) and query (7 rows) are each normalised with their own statistics
    net, phi, xs, ys, rng = _setup([2, 6, 5, 3], activation, loss, 5)
    xq = rng.standard_normal((7, 2))
    yq = rng.standard_normal((7, 3)) if loss == "mse" else rng.integers(0, 3, 7)
    task = Task(xs, ys, xq, yq)
    alpha = ALPHA[loss]
    F = lambda p: meta_objective(net, p, task, alpha, k, loss)
    report = gradcheck.check_grad(
        F, lambda p: maml_grad(net, p, task, alpha, k, loss), phi, h=H, threshold=TOL
    )
    assert report.passed, str(report)
    # negative control: first-order MAML drops the Hessian term and must fail the same check
    fo = gradcheck.check_grad(F, lambda p: fomaml_grad(net, p, task, alpha, k, loss), phi, h=H, threshold=TOL)
    assert fo.error > BAD, str(fo)
