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
# # 0. Gradient checking
#
# Every derivative in tinymeta is written by hand: the backward pass of the MLP, its
# Hessian-vector product, the exact MAML meta-gradient. A hand-written derivative is only
# as good as the check that compares it with the function it claims to differentiate.
# This tutorial builds that check, `tinymeta.gradcheck`, from first principles:
#
# * central differences and their $O(h^2)$ truncation error,
# * the relative error used by every check in the project, and what size to expect,
# * the choice of the step $h$: truncation $O(h^2)$ against round-off $O(\varepsilon/h)$,
# * ReLU kinks, where the *numerical* derivative is the one that is wrong,
# * why every check runs in float64.
#
# The later tutorials use the same functions to check each equation as soon as it is derived.
# A rule for all of them: every displayed equation is either followed by a cell whose `assert`
# fails if the equation is wrong, or marked *(definition)*.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import tinymeta as tm
from tinymeta import gradcheck

FAST = os.environ.get("TINYMETA_FAST") == "1"  # CI runs a shorter version; the default is the full one
rng = np.random.default_rng(0)

# %% [markdown]
# ## Central differences
#
# Expand a smooth scalar function around $x$ with Taylor's theorem:
#
# $$
# f(x \pm h) = f(x) \pm h f'(x) + \tfrac{h^2}{2} f''(x) \pm \tfrac{h^3}{6} f'''(x) + O(h^4).
# $$
#
# Subtracting the two expansions cancels the even powers:
#
# $$
# \frac{f(x+h) - f(x-h)}{2h} = f'(x) + \frac{h^2}{6} f'''(x) + O(h^4).
# $$
#
# So the *central* difference has truncation error $O(h^2)$, while the one-sided
# difference $(f(x+h) - f(x))/h = f'(x) + \tfrac{h}{2} f''(x) + \dots$ is only $O(h)$.
# Both expansions can be checked on $f = \sin$, whose derivatives are known: the remainder of
# the first falls 16-fold when $h$ is halved ($O(h^4)$), and the error of the central difference,
# divided by $\tfrac{h^2}{6} f'''(x)$, tends to 1.


# %%
def sine_taylor3(x, h):
    # f(x) + h f'(x) + h^2/2 f''(x) + h^3/6 f'''(x) for f = sin
    return np.sin(x) + h * np.cos(x) - h**2 / 2 * np.sin(x) - h**3 / 6 * np.cos(x)


x_ = 0.7
remainders = [abs(np.sin(x_ + h) - sine_taylor3(x_, h)) for h in (1e-2, 5e-3)]
central_error = (np.sin(x_ + 1e-3) - np.sin(x_ - 1e-3)) / 2e-3 - np.cos(x_)
predicted = 1e-3**2 / 6 * (-np.cos(x_))  # h^2/6 f'''(x)
print(f"remainder of the expansion at h = 1e-2 and 5e-3: {remainders[0]:.3e}, {remainders[1]:.3e}")
print(f"ratio when h is halved: {remainders[0] / remainders[1]:.2f} (O(h^4): 16)")
print(f"central-difference error / (h^2/6 f'''(x)) at h = 1e-3: {central_error / predicted:.5f}")
assert 15 < remainders[0] / remainders[1] < 17
assert abs(central_error / predicted - 1) < 1e-3

# %% [markdown]
# For a function of a vector $x \in \mathbb{R}^P$ there are two ways to use it:
#
# * **per coordinate**: $g_j \approx \dfrac{f(x + h e_j) - f(x - h e_j)}{2h}$ for $j = 1..P$,
#   which costs $2P$ evaluations and recovers the whole gradient
#   (`gradcheck.numerical_grad`, `gradcheck.check_grad`);
# * **along a direction** $u$: $\nabla f(x)^\top u \approx \dfrac{f(x + h u) - f(x - h u)}{2h}$,
#   two evaluations per direction, cheap for any $P$ (`gradcheck.directional_derivative`,
#   `gradcheck.check_directional`).
#
# A first example with a known answer: $f(x) = \sum_j \sin(x_j) x_j^2$ has
# $\partial f / \partial x_j = \cos(x_j) x_j^2 + 2 x_j \sin(x_j)$.


# %%
def f(x):
    return np.sum(np.sin(x) * x**2)


def grad_f(x):
    return np.cos(x) * x**2 + 2.0 * x * np.sin(x)


x0 = rng.standard_normal(5)
print("analytic :", grad_f(x0))
print("numerical:", gradcheck.numerical_grad(f, x0, h=1e-5))
report = gradcheck.check_grad(f, grad_f, x0)
print(report)
assert report.passed

# %% [markdown]
# ## The relative error
#
# An absolute difference $\lVert a - \hat a \rVert$ between the analytic gradient $a$ and the
# numerical estimate $\hat a$ means nothing without a scale: multiply the loss by $10^6$ and it
# grows by $10^6$ although nothing got worse. tinymeta therefore compares with the relative error
#
# $$
# \operatorname{rel}(a, \hat a) = \frac{\lVert a - \hat a \rVert}{\max(\lVert a \rVert + \lVert \hat a \rVert,\ 10^{-300})}
# \qquad \text{(definition)},
# $$
#
# Euclidean norms over the whole vector. It is symmetric in $a$ and $\hat a$, invariant to the
# scale of $f$, at most 1 by the triangle inequality, and the $10^{-300}$ keeps $0/0$ away
# when both vectors vanish. What to expect in float64:
#
# | relative error | meaning |
# | --- | --- |
# | $\sim 10^{-11}$ to $10^{-9}$ | correct derivative of a smooth function (central differences, good $h$) |
# | $10^{-6}$ | tinymeta's default threshold: generous, so a correct derivative never fails |
# | $10^{-4}$ | ReLU networks with inputs kept away from the kinks (see below) |
# | $\approx 1/3$ | a factor 2 missing: $\lVert a - 2a\rVert / (\lVert a\rVert + \lVert 2a\rVert) = 1/3$ |
# | $1$ | a sign error: $\lVert a + a\rVert / (2\lVert a\rVert) = 1$ |
#
# The last two rows are worth seeing once. They are *negative controls*: a check that cannot
# fail checks nothing, so every tutorial also shows a wrong derivative failing.

# %%
scaled = gradcheck.check_grad(lambda x: 1e6 * f(x), lambda x: 1e6 * grad_f(x), x0, name="10^6 f")
half = gradcheck.check_grad(f, lambda x: 0.5 * grad_f(x), x0, name="gradient missing a factor 2")
flipped = gradcheck.check_grad(f, lambda x: -grad_f(x), x0, name="gradient with the wrong sign")
for r in (scaled, half, flipped):
    print(r)
assert scaled.passed  # scale invariance: the same relative error as before, up to round-off
assert not half.passed and abs(half.error - 1 / 3) < 1e-6
assert not flipped.passed and abs(flipped.error - 1.0) < 1e-6

# %% [markdown]
# ## Checking a network
#
# The same check applies to the loss of an MLP as a function of its flat parameter vector
# $\varphi$ (tutorial 1 derives the gradient). `gradcheck.check_model` perturbs every one of
# the $P$ parameters; `check_directional` tests a few random directions, which scales to
# large networks.

# %%
net = tm.MLP([3, 8, 8, 2], "tanh")
phi = net.init(rng)
X = rng.standard_normal((10, 3))
y = rng.standard_normal((10, 2))


def loss(p):
    return net.loss(p, X, y)


def grad(p):
    return net.loss_and_grad(p, X, y)[1]


print("P =", net.num_params)
for r in (gradcheck.check_model(net, phi, X, y), gradcheck.check_directional(loss, grad, phi, rng=1)):
    print(r)
    assert r.passed

# %% [markdown]
# ## Choosing the step: truncation against round-off
#
# The $O(h^2)$ truncation error suggests taking $h$ as small as possible. Floating-point
# arithmetic says otherwise. A computed loss carries a relative error of a few units of the
# machine epsilon $\varepsilon$ ($2.2 \times 10^{-16}$ in float64, $1.2 \times 10^{-7}$ in
# float32), i.e. an absolute error $\approx \varepsilon |f|$. The difference of two such values,
# divided by $2h$, carries an error $\approx \varepsilon |f| / h$. Adding the two sources,
#
# $$
# E(h) \approx \underbrace{\frac{h^2}{6} |f'''|}_{\text{truncation}} + \underbrace{\frac{\varepsilon |f|}{h}}_{\text{round-off}},
# \qquad
# h^\star = \Big(\frac{3 \varepsilon |f|}{|f'''|}\Big)^{1/3} \sim \varepsilon^{1/3},
# \qquad
# E(h^\star) \sim \varepsilon^{2/3}.
# $$
#
# On a log-log plot the error falls with slope $+2$ as $h$ shrinks, reaches its floor near
# $h^\star$, then rises with slope $-1$. For float64, $\varepsilon^{1/3} \approx 6 \times 10^{-6}$
# and $\varepsilon^{2/3} \approx 4 \times 10^{-11}$: this is where the defaults $h = 10^{-5}$
# (per coordinate) and $10^{-6}$ (along a unit direction) and the expected errors around
# $10^{-10}$ come from. For float32, $\varepsilon^{1/3} \approx 5 \times 10^{-3}$ and the best
# achievable error is $\approx \varepsilon^{2/3} \approx 2 \times 10^{-5}$ at the very best.
# Relative to the derivative being measured, the round-off term is
# $\varepsilon |f| / (h |f'|)$: a loss that is large compared with its slope makes it worse.
#
# We measure $E(h)$ for the network above along random unit directions $u$, comparing the
# central difference with the exact directional derivative $\nabla L(\varphi)^\top u$, for $h$
# from $10^{-1}$ down to $10^{-12}$. The float32 curve evaluates the same network with every
# array cast to float32 (tinymeta itself always computes in float64, so this forward pass is
# written out here).


# %%
def loss32(p):
    """The same MSE loss with parameters, data and arithmetic in float32."""
    layers = [(W.astype(np.float32), b.astype(np.float32)) for W, b in net.unflatten(p.astype(np.float32))]
    a = X.astype(np.float32)
    for W, b in layers[:-1]:
        a = np.tanh(a @ W + b)
    yhat = a @ layers[-1][0] + layers[-1][1]
    return np.mean(np.sum((yhat - y.astype(np.float32)) ** 2, axis=1))


hs = np.logspace(-1, -12, 23 if FAST else 45)
directions = [u / np.linalg.norm(u) for u in rng.standard_normal((4 if FAST else 16, net.num_params))]
g = grad(phi)


def sweep(fn):
    """Root-mean-square relative error of the directional derivative over the directions, per h."""
    out = []
    for h in hs:
        errs = [(gradcheck.directional_derivative(fn, phi, u, h) - g @ u) / abs(g @ u) for u in directions]
        out.append(np.sqrt(np.mean(np.square(errs))))
    return np.array(out)


err64, err32 = sweep(loss), sweep(loss32)


def slope(h_lo, h_hi, err):
    """Least-squares slope of log(err) against log(h) for h in [h_lo, h_hi]."""
    m = (hs >= h_lo) & (hs <= h_hi)
    return np.polyfit(np.log(hs[m]), np.log(err[m]), 1)[0]


s_trunc, s_round = slope(1e-3, 1e-1, err64), slope(1e-12, 1e-8, err64)
print(
    f"float64: slope {s_trunc:+.2f} for h in [1e-3, 1e-1] (truncation, expect +2), "
    f"{s_round:+.2f} for h in [1e-12, 1e-8] (round-off, expect -1)"
)
best64, best32 = hs[err64.argmin()], hs[err32.argmin()]
eps64, eps32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps
print(
    f"float64: best h = {best64:.1e}, error {err64.min():.1e}  (model: h* ~ eps^(1/3) = {eps64 ** (1 / 3):.0e})"
)
print(
    f"float32: best h = {best32:.1e}, error {err32.min():.1e}  (model: h* ~ eps^(1/3) = {eps32 ** (1 / 3):.0e})"
)

fig, ax = plt.subplots(figsize=(6.5, 4.5))
ax.loglog(hs, err64, "o-", ms=3, label="float64, measured")
ax.loglog(hs, err32, "s-", ms=3, label="float32, measured")
# round-off model, relative to the derivative: eps |f| / (h |grad f . u|), RMS over the directions
ratio = np.sqrt(np.mean([(loss(phi) / (g @ u)) ** 2 for u in directions]))
for eps, style in ((np.finfo(np.float64).eps, "k--"), (np.finfo(np.float32).eps, "k:")):
    ax.loglog(
        hs, ratio * eps / hs, style, lw=0.8, label=rf"$\varepsilon |f| / (h |f'|)$, $\varepsilon$={eps:.1e}"
    )
ax.loglog(hs, err64[0] * (hs / hs[0]) ** 2, "k-.", lw=0.8, label=r"$\propto h^2$")
ax.set_xlabel("step h")
ax.set_ylabel("relative error of the directional derivative")
ax.set_ylim(1e-13, 10)
ax.invert_xaxis()
ax.legend(fontsize=8)
ax.set_title("Central differences: truncation vs round-off")
plt.show()

# Truncation is O(h^2) (slope 2) and round-off O(1/h) (slope -1; noisy, hence the wide band).
assert 1.8 < s_trunc < 2.2
assert -1.6 < s_round < -0.4
assert 0.1 < best64 / eps64 ** (1 / 3) < 10 and 0.1 < best32 / eps32 ** (1 / 3) < 10  # h* ~ eps^(1/3)
assert err64.min() < 1e-9  # float64 reaches ~eps^(2/3)
assert err32.min() > 1e-6  # float32 cannot pass the default threshold at any h
assert err32.min() > 1e3 * err64.min()  # its floor is orders of magnitude higher

# %% [markdown]
# The measured curves follow the model: slope $+2$ on the right, a floor at a step within a
# factor 10 of $\varepsilon^{1/3}$ (printed above), and a round-off branch on the left that tracks
# $\varepsilon |f| / (h |f'|)$ within a small factor. In float32 the floor sits at a much larger
# step and orders of magnitude higher; below $h \approx 10^{-8}$ the perturbed parameters
# $\varphi \pm h u$ round to the same float32 numbers, the difference is exactly 0 and the
# relative error is 1. The same step is
# useless at the extremes: too large and the truncation error shows, too small and the
# difference drowns in rounding.

# %%
for h in (1e-6, 1e-11):
    r = gradcheck.check_directional(loss, grad, phi, rng=2, h=h)
    print(r)
assert gradcheck.check_directional(loss, grad, phi, rng=2, h=1e-6).passed
assert not gradcheck.check_directional(loss, grad, phi, rng=2, h=1e-11).passed  # round-off ~1e-4

# %% [markdown]
# ## ReLU kinks: when the numerical derivative is the wrong one
#
# $\operatorname{relu}(z) = \max(z, 0)$ has no derivative at $z = 0$. If a finite-difference
# step crosses the kink, the difference quotient averages the two slopes. For $z = 10^{-6}$
# and $h = 10^{-5}$,
#
# $$
# \frac{\operatorname{relu}(z + h) - \operatorname{relu}(z - h)}{2h} = \frac{z + h - 0}{2h} = 0.55,
# $$
#
# while the true derivative is 1 (the first lines of the next cell compute the quotient). The analytic gradient is right and the check says it is
# wrong. In a network this happens when a hidden pre-activation $z$ of some example lies
# within about $h$ of 0. We place one there on purpose by shifting a bias, check, then move
# it away to $z = 10^{-2}$, and finally keep it at $2 \times 10^{-6}$ but use a step $h = 10^{-7}$
# that no longer straddles the kink.

# %%
quotient = (max(1e-6 + 1e-5, 0.0) - max(1e-6 - 1e-5, 0.0)) / 2e-5
print(f"(relu(z + h) - relu(z - h)) / 2h at z = 1e-6, h = 1e-5: {quotient:.4f}")
assert abs(quotient - 0.55) < 1e-9

relu = tm.MLP([3, 8, 8, 2], "relu")
phi_r = relu.init(rng)
(W1, b1), _, _ = relu.unflatten(phi_r)
z1 = X @ W1 + b1  # first-layer pre-activations, shape (10, 8)
print(f"smallest |z| in layer 1: {np.abs(z1).min():.1e}")


def place(z_target):
    """A copy of phi_r whose bias b1[0] puts example 0's unit 0 at pre-activation z_target."""
    p = phi_r.copy()
    relu.unflatten(p)[0][1][0] += z_target - z1[0, 0]  # the views write into the copy p
    return p


near, far = place(2e-6), place(1e-2)
checks = {
    "z = 2e-6, h = 1e-5 (straddles the kink)": gradcheck.check_model(relu, near, X, y, h=1e-5),
    "z = 1e-2, h = 1e-5": gradcheck.check_model(relu, far, X, y, h=1e-5),
    "z = 2e-6, h = 1e-7": gradcheck.check_model(relu, near, X, y, h=1e-7),
}
for label, r in checks.items():
    print(f"{label:42s} {r}")
ok = list(checks.values())
assert not ok[0].passed and ok[1].passed and ok[2].passed

# %% [markdown]
# The remedies, used throughout tinymeta: check exact identities with a **smooth** activation
# (tanh, softplus, sigmoid); for ReLU networks draw inputs whose pre-activations stay well
# away from 0 compared with $h$ (the test-suite keeps $|z| > 10^{-3}$) and use the looser
# threshold $10^{-4}$, stated next to the check.
#
# ## Why float64
#
# The sweep above already answered this: in float32 the best achievable relative error (printed
# above) is far above float64's, so a correct gradient and one with a small bug (a missing term of
# relative size $10^{-4}$, say) are indistinguishable. Here is the coordinate-wise check of the
# *correct* float64 gradient against float32 differences at float32's own best step:

# %%
h32 = hs[err32.argmin()]
r32 = gradcheck.check_grad(loss32, grad, phi, h=h32, name="float64 gradient vs float32 loss")
r64 = gradcheck.check_grad(loss, grad, phi, h=1e-5, name="float64 gradient vs float64 loss")
print(r32)
print(r64)
assert not r32.passed and r64.passed

# %% [markdown]
# tinymeta validates every input array to float64 (`tinymeta.validate.float_array`), so
# its own computations cannot drift into float32. Comparing a float64 implementation with a
# float32 framework is possible, but only to about $10^{-6}$ relative, and a framework is not an
# oracle: the reference here is always the function itself, differenced in float64.
#
# ## Summary
#
# * Central differences have truncation error $\frac{h^2}{6} f'''$; round-off adds
#   $\approx \varepsilon |f| / h$. The best step is $h^\star \sim \varepsilon^{1/3}$ with error
#   $\sim \varepsilon^{2/3}$: $h = 10^{-5}$ to $10^{-6}$ and errors near $10^{-10}$ in float64.
# * `gradcheck.rel_error` is scale-free and bounded by 1; a correct smooth derivative lands
#   near $10^{-10}$, the default threshold is $10^{-6}$, a real bug lands near $1$.
# * `check_grad` (per coordinate, $2P$ evaluations) and `check_directional` (2 per direction)
#   return a `CheckReport` with the error, the threshold and the verdict.
# * A step that straddles a ReLU kink makes the *numerical* derivative wrong.
# * Checks run in float64: float32 differences cannot get below
#   $\varepsilon_{32}^{2/3} \approx 2 \times 10^{-5}$ even in the model, and the measured floor above
#   is higher still.
#
# ## Exercises
#
# 1. Repeat the step sweep with the one-sided difference $(f(x+h) - f(x))/h$. Derive its
#    error model, predict the slope of the truncation branch, the best $h$ and the best error,
#    and compare with the plot.
# 2. Richardson extrapolation: combine central differences with steps $h$ and $2h$ to cancel
#    the $h^2$ term. What is the new truncation order, and what happens to the best step?
# 3. Write a gradient with a deliberate transpose bug in one weight matrix of a square
#    layer and find the relative error it produces. Why can a transpose bug pass unnoticed if
#    the matrix happens to be symmetric?
# 4. For the ReLU network, estimate how the check error grows with the fraction of examples
#    whose pre-activations lie within $h$ of a kink.
#
# Classroom exercises `01_activation_derivatives` (`tinymeta exercises copy DIR` to start,
# `tinymeta exercises check NN FILE` to check; see the instructors' page) are checked versions of
# exercises like these: each checker reports the error it found, the threshold and a hint.
