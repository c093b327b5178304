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
# # Answers to the exercises of tutorial 2 (Hessian-vector products)

# %%
import re
from pathlib import Path

import numpy as np

import tinymeta as tm
from tinymeta import gradcheck
from tinymeta.losses import LOSSES

TUTORIALS = (
    Path(__file__).resolve().parents[3] / "tutorials" if "__file__" in globals() else Path("tutorials")
)
rng = np.random.default_rng(2)
net = tm.MLP([3, 16, 2], "tanh")
phi = net.init(rng)
X, y = rng.standard_normal((12, 3)), rng.standard_normal((12, 2))
s = net.sigma

# %% [markdown]
# ## Exercise 1: power iteration
#
# Repeat $v \leftarrow Hv / \lVert Hv\rVert$; the Rayleigh quotient $v^\top H v$ converges to the
# eigenvalue of largest *magnitude* (if the most negative eigenvalue were larger in magnitude, the
# iteration would find that one; shift by a multiple of $I$ to separate them). Each step is one
# HVP, so this works for any $P$.
#
# Near a minimum the loss is close to the quadratic $\tfrac12 (\varphi - \varphi^\star)^\top H
# (\varphi - \varphi^\star)$; one gradient step multiplies the component along an eigenvector with
# eigenvalue $\lambda$ by $1 - \alpha\lambda$, and $|1 - \alpha\lambda| > 1$ once $\alpha > 2/\lambda$:
# the step along the top eigenvector overshoots and grows. For MAML this bounds the inner step
# size: $\alpha$ must stay below $2/\lambda_{\max}$ of the support-loss Hessians along the inner
# loop, or the inner loop diverges (tinymeta raises `DivergenceError`), and the factors
# $(I - \alpha H_i)$ of the meta-gradient then have eigenvalues of magnitude above 1, so the
# product grows with $k$.

# %%
H = net.hessian(phi, X, y)
v = rng.standard_normal(net.num_params)
for _ in range(500):
    w = net.hvp(phi, X, y, v)
    v = w / np.linalg.norm(w)
lam_power = v @ net.hvp(phi, X, y, v)
eig = np.linalg.eigvalsh(H)
lam_top = eig[np.abs(eig).argmax()]
print(f"power iteration {lam_power:.8f}, eigvalsh (largest magnitude) {lam_top:.8f}")
assert abs(lam_power - lam_top) < 1e-6 * abs(lam_top)

# gradient descent on the quadratic with the positive part of H: stable below 2 / lambda_max only
lam, V = np.linalg.eigh(H)
A = (V * np.maximum(lam, 0)) @ V.T
lmax = lam.max()
x0 = rng.standard_normal(net.num_params)
for factor, stable in ((1.9, True), (2.1, False)):
    x = x0.copy()
    for _ in range(300):
        x = x - factor / lmax * (A @ x)
    print(f"alpha = {factor} / lambda_max: |x| after 300 steps = {np.linalg.norm(x):.2e}")
    assert (np.linalg.norm(x) < np.linalg.norm(x0)) == stable

# %% [markdown]
# ## Exercise 2: the Gauss-Newton vector product
#
# Every term of (2.3) that contains the backpropagated error $\delta_l$ (or $e_l = \delta_{l+1}
# W_{l+1}^\top$) goes: $\mathcal R\{a_{l-1}\}^\top\delta_l$, $\delta_l V_l^\top$ and the $\sigma''$ term.
# What remains is $J^\top H_{\text{out}} J v$ with $J = \partial\hat y/\partial\varphi$. The dropped
# terms are proportional to the residual $\hat y - y$ (for MSE), so the Gauss-Newton product
# approaches $Hv$ as the fit improves: checked by fitting the network (a few hundred gradient steps
# on its 12 points) and measuring $\lVert G v - H v\rVert / \lVert H v\rVert$ before and after.

# %%


def gauss_newton_2layer(p, v):
    (W1, b1), (W2, b2) = net.unflatten(p)
    (V1, c1), (V2, c2) = net.unflatten(v)
    z1 = X @ W1 + b1
    a1 = s.f(z1)
    Rz1 = X @ V1 + c1
    Ryhat = (s.d1(z1) * Rz1) @ W2 + a1 @ V2 + c2  # J v
    Rd2 = 2.0 / len(X) * Ryhat  # H_out J v
    Rd1 = s.d1(z1) * (Rd2 @ W2.T)  # no sigma'' term, no delta_2 V2^T
    return np.concatenate(
        [(X.T @ Rd1).ravel(), Rd1.sum(0), (a1.T @ Rd2).ravel(), Rd2.sum(0)]
    )  # no R{a1}^T delta_2


def jacobian(p):  # J = d yhat / d phi by central differences, shape (n * d_L, P)
    return gradcheck.numerical_grad(lambda q: net.forward(q, X).ravel(), p).T


u = rng.standard_normal(net.num_params)
J = jacobian(phi)
r = gradcheck.CheckReport(
    "Gauss-Newton product vs J^T H_out J v",
    gradcheck.rel_error(gauss_newton_2layer(phi, u), J.T @ (2 / len(X) * (J @ u))),
    1e-6,
)
print(r)
assert r.passed


def gap(p):
    Hu = net.hvp(p, X, y, u)
    return np.linalg.norm(gauss_newton_2layer(p, u) - Hu) / np.linalg.norm(Hu)


p = phi.copy()
before = (net.loss(p, X, y), gap(p))
for _ in range(3000):
    p = p - 0.05 * net.loss_and_grad(p, X, y)[1]
after = (net.loss(p, X, y), gap(p))
print(f"loss {before[0]:.3f} -> {after[0]:.4f}; ||G u - H u|| / ||H u|| {before[1]:.3f} -> {after[1]:.4f}")
assert after[0] < 0.1 * before[0] and after[1] < 0.5 * before[1]

# %% [markdown]
# ## Exercise 3: cross-entropy in `hvp_2layer`
#
# Two lines change: $\delta_2$ becomes the cross-entropy gradient $\tfrac1n(p - \operatorname{onehot}(y))$,
# and $\mathcal R\{\delta_2\}$ the cross-entropy output-space HVP (2.4),
# $\tfrac1n(p_i \odot u_i - p_i(p_i^\top u_i))$ row by row with $u = \mathcal R\{\hat y\}$.

# %%
ce = LOSSES["cross_entropy"]
labels = rng.integers(0, 2, 12)


def hvp_2layer_ce(p, v):
    (W1, b1), (W2, b2) = net.unflatten(p)
    (V1, c1), (V2, c2) = net.unflatten(v)
    z1 = X @ W1 + b1
    a1 = s.f(z1)
    yhat = a1 @ W2 + b2
    d2 = ce.grad(yhat, labels)  # changed
    e1 = d2 @ W2.T
    Rz1 = X @ V1 + c1
    Ra1 = s.d1(z1) * Rz1
    Ryhat = Ra1 @ W2 + a1 @ V2 + c2
    pr = np.exp(yhat - yhat.max(1, keepdims=True))
    pr /= pr.sum(1, keepdims=True)
    Rd2 = (pr * Ryhat - pr * np.sum(pr * Ryhat, 1, keepdims=True)) / len(X)  # changed: (2.4), CE
    RgW2, Rgb2 = Ra1.T @ d2 + a1.T @ Rd2, Rd2.sum(0)
    Rd1 = s.d1(z1) * (Rd2 @ W2.T + d2 @ V2.T) + s.d2(z1) * Rz1 * e1
    return np.concatenate([(X.T @ Rd1).ravel(), Rd1.sum(0), RgW2.ravel(), Rgb2])


r = gradcheck.check_hvp(
    lambda p: net.loss_and_grad(p, X, labels, "cross_entropy")[1],
    hvp_2layer_ce,
    phi,
    u,
    name="cross-entropy hvp_2layer",
)
print(r)
assert (
    r.passed
    and gradcheck.rel_error(hvp_2layer_ce(phi, u), net.hvp(phi, X, labels, u, "cross_entropy")) < 1e-13
)

# %% [markdown]
# ## Exercise 4: counting matrix products
#
# For the two-layer network, the gradient (`backward_2layer` of tutorial 1) takes 5 products: 2 in
# the forward pass, 3 in the backward pass ($a_1^\top\delta_2$, $\delta_2 W_2^\top$, $X^\top\delta_1$).
# `hvp_2layer` takes 11: forward 2, backward 1 (only $e_1 = \delta_2 W_2^\top$ is needed), R-forward 3
# ($X V_1$, $\mathcal R\{a_1\} W_2$, $a_1 V_2$), R-backward 5. In general, for $L$ layers, a gradient
# takes $3L - 1$ products and an HVP $8L - 5$ (the terms with $\mathcal R\{a_0\} = 0$ vanish), a ratio
# of 2.2 for $L = 2$ rising towards $8/3$: "about two gradients", as the timing table of tutorial 2
# shows. The counts below are read from the tutorials' source.

# %%


def count_products(path, function):
    text = path.read_text()
    body = text[text.index(f"def {function}(") :]
    body = body[: body.index("\n\n\n")]
    code = "\n".join(line.split("#")[0] for line in body.splitlines()[1:])
    return len(re.findall(r"@", code))


n_grad = count_products(TUTORIALS / "01_backprop.py", "backward_2layer")
n_hvp = count_products(TUTORIALS / "02_hessian_vector_products.py", "hvp_2layer")
print(f"matrix products: gradient {n_grad}, HVP {n_hvp} (ratio {n_hvp / n_grad:.1f})")
assert (n_grad, n_hvp) == (5, 11) and (n_grad, n_hvp) == (3 * 2 - 1, 8 * 2 - 5)
