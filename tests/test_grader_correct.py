"""Every correct answer passes: other ways of writing each answer, on public and hidden cases.

The thresholds are tight (an exact derivative agrees to round-off; a finite difference does
not), so they are checked here against implementations that differ from the reference in
every way a student's may: another formula for the same quantity, another order of the
products, loops instead of matrix products, explicit Hessians. And the exact answers the
graders compare with are themselves checked against an independent oracle (central
differences) on every case.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy.special import expit

import tinymeta.exercises as ex
from tinymeta.gradcheck import rel_error
from tinymeta.params import flatten, unflatten

pytestmark = pytest.mark.fast

SEEDS = [None, "alpha", "beta", "gamma"]


def softplus_expit(z):
    s = expit(z)
    return s, s * (1.0 - s)


def softplus_logaddexp(z):
    s = np.exp(-np.logaddexp(0.0, -z))
    return s, 0.25 / np.cosh(0.5 * z) ** 2


def softplus_naive_but_finite(z):
    with np.errstate(over="ignore"):
        s = 1.0 / (1.0 + np.exp(-z))  # e^800 = inf gives 1 / inf = 0: right, with a warning
    return s, s * (1.0 - s)


def dense_loops(a, W, b, delta):
    dW, db, da = np.zeros_like(W), np.zeros_like(b), np.zeros_like(a)
    for i in range(len(a)):
        dz = delta[i] / np.cosh(a[i] @ W + b) ** 2
        dW += np.outer(a[i], dz)
        db += dz
        da[i] = W @ dz
    return dW, db, da


def mlp_einsum(phi, X, y, sizes):
    layers, acts, zs = unflatten(sizes, phi), [X], []
    for l, (W, b) in enumerate(layers):
        zs.append(np.einsum("ni,io->no", acts[-1], W) + b)
        acts.append(np.tanh(zs[-1]) if l < len(layers) - 1 else zs[-1])
    delta, grads = (2.0 / len(X)) * (acts[-1] - y), []
    for l in range(len(layers) - 1, -1, -1):
        grads.insert(0, (np.einsum("ni,no->io", acts[l], delta), delta.sum(0)))
        if l:
            delta = np.einsum("no,io->ni", delta, layers[l][0]) / np.cosh(zs[l - 1]) ** 2
    return flatten(grads)


def hvp_other_order(phi, X, y, v, sizes):
    (W1, b1), (W2, b2) = unflatten(sizes, phi)
    (V1, c1), (V2, c2) = unflatten(sizes, v)
    n, z = len(X), X @ W1 + b1
    t, s1 = np.tanh(z), 1.0 / np.cosh(z) ** 2
    d2, Rz = (2.0 / n) * (t @ W2 + b2 - y), X @ V1 + c1
    Rd2 = (2.0 / n) * ((s1 * Rz) @ W2 + t @ V2 + c2)
    Rd1 = -2.0 * t * s1 * Rz * (d2 @ W2.T) + s1 * (Rd2 @ W2.T) + s1 * (d2 @ V2.T)
    return np.concatenate(
        [(X.T @ Rd1).ravel(), Rd1.sum(0), ((s1 * Rz).T @ d2 + t.T @ Rd2).ravel(), Rd2.sum(0)]
    )


def maml_explicit_hessians(net, phi, task, alpha, k=1):
    xs, ys, xq, yq = task
    traj = [phi]
    for _ in range(k):
        traj.append(traj[-1] - alpha * net.loss_and_grad(traj[-1], xs, ys)[1])
    J = np.eye(phi.size)
    for p in traj[:-1]:  # J = (I - alpha H_0) (I - alpha H_1) ...
        J = J @ (np.eye(phi.size) - alpha * net.hessian(p, xs, ys))
    return J @ net.loss_and_grad(traj[-1], xq, yq)[1]


def reptile_vectorised(net, phi, tasks, alpha, k, epsilon):
    adapted = []
    for t in tasks:
        p = phi.copy()
        for _ in range(k):
            p = p - alpha * net.loss_and_grad(p, t.x_support, t.y_support)[1]
        adapted.append(p)
    return (1.0 - epsilon) * phi + epsilon * np.mean(adapted, axis=0)


def taylor_fractions(k):
    return {
        "maml": (Fraction(1), Fraction(-2 * (k - 1))),
        "fomaml": [1.0, 1.0 - k],
        "reptile": np.array([k, -k * (k - 1) / 2]),
    }


def ce_explicit(yhat, y, u):
    n, c = yhat.shape
    logp = yhat - np.logaddexp.reduce(yhat, axis=1, keepdims=True)
    p = np.exp(logp)
    H = np.stack([np.diag(pi) - np.outer(pi, pi) for pi in p]) / n
    return (p - np.eye(c)[y]) / n, np.einsum("nij,nj->ni", H, u)


def gn_explicit_jacobian(phi, X, y, v, sizes, loss):
    (W1, b1), (W2, b2) = unflatten(sizes, phi)
    n, t = len(X), np.tanh(X @ W1 + b1)

    def jvp(w):  # J w by the R-forward pass
        (V1, c1), (V2, c2) = unflatten(sizes, w)
        return ((1 - t**2) * (X @ V1 + c1)) @ W2 + t @ V2 + c2

    J = np.stack([jvp(e).ravel() for e in np.eye(phi.size)], axis=1)  # (n * d_out, P)
    if loss == "mse":
        H = 2.0 / n * np.eye(J.shape[0])
    else:
        yhat = t @ W2 + b2
        p = np.exp(yhat - np.logaddexp.reduce(yhat, axis=1, keepdims=True))
        blocks = [(np.diag(pi) - np.outer(pi, pi)) / n for pi in p]
        H = np.zeros((J.shape[0], J.shape[0]))
        for i, B in enumerate(blocks):
            H[i * len(B) : (i + 1) * len(B), i * len(B) : (i + 1) * len(B)] = B
    return J.T @ (H @ (J @ v))


def checkpoint_sqrt_list(net, phi, task, alpha, k, every):
    xs, ys, xq, yq = task
    step = lambda p: p - alpha * net.loss_and_grad(p, xs, ys)[1]  # noqa: E731
    marks, p = [phi], phi
    for i in range(1, k + 1):
        p = step(p)
        if i % every == 0 and i < k:
            marks.append(p)
    v = net.loss_and_grad(p, xq, yq)[1]
    for s in range(len(marks) - 1, -1, -1):
        seg = [marks.pop()]
        while len(seg) < min(every, k - s * every):
            seg.append(step(seg[-1]))
        while seg:
            v = v - alpha * net.hvp(seg.pop(), xs, ys, v)
    return v


def alpha_backward_mode(net, phi, task, alpha, k):
    xs, ys, xq, yq = task
    traj = [phi]
    for _ in range(k):
        traj.append(traj[-1] - alpha * net.loss_and_grad(traj[-1], xs, ys)[1])
    v, total = net.loss_and_grad(traj[-1], xq, yq)[1], 0.0
    for i in range(k - 1, -1, -1):  # dF/dalpha = -sum_i grad L_A(phi_i) . (I - alpha H_{i+1}) ... v
        total -= net.loss_and_grad(traj[i], xs, ys)[1] @ v
        v = v - alpha * net.hvp(traj[i], xs, ys, v)
    return total


def metasgd_explicit_jacobians(net, phi, alphas, task, k):
    xs, ys, xq, yq = task
    traj = [phi]
    for _ in range(k):
        traj.append(traj[-1] - alphas * net.loss_and_grad(traj[-1], xs, ys)[1])
    v, d_alphas = net.loss_and_grad(traj[-1], xq, yq)[1], np.zeros_like(phi)
    for i in range(k - 1, -1, -1):  # J_i = I - diag(alphas) H_i; dphi_{i+1}/dalphas = -diag(g_i)
        d_alphas += -net.loss_and_grad(traj[i], xs, ys)[1] * v
        v = (np.eye(phi.size) - np.diag(alphas) @ net.hessian(traj[i], xs, ys)).T @ v
    return v, d_alphas


def anil_as_metasgd(net, phi, task, alpha, k):
    from tinymeta.anil import head_mask
    from tinymeta.metasgd import metasgd_value_and_grad

    return metasgd_value_and_grad(net, phi, alpha * head_mask(net), task, k)[1]  # ANIL = Meta-SGD, alpha m


def imaml_dense(net, phi, phi_star, task, lam):
    xs, ys, xq, yq = task
    H = net.hessian(phi_star, xs, ys)
    return lam * np.linalg.solve(H + lam * np.eye(phi.size), net.loss_and_grad(phi_star, xq, yq)[1])


ALTERNATIVES = [
    ("01", softplus_expit),
    ("01", softplus_logaddexp),
    ("01", softplus_naive_but_finite),
    ("02", dense_loops),
    ("03", mlp_einsum),
    ("04", hvp_other_order),
    ("05", maml_explicit_hessians),
    ("06", maml_explicit_hessians),
    ("07", reptile_vectorised),
    ("08", taylor_fractions),
    ("09", ce_explicit),
    ("10", gn_explicit_jacobian),
    ("11", checkpoint_sqrt_list),
    ("12", alpha_backward_mode),
    ("13", metasgd_explicit_jacobians),
    ("14", anil_as_metasgd),
    ("15", imaml_dense),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("name", "fn"), ALTERNATIVES, ids=[f"{n}-{f.__name__}" for n, f in ALTERNATIVES])
def test_another_correct_answer_passes(name, fn, seed):
    report = ex.check(name, fn, seed=seed)
    assert report.passed, report.text


@pytest.mark.parametrize("seed", [None, "delta"])
@pytest.mark.parametrize("name", ex.names())
def test_the_exact_answers_agree_with_an_independent_oracle(name, seed):
    cases, _ = ex.get(name).make_cases(seed)
    checked = 0
    for case in cases:
        if case.oracle is None:
            continue
        exact, approx = case.expected(), case.oracle()
        pairs = zip(exact, approx, strict=True) if isinstance(exact, tuple) else [(exact, approx)]
        for e, a in pairs:
            # central differences carry ~1e-10 (truncation h^2, round-off eps/h); 1e-6 as in gradcheck
            assert rel_error(e, a) < 1e-6, f"{case.label}: {rel_error(e, a):.1e}"
        checked += 1
    if name not in ("07_reptile_step", "08_reptile_taylor", "11_maml_checkpointed"):  # no derivative to take
        assert checked == len(cases)


def test_a_perturbed_reference_would_fail_the_oracle():
    # negative control: the oracle comparison above can fail
    case = ex.get("06").make_cases(None)[0][0]
    assert rel_error(case.expected() * (1 + 1e-3), case.oracle()) > 1e-6
