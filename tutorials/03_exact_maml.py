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
# # 3. Exact MAML
#
# Model-agnostic meta-learning (Finn, Abbeel & Levine, 2017) looks for initial parameters
# $\varphi$ from which a few gradient steps on a new task's small training set give low loss
# on that task's test set. Its gradient differentiates *through* those gradient steps, so it
# contains second derivatives of the loss. This tutorial derives the exact meta-gradient as a
# product of $(I - \alpha H_i)$ factors, computes it right to left with the Hessian-vector
# products of tutorial 2, and checks it against finite differences of the whole
# meta-objective. The first-order approximation serves as the negative control.

# %%
import os
import time

import numpy as np

import tinymeta as tm
from tinymeta import gradcheck

FAST = os.environ.get("TINYMETA_FAST") == "1"  # CI runs a shorter version; the default is the full one
rng = np.random.default_rng(3)

# %% [markdown]
# ## Tasks and the inner update
#
# A task $\tau$ comes with two data sets, the papers' $A$ and $B$: a *support* set for
# adaptation and a *query* set for evaluation. Here, the sine-wave regression tasks of the
# MAML paper: $y = A \sin(x - p)$ with random amplitude and phase, 10 support and 10 query
# points (`tinymeta.Sine`). The inner update is $k$ steps of full-batch gradient descent on
# the support loss $L_A$ with step size $\alpha$:
#
# $$
# \varphi_0 = \varphi, \qquad \varphi_{i+1} = \varphi_i - \alpha \nabla L_A(\varphi_i) \quad (i = 0, \dots, k-1),
# \qquad U^k_A(\varphi) = \varphi_k.
# \tag{3.1}
# $$
#
# This indexing, $\varphi_0 = \varphi$ and step $i$ starting at $\varphi_i$, is the one used
# everywhere in tinymeta (the notation page relates it to the papers'). The cell below checks
# that `tm.adapt_trajectory` is (3.1) written out. It returns all iterates $\varphi_0, \dots, \varphi_k$ as the rows of a
# $(k+1, P)$ array; `tm.adapt` returns the last one. We use a 1-20-20-1 tanh network, small
# enough for explicit Hessians, and the MAML paper's $\alpha = 0.01$.

# %%
net = tm.MLP([1, 20, 20, 1], "tanh")
phi = net.init(rng)
task = tm.Sine(K=10, K_query=10).sample(rng, 1)[0]
xs, ys, xq, yq = task  # support (A) and query (B) sets, each of shape (10, 1)
alpha = 0.01

traj = tm.adapt_trajectory(net, phi, xs, ys, alpha, 3)
by_hand = [phi]
for _ in range(3):  # (3.1), written out
    by_hand.append(by_hand[-1] - alpha * net.loss_and_grad(by_hand[-1], xs, ys)[1])
assert gradcheck.rel_error(traj, np.array(by_hand)) < 1e-15  # the same arithmetic: equal to round-off
print("trajectory shape:", traj.shape, "(k + 1, P)")
print("support loss along the trajectory:", [round(net.loss(p, xs, ys), 4) for p in traj])

# %% [markdown]
# ## The meta-objective
#
# MAML scores $\varphi$ by the query loss *after* adaptation:
#
# $$
# F_\tau(\varphi) = L_B\big(U^k_A(\varphi)\big),
# \qquad
# \text{minimise } \ \mathbb E_\tau\big[F_\tau(\varphi)\big]
# \qquad \text{(definition)}.
# \tag{3.2}
# $$
#
# `tm.meta_objective(net, phi, task, alpha, k)` evaluates $F$ for one task. It is an ordinary
# function of $\varphi$, so it can be differenced: that is the reference every meta-gradient
# below is checked against.

# %%
for k in range(4):
    print(f"k = {k}: F(phi) = {tm.meta_objective(net, phi, task, alpha, k):.5f}")

# %% [markdown]
# ## The Jacobian of the inner update
#
# One step $\varphi_{i+1} = \varphi_i - \alpha \nabla L_A(\varphi_i)$ has Jacobian
# $\partial \varphi_{i+1} / \partial \varphi_i = I - \alpha H_i$ with $H_i = \nabla^2 L_A(\varphi_i)$,
# the support-loss Hessian *at the $i$-th iterate*. By the chain rule, the Jacobian of $k$ steps is
# the product, latest step on the left:
#
# $$
# \frac{\partial U^k_A}{\partial \varphi} = (I - \alpha H_{k-1}) (I - \alpha H_{k-2}) \cdots (I - \alpha H_0).
# $$
#
# For a small network we can form it with `net.hessian` and compare it with the
# finite-difference Jacobian of `tm.adapt`. (`gradcheck.numerical_grad` of a vector function
# returns the transposed Jacobian, row $j$ being $\partial U / \partial \varphi_j$; each factor is
# symmetric, so the transpose is the same product in the reverse order.)


# %%
def jacobian_transpose(phi, k):
    """(I - alpha H_0)(I - alpha H_1) ... (I - alpha H_{k-1}), formed explicitly: shape (P, P)."""
    traj = tm.adapt_trajectory(net, phi, xs, ys, alpha, k)
    JT = np.eye(net.num_params)
    for i in range(k):
        JT = JT @ (np.eye(net.num_params) - alpha * net.hessian(traj[i], xs, ys))
    return JT


for k in (1, 2) if FAST else (1, 2, 3):
    r = gradcheck.check_grad(
        lambda p, k=k: tm.adapt(net, p, xs, ys, alpha, k),
        lambda p, k=k: jacobian_transpose(p, k),
        phi,
        name=f"Jacobian of U^{k} as a product of (I - alpha H_i)",
    )
    print(r)
    assert r.passed

# %% [markdown]
# ## The exact meta-gradient, right to left
#
# The chain rule on (3.2) multiplies the transposed Jacobian with the query gradient at the
# adapted parameters:
#
# $$
# \begin{aligned}
# g_{\text{MAML}} = \nabla F_\tau(\varphi)
#   &= \Big(\frac{\partial U^k_A}{\partial \varphi}\Big)^{\!\top} \nabla L_B(\varphi_k) \cr
#   &= (I - \alpha H_0)(I - \alpha H_1) \cdots (I - \alpha H_{k-1})\, \nabla L_B(\varphi_k).
# \end{aligned}
# \tag{3.3}
# $$
#
# Evaluated left to right, (3.3) would need $k$ Hessians ($O(P^2)$ memory each) and
# $k - 1$ matrix-matrix products ($O(P^3)$). Evaluated right to left it needs only
# matrix-*vector* products, i.e. Hessian-vector products:
#
# $$
# v \leftarrow \nabla L_B(\varphi_k); \qquad v \leftarrow v - \alpha H_i v \quad \text{for } i = k-1, k-2, \dots, 0; \qquad g_{\text{MAML}} = v.
# $$
#
# This is reverse-mode differentiation of the inner loop, done by hand: $k$ HVPs, each at
# the iterate $\varphi_i$ of the forward pass. Those iterates must be stored, so the memory is
# $O(kP)$ for the trajectory. Here are the lines, next to `tm.maml_grad`, which is the same
# loop:


# %%
def maml_grad_by_hand(phi, k):
    traj = tm.adapt_trajectory(net, phi, xs, ys, alpha, k)  # phi_0 .. phi_k, (3.1)
    v = net.loss_and_grad(traj[-1], xq, yq)[1]  # grad L_B(phi_k)
    for i in range(k - 1, -1, -1):  # right to left, (3.3)
        v = v - alpha * net.hvp(traj[i], xs, ys, v)
    return v


for k in (1, 2, 3):
    ours, lib = maml_grad_by_hand(phi, k), tm.maml_grad(net, phi, task, alpha, k)
    explicit = jacobian_transpose(phi, k) @ net.loss_and_grad(tm.adapt(net, phi, xs, ys, alpha, k), xq, yq)[1]
    print(
        f"k = {k}: by hand vs tm.maml_grad {gradcheck.rel_error(ours, lib):.1e}, "
        f"vs the explicit product {gradcheck.rel_error(ours, explicit):.1e}"
    )
    assert gradcheck.rel_error(ours, lib) < 1e-15  # identical loop
    assert gradcheck.rel_error(ours, explicit) < 1e-12  # same product, other association: round-off

# %% [markdown]
# ## The check that matters: differences of the whole meta-objective
#
# The comparisons above hold the implementation against the derivation. The derivation
# itself is checked by differencing $F_\tau(\varphi) = L_B(U^k_A(\varphi))$, the
# function we actually want to minimise, in every coordinate of $\varphi$. A missing or
# misplaced factor anywhere in (3.1)–(3.3), or in the HVP, would show up here. Tolerance: the
# default $10^{-6}$; $F$ is smooth (tanh), so a correct gradient lands near $10^{-10}$ (tutorial 0).

# %%
maml_reports = {}
for k in (1, 2, 3):
    F = lambda p, k=k: tm.meta_objective(net, p, task, alpha, k)
    maml_reports[k] = gradcheck.check_grad(
        F, lambda p, k=k: tm.maml_grad(net, p, task, alpha, k), phi, name=f"exact MAML gradient, k={k}"
    )
    print(maml_reports[k])
    assert maml_reports[k].passed

# %% [markdown]
# The same check, along random directions, for the network of the papers: 1-40-40-1 with
# ReLU, and more inner steps. ReLU's kinks can make a finite difference wrong (tutorial 0),
# so the threshold is the project's ReLU threshold $10^{-4}$; a correct gradient away from
# the kinks still lands many orders of magnitude below it.

# %%
paper_net = tm.MLP([1, 40, 40, 1], "relu")
phi_paper = paper_net.init(rng)
for k in (1, 5) if FAST else (1, 5, 10):
    r = gradcheck.check_directional(
        lambda p, k=k: tm.meta_objective(paper_net, p, task, alpha, k),
        lambda p, k=k: tm.maml_grad(paper_net, p, task, alpha, k),
        phi_paper,
        rng=k,
        threshold=1e-4,
        name=f"1-40-40-1 ReLU exact MAML, k={k}",
    )
    print(r)
    assert r.passed

# %% [markdown]
# ## Memory and time
#
# The right-to-left product stores the trajectory $\varphi_0, \dots, \varphi_{k-1}$ (plus the
# final $\varphi_k$): $(k+1) P$ float64 numbers, growing linearly with $k$, against $k P^2$ for
# the explicit Hessians. Each inner step costs one gradient forward and one HVP backward. The
# times are the best of 3 calls (the first call doubles as a warm-up).

# %%
P = paper_net.num_params
ks = [1, 5, 10] if FAST else [1, 5, 10, 20, 50]
print(f"P = {P}")
print(f"{'k':>3} {'trajectory (k+1, P)':>20} {'its bytes':>10} {'k Hessians':>12} {'maml_grad':>10}")
for k in ks:
    traj_k = tm.adapt_trajectory(paper_net, phi_paper, xs, ys, alpha, k)
    dt = np.inf
    for _ in range(3):  # best of 3: the least disturbed by other load
        t = time.perf_counter()
        tm.maml_grad(paper_net, phi_paper, task, alpha, k)
        dt = min(dt, time.perf_counter() - t)
    print(
        f"{k:3d} {str(traj_k.shape):>20} {traj_k.nbytes / 1e3:8.1f}kB {k * 8 * P * P / 1e6:10.1f}MB {dt * 1e3:8.2f}ms"
    )
    assert traj_k.shape == (k + 1, P) and traj_k.nbytes == 8 * (k + 1) * P

# %% [markdown]
# ## Negative control: first-order MAML
#
# First-order MAML (FOMAML) replaces the Jacobian of the inner update by the identity,
#
# $$
# g_{\text{FOMAML}} = \nabla L_B(\varphi_k)
# \qquad \text{(definition)},
# \tag{3.4}
# $$
#
# the query gradient at the adapted parameters, with no Hessian at all. It is a useful
# algorithm (tutorial 4), but it is *not* the gradient of $F_\tau$, and the check that
# the exact gradient passed must reject it. With $k = 0$ there is no inner step and the two
# coincide.

# %%
fo_errors = []
for k in (1, 2, 3):
    F = lambda p, k=k: tm.meta_objective(net, p, task, alpha, k)
    fo = gradcheck.check_grad(
        F,
        lambda p, k=k: tm.fomaml_grad(net, p, task, alpha, k),
        phi,
        name=f"first-order MAML as the gradient of F, k={k}",
    )
    print(f"{fo}   (exact MAML: {maml_reports[k].error:.1e})")
    assert not fo.passed
    fo_errors.append(fo.error)
assert fo_errors[0] < fo_errors[1] < fo_errors[2]  # the first-order error grows with k

g0_maml, g0_fomaml = tm.maml_grad(net, phi, task, alpha, 0), tm.fomaml_grad(net, phi, task, alpha, 0)
assert np.array_equal(g0_maml, g0_fomaml)  # k = 0: both are grad L_B(phi), bit for bit

# %% [markdown]
# The first-order error grows with $k$ (about linearly here: the printed errors) and with
# $\alpha$: the dropped terms are $\alpha H_i$ products. Tutorial 4 measures it as the relative
# dropped term $\rho$ and shows what it means on average.
#
# ## Summary
#
# * The inner update (3.1) is $k$ gradient steps on the support set; MAML minimises the query
#   loss after them, $F_\tau(\varphi) = L_B(U^k_A(\varphi))$ (3.2). Iterates are indexed from
#   $\varphi_0 = \varphi$, and $H_i$ is the support-loss Hessian at $\varphi_i$.
# * The Jacobian of $k$ steps is $\prod_i (I - \alpha H_i)$, latest step on the left; the exact
#   meta-gradient (3.3) applies its transpose to $\nabla L_B(\varphi_k)$.
# * Right to left, (3.3) costs $k$ Hessian-vector products and $O(kP)$ memory for the trajectory;
#   no Hessian is formed.
# * Checked: the trajectory, the Jacobian product, the right-to-left loop against the explicit
#   product, and the meta-gradient against finite differences of the whole meta-objective for
#   $k = 1, 2, 3$ (and a ReLU 1-40-40-1 network along random directions). FOMAML (3.4) fails
#   that check.
#
# ## Exercises
#
# 1. Memory for large $k$: store only every $m$-th iterate and recompute the others during the
#    backward loop. Write it, check it with `gradcheck`, and count gradients and memory.
# 2. Show that $g_{\text{MAML}} \to \nabla L_B(\varphi)$ as $\alpha \to 0$ for fixed $k$, and find the
#    first-order term in $\alpha$.
# 3. Make the inner step size a parameter: derive $\partial F / \partial \alpha$ (Meta-SGD learns a
#    step size per parameter) and check it with a central difference in $\alpha$.
# 4. Use the cross-entropy loss and a 3-class toy task; does the check still pass with the
#    same threshold?
#
# Classroom exercises `05_maml_k1` and `06_maml_k_steps` (`tinymeta exercises copy DIR` to start,
# `tinymeta exercises check NN FILE` to check; see the instructors' page) are checked versions of
# exercises like these: each checker reports the error it found, the threshold and a hint.
