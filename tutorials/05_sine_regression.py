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
# # 5. Sine-wave regression
#
# The experiment that introduced MAML (Finn, Abbeel & Levine, 2017, Sec. 5.1): each task is a
# sine wave $y = A \sin(x - p)$ with amplitude $A \sim U[0.1, 5]$ and phase $p \sim U[0, \pi]$;
# the learner sees $K = 10$ points of a new wave and must predict the whole curve after a few
# gradient steps. This tutorial trains the four contenders of tutorials 3 and 4 on it:
#
# | algorithm | update direction | inner steps $k$ |
# | --- | --- | --- |
# | MAML | exact meta-gradient (3.3) | 1 |
# | first-order MAML | query gradient after adapting (3.4) | 1 |
# | Reptile | $\varepsilon \cdot$ mean of $(\tilde\varphi - \varphi)$ (4.1) | 5 |
# | joint training | gradient of the pooled loss (the paper's "pretrained" baseline) | 0 |
#
# and reproduces, at a size that runs in a few minutes, MAML's Fig. 2 (adapting to a new
# wave) and the loss-against-steps comparison, then the sine demo of the Reptile paper.
#
# Training uses `tinymeta.meta_train`, which runs exactly the per-task functions of
# tutorials 3–4 over meta-batches, evaluation `tinymeta.evaluation.evaluate`, and the figures
# `tinymeta.plots`.
#
# **Fast mode** (`TINYMETA_FAST=1`, used by CI and the documentation build) trains each algorithm
# for 600 meta-iterations instead of 20,000 and scores 100 held-out tasks instead of 500. The
# curves are higher than in the full run, but every statement below holds in both modes: each one
# is an `assert` next to the numbers it is about.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import tinymeta as tm
from tinymeta import gradcheck, plots
from tinymeta.evaluation import evaluate

FAST = os.environ.get("TINYMETA_FAST") == "1"  # CI runs a shorter version; the default is the full one

# The default backend is the Numba kernels of tutorial 6, which compute the same numbers as the NumPy
# reference (the per-task functions of tutorials 3-4) in one compiled call per meta-iteration.
# Set BACKEND = "numpy" to train with the reference itself (about 10x slower).
BACKEND = tm.backends.default_backend()

ITERATIONS = 600 if FAST else 20_000  # the MAML code trains 70,000 iterations
NUM_EVAL_TASKS = 100 if FAST else 500
print(f"{ITERATIONS} meta-iterations per algorithm, {NUM_EVAL_TASKS} held-out tasks, backend={BACKEND}")

# %% [markdown]
# ## The task family and the network
#
# The settings of the MAML paper: a 1-40-40-1 ReLU network, $K = 10$ support and 10 query
# points per training task, inner SGD with $\alpha = 0.01$, meta-batches of $M = 25$ tasks, and
# Adam with learning rate $10^{-3}$ as the outer optimiser of MAML, first-order MAML and joint
# training. Reptile has no outer gradient: it takes $k = 5$ inner steps on the support set and
# moves $\varphi$ by (4.1) with $\varepsilon$ annealed linearly from 1 to 0, the setting of the
# Reptile paper's batched runs (outer step 1 annealed to 0, several tasks per meta-batch; the
# commands in the README of `openai/supervised-reptile`). With $\varepsilon = 1$ and $M$ tasks,
# (4.1) moves $\varphi$ to the mean of the adapted parameters.
#
# Held-out evaluation: `Sine().evaluation_tasks` draws a fixed, seeded set of tasks from a
# generator separate from the training stream, each with 10 support points for adapting and
# 100 query points for scoring.

# %%
family = tm.Sine(K=10, K_query=10)
net = tm.MLP([1, 40, 40, 1], "relu")
alpha = 0.01
eval_tasks, eval_amp, eval_phase = family.evaluation_tasks(NUM_EVAL_TASKS, seed=20170309, K_query=100)

rng = np.random.default_rng(5)
tasks, amps, phases = family.sample_with_truth(rng, 4)
x = np.linspace(-5, 5, 200)
fig, ax = plt.subplots(figsize=(6, 3.5))
for i, (t, A, p) in enumerate(zip(tasks, amps, phases, strict=True)):
    ax.plot(x, A * np.sin(x - p), color=f"C{i}", lw=1)
    ax.scatter(t.x_support[:, 0], t.y_support[:, 0], color=f"C{i}", s=15)
ax.set_title("four training tasks: the true curves and their K = 10 support points")
ax.set_xlabel("x")
ax.set_ylabel("y")
plt.show()

# %% [markdown]
# ## Meta-training
#
# One call per algorithm. Each run starts from the same initialisation (`net.init(seed)`) and
# sees the same stream of meta-batches (the seed fixes both), so the four differ only in the
# update direction.
#
# The printed times exclude compilation: before it starts the clock, `meta_train` makes one
# untimed warm-up call that compiles the Numba kernels (or loads them from Numba's cache).

# %%
runs = {
    "MAML": dict(algo="maml", k=1),
    "first-order MAML": dict(algo="fomaml", k=1),
    "Reptile": dict(algo="reptile", k=5, epsilon=(1.0, 0.0)),
    "joint training": dict(algo="joint", k=0),
}
common = dict(alpha=alpha, meta_batch=25, seed=0, backend=BACKEND, progress=False)
results = {}
for name, settings in runs.items():
    results[name] = tm.meta_train(net, family, iterations=ITERATIONS, **common, **settings)
    r = results[name]
    print(
        f"{name:17s} {r.train_seconds:6.1f} s ({r.iterations_per_second:5.0f} it/s, compilation excluded), "
        f"meta-loss over the last 100 iterations {np.mean(r.history['meta_loss'][-100:]):.3f}"
    )

# %% [markdown]
# (Each algorithm's meta-loss measures something different: the query loss after adapting for
# MAML and first-order MAML, the loss at $\varphi$ for joint training, the support loss before
# adapting for Reptile. They are not comparable with each other; the held-out evaluation is.)
#
# Before looking at the results, the check of tutorial 3 once more, at the *learned*
# parameters: the direction MAML trained with is still the gradient of its objective there.
# ReLU network, so the threshold is the project's $10^{-4}$ for kinks.

# %%
phi_maml = results["MAML"].phi
check_task = eval_tasks[0]
report = gradcheck.check_directional(
    lambda p: tm.meta_objective(net, p, check_task, alpha, 1),
    lambda p: tm.maml_grad(net, p, check_task, alpha, 1),
    phi_maml,
    threshold=1e-4,
    name="exact MAML gradient at the learned phi",
)
print(report)
assert report.passed

# %% [markdown]
# ## Few-shot regression on held-out tasks
#
# For every held-out task: take $s = 0, 1, \dots, 10$ SGD steps with $\alpha = 0.01$ on its 10
# support points, starting from the learned $\varphi$, and measure the MSE on its 100 query
# points. `evaluate` returns the mean over tasks with its standard error. The untrained
# initialisation is included for scale. Below the table, the two claims of this tutorial are
# printed and checked: one step on 10 points removes a large part of the error of a
# meta-learned initialisation (the ratio MSE after 1 step / MSE before), and after 1 to 10 steps
# every meta-learned initialisation is below joint training. All are scored on the same tasks,
# so the gaps are compared task by task, with the standard error of the differences.

# %%
steps = tuple(range(11))
curves = {name: evaluate(net, r.phi, eval_tasks, alpha, steps) for name, r in results.items()}
curves["untrained init"] = evaluate(net, net.init(0), eval_tasks, alpha, steps)

print(f"{'held-out query MSE after s steps':34s}" + "".join(f"{f's={s}':>8s}" for s in (0, 1, 5, 10)))
for name, c in curves.items():
    print(f"{name:34s}" + "".join(f"{c.mean[s]:8.3f}" for s in (0, 1, 5, 10)))

fig, ax = plt.subplots(figsize=(6.5, 4.2))
plots.plot_loss_vs_steps(ax, curves)
ax.set_title(f"{NUM_EVAL_TASKS} held-out sine tasks, K = 10 ({ITERATIONS} meta-iterations)")
plt.show()

# Behaviour, not just numbers: meta-learned initialisations adapt in a step, joint training barely.
meta_learners = ("MAML", "first-order MAML", "Reptile")
joint_c = curves["joint training"]
print(f"{'after 1 step / before':34s}" + "".join(f"{c.mean[1] / c.mean[0]:8.2f}" for c in curves.values()))
for name in meta_learners:
    c = curves[name]
    # the same held-out tasks for everyone: compare task by task, s = 1 .. 10
    diff = joint_c.per_task[:, 1:] - c.per_task[:, 1:]
    gap, gap_se = diff.mean(axis=0), diff.std(axis=0, ddof=1) / np.sqrt(len(diff))
    print(f"{name:17s}: below joint training by {gap.min():.3f} to {gap.max():.3f} after 1 to 10 steps "
          f"(paired standard error at most {gap_se.max():.3f})")  # fmt: skip
    assert c.mean[1] / c.mean[0] < 0.8  # one step on 10 points removes at least a fifth of the error
    assert c.mean[1] / c.mean[0] < joint_c.mean[1] / joint_c.mean[0]  # more than joint training's step
    assert np.all(gap > 3 * gap_se)  # below joint training at every s >= 1, beyond the noise
for name in runs:
    assert curves[name].mean[10] < curves["untrained init"].mean[10], name  # everyone learned something
best_after_one_step = min(curves[other].mean[1] for other in runs)
assert curves["MAML"].mean[1] == best_after_one_step  # lowest after the step it trained for
assert joint_c.mean[0] < 1.1 * min(curves[other].mean[0] for other in meta_learners)  # s = 0: as good as any

# %% [markdown]
# ## MAML's Figure 2: adapting to one new wave
#
# The true curve of a held-out task (black), its 10 support points (triangles), the network's
# prediction at the learned $\varphi$ (dashed), and after 1 and 10 gradient steps. The
# meta-learned initialisations move to the new wave in a step or two. Joint training learns
# towards the *average* task. With phases uniform on $[0, \pi]$ that is not zero:
# $\mathbb E[A \sin(x - p)] = \mathbb E[A] \cdot \frac1\pi \int_0^\pi \sin(x - p)\, dp = -\frac{2}{\pi} \mathbb E[A] \cos x$
# with $\mathbb E[A] = (0.1 + 5)/2 = 2.55$ (dotted in its panel; the cell after the figure
# measures how close joint training's prediction is to it). Adapting from it is slow: by (4.2)
# joint training is Reptile with $k = 1$, which meta-learns nothing.

# %%
i = 1
fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True, sharey=True)
for ax, (name, r) in zip(axes.ravel(), results.items(), strict=True):
    plots.plot_adaptation(ax, net, r.phi, eval_tasks[i], alpha, eval_amp[i], eval_phase[i], steps=(0, 1, 10))
    ax.set_title(name)
for ax in axes.ravel()[1:]:
    ax.get_legend().remove()
(mean_task,) = axes[1, 1].plot(
    x, -2 / np.pi * np.mean(family.amplitude) * np.cos(x), "k:", label="average task, -(2/pi) E[A] cos x"
)
axes[1, 1].legend(handles=[mean_task], fontsize="small", loc="lower right")
fig.suptitle(f"A held-out task: A = {eval_amp[i]:.2f}, p = {eval_phase[i]:.2f}")
fig.tight_layout()
plt.show()

# Joint training predicts (approximately) the average task: its distance from it is small
# compared with the size of the average task itself (both RMS over x in [-5, 5]).
average_task = -2 / np.pi * np.mean(family.amplitude) * np.cos(x)
to_average = {name: np.sqrt(np.mean((net.forward(r.phi, x[:, None])[:, 0] - average_task) ** 2))
              for name, r in results.items()}  # fmt: skip
size = np.sqrt(np.mean(average_task**2))
print(f"RMS of the average task: {size:.2f}; RMS distance of the prediction at phi from it: "
      + ", ".join(f"{name} {d:.2f}" for name, d in to_average.items()))  # fmt: skip
assert to_average["joint training"] < 0.5 * size

# %% [markdown]
# ## The Reptile sine demo
#
# The Reptile paper's demonstration differs in almost every setting, which makes it a useful
# second data point: a 1-64-64-1 **tanh** network; phases in $[0, 2\pi]$; $x$ drawn from 50
# grid points on $[-5, 5]$ (`Sine.reptile_demo()`); *serial* Reptile, one task per outer
# step ($M = 1$); inner SGD with $\alpha = 0.02$ over one epoch of the task's 50 points in
# mini-batches of 10 ($k = 5$ steps); $\varepsilon$ annealed from 0.1 to 0. At test time the
# network adapts to 10 points with full-batch steps and is shown after 0, 8 and 32 of them. One
# outer step is cheap, so the demo runs its full 30,000 iterations unless in fast mode (5,000).
# Its time excludes compilation, as above.

# %%
demo_family = tm.Sine.reptile_demo()
demo_net = tm.MLP([1, 64, 64, 1], "tanh")
demo_alpha = 0.02
demo_settings = dict(algo="reptile", alpha=demo_alpha, k=5, meta_batch=1, epsilon=(0.1, 0.0),
                     inner_batch_size=10, seed=0, backend=BACKEND, progress=False)  # fmt: skip
demo = tm.meta_train(demo_net, demo_family, iterations=5_000 if FAST else 30_000, **demo_settings)
print(
    f"Reptile demo: {demo.train_seconds:.1f} s ({demo.iterations_per_second:.0f} it/s, compilation excluded)"
)

# held-out demo tasks: 10 grid points to adapt on, all 50 grid points to score
demo_eval = tm.Sine(K=10, K_query=50, phase=(0.0, 2 * np.pi), grid=np.linspace(-5, 5, 50))
demo_tasks, demo_amp, demo_phase = demo_eval.evaluation_tasks(NUM_EVAL_TASKS, seed=1, K_query=50)
demo_steps = (0, 8, 32)
demo_curves = {
    "Reptile": evaluate(demo_net, demo.phi, demo_tasks, demo_alpha, demo_steps),
    "untrained init": evaluate(demo_net, demo_net.init(0), demo_tasks, demo_alpha, demo_steps),
}
for name, c in demo_curves.items():
    print(f"{name:15s} query MSE after 0 / 8 / 32 steps: " + " / ".join(f"{m:.3f}" for m in c.mean))

fig, ax = plt.subplots(figsize=(6.5, 4.2))
plots.plot_adaptation(
    ax, demo_net, demo.phi, demo_tasks[0], demo_alpha, demo_amp[0], demo_phase[0], steps=demo_steps
)
ax.set_title("Reptile sine demo: a held-out task")
plt.show()

assert demo_curves["Reptile"].mean[2] < demo_curves["Reptile"].mean[0]  # adaptation helps
assert demo_curves["Reptile"].mean[2] < demo_curves["untrained init"].mean[2]  # and beats no meta-learning

# %% [markdown]
# ## Reading the results
#
# * **MAML** gives the lowest loss after one step (checked above): its objective (3.2) is exactly
#   "loss after $k = 1$ step", and its exact gradient (3.3) optimises it. It keeps improving with more
#   steps, although it was trained for one.
# * **First-order MAML** also adapts in one step and stays below joint training. Tutorial 4
#   showed that it drops a large fraction of the gradient at $\alpha = 0.01$, yet its expected
#   direction still contains the AvgGradInner term, with half of MAML's weight (4.3) (MAML with
#   $k = 1$ and a separate query set is the $k = 2$ case of the Taylor analysis).
# * **Reptile** never uses the query set, yet its initialisation adapts as well: with $k = 5$
#   inner steps its update contains AvgGradInner (4.4).
# * **Joint training** learns towards the average of all tasks. Before adapting ($s = 0$) it is
#   as good as any (the average task is the best single guess before seeing any data), but
#   adaptation from it is slow: it never trained for adaptation.
#
# These are short runs (the MAML code trains for 70,000 iterations); longer training lowers
# the curves further, and the ranking of the three meta-learners after several steps can change
# with the budget and the seed. Compare the curves with the standard-error bands in mind; the
# checks above require each gap to joint training to exceed three standard errors of the
# task-by-task difference.
#
# ## Summary
#
# * `tm.meta_train(net, family, algo=..., iterations=..., alpha=..., k=..., ...)` runs MAML, first-order
#   MAML, Reptile or joint training with one seed fixing the initialisation and task stream;
#   `evaluate` scores held-out tasks after $s$ inner steps; `tinymeta.plots` draws both figures.
# * Meta-learned initialisations adapt to a new sine wave from 10 points in one or a few steps
#   and beat joint training on held-out tasks; joint training, which is Reptile with $k = 1$ (4.2),
#   learns towards the average wave and adapts slowly.
# * The exact MAML gradient passes the finite-difference check at the learned parameters, too.
#
# ## Exercises
#
# 1. Train MAML with $k = 5$ inner steps and evaluate after 1 and 10 steps. Which does it
#    improve, and what does it cost per iteration (tutorial 3)?
# 2. Train Reptile with $k = 1$ and compare it with joint training, curve by curve. Explain
#    the result with (4.2).
# 3. Vary $\alpha$ at evaluation time only (0.001 to 0.1) for the MAML and the joint-training
#    initialisations. Which is more sensitive, and why?
# 4. Extend the phase range to $[0, 2\pi]$ in the MAML setting (`tm.Sine(phase=(0, 2 * np.pi))`).
#    What does joint training learn now, what should its held-out MSE before adapting be, and
#    do the meta-learned initialisations still beat it?
#
# Classroom exercises `06_maml_k_steps` and `07_reptile_step` (`tinymeta exercises copy DIR` to start,
# `tinymeta exercises check NN FILE` to check; see the instructors' page) are checked versions of
# exercises like these: each checker reports the error it found, the threshold and a hint.

# %% [markdown]
# ## Try it yourself: the interactive demo
#
# `tinymeta.demo.show` puts the four initialisations trained above into the sine demo: click to
# add (left) or remove (right) support points, draw a new task, choose the initialisation, set
# $\alpha$ and the number of steps, and step or play the adaptation while the query MSE is plotted
# step by step; "compare all" shows the four side by side on the same points. It needs matplotlib's
# interactive notebook backend, ipympl (`pip install ipympl`, then `%matplotlib widget`); without
# it, as when this page was built, it says so and shows one static frame: every initialisation after
# 10 steps on the same 5 points. In a terminal, `tinymeta demo` opens the same demo in a window
# (its initialisations are trained once, in seconds, and cached); see the demo page of the docs.

# %%
import tinymeta.demo

sine_demo = tinymeta.demo.show(
    "maml",
    params={settings["algo"]: results[name].phi for name, settings in runs.items()},
    compare=True,
    seed=1,
    steps=10,
)
