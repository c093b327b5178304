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
# # Answers to the exercises of tutorial 3 (exact MAML)

# %%
import numpy as np

import tinymeta as tm
from tinymeta import gradcheck

rng = np.random.default_rng(3)
net = tm.MLP([1, 20, 20, 1], "tanh")
phi = net.init(rng)
task = tm.Sine(K=10, K_query=10).sample(rng, 1)[0]
xs, ys, xq, yq = task
alpha = 0.01


def grad_A(p):
    return net.loss_and_grad(p, xs, ys)[1]


def grad_B(p):
    return net.loss_and_grad(p, xq, yq)[1]


# %% [markdown]
# ## Exercise 1: checkpointing the trajectory
#
# Store only $\varphi_0, \varphi_m, \varphi_{2m}, \dots$ during the forward pass. In the backward loop,
# before the factors of segment $[jm, (j+1)m)$ are needed, recompute its iterates from the stored
# $\varphi_{jm}$ ($m - 1$ gradients), use them right to left, and discard them. Cost: $k$ gradients
# forward, at most $k$ more for the recomputation, one query gradient, $k$ HVPs; memory
# $\lceil k/m\rceil + m$ vectors instead of $k + 1$, smallest ($\approx 2\sqrt k$) for $m \approx \sqrt k$.
# The result is the same product in the same order: equal to `tm.maml_grad` to round-off.

# %%


def maml_grad_checkpointed(p, k, m):
    stored, cur, grads = {0: p}, p, 0
    for i in range(k):  # forward: keep every m-th iterate
        cur = cur - alpha * grad_A(cur)
        grads += 1
        if (i + 1) % m == 0 and i + 1 < k:
            stored[i + 1] = cur
    v = grad_B(cur)
    peak = len(stored)
    for start in sorted(stored, reverse=True):  # segments from the last one back
        seg = [stored[start]]
        for _ in range(start + 1, min(start + m, k)):
            seg.append(seg[-1] - alpha * grad_A(seg[-1]))
            grads += 1
        peak = max(peak, len(stored) + len(seg) - 1)
        for q in reversed(seg):  # right to left within the segment
            v = v - alpha * net.hvp(q, xs, ys, v)
    return v, grads, peak


for k, m in ((9, 3), (16, 4), (10, 1)):
    g, grads, peak = maml_grad_checkpointed(phi, k, m)
    err = gradcheck.rel_error(g, tm.maml_grad(net, phi, task, alpha, k))
    print(f"k = {k:2d}, m = {m}: relative error {err:.1e}, {grads} gradients, at most {peak} stored iterates")
    assert err < 1e-13 and grads <= 2 * k and peak <= -(-k // m) + m

# %% [markdown]
# ## Exercise 2: the limit $\alpha \to 0$
#
# With $\varphi_k = \varphi - k\alpha\nabla L_A(\varphi) + O(\alpha^2)$ and
# $\prod_i (I - \alpha H_i) = I - k\alpha\nabla^2 L_A(\varphi) + O(\alpha^2)$,
#
# $$
# g_{\mathrm{MAML}} = \nabla L_B(\varphi) - k\alpha\big(\nabla^2 L_B(\varphi)\nabla L_A(\varphi)
#   + \nabla^2 L_A(\varphi)\nabla L_B(\varphi)\big) + O(\alpha^2),
# $$
#
# so $g_{\mathrm{MAML}} \to \nabla L_B(\varphi)$, and the first-order term is
# $-k\alpha(H_B \nabla L_A + H_A \nabla L_B)$ (the first part comes from evaluating the query gradient
# at the moved point, the second from the Jacobian). Checked: the error of the first-order
# prediction falls like $\alpha^2$.

# %%
k = 3
first = -k * (net.hvp(phi, xq, yq, grad_A(phi)) + net.hvp(phi, xs, ys, grad_B(phi)))
res = [np.linalg.norm(tm.maml_grad(net, phi, task, a, k) - grad_B(phi) - a * first) for a in (1e-3, 1e-4)]
print(
    f"remainder at alpha = 1e-3, 1e-4: {res[0]:.2e}, {res[1]:.2e} "
    f"(ratio {res[0] / res[1]:.0f}; O(alpha^2) gives 100)"
)
assert 70 < res[0] / res[1] < 130

# %% [markdown]
# ## Exercise 3: the derivative in $\alpha$
#
# Differentiate (3.1) in $\alpha$: $d\varphi_0/d\alpha = 0$ and
# $d\varphi_{i+1}/d\alpha = (I - \alpha H_i)\, d\varphi_i/d\alpha - \nabla L_A(\varphi_i)$. Then
# $\partial F/\partial\alpha = \nabla L_B(\varphi_k)^\top d\varphi_k/d\alpha$, which right to left is
#
# $$
# \frac{\partial F}{\partial \alpha} = -\sum_{i=0}^{k-1} \nabla L_A(\varphi_i)^\top v_{i+1},
# \qquad v_k = \nabla L_B(\varphi_k), \quad v_i = (I - \alpha H_i)\, v_{i+1}:
# $$
#
# the same backward loop as (3.3), plus one inner product per step. (Meta-SGD learns one step size
# per parameter; its gradient is the same sum taken elementwise.) Checked against a central
# difference in $\alpha$.

# %%


def dF_dalpha(p, k):
    traj = tm.adapt_trajectory(net, p, xs, ys, alpha, k)
    v, total = grad_B(traj[-1]), 0.0
    for i in range(k - 1, -1, -1):
        total -= grad_A(traj[i]) @ v  # uses v_{i+1}
        v = v - alpha * net.hvp(traj[i], xs, ys, v)
    return total


h = 1e-6
for k in (1, 3):
    fd = (
        tm.meta_objective(net, phi, task, alpha + h, k) - tm.meta_objective(net, phi, task, alpha - h, k)
    ) / (2 * h)
    err = gradcheck.rel_error(dF_dalpha(phi, k), fd)
    print(
        f"k = {k}: dF/dalpha {dF_dalpha(phi, k):.6e} vs central difference {fd:.6e}: relative error {err:.1e}"
    )
    assert err < 1e-6

# %% [markdown]
# ## Exercise 4: cross-entropy and a 3-class toy task
#
# Yes: the check passes with the same threshold $10^{-6}$. Nothing in the derivation depends on the
# loss except the output-space gradient and Hessian (2.4), which are exact; with a smooth activation
# and float64 the central differences reach $\approx 10^{-10}$ as before.

# %%
net3 = tm.MLP([2, 12, 3], "tanh")
p3 = net3.init(4)
toy = tm.Task(
    rng.standard_normal((9, 2)), rng.integers(0, 3, 9), rng.standard_normal((9, 2)), rng.integers(0, 3, 9)
)
for k in (1, 2):
    r = gradcheck.check_grad(
        lambda p, k=k: tm.meta_objective(net3, p, toy, 0.1, k, "cross_entropy"),
        lambda p, k=k: tm.maml_grad(net3, p, toy, 0.1, k, "cross_entropy"),
        p3,
        name=f"cross-entropy MAML, 3 classes, k={k}",
    )
    print(r)
    assert r.passed
