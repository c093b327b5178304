# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Hessian-vector products without the Hessian
#
# Exact MAML needs products $H v$ of the Hessian of a task loss with a vector (tutorial 3).
# For the 1-40-40-1 sine network $H$ has $1761^2 \approx 3.1$ million entries; for an
# Omniglot convnet it would not fit in memory at all. Pearlmutter's R-operator computes $Hv$
# exactly, at the cost of about two gradients, without forming $H$. This tutorial derives it
# for the MLP of tutorial 1 (the second derivative $\sigma''$ of the activation appears),
# derives the Hessians of the losses with respect to the network output, and checks
# everything against differences of the exact gradient.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import tinymeta as tm
from tinymeta import gradcheck
from tinymeta.losses import LOSSES

FAST = os.environ.get("TINYMETA_FAST") == "1"  # CI runs a shorter version; the default is the full one
rng = np.random.default_rng(2)

# %% [markdown]
# ## The R-operator
#
# Fix a direction $v \in \mathbb R^P$ and define, for any quantity $f(\varphi)$ computed from
# the parameters (an activation, a gradient, ...), its directional derivative
#
# $$
# \begin{aligned}
# \mathcal R_v\{f(\varphi)\} &:= \frac{d}{dr} f(\varphi + r v) \Big|_{r=0} = J_f(\varphi)\, v,
# \qquad\text{so} \cr
# \mathcal R_v\{\nabla L(\varphi)\} &= \nabla^2 L(\varphi)\, v = H v.
# \end{aligned}
# \tag{2.1}
# $$
#
# $\mathcal R$ is a derivative, so it is linear and obeys the product and chain rules:
# $\mathcal R\{AB\} = \mathcal R\{A\} B + A \mathcal R\{B\}$ and
# $\mathcal R\{\sigma(z)\} = \sigma'(z) \odot \mathcal R\{z\}$. On the parameters themselves it
# gives the direction: split $v$ like $\varphi$ into per-layer blocks $(V_l, c_l)$; then
# $\mathcal R\{W_l\} = V_l$, $\mathcal R\{b_l\} = c_l$, and the data do not move:
# $\mathcal R\{X\} = 0$, $\mathcal R\{y\} = 0$. The recipe: apply $\mathcal R$ to every line of
# the forward pass (1.1) and of the backward pass (1.2), in the same order.
#
# ## The R-forward pass
#
# Applying $\mathcal R$ to (1.1), $z_l = a_{l-1} W_l + b_l$ and $a_l = \sigma(z_l)$:
#
# $$
# \begin{aligned}
# \mathcal R\{a_0\} &= 0, &
# \mathcal R\{z_l\} &= \mathcal R\{a_{l-1}\} W_l + a_{l-1} V_l + c_l, \cr
# \mathcal R\{a_l\} &= \sigma'(z_l) \odot \mathcal R\{z_l\}, &
# \mathcal R\{\hat y\} &= \mathcal R\{z_L\}.
# \end{aligned}
# \tag{2.2}
# $$
#
# This is a forward-mode derivative: how every activation moves when $\varphi$ moves along $v$.
# The R-forward pass is checked on its own below, against the central difference of the
# network output along $v$.
#
# ## The R-backward pass
#
# Write the backward pass (1.2) with the intermediate $e_{l-1} = \delta_l W_l^\top$, so that
# $\delta_{l-1} = \sigma'(z_{l-1}) \odot e_{l-1}$, and apply $\mathcal R$ line by line:
#
# $$
# \begin{aligned}
# \mathcal R\{\partial L / \partial W_l\} &= \mathcal R\{a_{l-1}\}^\top \delta_l + a_{l-1}^\top \mathcal R\{\delta_l\},
# \qquad
# \mathcal R\{\partial L / \partial b_l\} = \mathbf 1^\top \mathcal R\{\delta_l\}, \cr
# \mathcal R\{e_{l-1}\} &= \mathcal R\{\delta_l\} W_l^\top + \delta_l V_l^\top, \cr
# \mathcal R\{\delta_{l-1}\} &= \sigma''(z_{l-1}) \odot \mathcal R\{z_{l-1}\} \odot e_{l-1}
#                            + \sigma'(z_{l-1}) \odot \mathcal R\{e_{l-1}\}.
# \end{aligned}
# \tag{2.3}
# $$
#
# The last line is the product rule on $\sigma'(z_{l-1}) \odot e_{l-1}$; differentiating
# $\sigma'$ brings in $\sigma''$. The blocks $\mathcal R\{\partial L/\partial W_l\}$,
# $\mathcal R\{\partial L/\partial b_l\}$, flattened like $\varphi$, are $Hv$ by (2.1).
#
# The recursion needs a starting value, $\mathcal R\{\delta_L\}$. Since
# $\delta_L = \partial L / \partial \hat y$ depends on $\varphi$ only through $\hat y$, the chain
# rule gives $\mathcal R\{\delta_L\} = H_{\text{out}}\, \mathcal R\{\hat y\}$ with
# $H_{\text{out}} = \partial^2 L / \partial \hat y^2$, the Hessian of the loss with respect
# to the network output.
#
# ## Output-space Hessians
#
# **MSE.** $\delta_L = \frac2n (\hat y - y)$ is affine in $\hat y$, so $H_{\text{out}} = \frac2n I$.
#
# **Softmax cross-entropy.** Row $i$ of $\delta_L$ is $\frac1n(p_i - \operatorname{onehot}(y_i))$ with
# $p_i = \operatorname{softmax}(\hat y_i)$, and $\partial p_{ij} / \partial \hat y_{ik} = p_{ij}(\mathbb 1[j = k] - p_{ik})$.
# Examples do not interact, so $H_{\text{out}}$ is block diagonal with one $c \times c$ block per
# example. Altogether
#
# $$
# \begin{aligned}
# \text{MSE: }& \mathcal R\{\delta_L\} = \frac2n \mathcal R\{\hat y\}, \cr
# \text{CE: }& \mathcal R\{\delta_L\}_i = \frac1n \big(\operatorname{diag}(p_i) - p_i p_i^\top\big) u_i
#   = \frac1n \big(p_i \odot u_i - p_i\, (p_i^\top u_i)\big),
# \qquad u = \mathcal R\{\hat y\}.
# \end{aligned}
# \tag{2.4}
# $$
#
# The cross-entropy block is positive semi-definite ($u^\top(\operatorname{diag}(p) - pp^\top)u$
# is the variance of $u$ under $p$) and is applied without forming the $c \times c$ matrix.
# `tinymeta.losses` implements both as `LOSSES[name].hvp(yhat, y, u)`; we check them as
# functions of the output, against differences of `LOSSES[name].grad`.

# %%
n, c = 8, 4
out = rng.standard_normal((n, c))
targets = {"mse": rng.standard_normal((n, c)), "cross_entropy": rng.integers(0, c, n)}
for name, t in targets.items():
    fn = LOSSES[name]
    for _ in range(3):
        u = rng.standard_normal((n, c))
        r = gradcheck.check_hvp(
            lambda o, fn=fn, t=t: fn.grad(o, t),
            lambda o, w, fn=fn, t=t: fn.hvp(o, t, w),
            out,
            u,
            name=f"(2.4) output-space HVP of {name}",
        )
        assert r.passed
    print(r)

# %% [markdown]
# ## The R-operator in a few lines
#
# For the two-layer tanh network of tutorial 1, (2.2)–(2.4) are the lines below. Note the
# order: forward, backward (we need $\delta_l$ and $e_l$), R-forward, R-backward. The flag
# `drop_sigma2` removes the $\sigma''$ term, for the negative control further down.

# %%
net = tm.MLP([3, 16, 2], "tanh")
phi = net.init(rng)
X, y = rng.standard_normal((12, 3)), rng.standard_normal((12, 2))
s = net.sigma  # tanh with .d1 = sigma', .d2 = sigma''


def hvp_2layer(phi, X, y, v, drop_sigma2=False):
    """H v for the MSE loss of a [d0, d1, d2] network by the R-operator, eqs. (2.2)-(2.4)."""
    (W1, b1), (W2, b2) = net.unflatten(phi)
    (V1, c1), (V2, c2) = net.unflatten(v)  # the direction, split like phi
    # forward (1.1) and backward (1.2)
    z1 = X @ W1 + b1
    a1 = s.f(z1)
    yhat = a1 @ W2 + b2
    d2 = 2.0 * (yhat - y) / len(X)
    e1 = d2 @ W2.T
    # R-forward (2.2); R{a0} = R{X} = 0
    Rz1 = X @ V1 + c1
    Ra1 = s.d1(z1) * Rz1
    Ryhat = Ra1 @ W2 + a1 @ V2 + c2
    # R-backward (2.3), started by the MSE output-space Hessian (2.4)
    Rd2 = 2.0 / len(X) * Ryhat
    RgW2, Rgb2 = Ra1.T @ d2 + a1.T @ Rd2, Rd2.sum(axis=0)
    Re1 = Rd2 @ W2.T + d2 @ V2.T
    Rd1 = s.d1(z1) * Re1 + (0.0 if drop_sigma2 else s.d2(z1) * Rz1 * e1)
    RgW1, Rgb1 = X.T @ Rd1, Rd1.sum(axis=0)  # R{a0} = 0: no first term
    return np.concatenate([RgW1.ravel(), Rgb1, RgW2.ravel(), Rgb2])


def grad(p):
    return net.loss_and_grad(p, X, y)[1]


v = rng.standard_normal(net.num_params)
v /= np.linalg.norm(v)

# (2.2) on its own: R{yhat} against the central difference of the network output along v
(W1, b1), (W2, b2) = net.unflatten(phi)
(V1, c1), (V2, c2) = net.unflatten(v)
z1 = X @ W1 + b1
Ryhat = (s.d1(z1) * (X @ V1 + c1)) @ W2 + s.f(z1) @ V2 + c2
h = 1e-5
fd_yhat = (net.forward(phi + h * v, X) - net.forward(phi - h * v, X)) / (2 * h)
r_forward = gradcheck.CheckReport(
    "(2.2) R-forward pass vs differences of the output (h=1e-05)",
    gradcheck.rel_error(Ryhat, fd_yhat),
    gradcheck.DEFAULT_THRESHOLD,
)
print(r_forward)
assert r_forward.passed

err_lib = gradcheck.rel_error(hvp_2layer(phi, X, y, v), net.hvp(phi, X, y, v))
print(f"ours vs net.hvp: relative error {err_lib:.1e}")
assert err_lib < 1e-13  # same formulas, same order of operations: round-off only

# H v against central differences of the exact gradient along v (tutorial 0: h = 1e-5, errors ~1e-10)
for _ in range(3):
    v = rng.standard_normal(net.num_params)
    v /= np.linalg.norm(v)
    report = gradcheck.check_hvp(
        grad, lambda p, w: hvp_2layer(p, X, y, w), phi, v, name="(2.3) R-operator HVP"
    )
    assert report.passed
print(report)

# %% [markdown]
# ## Checking against the Hessian, column by column
#
# For a network this small we can afford the explicit Hessian. `net.hessian` assembles it
# from $P$ HVPs with the unit vectors $e_j$; we compare it, column by column, with our
# hand-written `hvp_2layer`, and as a whole with the finite-difference Jacobian of the
# gradient (`gradcheck.numerical_grad(grad, phi)`, whose row $j$ is
# $\partial \nabla L / \partial \varphi_j$, a row of $H$). $H$ must also be symmetric.

# %%
H = net.hessian(phi, X, y)
eye = np.eye(net.num_params)
col_errors = [gradcheck.rel_error(hvp_2layer(phi, X, y, eye[j]), H[:, j]) for j in range(net.num_params)]
print(f"P = {net.num_params}: worst column of H vs hvp_2layer(e_j): relative error {max(col_errors):.1e}")
assert max(col_errors) < 1e-12  # the same arithmetic in a different program: round-off only

J = gradcheck.numerical_grad(grad, phi, h=1e-5)
hess_check = gradcheck.CheckReport(
    "net.hessian vs differences of the gradient (h=1e-05)",
    gradcheck.rel_error(H, J),
    gradcheck.DEFAULT_THRESHOLD,
)
print(hess_check)
print(f"symmetry: ||H - H^T|| / ||H|| = {np.linalg.norm(H - H.T) / np.linalg.norm(H):.1e}")
assert hess_check.passed
assert np.linalg.norm(H - H.T) / np.linalg.norm(H) < 1e-12  # exact in real arithmetic

# %% [markdown]
# ## Negative control: drop $\sigma''$
#
# The $\sigma''$ term is the curvature of the activation itself. Leave it out and the result is
# still a plausible-looking vector, but no longer $Hv$. (It is not the Gauss-Newton product
# either: Gauss-Newton drops every term that contains the backpropagated error, exercise 2
# below. First-order MAML, tutorial 4, drops the whole Hessian, not this one term.)

# %%
bad = gradcheck.check_hvp(
    grad, lambda p, w: hvp_2layer(p, X, y, w, drop_sigma2=True), phi, v, name="HVP without the sigma'' term"
)
print(bad)
assert not bad.passed

# %% [markdown]
# For ReLU, $\sigma'' = 0$ wherever it exists, so the term vanishes by itself. The Hessian of
# a ReLU network is nevertheless far from zero: the terms $\mathcal R\{a_{l-1}\}^\top \delta_l$ and
# $\delta_l V_l^\top$ come from products of weights, and the output-space Hessian always
# contributes. Exact MAML with ReLU still differs from first-order MAML (tutorial 4 measures by
# how much on a ReLU network).

# %%
relu_net = tm.MLP([3, 16, 16, 2], "relu")
p = relu_net.init(rng)
H_relu = relu_net.hessian(p, X, y)
nonzero = np.count_nonzero(np.abs(H_relu) > 1e-12)
print(f"ReLU network: ||H|| = {np.linalg.norm(H_relu):.3f}, {nonzero} of {H_relu.size} entries nonzero")
assert nonzero > 0.1 * H_relu.size  # far from zero although sigma'' = 0

# %% [markdown]
# ## What not forming $H$ saves
#
# An HVP costs one forward, one backward and one R-pass: a small constant times a gradient,
# and $O(P)$ memory. The explicit Hessian needs $P$ HVPs (or $P$ gradients, or $2P$ with finite
# differences) and $8P^2$ bytes. We time both for 1-$w$-$w$-1 networks of growing width $w$
# (10 examples; `net.hessian` refuses $P > 4000$). Each time is the best of 5 repetitions, the
# first of which also serves as a warm-up.

# %%
widths = [5, 10, 20, 30] if FAST else [5, 10, 20, 40, 60]
Xs, ys = rng.uniform(-5, 5, (10, 1)), rng.standard_normal((10, 1))


def seconds_per_call(fn, calls, repeat):
    """Best of ``repeat`` timings of ``calls`` calls (the minimum is the least disturbed by other load)."""
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t) / calls)
    return best


rows = []
for w in widths:
    m = tm.MLP([1, w, w, 1], "tanh")
    p = m.init(rng)
    v = rng.standard_normal(m.num_params)
    t_grad = seconds_per_call(lambda m=m, p=p: m.loss_and_grad(p, Xs, ys), 20, 5)
    t_hvp = seconds_per_call(lambda m=m, p=p, v=v: m.hvp(p, Xs, ys, v), 20, 5)
    t = time.perf_counter()
    Hm = m.hessian(p, Xs, ys)
    t_hess = time.perf_counter() - t
    assert gradcheck.rel_error(Hm @ v, m.hvp(p, Xs, ys, v)) < 1e-12  # the same product, two ways
    rows.append((w, m.num_params, t_grad, t_hvp, t_hess))

print(
    f"{'width':>5} {'P':>6} {'gradient':>10} {'HVP':>10} {'Hessian':>10} {'Hessian/HVP':>12} {'H memory':>10}"
)
for w, P, tg, th, tH in rows:
    print(
        f"{w:5d} {P:6d} {tg * 1e6:8.0f}us {th * 1e6:8.0f}us {tH * 1e3:8.1f}ms {tH / th:12.0f} {8 * P * P / 1e6:8.2f}MB"
    )
assert all(1 < th / tg < 5 for _, _, tg, th, _ in rows)  # an HVP costs a small multiple of a gradient
assert rows[-1][4] / rows[-1][3] > 5 * rows[0][4] / rows[0][3]  # the Hessian's cost grows with P

Ps = np.array([r[1] for r in rows])
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(Ps, [r[2] for r in rows], "o-", label="gradient")
ax.loglog(Ps, [r[3] for r in rows], "s-", label="Hessian-vector product")
ax.loglog(Ps, [r[4] for r in rows], "^-", label="explicit Hessian (P HVPs)")
ax.set_xlabel("number of parameters P")
ax.set_ylabel("seconds per call")
ax.set_title("HVP vs explicit Hessian (1-w-w-1 tanh network, 10 examples)")
ax.legend()
plt.show()

# %% [markdown]
# The HVP costs a small multiple of a gradient (about two), nearly independent of $P$ at these
# sizes (the fixed cost of the NumPy calls dominates); the Hessian costs $P$ HVPs, so its time
# relative to one HVP grows with $P$ (the column Hessian/HVP), and its memory quadratically. Exact MAML takes one HVP per inner step (tutorial 3), never a Hessian.
#
# ## Summary
#
# * $Hv = \mathcal R_v\{\nabla L\}$ (2.1): differentiate the gradient computation along $v$.
# * Applying $\mathcal R$ to the forward pass gives the R-forward pass (2.2), to the backward pass
#   the R-backward pass (2.3), which contains $\sigma''$.
# * The R-backward pass starts from the output-space Hessian (2.4): $\frac2n I$ for MSE,
#   $\frac1n(\operatorname{diag}(p_i) - p_i p_i^\top)$ per example for softmax cross-entropy.
# * Checked: the output-space HVPs, the hand-written R-operator against `net.hvp` and against
#   differences of the gradient, the explicit Hessian column by column and as a whole;
#   dropping $\sigma''$ fails the check.
# * An HVP costs about two gradients and $O(P)$ memory; the Hessian $P$ HVPs and $O(P^2)$ memory.
#
# ## Exercises
#
# 1. Power iteration: estimate the largest eigenvalue $\lambda_{\max}$ of $H$ with repeated HVPs
#    and compare with `np.linalg.eigvalsh(H)`. Why does gradient descent with step
#    $\alpha > 2 / \lambda_{\max}$ diverge near a minimum, and what does that mean for MAML's
#    inner step size?
# 2. Write the Gauss-Newton vector product $J^\top H_{\text{out}} J v$ (drop every term of (2.3)
#    that contains $\delta_l$) and measure how far it is from $Hv$ as the fit improves.
# 3. Extend `hvp_2layer` to cross-entropy using (2.4) and check it with `gradcheck.check_hvp`.
# 4. Count the matrix products of the R-operator and compare with the gradient's count.
#
# Classroom exercises `04_hvp_r_operator` (`tinymeta exercises copy DIR` to start,
# `tinymeta exercises check NN FILE` to check; see the instructors' page) are checked versions of
# exercises like these: each checker reports the error it found, the threshold and a hint.
