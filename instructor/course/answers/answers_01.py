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
# # Answers to the exercises of tutorial 1 (backpropagation)

# %%
import numpy as np

import tinymeta as tm
from tinymeta import gradcheck
from tinymeta.losses import LOSSES

rng = np.random.default_rng(1)
net = tm.MLP([3, 16, 2], "tanh")
phi = net.init(rng)
n = 12
X, y = rng.standard_normal((n, 3)), rng.standard_normal((n, 2))

# %% [markdown]
# ## Exercise 1: the gradient with respect to the input
#
# The input enters only through $z_1 = X W_1 + b_1$, so by the VJP of an affine map
# $\partial L/\partial X = \delta_1 W_1^\top$, shape $(n, d_0)$. In `backward_2layer` it would be one
# more line after `d1`: `gX = d1 @ W1.T`. Backpropagation for $\nabla L(\varphi)$ never needs it:
# $X$ does not depend on $\varphi$, so the recursion (1.2) stops at layer 1. (It is what adversarial
# examples and input attributions use.)

# %%
(W1, b1), (W2, b2) = net.unflatten(phi)


def grad_X(Xv):
    a1 = np.tanh(Xv @ W1 + b1)
    d2 = 2.0 * (a1 @ W2 + b2 - y) / len(Xv)
    d1 = (1.0 - a1**2) * (d2 @ W2.T)
    return d1 @ W1.T


r = gradcheck.check_grad(lambda Xv: net.loss(phi, Xv, y), grad_X, X, name="dL/dX = delta_1 W_1^T")
print(r)
assert r.passed

# %% [markdown]
# ## Exercise 2: three layers with ReLU
#
# Same recursion (1.2) with $\sigma'(z) = \mathbb 1[z > 0]$. The check needs inputs whose
# pre-activations stay away from 0 compared with $h$ (tutorial 0); here examples with a
# pre-activation closer than $10^{-3}$ are dropped before checking.

# %%
deep = tm.MLP([3, 10, 10, 2], "relu")
pd = deep.init(rng)
Xd, yd = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))


def forward3(p, Xv):
    (W1, b1), (W2, b2), (W3, b3) = deep.unflatten(p)
    z1 = Xv @ W1 + b1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ W2 + b2
    a2 = np.maximum(z2, 0)
    return z1, a1, z2, a2, a2 @ W3 + b3


z1, _, z2, _, _ = forward3(pd, Xd)
keep = (np.abs(z1).min(axis=1) > 1e-3) & (np.abs(z2).min(axis=1) > 1e-3)
Xd, yd = Xd[keep], yd[keep]


def backward3(p):
    (_, _), (W2, _), (W3, _) = deep.unflatten(p)
    z1, a1, z2, a2, yhat = forward3(p, Xd)
    d3 = 2.0 * (yhat - yd) / len(Xd)
    d2 = (z2 > 0) * (d3 @ W3.T)
    d1 = (z1 > 0) * (d2 @ W2.T)
    parts = [(Xd.T @ d1).ravel(), d1.sum(0), (a1.T @ d2).ravel(), d2.sum(0), (a2.T @ d3).ravel(), d3.sum(0)]
    return np.concatenate(parts)


r = gradcheck.check_grad(
    lambda p: deep.loss(p, Xd, yd), backward3, pd, name=f"3-layer ReLU, {keep.sum()} examples"
)
print(r)
assert r.passed and gradcheck.rel_error(backward3(pd), deep.loss_and_grad(pd, Xd, yd)[1]) < 1e-13

# %% [markdown]
# ## Exercise 3: rows of the cross-entropy $\delta_L$ sum to zero
#
# Row $i$ is $\tfrac1n(p_i - e_{y_i})$, and $\sum_c p_{ic} = 1 = \sum_c (e_{y_i})_c$, so it sums to 0.
# The output-bias gradient is $\mathbf 1^\top\delta_L$, so **its entries sum to zero too**: gradient
# descent never changes the sum of the output biases (softmax does not change when the same constant
# is added to every logit). When all labels equal $c$, the gradient is
# $\bar p - e_c$ with $\bar p$ the mean predicted distribution: negative in entry $c$, positive in
# every other, so descent raises $b_c$ and lowers the rest, and keeps doing so: the loss tends to 0
# only as $b_c - b_j \to \infty$, there is no minimum at finite parameters.

# %%
ce = LOSSES["cross_entropy"]
out = rng.standard_normal((n, 4))
labels = np.full(n, 2)
delta = ce.grad(out, labels)
gb = delta.sum(axis=0)
print("row sums:", np.abs(delta.sum(axis=1)).max(), " output-bias gradient:", np.round(gb, 4))
assert np.abs(delta.sum(axis=1)).max() < 1e-15 and abs(gb.sum()) < 1e-15
assert gb[2] < 0 and np.all(np.delete(gb, 2) > 0)

# %% [markdown]
# ## Exercise 4: the MSE with a factor $\tfrac{1}{2n}$
#
# Only the start of the backward pass changes: `d2 = 2.0 * (yhat - y) / len(X)` becomes
# `d2 = (yhat - y) / len(X)`. The unchanged code returns exactly twice the new gradient, so its
# relative error is $\lVert 2a - a\rVert/(\lVert 2a\rVert + \lVert a\rVert) = 1/3$.

# %%


def backward_2layer(p, factor):
    (W1, b1), (W2, b2) = net.unflatten(p)
    a1 = np.tanh(X @ W1 + b1)
    d2 = factor * (a1 @ W2 + b2 - y) / len(X)
    d1 = (1.0 - a1**2) * (d2 @ W2.T)
    return np.concatenate([(X.T @ d1).ravel(), d1.sum(0), (a1.T @ d2).ravel(), d2.sum(0)])


half_mse = lambda p: 0.5 * net.loss(p, X, y)  # noqa: E731
new = gradcheck.check_grad(half_mse, lambda p: backward_2layer(p, 1.0), phi, name="changed line")
old = gradcheck.check_grad(half_mse, lambda p: backward_2layer(p, 2.0), phi, name="unchanged code")
print(new)
print(old)
assert new.passed and abs(old.error - 1 / 3) < 1e-6
