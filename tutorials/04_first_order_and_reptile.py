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
# # 4. First-order MAML and Reptile
#
# Exact MAML (tutorial 3) costs one Hessian-vector product per inner step and stores the
# whole inner trajectory. Two first-order algorithms avoid both: first-order MAML (Finn et
# al., 2017) and Reptile (Nichol, Achiam & Schulman, 2018). This tutorial measures what each
# drops, shows that Reptile with one inner step is ordinary joint training, and derives and
# verifies the Taylor-series analysis of the Reptile paper (Sec. 5), which explains why all
# three algorithms nevertheless learn the same kind of initialisation.

# %%
import itertools
import os

import matplotlib.pyplot as plt
import numpy as np

import tinymeta as tm
from tinymeta import gradcheck, taylor

FAST = os.environ.get("TINYMETA_FAST") == "1"  # CI runs a shorter version; the default is the full one
rng = np.random.default_rng(4)

# %% [markdown]
# ## What first-order MAML drops
#
# First-order MAML (3.4) keeps only the query gradient at the adapted parameters,
# $g_{\text{FOMAML}} = \nabla L_B(\varphi_k)$, and treats the Jacobian
# $\prod_i (I - \alpha H_i)$ of the inner loop in (3.3) as the identity. Expanding the product,
#
# $$
# \begin{aligned}
# g_{\text{MAML}} - g_{\text{FOMAML}}
#   &= \big[(I - \alpha H_0) \cdots (I - \alpha H_{k-1}) - I\big]\, \nabla L_B(\varphi_k) \cr
#   &= -\alpha \sum_{i=0}^{k-1} H_i\, \nabla L_B(\varphi_k) + O(\alpha^2),
# \end{aligned}
# $$
#
# so the dropped term is $O(k\alpha)$ relative to the gradient, and as $\alpha \to 0$ (where
# every $H_i \to \nabla^2 L_A(\varphi)$ and $\varphi_k \to \varphi$)
#
# $$
# \frac{g_{\text{FOMAML}} - g_{\text{MAML}}}{\alpha} \longrightarrow k\, \nabla^2 L_A(\varphi)\, \nabla L_B(\varphi).
# $$
#
# One number says how much is dropped, the **relative dropped term** of the notation page,
#
# $$
# \rho = \frac{\lVert g_{\text{MAML}} - g_{\text{FOMAML}} \rVert}{\lVert g_{\text{MAML}} \rVert}
# \qquad \text{(definition)},
# $$
#
# returned by `tm.dropped_term(net, phi, task, alpha, k)` as its second value. We plot $\rho$
# against $\alpha$ for the papers' 1-40-40-1 ReLU network on one sine task: the expansion says
# slope 1 on log-log axes while $\alpha$ is small.

# %%
net = tm.MLP([1, 40, 40, 1], "relu")
phi = net.init(rng)
task = tm.Sine(K=10, K_query=10).sample(rng, 1)[0]
alphas = np.logspace(-5, -1, 9 if FAST else 17)
ks = (1, 2, 5)
dropped = {k: np.array([tm.dropped_term(net, phi, task, a, k)[1] for a in alphas]) for k in ks}

small = alphas <= 1e-3  # where the O(alpha) term dominates
fig, ax = plt.subplots(figsize=(6, 4))
for k in ks:
    s = np.polyfit(np.log(alphas[small]), np.log(dropped[k][small]), 1)[0]
    ax.loglog(alphas, dropped[k], "o-", ms=3, label=f"k = {k} (slope {s:.2f} for alpha <= 1e-3)")
    assert 0.9 < s < 1.1  # the dropped term is O(alpha): slope 1
ax.axvline(0.01, color="gray", lw=0.8, ls=":")
ax.text(
    0.0085,
    0.03,
    "MAML paper's alpha",
    fontsize=8,
    color="gray",
    ha="right",
    transform=ax.get_xaxis_transform(),
)
ax.set_xlabel("inner step size alpha")
ax.set_ylabel("rho = ||g_MAML - g_FOMAML|| / ||g_MAML||")
ax.set_title("What first-order MAML drops (1-40-40-1 ReLU, one sine task)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **How much, at the MAML paper's $\alpha = 0.01$.** One task says little; the cell below takes
# 100 random sine tasks at the initialisation `net.init(0)` and prints the median of $\rho$ with
# its quartiles. (These are the figures quoted on the derivations page; the test suite recomputes
# them.) With one inner step first-order MAML drops about a third of the exact gradient; with
# five, a term about as large as the gradient itself.

# %%
phi0 = net.init(0)
tasks100 = tm.Sine(K=10, K_query=10).sample(np.random.default_rng(0), 100)
rho_median = {}
print("alpha = 0.01, 100 sine tasks at net.init(0):")
for k in ks:
    q1, med, q3 = np.percentile([tm.dropped_term(net, phi0, t, 0.01, k)[1] for t in tasks100], [25, 50, 75])
    rho_median[k] = med
    print(f"  k = {k}: median rho {med:.2f} (quartiles {q1:.2f} to {q3:.2f})")
assert 0.25 < rho_median[1] < 0.45  # about a third
assert 0.8 < rho_median[5] < 1.5  # about the size of the gradient
assert rho_median[1] < rho_median[2] < rho_median[5]  # growing with k

# %% [markdown]
# The small-$\alpha$ limit checks the expansion itself: the difference quotient should
# approach $k\, \nabla^2 L_A(\varphi) \nabla L_B(\varphi)$ with an error that is itself $O(\alpha)$,
# falling 100-fold per 100-fold decrease of $\alpha$.

# %%
xs, ys, xq, yq = task
grad_B = net.loss_and_grad(phi, xq, yq)[1]
for k in ks:
    limit = k * net.hvp(phi, xs, ys, grad_B)
    errs = []
    for a in (1e-4, 1e-6):
        quotient = (tm.fomaml_grad(net, phi, task, a, k) - tm.maml_grad(net, phi, task, a, k)) / a
        errs.append(gradcheck.rel_error(quotient, limit))
    print(
        f"k = {k}: (g_FOMAML - g_MAML)/alpha vs k hess L_A grad L_B: relative error {errs[0]:.1e} "
        f"at alpha = 1e-4, {errs[1]:.1e} at alpha = 1e-6"
    )
    assert 0.5e-2 < errs[1] / errs[0] < 2e-2  # O(alpha): the error shrinks about 100-fold

# %% [markdown]
# ## Reptile
#
# Reptile uses no query set and no derivative of the inner loop. For each task of a
# meta-batch $\tau_1, \dots, \tau_M$ it runs $k$ steps of SGD (or Adam) from $\varphi$ on the
# task's data, giving $\tilde\varphi_j$, then moves $\varphi$ towards the adapted parameters:
#
# $$
# \varphi \leftarrow \varphi + \varepsilon \, \frac1M \sum_{j=1}^M \big(\tilde\varphi_j - \varphi\big).
# \tag{4.1}
# $$
#
# With SGD inner steps, $\tilde\varphi - \varphi = -\alpha \sum_i g_i$ where $g_i$ is the gradient of
# the $i$-th inner step at its own iterate, so $g_{\text{Reptile}} := (\varphi - \tilde\varphi)/\alpha = \sum_i g_i$
# acts as a gradient with outer step size $\varepsilon\alpha$. The first cell below checks
# `tm.reptile_step` against (4.1) written out with `tm.adapt` (tutorial 3).
#
# ## Reptile with $k = 1$ is joint training
#
# With a single inner step, $\tilde\varphi_j - \varphi = -\alpha \nabla L_{A_j}(\varphi)$, where
# $L_{A_j}$ is the support loss of task $\tau_j$, and (4.1) becomes
#
# $$
# \varphi \leftarrow \varphi - \varepsilon\alpha \, \frac1M \sum_{j=1}^M \nabla L_{A_j}(\varphi)
#  = \varphi - \varepsilon\alpha \, \nabla \Big(\frac1M \sum_{j=1}^M L_{A_j}\Big)(\varphi),
# \tag{4.2}
# $$
#
# one SGD step on the average task loss: joint training ("pre-training") on all tasks
# mixed together, which meta-learns nothing. We check that the Reptile direction
# $(\varphi - \varphi_{\text{new}})/(\varepsilon\alpha)$ is the gradient of the joint loss by
# finite differences of that loss, and that with $k = 2$ it is not (the negative control;
# the direction is divided by $k$ so that the first-order parts agree).

# %%
meta_batch = tm.Sine(K=10, K_query=10).sample(rng, 5)  # M = 5 tasks
alpha, eps = 0.01, 0.1

by_hand = phi + eps * np.mean(
    [tm.adapt(net, phi, t.x_support, t.y_support, alpha, 3) - phi for t in meta_batch], axis=0
)
err = gradcheck.rel_error(tm.reptile_step(net, phi, meta_batch, alpha, 3, eps), by_hand)
print(f"tm.reptile_step vs (4.1) written out, k = 3: relative error {err:.1e}")
assert err < 1e-14  # the same arithmetic: round-off only


def joint_loss(p):
    return np.mean([net.loss(p, t.x_support, t.y_support) for t in meta_batch])


def reptile_direction(p, k):
    return (p - tm.reptile_step(net, p, meta_batch, alpha, k, eps)) / (eps * alpha * k)


small_net = tm.MLP([1, 20, 20, 1], "tanh")  # coordinate-wise differences: P = 481, smooth activation
psmall = small_net.init(rng)
joint_small = lambda p: np.mean([small_net.loss(p, t.x_support, t.y_support) for t in meta_batch])
for k in (1, 2):
    r = gradcheck.check_grad(
        joint_small,
        lambda p, k=k: (p - tm.reptile_step(small_net, p, meta_batch, alpha, k, eps)) / (eps * alpha * k),
        psmall,
        name=f"Reptile k={k} direction as the joint-loss gradient",
    )
    print(r)
    assert r.passed == (k == 1)

r = gradcheck.check_directional(
    joint_loss,
    lambda p: reptile_direction(p, 1),
    phi,
    rng=5,
    threshold=1e-4,
    name="1-40-40-1 ReLU: Reptile k=1 direction as the joint-loss gradient",
)
print(r)  # ReLU: the project's 1e-4 threshold for kinks (tutorial 0)
assert r.passed

# %% [markdown]
# The difference $(\varphi_{\text{new}} - \varphi)$ is a small number computed from two close
# ones, which costs a few digits ($\approx 10^{-16} / (\varepsilon\alpha) = 10^{-13}$ relative here),
# far below the threshold. Tutorial 5 shows what joint training learns on sine waves: the
# average of all sines, a flat line near zero, which adapts poorly.
#
# ## The Taylor-series analysis
#
# Why do first-order MAML and Reptile work at all? Section 5 of the Reptile paper expands the
# three update directions to first order in $\alpha$. Its setting: the inner loop sees a
# sequence of $k$ mini-batch losses $L_0, \dots, L_{k-1}$ of one task (here $k$ disjoint
# mini-batches of one task's data), and step $i$ uses $L_i$. The iterates are indexed as in
# tutorial 3 (the paper starts at $\varphi_1$; the notation page has the translation):
#
# $$
# \varphi_0 = \varphi, \qquad \varphi_{i+1} = \varphi_i - \alpha g_i, \qquad g_i = \nabla L_i(\varphi_i),
# \qquad H_i = \nabla^2 L_i(\varphi_i) \qquad \text{(definitions)},
# $$
#
# with the quantities at the *initial* point written with a bar:
# $\bar g_i = \nabla L_i(\varphi_0)$, $\bar H_i = \nabla^2 L_i(\varphi_0)$. Here $k$ counts
# mini-batches, as in the paper. The three directions are
#
# * MAML: the exact gradient of $L_{k-1}(\varphi_{k-1})$, i.e. $k - 1$ inner steps on batches
#   $0, \dots, k-2$ and the last batch as query:
#   $g_{\text{MAML}} = (I - \alpha H_0) \cdots (I - \alpha H_{k-2})\, g_{k-1}$;
# * first-order MAML: $g_{\text{FOMAML}} = g_{k-1}$;
# * Reptile: all $k$ steps, $g_{\text{Reptile}} = (\varphi_0 - \varphi_k)/\alpha = \sum_{i=0}^{k-1} g_i$.
#
# **Step 1: each inner gradient.** Taylor-expand $g_i$ around $\varphi_0$; the displacement is
# $\varphi_i - \varphi_0 = -\alpha \sum_{j<i} g_j = -\alpha \sum_{j<i} \bar g_j + O(\alpha^2)$, so
#
# $$
# g_i = \bar g_i + \bar H_i (\varphi_i - \varphi_0) + O(\alpha^2)
#     = \bar g_i - \alpha \bar H_i \sum_{j<i} \bar g_j + O(\alpha^2).
# $$
#
# (First-order MAML's direction is Step 1 with $i = k - 1$; the checks below test it there.)
#
# **Step 2: the three directions.** With $H_i = \bar H_i + O(\alpha)$, the product in
# $g_{\text{MAML}}$ is $I - \alpha \sum_{j<k-1} \bar H_j + O(\alpha^2)$, and
#
# $$
# \begin{aligned}
# g_{\text{MAML}} &= \bar g_{k-1} - \alpha \bar H_{k-1} \sum_{j<k-1} \bar g_j
#                    - \alpha \sum_{j<k-1} \bar H_j \bar g_{k-1} + O(\alpha^2), \cr
# g_{\text{FOMAML}} &= \bar g_{k-1} - \alpha \bar H_{k-1} \sum_{j<k-1} \bar g_j + O(\alpha^2), \cr
# g_{\text{Reptile}} &= \sum_{i=0}^{k-1} \bar g_i - \alpha \sum_{i=0}^{k-1} \sum_{j<i} \bar H_i \bar g_j + O(\alpha^2).
# \end{aligned}
# $$
#
# **Step 3: average over the order of the mini-batches.** Let the order be a uniformly random
# permutation, and write $\mathbb E$ for the mean over all $k!$ orderings. Every position sees
# every batch equally often, and every pair of distinct positions every ordered pair of
# distinct batches, so
#
# $$
# \mathbb E[\bar g_i] = \text{AvgGrad} := \frac1k \sum_a \bar g_a,
# \qquad
# \mathbb E[\bar H_i \bar g_j]_{i \ne j} = \text{AvgGradInner} := \frac{1}{k(k-1)} \sum_{a \ne b} \bar H_a \bar g_b.
# $$
#
# Counting the pair terms in Step 2 ($2(k-1)$ for MAML, $k-1$ for FOMAML, $k(k-1)/2$ for Reptile)
# gives $\mathbb E[g] = c_0\,\text{AvgGrad} + c_1\,\alpha\,\text{AvgGradInner} + O(\alpha^2)$ with
# $c_1 \le 0$, the sign convention of `taylor.taylor_coefficients` and of the whole project. For
# $k = 2$ (the case the paper works out)
#
# $$
# \begin{aligned}
# \mathbb E[g_{\text{MAML}}] &= \text{AvgGrad} - 2\alpha\, \text{AvgGradInner} + O(\alpha^2), \cr
# \mathbb E[g_{\text{FOMAML}}] &= \text{AvgGrad} - \alpha\, \text{AvgGradInner} + O(\alpha^2), \cr
# \mathbb E[g_{\text{Reptile}}] &= 2\,\text{AvgGrad} - \alpha\, \text{AvgGradInner} + O(\alpha^2),
# \end{aligned}
# \tag{4.3}
# $$
#
# and for any $k \ge 1$
#
# $$
# \begin{aligned}
# \mathbb E[g_{\text{MAML}}] &= \text{AvgGrad} - 2(k-1)\,\alpha\, \text{AvgGradInner} + O(\alpha^2), \cr
# \mathbb E[g_{\text{FOMAML}}] &= \text{AvgGrad} - (k-1)\,\alpha\, \text{AvgGradInner} + O(\alpha^2), \cr
# \mathbb E[g_{\text{Reptile}}] &= k\,\text{AvgGrad} - \tfrac12 k(k-1)\,\alpha\, \text{AvgGradInner} + O(\alpha^2).
# \end{aligned}
# \tag{4.4}
# $$
#
# So $(c_0, c_1) = (1, -2(k-1))$ for MAML, $(1, -(k-1))$ for FOMAML and
# $(k, -\tfrac12 k(k-1))$ for Reptile. (tinymeta's `maml_grad` with $k$ inner steps on a support
# set and a separate query set is this setting with $k + 1$ batches, so its MAML with one inner
# step is the case (4.3).)
#
# **What the terms mean.** AvgGrad is the gradient of the expected loss: joint training.
# Since $\nabla(\bar g_a \cdot \bar g_b) = \bar H_a \bar g_b + \bar H_b \bar g_a$,
#
# $$
# \text{AvgGradInner} = \frac12 \nabla_\varphi \Big(\frac{1}{k(k-1)} \sum_{a \ne b} \bar g_a \cdot \bar g_b\Big):
# $$
#
# AvgGradInner points where the mean inner product between gradients of different mini-batches
# of the task grows fastest, and $-\text{AvgGradInner}$ where it falls fastest. Every update
# *subtracts* its meta-gradient ($\varphi \leftarrow \varphi - \beta g$; for Reptile
# $\varphi - \varepsilon\alpha\, g_{\text{Reptile}}$), and the meta-gradient contains
# $c_1 \alpha\,\text{AvgGradInner}$ with $c_1 < 0$ once $k \ge 2$. So the step contains
# $+\beta |c_1| \alpha\,\text{AvgGradInner}$: it moves *along* AvgGradInner and *increases* the
# inner product. A step on one batch then also helps on the others, which is generalisation
# within a task. All three algorithms have both terms as soon as $k \ge 2$; they differ in the
# ratio.
#
# `tinymeta.taylor` implements the three directions on a mini-batch sequence
# (`maml_grad_sequence`, `fomaml_grad_sequence`, `reptile_grad_sequence`), the average over
# orderings, AvgGrad, AvgGradInner and the coefficients of (4.4). We check the derivation one
# step at a time on a smooth network (1-20-20-1 tanh) and one sine task with 12 points, split
# into $k$ consecutive mini-batches.

# %%
tnet = tm.MLP([1, 20, 20, 1], "tanh")
tphi = tnet.init(rng)
x12, y12, _, _ = tm.Sine(K=12, K_query=1).sample(rng, 1)[0]


def minibatches(k):
    m = len(x12) // k
    return [(x12[i * m : (i + 1) * m], y12[i * m : (i + 1) * m]) for i in range(k)]


# Step 0: the MAML direction on a sequence is the exact gradient of L_{k-1}(phi_{k-1}) (as in tutorial 3)
for k in (2, 3):
    r = gradcheck.check_grad(
        lambda p, k=k: taylor.maml_objective_sequence(tnet, p, minibatches(k), 0.05),
        lambda p, k=k: taylor.maml_grad_sequence(tnet, p, minibatches(k), 0.05),
        tphi,
        name=f"maml_grad_sequence, k={k}",
    )
    print(r)
    assert r.passed

# %% [markdown]
# **Step 1–2, one ordering at a time.** The function below writes out the first-order
# expansions of Step 2 with $\bar g_i$ and Hessian-vector products $\bar H_i v$ at $\varphi_0$,
# returning the constant and the $\alpha$ coefficient separately. The remainder
# $\lVert g(\alpha) - (c_0 + \alpha c_1)\rVert$ must shrink like $\alpha^2$: on a log-log plot,
# slope 2. (Drop the $\alpha c_1$ term and the remainder is $O(\alpha)$, slope 1.)


# %%
def first_order_expansion(algorithm, batches):
    """(constant, coefficient of alpha) of the Step-2 expansion, for this ordering of the batches.

    Indices as in the text: batches[i] is L_i, i = 0 .. k-1; gbar[i] and Hbar(i, v) are at phi_0.
    """
    gbar = [tnet.loss_and_grad(tphi, x, y)[1] for x, y in batches]

    def Hbar(i, v):
        return tnet.hvp(tphi, *batches[i], v)

    k, zero = len(batches), np.zeros_like(tphi)
    if algorithm == "maml":
        c1 = -Hbar(k - 1, sum(gbar[:-1], zero)) - sum((Hbar(j, gbar[-1]) for j in range(k - 1)), zero)
        return gbar[-1], c1
    if algorithm == "fomaml":
        return gbar[-1], -Hbar(k - 1, sum(gbar[:-1], zero))
    c1 = -sum((Hbar(i, gbar[j]) for i in range(k) for j in range(i)), zero)  # pairs j < i
    return sum(gbar, zero), c1


k = 3
batches = minibatches(k)
talphas = np.logspace(-4, -1.5, 6 if FAST else 11)
print(f"one ordering, k = {k}: fitted slope of the remainder over alpha in [1e-4, 3e-2]")
for algo in taylor.ALGORITHMS:
    c0, c1 = first_order_expansion(algo, batches)
    res = [np.linalg.norm(taylor.GRADIENTS[algo](tnet, tphi, batches, a) - (c0 + a * c1)) for a in talphas]
    res0 = [np.linalg.norm(taylor.GRADIENTS[algo](tnet, tphi, batches, a) - c0) for a in talphas]
    s, s0 = np.polyfit(np.log(talphas), np.log(res), 1)[0], np.polyfit(np.log(talphas), np.log(res0), 1)[0]
    print(f"  {algo:8s} with the alpha term: {s:.2f} (expect 2)   without it: {s0:.2f} (expect 1)")
    assert 1.8 < s < 2.2 and 0.8 < s0 < 1.2

# %% [markdown]
# **Step 3, the average over orderings.** Averaging the per-ordering expansions over all $k!$
# orderings must give *exactly* the coefficients of (4.4) times AvgGrad and AvgGradInner: this
# step is pure counting, so it holds to round-off, for every $\alpha$. And AvgGradInner must be
# half the gradient of the mean inner product of batch gradients, which we check by
# finite differences.

# %%
for k in (2, 3, 4):
    batches = minibatches(k)
    perms = list(itertools.permutations(range(k)))
    agrad, ainner = taylor.avg_grad(tnet, tphi, batches), taylor.avg_grad_inner(tnet, tphi, batches)
    for algo in taylor.ALGORITHMS:
        terms = [first_order_expansion(algo, [batches[i] for i in p]) for p in perms]
        mean_c0 = np.mean([t[0] for t in terms], axis=0)
        mean_c1 = np.mean([t[1] for t in terms], axis=0)
        c0, c1 = taylor.taylor_coefficients(algo, k)
        r = gradcheck.CheckReport(
            f"k={k} {algo:7s}: mean over {len(perms)} orderings vs (4.4) coefficients ({c0:g}, {c1:g})",
            gradcheck.rel_error(
                np.concatenate([mean_c0, mean_c1]), np.concatenate([c0 * agrad, c1 * ainner])
            ),
            1e-12,
        )  # exact counting identity: round-off only
        print(r)
        assert r.passed


def half_mean_inner_product(p, k):
    gs = [tnet.loss_and_grad(p, x, y)[1] for x, y in minibatches(k)]
    return 0.5 * np.mean([gs[a] @ gs[b] for a in range(k) for b in range(k) if a != b])


for k in (2, 3):
    r = gradcheck.check_grad(
        lambda p, k=k: half_mean_inner_product(p, k),
        lambda p, k=k: taylor.avg_grad_inner(tnet, p, minibatches(k)),
        tphi,
        name=f"AvgGradInner = 1/2 grad of the mean gradient inner product, k={k}",
    )
    print(r)
    assert r.passed

# The sign: a small step along +AvgGradInner raises the mean inner product, along -AvgGradInner lowers it.
k = 3
direction = taylor.avg_grad_inner(tnet, tphi, minibatches(k))
t = 1e-3 / np.linalg.norm(direction)
inner = {sign: half_mean_inner_product(tphi + sign * t * direction, k) for sign in (-1, 0, 1)}
print(f"mean inner product (x 1/2) at phi - t AvgGradInner, phi, phi + t AvgGradInner: "
      f"{inner[-1]:.6e}, {inner[0]:.6e}, {inner[1]:.6e}")  # fmt: skip
assert inner[-1] < inner[0] < inner[1]

# %% [markdown]
# **The result (4.3)–(4.4).** Finally the expected directions themselves, $\mathbb E[g](\alpha)$ over all
# orderings (`taylor.expected_over_orderings`), against the prediction
# $c_0\,\text{AvgGrad} + c_1 \alpha\,\text{AvgGradInner}$ (`taylor.taylor_prediction`). The
# remainder, relative to $\lVert c_0\,\text{AvgGrad}\rVert$, is plotted on log-log axes with
# the slope fitted over $\alpha \le 10^{-2}$ (beyond that the higher-order terms bend the
# curve). Dashed: the remainder when the AvgGradInner term is left out, slope 1.

# %%
k_values = (2, 3) if FAST else (2, 3, 4)
falphas = np.logspace(-4, -1, 7 if FAST else 13)
fit = falphas <= 1e-2
fig, axes = plt.subplots(1, len(k_values), figsize=(4.2 * len(k_values), 3.8), sharey=True)
slopes = {}
for ax, k in zip(axes, k_values, strict=True):
    batches = minibatches(k)
    for algo, color in zip(taylor.ALGORITHMS, ("C0", "C1", "C2"), strict=True):
        c0, _ = taylor.taylor_coefficients(algo, k)
        zeroth = c0 * taylor.avg_grad(tnet, tphi, batches)
        res, res0 = [], []
        for a in falphas:
            E = taylor.expected_over_orderings(algo, tnet, tphi, batches, a)
            res.append(np.linalg.norm(E - taylor.taylor_prediction(algo, tnet, tphi, batches, a)))
            res0.append(np.linalg.norm(E - zeroth))
        res, res0 = np.array(res) / np.linalg.norm(zeroth), np.array(res0) / np.linalg.norm(zeroth)
        s = np.polyfit(np.log(falphas[fit]), np.log(res[fit]), 1)[0]
        s0 = np.polyfit(np.log(falphas[fit]), np.log(res0[fit]), 1)[0]
        slopes[(k, algo)] = (s, s0)
        ax.loglog(falphas, res, "o-", ms=3, color=color, label=f"{algo}: slope {s:.2f}")
        ax.loglog(falphas, res0, "--", color=color, lw=0.8, label=f"{algo}, no AvgGradInner: {s0:.2f}")
    ax.set_title(f"k = {k}")
    ax.set_xlabel("alpha")
    ax.legend(fontsize=7)
axes[0].set_ylabel("remainder / ||c0 AvgGrad||")
fig.suptitle("E[g] - (c0 AvgGrad + c1 alpha AvgGradInner) is O(alpha^2)")
fig.tight_layout()
plt.show()

print(f"{'k':>2} {'algorithm':>9} {'coefficients (4.4)':>20} {'slope':>6} {'slope without AvgGradInner':>27}")
for (k, algo), (s, s0) in slopes.items():
    c0, c1 = taylor.taylor_coefficients(algo, k)
    print(f"{k:2d} {algo:>9} {f'({c0:g}, {c1:g} alpha)':>20} {s:6.2f} {s0:27.2f}")
    # O(alpha^2) remainder: slope 2 (+-0.2 for the curvature of the fit range); the control is O(alpha)
    assert 1.8 < s < 2.2 and 0.8 < s0 < 1.2

# %% [markdown]
# The first-order predictions hold: every remainder falls with slope 2, and leaving out the
# AvgGradInner term leaves a remainder of slope 1, so that term is really there, with the
# coefficients of (4.3) for $k = 2$ and (4.4) for every $k$.
#
# Read as update *directions*, the ratio of the two terms is what differs: AvgGradInner
# weighs $2(k-1)\alpha$ against AvgGrad for MAML, $(k-1)\alpha$ for first-order MAML and
# $(k-1)\alpha/2$ for Reptile. With $k = 1$ the second term vanishes for all three: MAML with
# a single "batch" and Reptile with one step are both joint training (4.2). With $k \ge 2$ all
# three push towards parameters where gradients of different batches of a task agree, which
# is why first-order methods meta-learn in practice (tutorial 5).
#
# ## Summary
#
# * First-order MAML drops $-\alpha \sum_i H_i \nabla L_B + O(\alpha^2)$: $O(k\alpha)$ relative. At
#   $\alpha = 0.01$ on sine waves its relative dropped term $\rho$ is about a third for $k = 1$ and
#   about one for $k = 5$ (the medians printed above); the expansion is checked in the
#   $\alpha \to 0$ limit.
# * Reptile (4.1) moves $\varphi$ towards task-adapted parameters; with $k = 1$ it is SGD on the
#   average task loss (4.2), checked against finite differences of that loss.
# * The Taylor analysis uses tutorial 3's indexing, $\varphi_0 = \varphi$; $k$ counts mini-batches.
# * To first order in $\alpha$, averaged over mini-batch orderings, MAML, FOMAML and Reptile are
#   all combinations of AvgGrad and AvgGradInner with coefficients $(1, -2(k-1))$, $(1, -(k-1))$
#   and $(k, -\frac12 k(k-1))$ (4.3, 4.4). AvgGradInner is half the gradient of the inner product of
#   gradients on different mini-batches; since $c_1 < 0$ and the update subtracts the meta-gradient,
#   every step moves along AvgGradInner and increases that agreement.
# * Checked step by step: the per-ordering expansions ($O(\alpha^2)$ remainders), the counting
#   over orderings (to round-off), AvgGradInner as half a gradient and its sign, and the final
#   (4.3)–(4.4).
#
# ## Exercises
#
# 1. Derive the $O(\alpha)$ terms of $g_{\text{MAML}}$ when the query batch is the *same* data as
#    the inner batches ($k - 1$ steps on $L_A$, then the gradient of $L_A$ again). What replaces
#    AvgGradInner, and which quantity does the update then increase?
# 2. Repeat the slope plot with ReLU. What happens to the slope when a mini-batch sits close
#    to a kink, and why?
# 3. Reptile with an Adam inner loop (`tm.reptile_step_adam`): is $k = 1$ still joint training?
#    Check numerically.
# 4. Show that for a quadratic loss $L_i(\varphi) = \frac12 \varphi^\top A_i \varphi - b_i^\top \varphi$
#    the expansion of $g_{\text{FOMAML}}$ for $k = 2$ is exact (no $O(\alpha^2)$ term), and check it.
#
# Classroom exercises `07_reptile_step` and `08_reptile_taylor` (`tinymeta exercises copy DIR` to start,
# `tinymeta exercises check NN FILE` to check; see the instructors' page) are checked versions of
# exercises like these: each checker reports the error it found, the threshold and a hint.
