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
# # Answers to the exercises of tutorial 4 (first-order MAML and Reptile)
#
# Indexing as in the tutorial: mini-batch losses $L_0, \dots, L_{k-1}$, iterates from $\varphi_0 = \varphi$,
# bars at $\varphi_0$, and $\mathbb E[g] = c_0\,\mathrm{AvgGrad} + c_1\,\alpha\,\mathrm{AvgGradInner}$
# with $c_1 \le 0$.

# %%
import numpy as np

import tinymeta as tm
from tinymeta import gradcheck, taylor

rng = np.random.default_rng(4)
tnet = tm.MLP([1, 20, 20, 1], "tanh")
tphi = tnet.init(rng)
x12, y12, _, _ = tm.Sine(K=12, K_query=1).sample(rng, 1)[0]
alphas = np.logspace(-4, -1.5, 8)


def slope(xs, ys):
    return np.polyfit(np.log(xs), np.log(ys), 1)[0]


# %% [markdown]
# ## Exercise 1: the query batch is the inner data itself
#
# Take $k - 1$ inner steps on $L_A$ and then differentiate $L_A$ again. Step 1 of the tutorial
# with every $\bar g_j = \bar g_A$ and $\bar H_j = \bar H_A$ gives
# $g_{k-1} = \bar g_A - (k-1)\alpha\bar H_A\bar g_A$, and the $k-1$ Jacobian factors add
# $-(k-1)\alpha\bar H_A\bar g_A$:
#
# $$
# g_{\mathrm{MAML}} = \bar g_A - 2(k-1)\,\alpha\,\bar H_A\bar g_A + O(\alpha^2).
# $$
#
# The cross term $\mathbb E[\bar H_i\bar g_j]$ between *different* batches is replaced by
# $\bar H_A\bar g_A = \tfrac12\nabla_\varphi\lVert\bar g_A\rVert^2$ (a squared norm, not an inner product
# of two batches). Since the update subtracts the meta-gradient, it moves along
# $\nabla\lVert\bar g_A\rVert^2$ and **increases the squared gradient norm on the same data**: it
# rewards fast descent on the batch it adapts on, which says nothing about other batches of the
# task (no generalisation term). This is the objective $L_A(U^{k-1}_A(\varphi))$, which favours
# sharp, steep regions.

# %%
k = 3
A = (x12[:4], y12[:4])
gA = tnet.loss_and_grad(tphi, *A)[1]
HgA = tnet.hvp(tphi, *A, gA)
res = [
    np.linalg.norm(taylor.maml_grad_sequence(tnet, tphi, [A] * k, a) - (gA - 2 * (k - 1) * a * HgA))
    for a in alphas
]
print(f"remainder slope {slope(alphas, res):.2f} (O(alpha^2): 2)")
assert 1.8 < slope(alphas, res) < 2.2
r = gradcheck.check_grad(
    lambda p: 0.5 * np.sum(tnet.loss_and_grad(p, *A)[1] ** 2),
    lambda p: tnet.hvp(p, *A, tnet.loss_and_grad(p, *A)[1]),
    tphi,
    name="H_A g_A = (1/2) grad ||g_A||^2",
)
print(r)
assert r.passed

# %% [markdown]
# ## Exercise 2: ReLU and the kinks
#
# With ReLU, away from the kinks the loss is smooth along the inner trajectory and the expansion
# holds: the remainder falls at least like $\alpha^2$ (slope 2 or more; a ReLU network's loss is a
# polynomial in $\varphi$ inside a linear region, and some of its higher-order terms can vanish).
# When a mini-batch has a pre-activation within about $\alpha$ times the step length of 0, the inner
# steps carry it across the kink: the gradient jumps, $g(\alpha)$ is not differentiable there, and
# the expansion fails. The remainder then stops shrinking (a slope well below 1 over the range,
# flat where every $\alpha$ crosses). Checked by moving one pre-activation of the 1-20-20-1 ReLU
# network to $10^{-6}$ ($\alpha$ from $10^{-4}$ to $3 \times 10^{-3}$, small enough that no other
# pre-activation is reached).

# %%
relu = tm.MLP([1, 20, 20, 1], "relu")
ralphas = np.logspace(-4, -2.5, 7)
pr = relu.init(rng)
batches = [(x12[i * 4 : (i + 1) * 4], y12[i * 4 : (i + 1) * 4]) for i in range(3)]


def remainder_slopes(p):
    out = {}
    for algo in taylor.ALGORITHMS:
        res = [
            np.linalg.norm(
                taylor.expected_over_orderings(algo, relu, p, batches, a)
                - taylor.taylor_prediction(algo, relu, p, batches, a)
            )
            for a in ralphas
        ]
        out[algo] = slope(ralphas, res)
    return out


(W1, b1), _, _ = relu.unflatten(pr)
z1 = x12 @ W1 + b1
near = pr.copy()
relu.unflatten(near)[0][1][0] += 1e-6 - z1[0, 0]  # example 0, unit 0 now at z = 1e-6
far_s, near_s = remainder_slopes(pr), remainder_slopes(near)
print(f"smallest |z| in layer 1 before the move: {np.abs(z1).min():.1e}")
for algo in taylor.ALGORITHMS:
    print(
        f"{algo:8s} slope away from the kinks {far_s[algo]:.2f}, "
        f"with a pre-activation at 1e-6 {near_s[algo]:.2f}"
    )
assert all(s > 1.8 for s in far_s.values()) and all(s < 1.0 for s in near_s.values())

# %% [markdown]
# ## Exercise 3: Reptile with an Adam inner loop
#
# No: with Adam, $k = 1$ is not joint training. Adam divides each coordinate of the gradient by a
# running root-mean-square. On its first step with $\beta_1 = 0$ (the paper's setting), $\hat v = g^2$
# and the step is $-\alpha\, g/(|g| + \epsilon) \approx -\alpha\operatorname{sign}(g)$; with the state
# carried from task to task, later steps are gradients rescaled coordinate by coordinate by a
# history-dependent factor. Either way the mean over tasks of $\tilde\varphi_j - \varphi$ is not
# proportional to $\nabla\big(\frac1M\sum_j L_{A_j}\big)(\varphi)$, and the finite-difference check
# that SGD passed in the tutorial fails.

# %%
meta_batch = tm.Sine(K=10, K_query=10).sample(rng, 5)
alpha, eps = 0.01, 0.1
joint = lambda p: np.mean([tnet.loss(p, t.x_support, t.y_support) for t in meta_batch])  # noqa: E731
fresh = tm.Adam(alpha, beta1=0.0).init(tnet.num_params)


def adam_direction(p):
    new, _ = tm.reptile_step_adam(tnet, p, meta_batch, alpha, 1, eps, fresh)
    return (p - new) / (eps * alpha)


r = gradcheck.check_grad(
    joint, adam_direction, tphi, name="Reptile k=1, Adam inner loop, as the joint-loss gradient"
)
print(r)
assert not r.passed and r.error > 1e-2
one = tm.reptile_step_adam(tnet, tphi, meta_batch[:1], alpha, 1, 1.0, fresh)[0] - tphi
g0 = tnet.loss_and_grad(tphi, meta_batch[0].x_support, meta_batch[0].y_support)[1]
print(
    f"first Adam step vs -alpha sign(g): max difference {np.abs(one + alpha * np.sign(g0)).max():.1e} "
    f"(alpha = {alpha})"
)
assert np.abs(one + alpha * np.sign(g0)).max() < 1e-3 * alpha

# %% [markdown]
# ## Exercise 4: a quadratic loss
#
# $\nabla L_i(\varphi) = A_i\varphi - b_i$ is affine and $\nabla^2 L_i = A_i$ is constant. With $k = 2$,
# $\varphi_1 = \varphi_0 - \alpha\bar g_0$ and
# $g_{\mathrm{FOMAML}} = \nabla L_1(\varphi_1) = A_1\varphi_0 - b_1 - \alpha A_1\bar g_0
# = \bar g_1 - \alpha\bar H_1\bar g_0$ exactly: no $O(\alpha^2)$ term. (MAML's extra factor
# $(I - \alpha A_0)$ adds an $\alpha^2$ term, so its expansion is not exact.)

# %%
P = 6
Ms = [rng.standard_normal((P, P)) for _ in range(2)]
As = [m @ m.T + np.eye(P) for m in Ms]
bs = [rng.standard_normal(P) for _ in range(2)]
p0 = rng.standard_normal(P)
gbar = [As[i] @ p0 - bs[i] for i in range(2)]
for a in (0.01, 0.1, 0.5):
    p1 = p0 - a * gbar[0]
    fomaml = As[1] @ p1 - bs[1]
    maml = (np.eye(P) - a * As[0]) @ fomaml
    err_fo = gradcheck.rel_error(fomaml, gbar[1] - a * As[1] @ gbar[0])
    err_maml = gradcheck.rel_error(maml, gbar[1] - a * (As[1] @ gbar[0] + As[0] @ gbar[1]))
    print(f"alpha = {a}: FOMAML expansion error {err_fo:.1e}, MAML expansion error {err_maml:.1e}")
    assert err_fo < 1e-14 and err_maml > 1e-6
