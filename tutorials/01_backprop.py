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
# # 1. Backpropagation through an MLP by hand
#
# Meta-learning differentiates *through* gradient descent, so it needs the gradient of the
# network to be exact, cheap and understood. This tutorial derives backpropagation for a
# multilayer perceptron as a chain of vector-Jacobian products (VJPs), one per layer, writes
# the backward pass of a two-layer network in a handful of NumPy lines, and checks every
# step against finite differences with `tinymeta.gradcheck` (tutorial 0).

# %%
import os
import time

import numpy as np

import tinymeta as tm
from tinymeta import gradcheck
from tinymeta.losses import LOSSES

FAST = os.environ.get("TINYMETA_FAST") == "1"  # CI runs a shorter version; the default is the full one
rng = np.random.default_rng(1)

# %% [markdown]
# ## The forward pass
#
# A batch is a matrix $X$ of shape $(n, d_0)$, one example per row. Layer $l = 1, \dots, L$
# has a weight matrix $W_l$ of shape $(d_{l-1}, d_l)$ and a bias $b_l$ of shape $(d_l,)$,
# added to every row. Hidden layers apply an elementwise nonlinearity $\sigma$, the output
# layer none:
#
# $$
# a_0 = X, \qquad z_l = a_{l-1} W_l + b_l, \qquad a_l = \sigma(z_l) \ (l < L), \qquad \hat y = z_L.
# \tag{1.1}
# $$
#
# tinymeta stores all parameters in one flat float64 vector $\varphi$: $W_1$ row-major, then
# $b_1$, then $W_2$, $b_2$, and so on. `net.unflatten(phi)` returns per-layer views, so the
# equations can be written with matrices while the meta-learning code adds and scales plain
# vectors. The network below has one hidden layer of width 16.

# %%
net = tm.MLP([3, 16, 2], "tanh")
phi = net.init(rng)
n = 12
X = rng.standard_normal((n, 3))
y = rng.standard_normal((n, 2))

print(net, "P =", net.num_params)
for l, (W, b) in enumerate(net.unflatten(phi), start=1):
    print(f"layer {l}: W{l} {W.shape}, b{l} {b.shape}")

# %%
(W1, b1), (W2, b2) = net.unflatten(phi)
z1 = X @ W1 + b1  # (1.1), shape (n, 16)
a1 = np.tanh(z1)
yhat = a1 @ W2 + b2  # the output layer is linear
print("max |ours - net.forward| =", np.abs(yhat - net.forward(phi, X)).max())
assert gradcheck.rel_error(yhat, net.forward(phi, X)) < 1e-14  # same operations: equal to round-off

# %% [markdown]
# ## Where the backward pass starts: $\partial L / \partial \hat y$
#
# tinymeta's regression loss is the mean over examples of the squared error summed over
# outputs (no factor $\tfrac12$):
#
# $$
# L = \frac1n \sum_{i=1}^n \lVert \hat y_i - y_i \rVert^2
# \quad\Longrightarrow\quad
# \delta_L := \frac{\partial L}{\partial \hat y} = \frac{2}{n} (\hat y - y).
# $$
#
# For classification with integer labels $y_i$ and $p_i = \operatorname{softmax}(\hat y_i)$,
# $L = \frac1n \sum_i \big(\log \sum_c e^{\hat y_{ic}} - \hat y_{i y_i}\big)$. The derivative of
# the log-sum-exp is the softmax, so
#
# $$
# \delta_L = \frac1n \big(p - \operatorname{onehot}(y)\big).
# $$
#
# Both are functions of the output only; we check them as such.

# %%
labels = rng.integers(0, 2, size=n)
for name, target in (("mse", y), ("cross_entropy", labels)):
    fn = LOSSES[name]
    r = gradcheck.check_grad(
        lambda out, fn=fn, t=target: fn.value(out, t),
        lambda out, fn=fn, t=target: fn.grad(out, t),
        yhat,
        name=f"dL/dyhat of {name}",
    )
    print(r)
    assert r.passed

# %% [markdown]
# ## The vector-Jacobian product of one layer
#
# Backpropagation never forms a Jacobian. Each layer receives the gradient of the loss with
# respect to its output, $\delta = \partial L / \partial z$, and returns the gradients with
# respect to its inputs and parameters: a vector-Jacobian product.
#
# **Affine map** $z = a W + b$ with $a$ of shape $(n, d_{\text{in}})$. Write the change of
# the loss as a Frobenius inner product, $dL = \langle \delta, dz \rangle = \operatorname{tr}(\delta^\top dz)$,
# and differentiate the map: $dz = da\, W + a\, dW + \mathbf 1\, db^\top$. Then
#
# $$
# dL = \operatorname{tr}(\delta^\top a\, dW) + \operatorname{tr}(\delta^\top \mathbf 1\, db^\top)
#    + \operatorname{tr}(\delta^\top da\, W)
#    = \langle a^\top \delta, dW \rangle + \langle \mathbf 1^\top \delta, db \rangle
#    + \langle \delta W^\top, da \rangle,
# $$
#
# and reading off the coefficients,
# $\partial L / \partial W = a^\top \delta$ (shape $(d_{\text{in}}, d_{\text{out}})$, like $W$),
# $\partial L / \partial b = \mathbf 1^\top \delta$ (the column sums) and
# $\partial L / \partial a = \delta W^\top$.
#
# **Elementwise nonlinearity** $a = \sigma(z)$: each entry depends only on its own input, so
# $\partial L / \partial z = \sigma'(z) \odot \partial L / \partial a$.
#
# Chaining the two from the output down, with $\delta_l = \partial L / \partial z_l$:
#
# $$
# \frac{\partial L}{\partial W_l} = a_{l-1}^\top \delta_l, \qquad
# \frac{\partial L}{\partial b_l} = \mathbf 1^\top \delta_l, \qquad
# \delta_{l-1} = \sigma'(z_{l-1}) \odot \big(\delta_l W_l^\top\big).
# \tag{1.2}
# $$
#
# A VJP with "upstream" gradient $G$ is the gradient of the scalar $\langle G, f(x) \rangle$,
# so each rule can be checked on its own with a random $G$ before we chain them.

# %%
a, W, b = rng.standard_normal((n, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
z = rng.standard_normal((n, 4))
G3, G4 = rng.standard_normal((n, 3)), rng.standard_normal((n, 4))
sigma = net.sigma  # tanh: .f, .d1 = sigma', .d2 = sigma''

vjp_checks = [
    gradcheck.check_grad(
        lambda W_: np.sum(G3 * (a @ W_ + b)), lambda W_: a.T @ G3, W, name="dL/dW = a^T delta"
    ),
    gradcheck.check_grad(
        lambda b_: np.sum(G3 * (a @ W + b_)), lambda b_: G3.sum(axis=0), b, name="dL/db = 1^T delta"
    ),
    gradcheck.check_grad(
        lambda a_: np.sum(G3 * (a_ @ W + b)), lambda a_: G3 @ W.T, a, name="dL/da = delta W^T"
    ),
    gradcheck.check_grad(
        lambda z_: np.sum(G4 * sigma.f(z_)), lambda z_: sigma.d1(z_) * G4, z, name="dL/dz = sigma'(z) * dL/da"
    ),
]
for r in vjp_checks:
    print(r)
    assert r.passed

# %% [markdown]
# ## The whole backward pass in a few lines
#
# For the two-layer network, (1.2) is five lines. They reuse $z_1$, $a_1$ and $\hat y$ from
# the forward pass: backpropagation trades memory (the stored activations) for time.


# %%
def backward_2layer(phi, X, y):
    """Gradient of the MSE loss of a tanh [d0, d1, d2] network, eq. (1.2), as a flat vector."""
    (W1, b1), (W2, b2) = net.unflatten(phi)
    z1 = X @ W1 + b1
    a1 = np.tanh(z1)
    yhat = a1 @ W2 + b2
    d2 = 2.0 * (yhat - y) / len(X)  # delta_2 = dL/dyhat
    gW2, gb2 = a1.T @ d2, d2.sum(axis=0)  # dL/dW2 = a1^T delta_2, dL/db2 = 1^T delta_2
    d1 = (1.0 - a1**2) * (d2 @ W2.T)  # delta_1 = sigma'(z1) * (delta_2 W2^T); tanh' = 1 - tanh^2
    gW1, gb1 = X.T @ d1, d1.sum(axis=0)
    return np.concatenate([gW1.ravel(), gb1, gW2.ravel(), gb2])  # tinymeta's flat layout


g_ours = backward_2layer(phi, X, y)
_, g_lib = net.loss_and_grad(phi, X, y)
print(f"ours vs net.loss_and_grad: relative error {gradcheck.rel_error(g_ours, g_lib):.1e}")
assert gradcheck.rel_error(g_ours, g_lib) < 1e-13  # same formulas, summed in the same order: round-off only

report = gradcheck.check_grad(
    lambda p: net.loss(p, X, y), lambda p: backward_2layer(p, X, y), phi, name="hand-written backward"
)
print(report)
assert report.passed

# %% [markdown]
# **Negative control.** Forgetting the factor $\sigma'(z_1)$, the most common slip in a hand
# written backward pass, gives a vector of the right shape and roughly the right size, and
# the check catches it at once.


# %%
def backward_without_sigma_prime(phi, X, y):
    (W1, b1), (W2, b2) = net.unflatten(phi)
    a1 = np.tanh(X @ W1 + b1)
    d2 = 2.0 * (a1 @ W2 + b2 - y) / len(X)
    d1 = d2 @ W2.T  # BUG: sigma'(z1) missing
    return np.concatenate([(X.T @ d1).ravel(), d1.sum(axis=0), (a1.T @ d2).ravel(), d2.sum(axis=0)])


bad = gradcheck.check_grad(
    lambda p: net.loss(p, X, y),
    lambda p: backward_without_sigma_prime(p, X, y),
    phi,
    name="backward without sigma'",
)
print(bad)
assert not bad.passed

# %% [markdown]
# ## Deeper networks, other activations, cross-entropy
#
# `MLP.loss_and_grad` runs the same recursion (1.2) over any number of layers, with the
# activation's derivative `sigma.d1` and the loss's `grad`. `gradcheck.check_model` compares
# it with central differences of `MLP.loss` in every coordinate. Smooth activations only
# here: ReLU networks need inputs away from the kinks (tutorial 0).

# %%
configs = [
    ([4, 16, 16, 3], "softplus", "cross_entropy"),
    ([4, 16, 16, 3], "sigmoid", "mse"),
    ([1, 40, 40, 1], "tanh", "mse"),
]
for sizes, act, loss in configs[: 2 if FAST else 3]:
    deep = tm.MLP(sizes, act)
    p = deep.init(rng)
    Xd = rng.standard_normal((20, sizes[0]))
    yd = rng.integers(0, sizes[-1], 20) if loss == "cross_entropy" else rng.standard_normal((20, sizes[-1]))
    r = gradcheck.check_model(deep, p, Xd, yd, loss)
    print(r)
    assert r.passed

# %% [markdown]
# ## What backpropagation buys
#
# The finite-difference gradient costs $2P$ loss evaluations. The backward pass costs about
# two more matrix products per layer than the forward pass, whatever $P$ is. For the
# 1-40-40-1 network of the sine experiments ($P = 1761$), timed after one warm-up call of each
# function (the first call of a NumPy routine can include one-off setup costs, which are not
# counted):

# %%
sine_net = tm.MLP([1, 40, 40, 1], "tanh")
p = sine_net.init(rng)
Xs, ys = rng.uniform(-5, 5, (10, 1)), rng.standard_normal((10, 1))
reps = 20 if FAST else 200


def per_call(fn, reps):
    fn()  # warm-up, not timed
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


t_loss = per_call(lambda: sine_net.loss(p, Xs, ys), reps)
t_grad = per_call(lambda: sine_net.loss_and_grad(p, Xs, ys), reps)
t_fd = per_call(lambda: gradcheck.numerical_grad(lambda q: sine_net.loss(q, Xs, ys), p), 1)
print(
    f"loss {t_loss * 1e6:7.1f} us | loss and gradient {t_grad * 1e6:7.1f} us "
    f"| central differences {t_fd * 1e3:7.1f} ms ({t_fd / t_grad:.0f}x the backward pass)"
)
assert t_fd > 100 * t_grad  # 2P = 3522 loss evaluations against one backward pass

# %% [markdown]
# (Timings depend on the machine. Central differences need $2P$ loss evaluations, so their cost
# relative to one backward pass grows linearly with $P$.)
#
# ## Summary
#
# * Forward (1.1): $z_l = a_{l-1} W_l + b_l$, $a_l = \sigma(z_l)$, $\hat y = z_L$, on a batch of
#   rows, with all parameters in one flat vector $\varphi$.
# * Each layer's VJP follows from $dL = \langle \delta, dz \rangle$: $a^\top \delta$,
#   $\mathbf 1^\top \delta$ and $\delta W^\top$, then $\sigma'(z) \odot$ through the nonlinearity (1.2).
# * The output gradient is $\frac2n(\hat y - y)$ for tinymeta's MSE and
#   $\frac1n(p - \operatorname{onehot}(y))$ for softmax cross-entropy.
# * Every rule was checked on its own (random upstream gradient), then the whole backward pass,
#   then a deliberately broken one, which failed.
#
# ## Exercises
#
# 1. Derive the gradient of the loss with respect to the *input* $X$ and check it with
#    `gradcheck.check_grad`. `backward_2layer` does not compute it: which line would you add,
#    and why does backpropagation for $\nabla L(\varphi)$ never need it?
# 2. Extend `backward_2layer` to three layers with a `relu` hidden activation, and check it on
#    inputs whose pre-activations stay away from 0.
# 3. Show that each row of the cross-entropy $\delta_L$ sums to zero. What does that imply
#    for the gradient of the output bias when all labels are equal?
# 4. Replace the MSE with $\frac{1}{2n}\sum_i \lVert \hat y_i - y_i \rVert^2$. Which single line
#    changes, and by how much does the relative error of the *unchanged* code grow?
#
# Classroom exercises `02_dense_vjp` and `03_mlp_backward` (`tinymeta exercises copy DIR` to start,
# `tinymeta exercises check NN FILE` to check; see the instructors' page) are checked versions of
# exercises like these: each checker reports the error it found, the threshold and a hint.
