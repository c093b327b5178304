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
# # 8. Beyond MAML: iMAML, Meta-SGD, ANIL and the Hessian's spectrum
#
# MAML, first-order MAML and Reptile (tutorials 3 and 4) all adapt by a fixed number of
# gradient steps from $\varphi$ with a single step size. The three algorithms of this tutorial
# change *what* is differentiated:
#
# 1. **iMAML** (Rajeswaran et al., 2019) adapts by *solving* a regularised problem. Its
#    meta-gradient comes from the implicit function theorem, as a linear solve with
#    Hessian-vector products.
# 2. **Meta-SGD** (Li et al., 2017) learns one step size per parameter, which needs a derivative
#    with respect to the step sizes.
# 3. **ANIL** (Raghu et al., 2020) adapts only the last layer. The body still gets an exact
#    meta-gradient, through a mixed second derivative.
#
# A fourth part looks at the Hessian's largest eigenvalue, which decides when the inner loop
# blows up. Each derivation is followed by a numerical check against finite differences of the
# whole meta-objective, with `tinymeta.gradcheck`, and each part has a negative control that
# must fail the same check. The equation numbers (5.1)–(8.2) are those of the derivations pages
# of the documentation, which repeat the algebra.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import tinymeta as tm
from tinymeta import gradcheck
from tinymeta.anil import anil_batch, anil_trajectory, anil_value_and_grad, head_mask, head_slice
from tinymeta.batch import maml_batch
from tinymeta.hessian_operator import ConvergenceError
from tinymeta.imaml import imaml_adapt, imaml_batch, imaml_grad, implicit_jacobian_solve
from tinymeta.metasgd import metasgd_batch, metasgd_trajectory, metasgd_value_and_grad
from tinymeta.spectrum import lambda_max, lambda_min, step_stability

FAST = os.environ.get("TINYMETA_FAST") == "1"  # CI runs a shorter version; the default is the full one
rng = np.random.default_rng(8)

# %% [markdown]
# Most checks use a 1-12-12-1 tanh network on one sine task. With $P = 193$ parameters it is
# small enough for explicit Hessians. tanh is smooth, so finite differences are exact to
# about $10^{-10}$ (tutorial 0).

# %%
net = tm.MLP([1, 12, 12, 1], "tanh")
phi = net.init(rng)
task = tm.Sine(K=10, K_query=10).sample(rng, 1)[0]
xs, ys, xq, yq = task
P = net.num_params
print(f"P = {P}")

# %% [markdown]
# ## Part 1. iMAML: the implicit gradient
#
# ### The inner problem
#
# iMAML replaces the $k$ inner steps by the solution of a regularised problem. The proximal
# term, with strength $\lambda > 0$, keeps the solution near $\varphi$:
#
# $$
# \varphi^\star(\varphi) = \mathop{\mathrm{arg\,min}}_u\ L_A(u) + \frac{\lambda}{2} \lVert u - \varphi \rVert^2,
# \qquad F(\varphi) = L_B(\varphi^\star(\varphi)).
# \tag{5.1}
# $$
#
# (Here $\lambda$ is iMAML's `lam`; eigenvalues always carry a subscript, $\lambda_{\max}$.)
# `imaml_adapt` solves (5.1) with Newton steps. Each Newton system is solved by conjugate
# gradients on Hessian-vector products. The solver stops when the proximal gradient
# $\lVert \nabla L_A(u) + \lambda (u - \varphi) \rVert$ is below `tol`, and raises an error
# if it cannot get there.

# %%
lam = 1.0
phi_star = imaml_adapt(net, phi, xs, ys, lam, tol=1e-12)
prox_grad = net.loss_and_grad(phi_star, xs, ys)[1] + lam * (phi_star - phi)
print(f"||proximal gradient|| at phi*: {np.linalg.norm(prox_grad):.1e}")
print(f"support loss: {net.loss(phi, xs, ys):.4f} at phi, {net.loss(phi_star, xs, ys):.4f} at phi*;"
      f" ||phi* - phi|| = {np.linalg.norm(phi_star - phi):.3f}")  # fmt: skip
assert np.linalg.norm(prox_grad) <= 1e-12

# %% [markdown]
# ### The implicit Jacobian
#
# At the solution the gradient of (5.1) vanishes:
#
# $$
# \nabla L_A(\varphi^\star) + \lambda(\varphi^\star - \varphi) = 0 .
# \tag{5.2}
# $$
#
# That holds for every $\varphi$, so its derivative with respect to $\varphi$ vanishes too:
# $H_A(\varphi^\star)\, J + \lambda (J - I) = 0$, with $J = \partial\varphi^\star/\partial\varphi$.
# Solving for $J$:
#
# $$
# J = \frac{\partial \varphi^\star}{\partial \varphi} = \Big(I + \frac{1}{\lambda} H_A(\varphi^\star)\Big)^{-1}.
# \tag{5.3}
# $$
#
# This needs $H_A(\varphi^\star) + \lambda I$ to be positive definite, which holds at a strict
# local minimum of (5.1). We check (5.3) against central differences of $\varphi^\star$ itself
# along random directions $u$: $J u \approx (\varphi^\star(\varphi + hu) - \varphi^\star(\varphi - hu))/2h$.
# The solver's error $\mathrm{tol}/\mu$ enters that quotient divided by $h$. So here
# $h = 10^{-4}$ with $\mathrm{tol} = 10^{-12}$: truncation ($\sim h^2$) and solver error
# ($\sim 10^{-12}/h$) both stay near $10^{-8}$.

# %%
H_star = net.hessian(phi_star, xs, ys)
eig_star = np.linalg.eigvalsh(H_star)
print(f"eigenvalues of H_A(phi*) in [{eig_star[0]:.3f}, {eig_star[-1]:.3f}]; lam + lambda_min > 0:",
      eig_star[0] + lam > 0)  # fmt: skip
J = np.linalg.inv(np.eye(P) + H_star / lam)
directions = rng.standard_normal((3, P))
analytic, numerical = [], []
for u in directions:
    u /= np.linalg.norm(u)
    analytic.append(J @ u)
    numerical.append(gradcheck.directional_derivative(lambda p: imaml_adapt(net, p, xs, ys, lam, tol=1e-12), phi, u,
                                                      h=1e-4))  # fmt: skip
err_J = gradcheck.rel_error(np.array(analytic), np.array(numerical))
print(f"implicit Jacobian (5.3) vs differences of phi*: relative error {err_J:.1e}")
assert err_J < 1e-6

# %% [markdown]
# ### The meta-gradient by conjugate gradients
#
# The chain rule on $F = L_B(\varphi^\star(\varphi))$, with $J$ symmetric, gives
#
# $$
# g_{\text{iMAML}} = \Big(I + \frac{1}{\lambda} H_A(\varphi^\star)\Big)^{-1} \nabla L_B(\varphi^\star).
# \tag{5.4}
# $$
#
# The matrix is never inverted or formed. `implicit_jacobian_solve` runs
# `scipy.sparse.linalg.cg` on a `LinearOperator` whose product is
# $p \mapsto p + H_A(\varphi^\star)p/\lambda$, one hand-derived HVP per iteration, down to the
# relative residual `tol`. Only $\varphi^\star$ enters, not the path the solver took to it, so
# the memory is $O(P)$. Against the dense solve with the explicit Hessian:

# %%
g_query = net.loss_and_grad(phi_star, xq, yq)[1]
dense = np.linalg.solve(np.eye(P) + H_star / lam, g_query)
g_imaml = implicit_jacobian_solve(net, phi_star, xs, ys, lam, g_query, tol=1e-10)
err_dense = gradcheck.rel_error(g_imaml, dense)
print(f"CG on HVPs vs dense solve: relative error {err_dense:.1e}")
assert err_dense < 1e-6
assert gradcheck.rel_error(imaml_grad(net, phi, task, lam, tol=1e-10), g_imaml) < 1e-8  # the library's one call

# %% [markdown]
# The check that matters: central differences of the whole meta-objective
# $F(\varphi) = L_B(\varphi^\star(\varphi))$, with $\varphi^\star$ solved anew at each displaced
# $\varphi$ (same $h$ and `tol` as above). The negative control evaluates the Hessian at
# $\varphi$ instead of $\varphi^\star$. That mistake is easy to make, because $\varphi$ is
# the point being differentiated.

# %%
F_imaml = lambda p: net.loss(imaml_adapt(net, p, xs, ys, lam, tol=1e-12), xq, yq)
report = gradcheck.check_directional(F_imaml, lambda p: g_imaml, phi, rng=1, num_directions=3 if FAST else 8,
                                     h=1e-4, name="iMAML gradient (5.4)")  # fmt: skip
print(report)
assert report.passed
g_wrong = implicit_jacobian_solve(net, phi, xs, ys, lam, g_query, tol=1e-10)  # H_A at phi, not at phi*
wrong = gradcheck.check_directional(F_imaml, lambda p: g_wrong, phi, rng=1, num_directions=3 if FAST else 8,
                                    h=1e-4, name="H_A(phi) instead of H_A(phi*)")  # fmt: skip
print(wrong)
assert not wrong.passed

# %% [markdown]
# ### iMAML with a large $\lambda$ is one step of MAML
#
# For large $\lambda$, $\varphi^\star = \varphi - \nabla L_A(\varphi)/\lambda + O(\lambda^{-2})$. That
# is one MAML step with $\alpha = 1/\lambda$. Also
# $(I + H/\lambda)^{-1} = I - H/\lambda + O(\lambda^{-2})$, MAML's factor. So
# $g_{\text{iMAML}}(\lambda) - g_{\text{MAML}}(\alpha = 1/\lambda, k = 1) = O(\lambda^{-2})$, while
# both differ from $\nabla L_B(\varphi)$ by $O(1/\lambda)$. On log-log axes the slopes should be
# $-2$ and $-1$.

# %%
lams = np.geomspace(100.0, 10000.0, 4 if FAST else 7)  # large enough that the next order is small
g0 = net.loss_and_grad(phi, xq, yq)[1]
to_maml, to_query = [], []
for lam_j in lams:
    g = imaml_grad(net, phi, task, lam_j, tol=1e-10)
    to_maml.append(np.linalg.norm(g - tm.maml_grad(net, phi, task, 1.0 / lam_j, 1)))
    to_query.append(np.linalg.norm(g - g0))
slope_maml = np.polyfit(np.log(lams), np.log(to_maml), 1)[0]
slope_query = np.polyfit(np.log(lams), np.log(to_query), 1)[0]
print(f"slope of ||g_iMAML - g_MAML(1/lam, k=1)||: {slope_maml:.2f};  of ||g_iMAML - grad L_B(phi)||: {slope_query:.2f}")
assert abs(slope_maml + 2) < 0.05 and abs(slope_query + 1) < 0.05

# %% [markdown]
# ### Two limits: kinks and cost
#
# (5.3) needs $\nabla L_A$ to be differentiable at $\varphi^\star$. With ReLU, the minimiser of
# (5.1) usually sits exactly on a kink, where some hidden pre-activation is zero: the gradient
# jumps there and no point has a small one. `imaml_adapt` then raises `ConvergenceError` instead
# of returning a point whose implicit gradient does not exist. The MAML paper's ReLU sine
# network shows it:

# %%
relu_net = tm.MLP([1, 40, 40, 1], "relu")
phi_relu = relu_net.init(rng)
try:
    imaml_adapt(relu_net, phi_relu, xs, ys, 1.0)
    raise AssertionError("expected a ConvergenceError")
except ConvergenceError as err:
    print("ConvergenceError:", str(err)[:160], "...")

# %% [markdown]
# Solving to tolerance costs more than MAML's few steps. We count the gradients and HVPs on the
# 1-40-40-1 tanh network, for the inner solve and for the CG solve of (5.4). The iMAML paper
# runs a fixed small number of steps of each instead, which is cheaper and approximate.

# %%
sine_net = tm.MLP([1, 40, 40, 1], "tanh")
phi_sine = sine_net.init(rng)
counts = {"gradients": 0, "HVPs": 0}


class Counting(tm.MLP):
    """The same network, counting its gradients and HVPs."""

    def loss_and_grad(self, *args, **kwargs):
        counts["gradients"] += 1
        return super().loss_and_grad(*args, **kwargs)

    def hvp(self, *args, **kwargs):
        counts["HVPs"] += 1
        return super().hvp(*args, **kwargs)


counting = Counting([1, 40, 40, 1], "tanh")
for lam_j in (1.0, 10.0):
    counts.update(gradients=0, HVPs=0)
    star = imaml_adapt(counting, phi_sine, xs, ys, lam_j)
    inner = dict(counts)
    counts.update(gradients=0, HVPs=0)
    implicit_jacobian_solve(counting, star, xs, ys, lam_j, counting.loss_and_grad(star, xq, yq)[1])
    print(f"lam = {lam_j:4.0f}: inner solve {inner['gradients']} gradients + {inner['HVPs']} HVPs;"
          f" CG for (5.4) {counts['HVPs']} HVPs   (MAML, k = 5: 6 gradients + 5 HVPs)")  # fmt: skip

# %% [markdown]
# ## Part 2. Meta-SGD: a step size per parameter
#
# Meta-SGD learns a vector of step sizes $\boldsymbol\alpha \in \mathbb R^P$ together with $\varphi$
# ($\odot$ is the elementwise product):
#
# $$
# \varphi_0 = \varphi, \qquad \varphi_{i+1} = \varphi_i - \boldsymbol\alpha \odot g_i, \qquad
# g_i = \nabla L_A(\varphi_i), \qquad F(\varphi, \boldsymbol\alpha) = L_B(\varphi_k).
# \tag{6.1}
# $$
#
# One step has Jacobian $I - \operatorname{diag}(\boldsymbol\alpha) H_i$ with respect to
# $\varphi_i$. This is not symmetric: its transpose is $I - H_i \operatorname{diag}(\boldsymbol\alpha)$.
# Its Jacobian with respect to $\boldsymbol\alpha$ is $-\operatorname{diag}(g_i)$. With
# $v_i = \partial F/\partial\varphi_i$, reverse mode runs from $v_k = \nabla L_B(\varphi_k)$:
#
# $$
# v_i = v_{i+1} - H_i\, (\boldsymbol\alpha \odot v_{i+1}), \qquad \frac{\partial F}{\partial \varphi} = v_0,
# \tag{6.2}
# $$
#
# and since every step uses the same $\boldsymbol\alpha$, its gradient sums one term per step. Each
# term is weighted by the sensitivity $v_{i+1}$ of everything after that step:
#
# $$
# \frac{\partial F}{\partial \boldsymbol\alpha} = -\sum_{i=0}^{k-1} g_i \odot v_{i+1}.
# \tag{6.3}
# $$
#
# Written out by hand, next to the library's function:

# %%
k = 3
alphas = rng.uniform(0.01, 0.05, P)


def metasgd_by_hand(phi, alphas):
    traj, grads = metasgd_trajectory(net, phi, alphas, xs, ys, k)  # phi_0..phi_k and g_0..g_{k-1}, (6.1)
    v = net.loss_and_grad(traj[-1], xq, yq)[1]  # v_k
    d_alphas = np.zeros(P)
    for i in range(k - 1, -1, -1):
        d_alphas -= grads[i] * v  # (6.3): uses v_{i+1}
        v = v - net.hvp(traj[i], xs, ys, alphas * v)  # (6.2)
    return v, d_alphas


value, d_phi, d_alphas = metasgd_value_and_grad(net, phi, alphas, task, k)
ours_phi, ours_alphas = metasgd_by_hand(phi, alphas)
assert np.array_equal(ours_phi, d_phi) and np.array_equal(ours_alphas, d_alphas)  # the same loop


def F_metasgd(phi, alphas):
    """(6.1) from loss_and_grad alone: no HVP, no tinymeta meta-learning code."""
    for _ in range(k):
        phi = phi - alphas * net.loss_and_grad(phi, xs, ys)[1]
    return net.loss_and_grad(phi, xq, yq)[0]


r_phi = gradcheck.check_grad(lambda p: F_metasgd(p, alphas), lambda p: d_phi, phi, name="Meta-SGD dF/dphi (6.2)")
r_alphas = gradcheck.check_grad(lambda a: F_metasgd(phi, a), lambda a: d_alphas, alphas,
                                name="Meta-SGD dF/dalphas (6.3)")  # fmt: skip
print(r_phi, r_alphas, sep="\n")
assert r_phi.passed and r_alphas.passed

# %% [markdown]
# Two identities tie Meta-SGD to MAML. With $\boldsymbol\alpha = \alpha \mathbf 1$, (6.2) is MAML's (3.3),
# and the entries of $\partial F/\partial\boldsymbol\alpha$ sum to $dF/d\alpha$, the derivative of
# MAML's meta-objective with respect to its one step size (tutorial 3, exercise 3).
#
# The negative control uses the *last* sensitivity $v_k$ in every term of (6.3), instead of the
# propagated $v_{i+1}$. It fails for $k \ge 2$.

# %%
alpha = 0.03
_, d_phi_eq, d_alphas_eq = metasgd_value_and_grad(net, phi, np.full(P, alpha), task, k)
print(f"equal step sizes vs tm.maml_grad: {gradcheck.rel_error(d_phi_eq, tm.maml_grad(net, phi, task, alpha, k)):.1e}")
dF_dalpha = gradcheck.directional_derivative(lambda a: tm.meta_objective(net, phi, task, a, k), alpha, 1.0, h=1e-7)
err_sum = gradcheck.rel_error(d_alphas_eq.sum(), dF_dalpha)
print(f"sum of dF/dalphas vs d/dalpha of MAML's objective: {err_sum:.1e}")
assert gradcheck.rel_error(d_phi_eq, tm.maml_grad(net, phi, task, alpha, k)) < 1e-13 and err_sum < 1e-6

traj, grads = metasgd_trajectory(net, phi, alphas, xs, ys, k)
v_k = net.loss_and_grad(traj[-1], xq, yq)[1]
unpropagated = -(grads * v_k).sum(axis=0)
wrong = gradcheck.check_grad(lambda a: F_metasgd(phi, a), lambda a: unpropagated, alphas,
                             name="dF/dalphas with v_k in every term")  # fmt: skip
print(wrong)
assert not wrong.passed

# %% [markdown]
# ## Part 3. ANIL: adapt the head, differentiate everything
#
# Split $\varphi = (\psi, w)$, with $w = (W_L, b_L)$ the last layer (the *head*) and $\psi$ the
# *body*. ANIL's inner loop moves only the head:
#
# $$
# w_0 = w, \qquad w_{i+1} = w_i - \alpha \nabla_w L_A(\psi, w_i), \qquad F(\varphi) = L_B(\psi, w_k).
# \tag{7.1}
# $$
#
# The body is never updated, but it reaches $F$ twice: through the query features, and through
# every inner step, because the head's gradient depends on the features. Split the support
# Hessian $H_i$ at $(\psi, w_i)$ into blocks $H^{\psi\psi}_i, H^{\psi w}_i, H^{w w}_i$. The step
# Jacobians are $\partial w_{i+1}/\partial w_i = I - \alpha H^{ww}_i$ and
# $\partial w_{i+1}/\partial \psi = -\alpha H^{w\psi}_i$. Reverse mode, with
# $v_i = \partial F / \partial w_i$, gives
#
# $$
# \begin{aligned}
# v_k &= \nabla_w L_B(\psi, w_k), \qquad v_i = v_{i+1} - \alpha H^{ww}_i v_{i+1}, \qquad g_w = v_0, \cr
# g_\psi &= \nabla_\psi L_B(\psi, w_k) - \alpha \sum_{i=0}^{k-1} H^{\psi w}_i\, v_{i+1}.
# \end{aligned}
# \tag{7.2}
# $$
#
# Both blocks come from one HVP of the full network along a direction that is zero on the body:
# $H_i (0, v) = (H^{\psi w}_i v,\ H^{ww}_i v)$. We check that against the explicit Hessian:

# %%
head = head_slice(net)
mask = head_mask(net)  # 1 on the head's entries of phi, 0 on the body's
print(f"head: phi[{head.start}:{head.stop}] ({head.stop - head.start} entries), body: {head.start} entries")
H_phi = net.hessian(phi, xs, ys)
v = rng.standard_normal(head.stop - head.start)
direction = np.zeros(P)
direction[head] = v
blocks = net.hvp(phi, xs, ys, direction)
err_blocks = gradcheck.rel_error(blocks, H_phi[:, head] @ v)
print(f"H (0, v) vs the explicit blocks (H_pw v, H_ww v): {err_blocks:.1e}")
assert err_blocks < 1e-12

# %% [markdown]
# So one backward step of (7.2) is $g \leftarrow g - \alpha H_i (m \odot g)$, with $m$ the head's
# 0/1 mask, started from the full query gradient. That is Meta-SGD's (6.2) with
# $\boldsymbol\alpha = \alpha m$: **ANIL is Meta-SGD with the body's step sizes fixed at zero.** By
# hand, then checked against the whole meta-objective. The negative control drops the mixed
# terms $H^{\psi w}_i v_{i+1}$, and keeps the head's part exact.

# %%
alpha = 0.05


def anil_by_hand(phi):
    traj = anil_trajectory(net, phi, xs, ys, alpha, k)  # (psi, w_0) .. (psi, w_k), (7.1)
    g = net.loss_and_grad(traj[-1], xq, yq)[1]  # (grad_psi, grad_w) L_B at (psi, w_k)
    for i in range(k - 1, -1, -1):
        g = g - alpha * net.hvp(traj[i], xs, ys, mask * g)  # (7.2): both blocks at once
    return g


g_anil = anil_value_and_grad(net, phi, task, alpha, k)[1]
assert np.array_equal(anil_by_hand(phi), g_anil)
assert gradcheck.rel_error(metasgd_value_and_grad(net, phi, alpha * mask, task, k)[1], g_anil) < 1e-13


def F_anil(phi):
    """(7.1) from loss_and_grad alone: gradient steps on the last layer's entries."""
    phi = phi.copy()
    for _ in range(k):
        phi[head] -= alpha * net.loss_and_grad(phi, xs, ys)[1][head]
    return net.loss_and_grad(phi, xq, yq)[0]


report = gradcheck.check_grad(F_anil, lambda p: g_anil, phi, name="ANIL gradient (7.2)")
print(report)
assert report.passed
traj = anil_trajectory(net, phi, xs, ys, alpha, k)
no_mixed = net.loss_and_grad(traj[-1], xq, yq)[1]
for i in range(k - 1, -1, -1):  # the head's chain only: v <- v - alpha H_ww v
    no_mixed[head] -= alpha * net.hvp(traj[i], xs, ys, mask * no_mixed)[head]
wrong = gradcheck.check_grad(F_anil, lambda p: no_mixed, phi, name="ANIL without the mixed terms")
print(wrong)
assert not wrong.passed
share = np.linalg.norm(g_anil[: head.start] - no_mixed[: head.start]) / np.linalg.norm(g_anil[: head.start])
print(f"the mixed terms are {100 * share:.0f} % of the body's meta-gradient (relative norm)")

# %% [markdown]
# ## Part 4. The Hessian's spectrum and the inner step size
#
# One gradient step on a quadratic with Hessian $H$ and minimum $\hat\varphi$ maps the error
# $e = \varphi - \hat\varphi$ by (8.1): along an eigenvector with eigenvalue $\lambda$ it is multiplied by
# $1 - \alpha\lambda$. The component along the top eigenvector stops shrinking, and starts to grow
# with alternating sign, when $1 - \alpha\lambda_{\max} < -1$:
#
# $$
# e_{i+1} = (I - \alpha H)\, e_i,
# \tag{8.1}
# $$
#
# $$
# \text{gradient descent on } L_A \text{ is stable} \iff 0 < \alpha < \frac{2}{\lambda_{\max}(\nabla^2 L_A)}.
# \tag{8.2}
# $$
#
# Above the boundary the loss grows by $(1 - \alpha\lambda_{\max})^2$ per step, and a few dozen
# steps later the numbers overflow: "my inner loop produced NaNs". The same factors
# $I - \alpha H_i$ make up MAML's meta-gradient (3.3). `lambda_max` runs Lanczos
# (`scipy.sparse.linalg.eigsh`) on the matrix-free Hessian, a few dozen HVPs, with a seeded start
# vector. Against the dense eigenvalues:

# %%
eig = np.linalg.eigvalsh(net.hessian(phi, xs, ys))
lmax, lmin = lambda_max(net, phi, xs, ys), lambda_min(net, phi, xs, ys)
print(f"Lanczos: lambda_max = {lmax:.10f}, lambda_min = {lmin:.10f}")
print(f"eigvalsh: lambda_max = {eig[-1]:.10f}, lambda_min = {eig[0]:.10f}")
assert abs(lmax - eig[-1]) < 1e-10 * abs(eig).max() and abs(lmin - eig[0]) < 1e-10 * abs(eig).max()
print(step_stability(net, phi, xs, ys, 0.01))  # the MAML paper's alpha

# %% [markdown]
# ### Where (8.2) is exact: ANIL's inner loop
#
# With the mean squared error, ANIL's inner loop is gradient descent on a quadratic. The
# features $A$ are fixed, so the head's Hessian $\tfrac{2}{n}[A\ \mathbf 1]^\top [A\ \mathbf 1]$ is
# constant. Its $\lambda_{\max}$ comes from `lambda_max` on a one-layer network fed with the
# features. Two percent on either side of the boundary:

# %%
body, head_net = tm.MLP([1, 12, 12], "tanh"), tm.MLP([12, 1], "tanh")
features = body.sigma.f(body.forward(phi[: body.num_params], xs))  # a_{L-1} on the support set
lam_head = lambda_max(head_net, phi[head], features, ys)
assert abs(lam_head - np.linalg.eigvalsh(H_phi[head, head])[-1]) < 1e-10 * lam_head  # the head block
steps = 150 if FAST else 400
fig, ax = plt.subplots(figsize=(6, 4))
for c in (0.9, 0.98, 1.02, 1.1):
    a = c * 2.0 / lam_head
    with np.errstate(over="ignore"):
        losses = np.array([net.loss(p, xs, ys) for p in anil_trajectory(net, phi, xs, ys, a, steps)])
    grows = losses[-1] / losses[-2]
    print(f"alpha = {c:4.2f} x 2/lambda_max: loss {losses[0]:.3f} -> {losses[-1]:.3g};"
          f" last ratio {grows:.6f}, (1 - alpha lambda_max)^2 = {(1 - a * lam_head) ** 2:.6f}")  # fmt: skip
    if c < 1:
        assert np.all(np.diff(losses) <= 0)
    else:
        assert abs(grows / (1 - a * lam_head) ** 2 - 1) < 1e-6
    ax.semilogy(losses, label=f"alpha = {c} x 2/lambda_max")
ax.set_xlabel("inner step")
ax.set_ylabel("support loss")
ax.set_title("ANIL's inner loop: a quadratic")
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# ### Where it is local: a network near a minimum
#
# A network's loss is quadratic only to second order, near a minimum $\hat\varphi$. There (8.2)
# decides whether gradient descent *stays*. We find a minimum of the support loss of a 1-10-10-1
# tanh network, start from a small random perturbation of it, and run 100 steps on either side
# of the boundary.

# %%
net10 = tm.MLP([1, 10, 10, 1], "tanh")
rng10 = np.random.default_rng(0)
phi_hat = net10.init(rng10)
task5 = tm.Sine(5, 5).sample(rng10, 1)[0]


def descend(p, a, n):
    losses = [net10.loss(p, task5.x_support, task5.y_support)]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(n):
            p = p - a * net10.loss_and_grad(p, task5.x_support, task5.y_support)[1]
            losses.append(net10.loss(p, task5.x_support, task5.y_support) if np.all(np.isfinite(p)) else np.inf)
    return np.array(losses), p


for _ in range(5):  # gradient descent at alpha = 1 / lambda_max, re-measured every 300 steps
    phi_hat = descend(phi_hat, 1.0 / lambda_max(net10, phi_hat, task5.x_support, task5.y_support), 300)[1]
lam_hat = lambda_max(net10, phi_hat, task5.x_support, task5.y_support)
u = rng10.standard_normal(net10.num_params)
start = phi_hat + 1e-2 * u / np.linalg.norm(u)
below, above = descend(start, 0.9 * 2 / lam_hat, 100)[0], descend(start, 1.1 * 2 / lam_hat, 100)[0]
print(f"lambda_max at the minimum: {lam_hat:.2f}")
print(f"0.9 x 2/lambda_max: highest loss / start = {below.max() / below[0]:.2f}, end / start = {below[-1] / below[0]:.2f}")
print(f"1.1 x 2/lambda_max: highest loss / start = {above.max() / above[0]:.3g}, end / start = {above[-1] / above[0]:.3g}")
assert below.max() <= below[0] and above.max() > 10 * above[0]

# %% [markdown]
# Above the boundary the iterate is thrown out of that minimum, and it may later settle
# somewhere flatter. The boundary predicts when a minimum becomes unstable, not that the loop
# must overflow.
#
# ### Where it is only a guide: from the initialisation
#
# MAML's inner loop starts at $\varphi$, not at a minimum, and the Hessian changes along the
# way. Below, plain gradient descent on the support set of a sine task, from the initialisation
# of the MAML paper's 1-40-40-1 networks (one seed per row: its own $\varphi$ and task), for 100
# steps at $\alpha = c \cdot 2/\lambda_{\max}(\varphi)$. The table shows the final loss over the
# initial one, and `inf` where the parameters overflowed.

# %%
cs = (0.5, 0.9, 1.1, 1.5, 2.0, 3.0, 5.0, 10.0)
seeds = range(2 if FAST else 4)
print("activation  seed  lambda_max " + " ".join(f"{c:>8}" for c in cs))
sweep = {}
for activation in ("tanh", "relu"):
    sweep_net = tm.MLP([1, 40, 40, 1], activation)
    for seed in seeds:
        seed_rng = np.random.default_rng(seed)
        phi0 = sweep_net.init(seed_rng)
        t = tm.Sine(10, 10).sample(seed_rng, 1)[0]
        lm = lambda_max(sweep_net, phi0, t.x_support, t.y_support)
        row = []
        for c in cs:
            p, a = phi0, c * 2 / lm
            with np.errstate(over="ignore", invalid="ignore"):
                for _ in range(100):
                    p = p - a * sweep_net.loss_and_grad(p, t.x_support, t.y_support)[1]
                    if not np.all(np.isfinite(p)):
                        break
                final = sweep_net.loss(p, t.x_support, t.y_support) if np.all(np.isfinite(p)) else np.inf
            row.append(final / sweep_net.loss(phi0, t.x_support, t.y_support))
        sweep[activation, seed] = np.array(row)
        print(f"{activation:>10} {seed:5d} {lm:11.2f} " + " ".join(f"{r:8.1e}" for r in row))
exploded = {key: [c for c, r in zip(cs, row, strict=True) if not r < 1e3] for key, row in sweep.items()}
print("c at which the loss grew more than 1000-fold or overflowed:", exploded)
assert exploded["tanh", 0][0] < 1  # below the boundary, and still exploding
assert all(max(c for c, r in zip(cs, row, strict=True) if r < 1) > 2 for key, row in sweep.items() if key[0] == "relu")

# %% [markdown]
# The boundary at $\varphi$ gets it wrong in both directions. With tanh and seed 0, the loss
# explodes at $c = 0.9$, *below* the boundary: the curvature grows along the trajectory. With
# ReLU, the runs survive well above it, because the iterates escape into flatter regions, and
# only much larger steps overflow. Hence a practical rule: if the inner loop produces NaNs,
# compare $\alpha$ with $2/\lambda_{\max}$ at $\varphi$ *and at a few inner iterates*
# (`step_stability` at each). `tm.adapt` raises `DivergenceError` when the loss stops being
# finite. Here it does so for the ReLU row of seed 0 at $c = 10$, and `step_stability` flags that
# step size before any step is taken:

# %%
relu_sweep = tm.MLP([1, 40, 40, 1], "relu")
seed_rng = np.random.default_rng(0)
phi0 = relu_sweep.init(seed_rng)
t0 = tm.Sine(10, 10).sample(seed_rng, 1)[0]
big = 10 * 2 / lambda_max(relu_sweep, phi0, t0.x_support, t0.y_support)
print(step_stability(relu_sweep, phi0, t0.x_support, t0.y_support, big))
try:
    with np.errstate(over="ignore", invalid="ignore"):
        tm.adapt(relu_sweep, phi0, t0.x_support, t0.y_support, big, 100)
    raise AssertionError("expected a DivergenceError")
except tm.DivergenceError as err:
    print("DivergenceError:", err)

# %% [markdown]
# ## What each costs
#
# One call of each batched function: the mean value and meta-gradient over a meta-batch of
# sine tasks ($K = 10$), on the MAML paper's 1-40-40-1 ReLU network. iMAML runs on the tanh
# network, because of the kinks above. Best of three calls, against `tm.batch.maml_batch`.

# %%
B = 5 if FAST else 25
batch = tm.TaskBatch.stack(tm.Sine(10, 10).sample(np.random.default_rng(2), B))
phi_r = relu_net.init(3)


def best_of_3(fn):
    times = []
    for _ in range(3):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


rows = [
    ("MAML, k = 1", lambda: maml_batch(relu_net, phi_r, batch, 0.01, 1)),
    ("MAML, k = 5", lambda: maml_batch(relu_net, phi_r, batch, 0.01, 5)),
    ("Meta-SGD, k = 1", lambda: metasgd_batch(relu_net, phi_r, np.full(relu_net.num_params, 0.01), batch, 1)),
    ("Meta-SGD, k = 5", lambda: metasgd_batch(relu_net, phi_r, np.full(relu_net.num_params, 0.01), batch, 5)),
    ("ANIL, k = 1", lambda: anil_batch(relu_net, phi_r, batch, 0.01, 1)),
    ("ANIL, k = 5", lambda: anil_batch(relu_net, phi_r, batch, 0.01, 5)),
    ("iMAML (tanh), lam = 10", lambda: imaml_batch(sine_net, phi_sine, batch, 10.0, "mse", 1e-8)),
]
for name, fn in rows:
    print(f"{name:>24}: {1e3 * best_of_3(fn):7.1f} ms for {B} tasks")

# %% [markdown]
# Meta-SGD and ANIL cost what MAML costs: $k$ gradients and $k$ HVPs per task. ANIL could be
# cheaper with a specialised mixed derivative (exercise 3). iMAML pays for solving its inner
# problem to tolerance.
#
# ## Summary
#
# * **iMAML** (5.1)–(5.4): the meta-gradient is the query gradient at $\varphi^\star$ multiplied by
#   $(I + H_A(\varphi^\star)/\lambda)^{-1}$, solved by CG on HVPs. Only $\varphi^\star$ matters, so the
#   memory is $O(P)$. It needs a smooth loss at $\varphi^\star$ and an accurate $\varphi^\star$. For large
#   $\lambda$ it agrees with one-step MAML with $\alpha = 1/\lambda$ up to $O(\lambda^{-2})$.
# * **Meta-SGD** (6.1)–(6.3): the transposed step Jacobian is $I - H_i \operatorname{diag}(\boldsymbol\alpha)$,
#   and the step sizes' gradient sums $-g_i \odot v_{i+1}$ over the steps, each term with the
#   sensitivity propagated back to that step.
# * **ANIL** (7.1)–(7.2): the body gets a meta-gradient through the query features and through
#   the mixed blocks $H^{\psi w}_i$. One HVP along $(0, v)$ gives both blocks, and ANIL is
#   Meta-SGD with $\boldsymbol\alpha = \alpha m$.
# * **Spectrum** (8.2): gradient descent is stable for $\alpha < 2/\lambda_{\max}$. This is exact for a
#   quadratic (ANIL's inner loop with MSE), local near a minimum, and only a guide from the
#   initialisation. `lambda_max` is Lanczos on HVPs.
# * Every gradient was checked against central differences of its own meta-objective, written
#   with `loss_and_grad` alone. Each negative control failed the same check: $H$ at $\varphi$
#   instead of $\varphi^\star$, $v_k$ instead of $v_{i+1}$, and no mixed terms.
#
# ## Exercises
#
# 1. **iMAML by a Neumann series.** For $\lVert H/\lambda \rVert < 1$,
#    $(I + H/\lambda)^{-1} = \sum_{j \ge 0} (-H/\lambda)^j$. Implement the truncated sum with $m$
#    HVPs. Check it against `implicit_jacobian_solve` for a large $\lambda$, and explain what
#    happens when $\lambda < \lambda_{\max}$. Why is CG the better choice?
# 2. **Meta-SGD with one step size per layer.** Tie the step sizes of each layer's $W_l$ and
#    $b_l$ together. Derive the gradient with respect to the $2L$ scalars from (6.3) (hint: sum
#    over each group), implement it, and check it with `gradcheck.check_grad` on a function of
#    the $2L$ scalars.
# 3. **ANIL with one backward pass through the body.** The derivations page writes
#    $H^{\psi w}_i v$ as a vector-Jacobian product of the body's features $A$ with the matrix
#    $\delta_i V^\top + (\nabla^2_{\hat y}\ell\, S) W_i^\top$. Sum those matrices over the $k$ steps
#    first, and back-propagate once. Implement it for the MSE loss (back-propagate through the
#    body by hand, as in tutorial 1), and check the body's gradient against `anil_value_and_grad`
#    at $10^{-12}$. Count the passes you saved.
# 4. **The boundary along the trajectory.** For one sine task and the 1-40-40-1 tanh network,
#    find by bisection the largest $\alpha$ for which 10 inner steps stay finite. Compare it with
#    $2/\lambda_{\max}(\varphi)$ and with $\min_i 2/\lambda_{\max}(\varphi_i)$ along the trajectory of a
#    slightly smaller $\alpha$. Which predicts better, and why?
