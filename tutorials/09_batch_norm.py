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
# # 9. Batch norm, derived to second order
#
# The MLP in the MAML paper's Omniglot experiments normalises every hidden layer with batch
# normalisation. Exact MAML needs this network's gradient and its Hessian-vector products. The
# batch mean and variance depend on the parameters, so both derivatives must go *through* them.
# Batch norm's backward pass is a classic exercise. Its R-operator (tutorial 2), which
# differentiates the statistics a second time, is rarely written down. This tutorial derives both,
# writes them in a few NumPy lines, and checks each against finite differences as soon as it
# appears. The derivations page of the documentation has the same equations with their labels.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import tinymeta as tm
from tinymeta import batchnorm, gradcheck

FAST = os.environ.get("TINYMETA_FAST") == "1"  # CI runs a shorter version; the default is the full one
rng = np.random.default_rng(9)
EPS = batchnorm.EPS  # 1e-3, as in MAML's code (see below)

# %% [markdown]
# ## What MAML's network does
#
# In MAML's reference code (`cbfinn/maml`, `utils.normalize`), each hidden layer is
# `tf.contrib.layers.batch_norm(x W + b, activation_fn=relu)` with the function's defaults:
# a learned shift $\beta$ (`center=True`), **no** learned scale (`scale=False`), $\epsilon = 10^{-3}$
# inside the square root, and `is_training=True`. The last default means the statistics are
# always those of the batch being processed: the support batch during adaptation, and the query
# batch, at test time too, when it is scored.
#
# For each hidden layer $l$, with column means $\overline{x} = \frac1n \mathbf 1^\top x$ (a
# $(d_l,)$ vector acts on every row):
#
# $$
# \begin{aligned}
# \mu_l &= \overline{z_l}, \qquad s_l^2 = \overline{(z_l - \mu_l)^2}, \qquad
# r_l = (s_l^2 + \epsilon)^{-1/2}, \\
# \hat z_l &= (z_l - \mu_l) \odot r_l, \qquad \tilde z_l = \hat z_l + \beta_l, \qquad a_l = \sigma(\tilde z_l).
# \end{aligned}
# \tag{9.1}
# $$
#
# `tm.MLP(sizes, activation, batch_norm=True)` builds this network. Its $\varphi$ is the usual
# layout, followed by $\beta_1, \dots, \beta_{L-1}$, which start at 0. We check (9.1) by hand.

# %%
net = tm.MLP([4, 8, 6, 3], "tanh", batch_norm=True)
plain = tm.MLP([4, 8, 6, 3], "tanh")
phi = net.init(rng)
for beta in net.shifts(phi):  # nonzero shifts, so that a mistake in beta would show
    beta[:] = 0.3 * rng.standard_normal(beta.shape)
print(f"P = {net.num_params} = {plain.num_params} (W, b) + {net.num_params - plain.num_params} shifts")

n = 7
X = rng.standard_normal((n, 4))
a = X
for (W, b), beta in zip(net.unflatten(phi)[:-1], net.shifts(phi), strict=True):
    z = a @ W + b
    mu, s2 = z.mean(axis=0), ((z - z.mean(axis=0)) ** 2).mean(axis=0)
    a = np.tanh((z - mu) / np.sqrt(s2 + EPS) + beta)
W3, b3 = net.unflatten(phi)[-1]
err = np.abs(a @ W3 + b3 - net.forward(phi, X)).max()
print(f"(9.1) by hand vs net.forward: max difference {err:.1e}")
assert err < 1e-13  # same formula, different order of operations: round-off only

# %% [markdown]
# **Transductive.** Each row is normalised with statistics of the whole batch, so the output for
# one example depends on the others. When MAML scores a query batch, every query prediction uses
# the other query examples too. This is *transductive* inference. Change one row and watch
# another:

# %%
X2 = X.copy()
X2[1] += 3.0
moved = np.abs(net.forward(phi, X2)[0] - net.forward(phi, X)[0]).max()
moved_plain = np.abs(plain.forward(phi[: plain.num_params], X2)[0] - plain.forward(phi[: plain.num_params], X)[0]).max()
print(f"row 0's output moves by {moved:.3f} when row 1 changes (without batch norm: {moved_plain})")
assert moved > 1e-3 and moved_plain == 0.0

# %% [markdown]
# ## Backward: the Jacobian of the normalisation
#
# Columns do not interact, so take one column and drop $l$. Write $c = z - \mu$, so $\hat z = c\,r$.
# Differentiate with respect to example $i$'s pre-activation $z_i$, using $\sum_k c_k = 0$:
# $\partial\mu/\partial z_i = 1/n$, $\partial s^2/\partial z_i = 2c_i/n$ and
# $\partial r/\partial z_i = -r^3 c_i / n$. Hence
#
# $$
# \frac{\partial \hat z_k}{\partial z_i} = r\Big(\delta_{ki} - \frac1n - \frac{\hat z_k \hat z_i}{n}\Big),
# \qquad
# J = r\Big(I - \tfrac1n \mathbf 1 \mathbf 1^\top - \tfrac1n \hat z \hat z^\top\Big) = J^\top .
# $$
#
# The mean contributes $\frac1n \mathbf 1 \mathbf 1^\top$ and the variance
# $\frac1n \hat z \hat z^\top$. Both couple the examples. We check $J$ for one column against the
# finite-difference Jacobian:

# %%
zc = rng.standard_normal(n)  # one column of pre-activations


def zhat_of(z):
    """Normalised column (9.1), as a function of the column z."""
    return (z - z.mean()) / np.sqrt(z.var() + EPS)


r = 1.0 / np.sqrt(zc.var() + EPS)
zh = zhat_of(zc)
J = r * (np.eye(n) - np.ones((n, n)) / n - np.outer(zh, zh) / n)
J_num = gradcheck.numerical_grad(zhat_of, zc, h=1e-6).T  # numerical_grad returns the transposed Jacobian
print(f"J vs differences: relative error {gradcheck.rel_error(J, J_num):.1e}; symmetric: {np.allclose(J, J.T)}")
assert gradcheck.rel_error(J, J_num) < 1e-6

# %% [markdown]
# The backward pass applies $J^\top = J$ to $\tilde\delta = \partial L / \partial \tilde z$. With
# $e_l = \delta_{l+1} W_{l+1}^\top$ as in tutorial 1:
#
# $$
# \tilde\delta_l = \sigma'(\tilde z_l) \odot e_l, \qquad
# \frac{\partial L}{\partial \beta_l} = \mathbf 1^\top \tilde\delta_l, \qquad
# \delta_l = r_l \odot \big(\tilde\delta_l - \overline{\tilde\delta_l} - \hat z_l \odot m_l\big),
# \quad m_l = \overline{\tilde\delta_l \odot \hat z_l}.
# \tag{9.2}
# $$
#
# Since $\mathbf 1^\top J = 0$, the columns of $\delta_l$ sum to zero, so the hidden biases $b_l$ get
# zero gradient: the mean subtraction cancels them. The network's gradient is checked against
# central differences of its loss, for both losses and several batch sizes:

# %%
H_STEP = 1e-6  # why not 1e-5: see "Choosing h" below
for loss in ["mse", "cross_entropy"]:
    for m in [2, 3, 7]:
        Xm = rng.standard_normal((m, 4))
        ym = rng.standard_normal((m, 3)) if loss == "mse" else rng.integers(0, 3, m)
        report = gradcheck.check_model(net, phi, Xm, ym, loss, h=H_STEP)
        assert report.passed, str(report)
    print(f"n = 2, 3, 7; last: {report}")

g = net.loss_and_grad(phi, X, rng.standard_normal((n, 3)))[1]
hidden_b = np.r_[32:40, 40 + 48 : 40 + 48 + 6]  # b_1 and b_2 in phi's layout
print(f"largest |dL/db_l| of the hidden biases: {np.abs(g[hidden_b]).max():.1e} (||g|| = {np.linalg.norm(g):.2f})")
assert np.abs(g[hidden_b]).max() < 1e-12 * np.linalg.norm(g)

# %% [markdown]
# ## Choosing h
#
# With two rows, $c = \pm(z_1 - z_2)/2$, so a unit's normalised value is $c / \sqrt{c^2 + \epsilon}$.
# This is a soft sign of width $\sqrt{\epsilon} \approx 0.03$, whose third derivative reaches about
# $\epsilon^{-3/2} \approx 3\times 10^4$. The $O(h^2)$ truncation error of a central difference
# therefore grows much faster with $h$ than for a network without batch norm. Many two-row batches
# show it:

# %%
cs = np.linspace(-0.2, 0.2, 401)
hs = [1e-4, 1e-5, 1e-6, 1e-7]
draws = 10 if FAST else 40
worst = {h: 0.0 for h in hs}
for _ in range(draws):
    X2r, y2r = rng.standard_normal((2, 4)), rng.integers(0, 3, 2)
    for h in hs:
        worst[h] = max(worst[h], gradcheck.check_model(net, phi, X2r, y2r, "cross_entropy", h=h).error)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
ax1.plot(cs, cs / np.sqrt(cs**2 + EPS))
ax1.set_xlabel("c = (z_1 - z_2) / 2")
ax1.set_ylabel("normalised value of row 1")
ax1.set_title("two rows: a soft sign of width sqrt(eps)")
ax2.loglog(hs, [worst[h] for h in hs], "o-")
ax2.axhline(1e-6, color="gray", ls="--", label="threshold 1e-6")
ax2.set_xlabel("finite-difference step h")
ax2.set_ylabel("worst relative error")
ax2.set_title(f"gradient check, {draws} two-row batches")
ax2.legend()
plt.show()
for h in hs:
    print(f"h = {h:.0e}: worst relative error {worst[h]:.1e}")
assert worst[1e-6] < 1e-6

# %% [markdown]
# At $h = 10^{-6}$ the truncation is 100 times smaller than at $10^{-5}$. The round-off,
# $O(\epsilon_{\text{mach}} |L| / h)$, is still about $10^{-10}$. Smaller steps trade truncation
# for round-off (tutorial 0). tinymeta's batch-norm tests use $h = 10^{-6}$.
#
# ## The R-operator through the statistics
#
# Apply $\mathcal R$ (tutorial 2) to every line of (9.1). The statistics are functions of $\varphi$,
# so they move too. With $\dot\beta_l = \mathcal R\{\beta_l\}$:
#
# $$
# \begin{aligned}
# \mathcal R\{\mu_l\} &= \overline{\mathcal R\{z_l\}}, \qquad
# \mathcal R\{s_l^2\} = 2\, \overline{(z_l - \mu_l) \odot (\mathcal R\{z_l\} - \mathcal R\{\mu_l\})}, \qquad
# \mathcal R\{r_l\} = -\tfrac12 r_l^3 \odot \mathcal R\{s_l^2\}, \\
# \mathcal R\{\hat z_l\} &= (\mathcal R\{z_l\} - \mathcal R\{\mu_l\}) \odot r_l + (z_l - \mu_l) \odot \mathcal R\{r_l\},
# \qquad \mathcal R\{\tilde z_l\} = \mathcal R\{\hat z_l\} + \dot\beta_l.
# \end{aligned}
# \tag{9.3}
# $$
#
# Then apply it to (9.2). The product rule on $\delta_l = r_l \odot (\dots)$ gives
#
# $$
# \begin{aligned}
# \mathcal R\{\tilde\delta_l\} &= \sigma''(\tilde z_l) \odot \mathcal R\{\tilde z_l\} \odot e_l
#   + \sigma'(\tilde z_l) \odot \mathcal R\{e_l\}, \qquad
# \mathcal R\{\partial L / \partial \beta_l\} = \mathbf 1^\top \mathcal R\{\tilde\delta_l\}, \\
# \mathcal R\{m_l\} &= \overline{\mathcal R\{\tilde\delta_l\} \odot \hat z_l + \tilde\delta_l \odot \mathcal R\{\hat z_l\}}, \\
# \mathcal R\{\delta_l\} &= \mathcal R\{r_l\} \odot \big(\tilde\delta_l - \overline{\tilde\delta_l} - \hat z_l \odot m_l\big)
#   + r_l \odot \big(\mathcal R\{\tilde\delta_l\} - \overline{\mathcal R\{\tilde\delta_l\}}
#   - \mathcal R\{\hat z_l\} \odot m_l - \hat z_l \odot \mathcal R\{m_l\}\big).
# \end{aligned}
# \tag{9.4}
# $$
#
# The rest is tutorial 2's R-operator with $\tilde z_l$ in place of $z_l$ inside $\sigma'$ and
# $\sigma''$. For a network with one hidden layer and the MSE loss, (9.1)–(9.4) are the lines
# below. The flag `frozen_stats` makes the common mistake, treating $\mu$ and $s^2$ as constants
# ($\mathcal R\{\mu\} = \mathcal R\{s^2\} = 0$), for the negative control further down.

# %%
net1 = tm.MLP([3, 10, 2], "tanh", batch_norm=True)
phi1 = net1.init(rng)
net1.shifts(phi1)[0][:] = 0.3 * rng.standard_normal(10)
X1, y1 = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
s = net1.sigma  # tanh with .d1 = sigma', .d2 = sigma''


def hvp_bn(phi, X, y, v, frozen_stats=False):
    """H v for the MSE loss of a [d0, d1, d2] batch-norm network, eqs. (9.1)-(9.4)."""
    (W1, b1), (W2, b2) = net1.unflatten(phi)
    (beta,) = net1.shifts(phi)
    (V1, c1), (V2, c2) = net1.unflatten(v)  # the direction, split like phi
    (dbeta,) = net1.shifts(v)
    n = len(X)
    # forward (9.1)
    z = X @ W1 + b1
    cen = z - z.mean(axis=0)
    r = 1.0 / np.sqrt((cen * cen).mean(axis=0) + EPS)
    zhat = cen * r
    zt = zhat + beta
    a = s.f(zt)
    yhat = a @ W2 + b2
    # backward (1.2), (9.2)
    d2 = 2.0 * (yhat - y) / n
    e = d2 @ W2.T
    dt = s.d1(zt) * e
    m = (dt * zhat).mean(axis=0)
    # R-forward (9.3), with R{X} = 0
    Rz = X @ V1 + c1
    R_mu = Rz.mean(axis=0)
    R_s2 = 2.0 * (cen * (Rz - R_mu)).mean(axis=0)
    if frozen_stats:
        R_mu, R_s2 = 0.0 * R_mu, 0.0 * R_s2
    R_r = -0.5 * r**3 * R_s2
    R_zhat = (Rz - R_mu) * r + cen * R_r
    R_zt = R_zhat + dbeta
    Ra = s.d1(zt) * R_zt
    R_yhat = Ra @ W2 + a @ V2 + c2
    # R-backward (2.3), (9.4), started by the MSE output-space Hessian 2/n
    Rd2 = 2.0 / n * R_yhat
    RgW2, Rgb2 = Ra.T @ d2 + a.T @ Rd2, Rd2.sum(axis=0)
    Re = Rd2 @ W2.T + d2 @ V2.T
    R_dt = s.d2(zt) * R_zt * e + s.d1(zt) * Re
    R_m = (R_dt * zhat + dt * R_zhat).mean(axis=0)
    R_d1 = R_r * (dt - dt.mean(axis=0) - zhat * m) + r * (R_dt - R_dt.mean(axis=0) - R_zhat * m - zhat * R_m)
    RgW1, Rgb1 = X.T @ R_d1, R_d1.sum(axis=0)  # R{a_0} = 0: no first term
    return np.concatenate([RgW1.ravel(), Rgb1, RgW2.ravel(), Rgb2, R_dt.sum(axis=0)])  # last: R{dL/dbeta}


def grad1(p):
    return net1.loss_and_grad(p, X1, y1)[1]


v = rng.standard_normal(net1.num_params)
v /= np.linalg.norm(v)
err_lib = gradcheck.rel_error(hvp_bn(phi1, X1, y1, v), net1.hvp(phi1, X1, y1, v))
print(f"hvp_bn vs net1.hvp: relative error {err_lib:.1e}")
assert err_lib < 1e-12  # the same formulas in a different program: round-off only

for _ in range(3):
    v = rng.standard_normal(net1.num_params)
    v /= np.linalg.norm(v)
    report = gradcheck.check_hvp(grad1, lambda p, w: hvp_bn(p, X1, y1, w), phi1, v, h=H_STEP, name="(9.4) HVP")
    assert report.passed, str(report)
print(report)

# %% [markdown]
# The whole network, both losses and the explicit Hessian: $H$ must equal the Jacobian of the
# gradient, and it must be symmetric. With batch norm, $H$ is not a sum of per-example Hessians,
# because the statistics couple the rows. Its symmetry is the symmetry of second derivatives of
# the whole batch loss.

# %%
for loss in ["mse", "cross_entropy"]:
    yl = rng.standard_normal((n, 3)) if loss == "mse" else rng.integers(0, 3, n)
    Hm = net.hessian(phi, X, yl, loss)
    Jg = gradcheck.numerical_grad(lambda p, yl=yl, loss=loss: net.loss_and_grad(p, X, yl, loss)[1], phi, h=H_STEP)
    err, asym = gradcheck.rel_error(Hm, Jg), np.linalg.norm(Hm - Hm.T) / np.linalg.norm(Hm)
    print(f"{loss}: Hessian vs Jacobian of the gradient {err:.1e}, asymmetry {asym:.1e}")
    assert err < 1e-6 and asym < 1e-12

# %% [markdown]
# ## Negative control: the statistics held constant
#
# With the statistics held constant, `hvp_bn` is the exact Hessian-vector product of a different
# function: the network whose mean and variance are frozen at their current values. It is
# symmetric and plausible-looking, and it is not $Hv$:

# %%
bad = gradcheck.check_hvp(
    grad1, lambda p, w: hvp_bn(p, X1, y1, w, frozen_stats=True), phi1, v, h=H_STEP, name="HVP, statistics frozen"
)
print(bad)
assert not bad.passed and bad.error > 1e-3

# %% [markdown]
# ## MAML through batch norm
#
# `maml_grad` only calls `loss_and_grad` and `hvp`, so once they are exact, the exact MAML
# meta-gradient through batch norm follows. The support set is normalised with its own statistics
# during adaptation, and the query set with its own when it is scored, as in MAML's code. We check
# it against central differences of the whole meta-objective $F(\varphi) = L_B(U^k(\varphi))$:

# %%
task = tm.Task(rng.standard_normal((5, 4)), rng.integers(0, 3, 5), rng.standard_normal((10, 4)), rng.integers(0, 3, 10))
for k in [1, 2]:
    report = gradcheck.check_grad(
        lambda p, k=k: tm.meta_objective(net, p, task, 1.0, k, "cross_entropy"),
        lambda p, k=k: tm.maml_grad(net, p, task, 1.0, k, "cross_entropy"),
        phi,
        h=H_STEP,
        name=f"MAML meta-gradient, k = {k}",
    )
    print(report)
    assert report.passed

# %% [markdown]
# ## Non-transductive evaluation
#
# To predict every query example on its own, normalise it with statistics that do not come from
# the query batch. Here we use those of the support set at the adapted parameters:
#
# $$
# \hat z_l = (z_l - \mu^A_l) \odot (s^{A\,2}_l + \epsilon)^{-1/2}.
# \tag{9.5}
# $$
#
# `net.batch_statistics(phi, X)` returns the $(\mu_l, s_l^2)$ of every hidden layer, and
# `net.forward_with_statistics(phi, X, stats)` normalises with them. It works one row at a time,
# so a single query row is fine. `net.forward` refuses a single row: its variance is 0, so every
# normalised value would be 0 whatever the input.

# %%
phi_k = tm.adapt(net, phi, task.x_support, task.y_support, 1.0, 1, "cross_entropy")
stats = net.batch_statistics(phi_k, task.x_support)
together = net.forward_with_statistics(phi_k, task.x_query, stats)
alone = np.vstack([net.forward_with_statistics(phi_k, task.x_query[i : i + 1], stats) for i in range(10)])
transductive = net.forward(phi_k, task.x_query)
a = task.x_query  # (9.5) by hand, with the support set's (mu_l, s2_l)
for (W, b), beta, (mu_A, s2_A) in zip(net.unflatten(phi_k)[:-1], net.shifts(phi_k), stats, strict=True):
    a = np.tanh((a @ W + b - mu_A) / np.sqrt(s2_A + EPS) + beta)
by_hand = a @ net.unflatten(phi_k)[-1][0] + net.unflatten(phi_k)[-1][1]
print(f"(9.5) by hand vs forward_with_statistics: max difference {np.abs(by_hand - together).max():.1e}")
assert np.abs(by_hand - together).max() < 1e-13  # same formula: round-off only
print(f"support statistics, whole batch vs one row at a time: {np.abs(together - alone).max():.1e}")
print(f"support statistics vs the query batch's own (transductive): {np.abs(together - transductive).max():.2f}")
assert np.abs(together - alone).max() < 1e-12
try:
    net.forward(phi_k, task.x_query[:1])
except ValueError as err:
    print("forward with one row:", str(err)[:90], "...")

# %% [markdown]
# ## Summary
#
# * MAML's batch norm normalises with the batch at hand (transductive), adds a learned shift
#   $\beta_l$, has no scale, and uses $\epsilon = 10^{-3}$ (9.1). tinymeta stores $\beta_l$ after
#   the usual layout of $\varphi$. Without batch norm, nothing changes.
# * The normalisation's Jacobian per unit is $J = r(I - \frac1n \mathbf 1 \mathbf 1^\top - \frac1n \hat z \hat z^\top)$,
#   which is symmetric. Backward applies it to $\tilde\delta_l$ (9.2), and the hidden biases get zero
#   gradient.
# * The R-operator differentiates the statistics too: $\mathcal R\{\mu\}$, $\mathcal R\{s^2\}$,
#   $\mathcal R\{r\}$ (9.3). The R-backward pass is the product rule on (9.2) (9.4).
# * Checked: (9.1) by hand, $J$ against differences, the gradient (both losses, 2 to 7 rows), the
#   HVP written out and `net.hvp`, the Hessian, and MAML's meta-gradient through batch norm. Holding
#   the statistics constant fails the check.
# * With two rows the loss is sharply curved (a soft sign of width $\sqrt\epsilon$), so the checks
#   use $h = 10^{-6}$.
# * Support-set statistics (9.5) give a non-transductive prediction, one row at a time.
#
# ## Exercises
#
# 1. Add a learned scale, $\tilde z_l = \gamma_l \odot \hat z_l + \beta_l$ (`scale=True` in TensorFlow,
#    the default in PyTorch). Derive $\partial L/\partial\gamma_l$ and the new terms of (9.3) and
#    (9.4), then check them with `gradcheck.check_grad` and `gradcheck.check_hvp`.
# 2. Show that $\mathcal R\{\hat z\} = J\,\mathcal R\{z\}$ is computed by the same function as the
#    backward pass (`batchnorm.vjp`). Why? How many buffers does a compiled kernel save by using
#    that fact?
# 3. MAML's inner loop does not adapt $\beta$. Write the masked inner update
#    $U(\varphi) = \varphi - \alpha D \nabla L_A(\varphi)$, with $D$ the 0/1 mask of the $(W, b)$
#    coordinates. Derive its meta-gradient $\prod_i (I - \alpha H_i D)\, \nabla L_B(\varphi_k)$ and
#    check it against differences of the masked meta-objective.
# 4. Predict the truncation error of the two-row check at $h = 10^{-5}$ from the third derivative of
#    $c / \sqrt{c^2 + \epsilon}$, and compare with the plot above.
# 5. On a 5-way classification task, compare query accuracy with transductive statistics and with
#    support statistics (9.5) after adaptation. Which one does MAML's reported accuracy use?
