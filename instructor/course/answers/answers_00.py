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
# # Answers to the exercises of tutorial 0 (gradient checking)
#
# Every claim below is checked by the code cell after it. Run with `TINYMETA_FAST=1` for the
# short version; the assertions hold in both modes.

# %%
import os

import numpy as np

import tinymeta as tm
from tinymeta import gradcheck

FAST = os.environ.get("TINYMETA_FAST") == "1"
EPS = np.finfo(np.float64).eps


def loglog_slope(hs, errs, lo, hi):
    m = (hs >= lo) & (hs <= hi)
    return np.polyfit(np.log(hs[m]), np.log(errs[m]), 1)[0]


# %% [markdown]
# ## Exercise 1: the one-sided difference
#
# $f(x+h) = f(x) + h f'(x) + \tfrac{h^2}{2} f''(x) + O(h^3)$, so
# $(f(x+h) - f(x))/h = f'(x) + \tfrac{h}{2} f''(x) + O(h^2)$: truncation error $O(h)$, **slope 1**
# on the log-log plot. Round-off is as before, $\approx \varepsilon|f|/h$ (one difference of two
# values, divided by $h$). The error model
# $E(h) \approx \tfrac h2 |f''| + \varepsilon|f|/h$ is smallest at
# $h^\star = \sqrt{2\varepsilon|f|/|f''|} \sim \varepsilon^{1/2} \approx 1.5\times10^{-8}$, where
# $E(h^\star) \sim \varepsilon^{1/2}$ times a factor that depends on $f$: between $10^{-10}$ and
# $10^{-6}$ relative, at least ten times worse than the central difference at its best, at a step
# hundreds of times smaller. Checked on the network of the tutorial, along random unit directions.

# %%
rng = np.random.default_rng(0)
net = tm.MLP([3, 8, 8, 2], "tanh")
phi = net.init(rng)
X, y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
g = net.loss_and_grad(phi, X, y)[1]
hs = np.logspace(-1, -12, 23 if FAST else 45)
dirs = [u / np.linalg.norm(u) for u in rng.standard_normal((4 if FAST else 16, net.num_params))]


def sweep(diff):
    out = []
    for h in hs:
        errs = [(diff(u, h) - g @ u) / abs(g @ u) for u in dirs]
        out.append(np.sqrt(np.mean(np.square(errs))))
    return np.array(out)


def one_sided(u, h):
    return (net.loss(phi + h * u, X, y) - net.loss(phi, X, y)) / h


def central(u, h):
    return (net.loss(phi + h * u, X, y) - net.loss(phi - h * u, X, y)) / (2 * h)


e1, e2 = sweep(one_sided), sweep(central)
s1 = loglog_slope(hs, e1, 1e-4, 1e-1)
print(f"one-sided: truncation slope {s1:.2f}, best h {hs[e1.argmin()]:.1e}, best error {e1.min():.1e}")
print(f"central:   best h {hs[e2.argmin()]:.1e}, best error {e2.min():.1e}")
assert 0.9 < s1 < 1.1
assert 1e-10 < hs[e1.argmin()] < 1e-6 and 1e-10 < e1.min() < 1e-6
assert e1.min() > 10 * e2.min()
assert hs[e2.argmin()] > 100 * hs[e1.argmin()]

# %% [markdown]
# ## Exercise 2: Richardson extrapolation
#
# With $D(h) = (f(x+h) - f(x-h))/2h = f'(x) + c\,h^2 + O(h^4)$,
# $R(h) = \big(4D(h) - D(2h)\big)/3 = f'(x) + O(h^4)$: the $h^2$ terms cancel. Truncation is now
# $O(h^4)$ (slope 4); round-off is still $O(\varepsilon/h)$, so the best step grows to
# $h^\star \sim \varepsilon^{1/5} \approx 7\times10^{-4}$ and the best error falls to the order of
# $\varepsilon^{4/5} \approx 3\times10^{-13}$ relative or below (the constants depend on $f$). Checked
# on $f = \sin$ at $x = 0.7$.

# %%
x0 = 0.7
hs_r = np.logspace(-1, -7, 25)
D = lambda h: (np.sin(x0 + h) - np.sin(x0 - h)) / (2 * h)  # noqa: E731
rich = np.array([abs((4 * D(h) - D(2 * h)) / 3 - np.cos(x0)) / abs(np.cos(x0)) for h in hs_r])
s4 = loglog_slope(hs_r, rich, 2e-2, 1e-1)
best = hs_r[rich.argmin()]
print(f"Richardson: truncation slope {s4:.2f}, best h {best:.1e}, best error {rich.min():.1e}")
assert 3.7 < s4 < 4.3
assert 1e-4 < best < 1e-2 and rich.min() < 1e-11

# %% [markdown]
# ## Exercise 3: a transpose bug
#
# In a square layer ($d_{l-1} = d_l$) the backward line $e_{l-1} = \delta_l W_l^\top$ written as
# $\delta_l W_l$ has the right shape, so only the values reveal it: the relative error is of order
# $10^{-1}$ to 1 for a general $W_l$. If $W_l$ happens to be symmetric, $W_l = W_l^\top$ and the buggy
# code computes exactly the right gradient: the check passes, and the bug surfaces later, on
# another matrix. (This is why tests use random, non-symmetric weights.)

# %%
sq = tm.MLP([3, 6, 6, 2], "tanh")
p = sq.init(1)
Xs, ys = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))


def backward(p, transpose_bug):
    (W1, b1), (W2, b2), (W3, b3) = sq.unflatten(p)
    z1 = Xs @ W1 + b1
    a1 = np.tanh(z1)
    z2 = a1 @ W2 + b2
    a2 = np.tanh(z2)
    d3 = 2.0 * (a2 @ W3 + b3 - ys) / len(Xs)
    d2 = (1 - a2**2) * (d3 @ W3.T)
    d1 = (1 - a1**2) * (d2 @ (W2 if transpose_bug else W2.T))  # W2 is square (6, 6)
    return np.concatenate(
        [(Xs.T @ d1).ravel(), d1.sum(0), (a1.T @ d2).ravel(), d2.sum(0), (a2.T @ d3).ravel(), d3.sum(0)]
    )


loss_sq = lambda q: sq.loss(q, Xs, ys)  # noqa: E731
bug = gradcheck.check_grad(loss_sq, lambda q: backward(q, True), p, name="transpose bug")
ok = gradcheck.check_grad(loss_sq, lambda q: backward(q, False), p, name="correct")
(W1, b1), (W2, b2), _ = sq.unflatten(p)
p_sym = p.copy()
sq.unflatten(p_sym)[1][0][...] = (W2 + W2.T) / 2  # make W2 symmetric (the views write into p_sym)
bug_sym = gradcheck.check_grad(
    loss_sq, lambda q: backward(q, True), p_sym, name="transpose bug, symmetric W2"
)
for r in (ok, bug, bug_sym):
    print(r)
assert ok.passed and not bug.passed and bug.error > 1e-2 and bug_sym.passed

# %% [markdown]
# ## Exercise 4: more examples near a ReLU kink
#
# Each example whose pre-activation lies within $h$ of 0 contributes a wrong finite difference for
# the parameters that feed that unit; the others are exact to round-off. A single straddling
# example is enough to fail the check by orders of magnitude. Beyond that the error grows with the
# number of straddling examples, but not in proportion: each one's error depends on how much it
# contributes to the gradient, and the errors of different examples can partly cancel. Checked by
# moving $m$ of 10 examples of one unit to within $h/5$ of the kink.

# %%
relu = tm.MLP([3, 8, 8, 2], "relu")
pr = relu.init(rng)
Xr = rng.standard_normal((10, 3))
yr = rng.standard_normal((10, 2))
(W1r, b1r), _, _ = relu.unflatten(pr)
W1col = W1r[:, 0]
errors = []
for m in (0, 1, 3, 6, 10):
    Xm = Xr.copy()
    for i in range(m):  # put example i's unit-0 pre-activation at 2e-6, inside the step h = 1e-5
        Xm[i] += (2e-6 - (Xm[i] @ W1col + b1r[0])) * W1col / (W1col @ W1col)
    errors.append(gradcheck.check_model(relu, pr, Xm, yr, h=1e-5).error)
    print(f"{m:2d} of 10 examples at the kink: relative error {errors[-1]:.1e}")
assert errors[0] < 1e-8 and min(errors[1:]) > 1e-4  # one straddling example already fails
assert errors[-1] > errors[1]  # all ten straddling: larger than one
