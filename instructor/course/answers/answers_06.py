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
# # Answers to the exercises of tutorial 6 (speed)
#
# Timings depend on the machine and its load; the checks below test ratios and trends with wide
# margins, never absolute times. Every timed function is called once before it is timed.

# %%
import cProfile
import importlib.util
import pstats
import time
from pathlib import Path

import numpy as np

import tinymeta as tm
from tinymeta import gradcheck
from tinymeta.backends import batch_functions
from tinymeta.tasks import TaskBatch

ROOT = Path(__file__).resolve().parents[3] if "__file__" in globals() else Path(".")
numpy_fns, numba_fns = batch_functions("numpy"), batch_functions("numba")


def sine_batch(width=40, seed=0):
    net = tm.MLP([1, width, width, 1], "relu")
    _, _, xs, ys, xq, yq = tm.Sine(K=10, K_query=10).sample_arrays(np.random.default_rng(seed), 25)
    return net, net.init(0), TaskBatch(xs, ys, xq, yq)


def seconds(fn, repeats=5):
    """Best of ``repeats`` calls, after one untimed warm-up call."""
    fn()
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


net, phi, batch = sine_batch()

# %% [markdown]
# ## Exercise 1: profiling Reptile
#
# Below Reptile's own functions, the profile is dominated by `MLP.loss_and_grad`: one call per
# task and inner step ($M k = 125$ calls per meta-iteration for 25 tasks and $k = 5$), each a
# forward and a backward pass of a few small products wrapped in Python-level bookkeeping, as for
# MAML in the tutorial. There is no HVP at all: Reptile's update
# $\varphi + \varepsilon\,\frac1M\sum_j(\tilde\varphi_j - \varphi)$ uses only the endpoints of the inner
# SGD runs, never the derivative of the inner loop, so nothing second-order is computed.

# %%
numpy_fns["reptile"](net, phi, batch, 0.01, 5)
profile = cProfile.Profile()
profile.enable()
for _ in range(3):
    numpy_fns["reptile"](net, phi, batch, 0.01, 5)
profile.disable()
stats = pstats.Stats(profile).stats  # (file, line, name): (calls, _, tottime, cumtime, callers)
below = {f: v for f, v in stats.items() if not f[0].endswith(("reptile.py", "batch.py")) and f[0] != "~"}
top = max(below, key=lambda f: below[f][3])
hvp_calls = sum(v[1] for f, v in stats.items() if f[2] == "hvp" and f[0].endswith("mlp.py"))
print(f"largest cumulative time below Reptile's own functions: {top[2]} ({top[0].split('/')[-1]}), "
      f"{below[top][1]} calls for 3 meta-iterations; MLP.hvp calls: {hvp_calls}")  # fmt: skip
assert top[2] == "loss_and_grad" and top[0].endswith("mlp.py") and below[top][1] == 3 * 25 * 5
assert hvp_calls == 0

# %% [markdown]
# ## Exercise 2: MAML's cost against $k$
#
# Yes, linear: each inner step adds one gradient on the way forward and one HVP on the way back,
# so the time per meta-iteration is $a + b\,k$, with $a$ the query gradient and fixed costs. A
# straight line fits the measured times of both backends closely.

# %%
ks = np.array([1, 2, 4, 8])
for name, fns in (("numpy", numpy_fns), ("numba", numba_fns)):
    t = np.array([seconds(lambda k=k, maml=fns["maml"]: maml(net, phi, batch, 0.01, int(k)), 10) for k in ks])
    b, a = np.polyfit(ks, t, 1)
    r2 = 1 - np.sum((t - (a + b * ks)) ** 2) / np.sum((t - t.mean()) ** 2)
    print(
        f"{name}: "
        + ", ".join(f"k={k}: {s * 1e3:.2f} ms" for k, s in zip(ks, t, strict=True))
        + f"; R^2 of a line {r2:.3f}"
    )
    assert r2 > 0.8 and t[-1] > 2 * t[0]  # loose: timings on a loaded machine are noisy

# %% [markdown]
# ## Exercise 3: hidden width 400
#
# The speed-up of the kernels shrinks. At width 40 a meta-iteration is thousands of tiny
# operations, and the interpreter's overhead around each of them is what the fused kernel removes.
# At width 400 each matrix product costs a hundred times more arithmetic, done by the same BLAS
# routines in both backends, and the removed overhead is a much smaller part of the total.

# %%
speedup = {}
for width in (40, 400):
    n_, p_, b_ = sine_batch(width)
    slow = seconds(lambda n_=n_, p_=p_, b_=b_: numpy_fns["maml"](n_, p_, b_, 0.01, 1), 3)
    fast = seconds(lambda n_=n_, p_=p_, b_=b_: numba_fns["maml"](n_, p_, b_, 0.01, 1), 3)
    speedup[width] = slow / fast
    print(
        f"width {width}: numpy {slow * 1e3:.2f} ms, numba {fast * 1e3:.2f} ms, speed-up {speedup[width]:.1f}x"
    )
assert speedup[400] < speedup[40]

# %% [markdown]
# ## Exercise 4: your own HVP against `net.hvp`
#
# A direct NumPy implementation of the R-operator for one hidden layer, such as the reference
# solution of classroom exercise 04, does the same dozen small matrix products as `net.hvp` and
# agrees with it to round-off. Its speed is within a small factor of `net.hvp`'s: the library
# adds argument validation and handles any depth, the hand-written one does only what one
# network needs.

# %%
spec = importlib.util.spec_from_file_location(
    "sol04", ROOT / "instructor" / "solutions" / "04_hvp_r_operator.py"
)
sol04 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sol04)
small = tm.MLP([1, 40, 1], "tanh")
ps = small.init(1)
rng = np.random.default_rng(6)
X, y, v = rng.uniform(-5, 5, (10, 1)), rng.standard_normal((10, 1)), rng.standard_normal(small.num_params)
mine, lib = sol04.hvp_one_hidden(ps, X, y, v, (1, 40, 1)), small.hvp(ps, X, y, v)
t_mine = seconds(lambda: sol04.hvp_one_hidden(ps, X, y, v, (1, 40, 1)), 20)
t_lib = seconds(lambda: small.hvp(ps, X, y, v), 20)
print(
    f"relative difference {gradcheck.rel_error(mine, lib):.1e}; "
    f"hand-written {t_mine * 1e6:.0f} us, net.hvp {t_lib * 1e6:.0f} us"
)
assert gradcheck.rel_error(mine, lib) < 1e-13 and 0.1 < t_mine / t_lib < 10
