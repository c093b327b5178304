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
# # Answers to the exercises of tutorial 5 (sine regression)
#
# The settings of the tutorial: 1-40-40-1 ReLU network, $\alpha = 0.01$, $M = 25$ tasks, 100
# held-out tasks with 100 query points. Training runs take the tutorial's budgets (600
# meta-iterations with `TINYMETA_FAST=1`, 20,000 otherwise); every assertion holds with both.

# %%
import os
import time

import numpy as np

import tinymeta as tm
from tinymeta.backends import batch_functions
from tinymeta.evaluation import evaluate
from tinymeta.tasks import TaskBatch

FAST = os.environ.get("TINYMETA_FAST") == "1"
ITERATIONS = 600 if FAST else 20_000
family = tm.Sine(K=10, K_query=10)
net = tm.MLP([1, 40, 40, 1], "relu")
alpha = 0.01
eval_tasks, _, _ = family.evaluation_tasks(100, seed=20170309, K_query=100)
common = dict(iterations=ITERATIONS, alpha=alpha, meta_batch=25, seed=0, progress=False)
steps = (0, 1, 5, 10)


def train(fam=family, **kw):
    return tm.meta_train(net, fam, **common, **kw)


def table(curves):
    print(f"{'query MSE after s steps':26s}" + "".join(f"{f's={s}':>8s}" for s in steps))
    for name, c in curves.items():
        print(f"{name:26s}" + "".join(f"{m:8.3f}" for m in c.mean))


runs = {
    "MAML k=1": train(algo="maml", k=1),
    "MAML k=5": train(algo="maml", k=5),
    "joint training": train(algo="joint", k=0),
    "Reptile k=1": train(algo="reptile", k=1, epsilon=(1.0, 0.0)),
    "Reptile k=5": train(algo="reptile", k=5, epsilon=(1.0, 0.0)),
}
curves = {name: evaluate(net, r.phi, eval_tasks, alpha, steps) for name, r in runs.items()}
table(curves)

# %% [markdown]
# ## Exercise 1: MAML with $k = 5$
#
# Trained for five steps, MAML improves the loss after several steps most: after 5 and 10 steps it
# is clearly below MAML trained with one step (the objective (3.2) is now the loss after 5 steps).
# The cost per meta-iteration: $k + 1$ gradients and $k$ HVPs (tutorial 3), about $3k + 1$ gradients'
# worth with an HVP at about two gradients: 16 against 4 for $k = 1$, a factor of 4 in arithmetic.
# The measured factor (below, one meta-iteration of 25 tasks, best of several calls) is usually smaller:
# the fixed costs of a call do not grow with $k$, and at this size they are a large part of it.

# %%
maml_step = batch_functions(tm.backends.default_backend())["maml"]
_, _, *arrays = family.sample_arrays(np.random.default_rng(0), 25)
one_batch, phi0 = TaskBatch(*arrays), net.init(0)


def best_seconds(k, repeats=20):
    maml_step(net, phi0, one_batch, alpha, k)  # warm-up (compiles the kernel on first use)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        maml_step(net, phi0, one_batch, alpha, k)
        best = min(best, time.perf_counter() - t)
    return best


speed = best_seconds(5) / best_seconds(1)
print(f"one meta-iteration of MAML k=5 costs {speed:.1f}x one of MAML k=1")
assert curves["MAML k=5"].mean[2] < curves["MAML k=1"].mean[2]  # s = 5
assert curves["MAML k=5"].mean[3] < curves["MAML k=1"].mean[3]  # s = 10
assert 1.2 < speed < 4.5

# %% [markdown]
# ## Exercise 2: Reptile with $k = 1$ against joint training
#
# By (4.2), Reptile with one inner step is SGD on the average support loss with step
# $\varepsilon\alpha$: joint training. It differs from the tutorial's joint-training baseline only in
# the optimiser (plain SGD with a step of at most $\varepsilon\alpha = 0.01$ against Adam) and in the
# data it fits (support sets against query sets at $\varphi$). So its curve has the same shape as
# joint training's: one step removes much less of the error than it does for Reptile with
# $k = 5$ (compare the ratios after one step / before), and both stay far above Reptile with
# $k = 5$ after 10 steps. Its level differs from
# the baseline's because the two optimisers progress at different speeds, not because either
# meta-learns.

# %%
for name in ("Reptile k=1", "joint training", "Reptile k=5"):
    c = curves[name]
    print(f"{name:15s} after 1 step / before: {c.mean[1] / c.mean[0]:.2f}")
ratio = {name: c.mean[1] / c.mean[0] for name, c in curves.items()}
for name in ("Reptile k=1", "joint training"):
    assert ratio[name] > ratio["Reptile k=5"] + 0.15
    assert curves[name].mean[3] > curves["Reptile k=5"].mean[3] + 0.5

# %% [markdown]
# ## Exercise 3: $\alpha$ at evaluation time only
#
# MAML's initialisation was trained for steps of exactly $\alpha = 0.01$: a smaller step moves it
# less far than it was trained to go, so its loss after one step rises a lot (from the trained
# value towards the loss before adapting); joint training gains little from a step of any size,
# so its one-step loss changes much less between $\alpha = 0.001$ and $0.01$ (the relative change
# is printed below: several times larger for MAML). MAML is the more sensitive. Above $0.01$
# both degrade, and at $0.1$ some tasks diverge for both: the step exceeds $2/\lambda_{\max}$ of
# their support losses (tutorial 2, exercise 1).

# %%
alphas = (0.001, 0.003, 0.01, 0.03, 0.1)
at = {}
for name in ("MAML k=1", "joint training"):
    at[name] = [evaluate(net, runs[name].phi, eval_tasks, a, (1, 10)) for a in alphas]
    print(
        name,
        " ".join(
            f"alpha={a}: {r.mean[0]:.3g} ({r.diverged[-1]} diverged)"
            for a, r in zip(alphas, at[name], strict=True)
        ),
    )
gain = {name: at[name][0].mean[0] / at[name][2].mean[0] for name in at}  # one-step loss, alpha 0.001 vs 0.01
print(
    f"one-step loss at alpha = 0.001 over that at 0.01: MAML {gain['MAML k=1']:.2f}, "
    f"joint {gain['joint training']:.2f}"
)
assert gain["MAML k=1"] - 1 > 3 * (gain["joint training"] - 1)
for name in at:
    assert at[name][3].mean[0] > at[name][2].mean[0]  # alpha = 0.03 worse than 0.01 after one step
    assert at[name][4].diverged[-1] > 0  # alpha = 0.1: some tasks diverge within 10 steps

# %% [markdown]
# ## Exercise 4: phases on $[0, 2\pi]$
#
# Over a full period the average task is zero, $\int_0^{2\pi}\sin(x - p)\,dp = 0$, so joint training
# learns (approximately) the zero function. Its held-out MSE before adapting is then
# $\mathbb E[A^2 \sin^2(x - p)] = \tfrac12\mathbb E[A^2]$ with
# $\mathbb E[A^2] = (5^3 - 0.1^3) / (3 \cdot 4.9) \approx 8.50$ for $A \sim U[0.1, 5]$: about 4.25. It still
# adapts slowly. The meta-learned initialisations still adapt and end well below it, though every
# algorithm does worse than with phases on $[0, \pi]$: the tasks are more varied.

# %%
wide = tm.Sine(K=10, K_query=10, phase=(0.0, 2 * np.pi))
wide_eval, _, _ = wide.evaluation_tasks(100, seed=20170309, K_query=100)
wide_runs = {
    "MAML": train(wide, algo="maml", k=1),
    "first-order MAML": train(wide, algo="fomaml", k=1),
    "Reptile": train(wide, algo="reptile", k=5, epsilon=(1.0, 0.0)),
    "joint training": train(wide, algo="joint", k=0),
}
wide_curves = {name: evaluate(net, r.phi, wide_eval, alpha, steps) for name, r in wide_runs.items()}
table(wide_curves)
half_EA2 = 0.5 * (5.0**3 - 0.1**3) / (3 * (5.0 - 0.1))
x = np.linspace(-5, 5, 200)[:, None]
rms_joint = np.sqrt(np.mean(net.forward(wide_runs["joint training"].phi, x) ** 2))
print(f"E[A^2]/2 = {half_EA2:.3f}; joint training before adapting "
      f"{wide_curves['joint training'].mean[0]:.3f}; RMS of its prediction {rms_joint:.2f}")  # fmt: skip
assert abs(wide_curves["joint training"].mean[0] - half_EA2) < 0.1 * half_EA2
assert rms_joint < 0.5
for name in ("MAML", "first-order MAML", "Reptile"):
    assert wide_curves[name].mean[3] < wide_curves["joint training"].mean[3] - 0.3
