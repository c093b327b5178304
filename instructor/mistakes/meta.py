"""Plausible student mistakes for exercises 05-12, written as a student would write them.

Each entry: (exercise, what the student did, the function, a phrase the hint must contain).
"""

from __future__ import annotations

import numpy as np

from tinymeta.params import flatten, unflatten


def _g(net, p, X, Y):
    return net.loss_and_grad(p, X, Y)[1]


# ---------------------------------------------------------------------------- 05, 06
def maml(fo=False, no_alpha=False, outer_at_phi=False, ltr=False, h_next=False, plus=False, swap=False,
         h_query=False, hg_s=False, linear=False, skip_first=False, extra_step=False, fd=False, at_phi=False,
         outer_prev=False):  # fmt: skip
    def f(net, phi, task, alpha, k=1):
        xs, ys, xq, yq = task
        if swap:
            xs, ys, xq, yq = xq, yq, xs, ys
        traj = [phi]
        for _ in range(k + 1 if extra_step else k):
            traj.append(traj[-1] - alpha * _g(net, traj[-1], xs, ys))
        at = phi if outer_at_phi else traj[-2] if outer_prev and k else traj[-1]
        v = _g(net, at, xq, yq)
        if fo:
            return v
        hx, hy = (xq, yq) if h_query else (xs, ys)
        a = 1.0 if no_alpha else alpha

        def H(p, w):
            if fd:
                return (_g(net, p + 1e-5 * w, hx, hy) - _g(net, p - 1e-5 * w, hx, hy)) / 2e-5
            return net.hvp(p, hx, hy, w)

        if linear:
            return v - a * sum(H(traj[i], v) for i in range(k))
        for i in range(k) if ltr else range(k - 1, -1, -1):
            if skip_first and i == 0:
                continue
            p = traj[0] if at_phi else traj[i + 1] if h_next else traj[i]
            w = _g(net, traj[i], xs, ys) if hg_s else v
            v = v + (1 if plus else -1) * a * H(p, w)
        return v

    return f


def k1(**bug):
    f = maml(**bug)
    return lambda net, phi, task, alpha: f(net, phi, task, alpha, 1)


MISTAKES_05 = [
    ("05", "first-order MAML", k1(fo=True), "first-order MAML (FOMAML)"),
    ("05", "alpha forgotten in the factor", k1(no_alpha=True), "missing alpha"),
    ("05", "query gradient at phi", k1(outer_at_phi=True), "used phi instead of phi_1"),
    ("05", "Hessian at phi_1", k1(h_next=True), "Hessian taken at the wrong iterate"),
    ("05", "I + alpha H", k1(plus=True), "sign error in the factors"),
    ("05", "support and query swapped", k1(swap=True), "support and query swapped"),
    ("05", "Hessian of the query loss", k1(h_query=True), "Hessians are of the support loss"),
    ("05", "H g_s instead of H v", k1(hg_s=True), "H g_s instead of H_i v"),
    ("05", "finite-difference HVP", k1(fd=True), "finite-difference Hessian-vector products"),
]
MISTAKES_06 = [
    ("06", "first-order MAML", maml(fo=True), "first-order MAML (FOMAML)"),
    ("06", "factors left to right", maml(ltr=True), "wrong order"),
    ("06", "H_i at phi_{i+1}", maml(h_next=True), "Hessian taken at the wrong iterate"),
    ("06", "every H_i at phi", maml(at_phi=True), "every H_i was taken at phi"),
    ("06", "the linearised product I - alpha sum H_i", maml(linear=True), "linearised product"),
    ("06", "one factor short", maml(skip_first=True), "one factor short"),
    ("06", "k + 1 inner steps", maml(extra_step=True), "k + 1 inner steps"),
    ("06", "query gradient at phi_{k-1}", maml(outer_prev=True), "phi_{k-1}"),
    ("06", "H g_s instead of H_i v", maml(hg_s=True), "H g_s instead of H_i v"),
    ("06", "alpha forgotten", maml(no_alpha=True), "missing alpha"),
    ("06", "query gradient at phi", maml(outer_at_phi=True), "used phi instead of phi_k"),
]


# ---------------------------------------------------------------------------- 07
def reptile(away=False, no_eps=False, total=False, at_phi=False, inplace=False, extra=False, eps_inner=False,
            serial=False, last=False, update=False, query=False):  # fmt: skip
    def f(net, phi, tasks, alpha, k, eps):
        acc, cur = np.zeros_like(phi), phi.copy()
        for t in tasks:
            x, y = (t.x_query, t.y_query) if query else (t.x_support, t.y_support)
            p = (cur if serial else phi).copy()
            start = p.copy()
            for _ in range(k + 1 if extra else k):
                p -= (eps * alpha if eps_inner else alpha) * _g(net, start if at_phi else p, x, y)
            if serial:
                cur = cur + eps * (p - cur)
            elif last:
                acc = p - phi
            else:
                acc += p - phi
        if serial:
            return cur
        step = (
            (-1 if away else 1)
            * (1 if no_eps or eps_inner else eps)
            * acc
            / (1 if total or last else len(tasks))
        )
        if update:
            return step
        if inplace:
            phi += step
            return phi
        return phi + step

    return f


MISTAKES_07 = [
    ("07", "step away from phi~", reptile(away=True), "wrong direction"),
    ("07", "epsilon forgotten", reptile(no_eps=True), "missing epsilon"),
    ("07", "sum over tasks", reptile(total=True), "missing 1/M"),
    ("07", "inner gradients at phi", reptile(at_phi=True), "taken at phi"),
    ("07", "phi changed in place", reptile(inplace=True), "in place"),
    ("07", "k + 1 inner steps", reptile(extra=True), "k + 1 inner steps"),
    ("07", "epsilon inside each inner step", reptile(eps_inner=True), "epsilon inside each inner step"),
    ("07", "serial Reptile", reptile(serial=True), "serial Reptile"),
    ("07", "only the last task kept", reptile(last=True), "only the last task"),
    ("07", "returned the step", reptile(update=True), "you returned the step"),
    ("07", "adapted on the query sets", reptile(query=True), "support sets only"),
]


# ---------------------------------------------------------------------------- 08
def taylor(maml_=(1, -2), fomaml=(1, -1), rep=(1, -0.5), rep_c0=True, shift=0):
    def f(k):
        k = k + shift
        return {"maml": (maml_[0], maml_[1] * (k - 1)), "fomaml": (fomaml[0], fomaml[1] * (k - 1)),
                "reptile": (k if rep_c0 else 1, rep[1] * k * (k - 1))}  # fmt: skip

    return f


MISTAKES_08 = [
    ("08", "FOMAML's coefficients for MAML", taylor(maml_=(1, -1)), "these are FOMAML's"),
    ("08", "Reptile's c1 = -k(k-1)", taylor(rep=(1, -1)), "not k (k - 1)"),
    ("08", "Reptile's c0 = 1", taylor(rep_c0=False), "sum of k gradients"),
    ("08", "the paper's positive c1", taylor(maml_=(1, 2), fomaml=(1, 1), rep=(1, 0.5)), "sign of c1"),
    (
        "08",
        "k inner steps for MAML and FOMAML",
        lambda k: {**taylor(shift=1)(k), "reptile": taylor()(k)["reptile"]},
        "off by one",
    ),
    ("08", "MAML and FOMAML swapped", taylor(maml_=(1, -1), fomaml=(1, -2)), "these are MAML's"),
    ("08", "Reptile's c1 = -(k-1)", lambda k: {**taylor()(k), "reptile": (k, -(k - 1))}, "count the terms"),
]


# ---------------------------------------------------------------------------- 09
def ce(n=True, diag_only=False, sum_u=False, naive=False, mse=False, sign=1.0, axis=1, fd=False):
    def f(yhat, y, u):
        m, c = yhat.shape
        z = yhat if naive else yhat - yhat.max(axis=axis, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=axis, keepdims=True)
        oh = np.eye(c)[y]
        d = m if n else 1
        g = sign * (p - oh) / d
        if fd:

            def grad(t):
                q = np.exp(t - t.max(1, keepdims=True))
                return (q / q.sum(1, keepdims=True) - oh) / m

            return g, (grad(yhat + 1e-5 * u) - grad(yhat - 1e-5 * u)) / 2e-5
        if mse:
            return g, 2 * u / d
        inner = u.sum(1, keepdims=True) if sum_u else (p * u).sum(1, keepdims=True)
        return g, (p * u if diag_only else p * u - p * inner) / d

    return f


MISTAKES_09 = [
    ("09", "no 1/n", ce(n=False), "missing 1/n"),
    ("09", "diag(p) only", ce(diag_only=True), "diag(p) only"),
    ("09", "sum(u) instead of p . u", ce(sum_u=True), "sum(u) in place of p . u"),
    ("09", "softmax without the max shift", ce(naive=True), "subtract each row's maximum"),
    ("09", "the MSE's output Hessian", ce(mse=True), "output Hessian of the MSE"),
    ("09", "onehot - p", ce(sign=-1.0), "sign flipped"),
    ("09", "softmax over the wrong axis", ce(axis=0), "softmax over the wrong axis"),
    ("09", "finite-difference H_out u", ce(fd=True), "finite difference"),
]


# ---------------------------------------------------------------------------- 10
def gn(full=False, no_hout=False, mse_hout=False, no_d1_back=False, no_RaW2=False, n=True, transpose=False):
    def f(phi, X, y, v, sizes, loss):
        (W1, b1), (W2, b2) = unflatten(sizes, phi)
        (V1, c1), (V2, c2) = unflatten(sizes, v)
        m = len(X) if n else 1
        t = np.tanh(X @ W1 + b1)
        s = 1 - t**2
        yhat = t @ W2 + b2
        Jv = ((s * (X @ V1 + c1)) @ W2 if not no_RaW2 else 0) + t @ V2 + c2
        if no_hout:
            u = Jv
        elif loss == "mse" or mse_hout:
            u = 2 * Jv / m
        else:
            p = np.exp(yhat - yhat.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            u = (p * Jv - p * (p * Jv).sum(1, keepdims=True)) / m
        e1 = u @ (W2 if transpose else W2.T)
        d1 = e1 if no_d1_back else s * e1
        out = flatten([(X.T @ d1, d1.sum(0)), (t.T @ u, u.sum(0))])
        if full and loss == "mse":  # the R-operator of exercise 04 with every term kept
            delta2 = 2 * (yhat - y) / m
            Rz1 = X @ V1 + c1
            extra1 = -2 * t * s * Rz1 * (delta2 @ W2.T) + s * (delta2 @ V2.T)
            out = out + flatten([(X.T @ extra1, extra1.sum(0)), ((s * Rz1).T @ delta2, 0 * b2)])
        return out

    return f


MISTAKES_10 = [
    ("10", "J^T J v (no output Hessian)", gn(no_hout=True), "missing the output Hessian"),
    ("10", "(2/n) I for cross-entropy too", gn(mse_hout=True), "output Hessian of the MSE"),
    ("10", "sigma' missing in J^T", gn(no_d1_back=True), "missing sigma'(z_1) in J^T"),
    ("10", "J v without R{a_1} W_2", gn(no_RaW2=True), "J v misses R{a_1} W_2"),
    ("10", "no 1/n", gn(n=False), "missing 1/n"),
    ("10", "W_2 not transposed in J^T", gn(transpose=True), "transposed weight in J^T"),
    ("10", "the full Hessian-vector product", gn(full=True), "full Hessian-vector product"),
]


# ---------------------------------------------------------------------------- 11
def ckpt(store_all=False, fo=False, drop_tail=False, h_next=False, ltr=False):
    """Checkpoints every m steps and recomputes from the checkpoint for every i (O(k m) gradients),
    unless ``store_all`` keeps the whole trajectory instead."""

    def f(net, phi, task, alpha, k, every):
        xs, ys, xq, yq = task
        step = lambda p: p - alpha * _g(net, p, xs, ys)  # noqa: E731
        steps = (k // every) * every if drop_tail else k
        ck, traj, p = {0: phi}, [phi], phi
        for i in range(steps):
            p = step(p)
            if store_all:
                traj.append(p)
            elif (i + 1) % every == 0:
                ck[i + 1] = p
        v = _g(net, p, xq, yq)
        if fo:
            return v
        for i in range(steps) if ltr else range(steps - 1, -1, -1):
            if store_all:
                pi = traj[min(i + 1, steps)] if h_next else traj[i]
            else:
                base = (i // every) * every
                pi = ck[base]
                for _ in range(base, i):
                    pi = step(pi)
            v = v - alpha * net.hvp(pi, xs, ys, v)
        return v

    return f


MISTAKES_11 = [
    ("11", "stores every iterate", ckpt(store_all=True), "you keep more than the checkpoints"),
    ("11", "recomputes from the checkpoint for every i", ckpt(), "too many gradient evaluations"),
    ("11", "first-order MAML", ckpt(fo=True), "first-order MAML"),
    ("11", "the last, shorter segment dropped", ckpt(drop_tail=True), "last, shorter segment"),
    ("11", "H_i at phi_{i+1}", ckpt(h_next=True, store_all=True), "Hessian taken at the wrong iterate"),
    ("11", "factors left to right", ckpt(ltr=True, store_all=True), "wrong order"),
]


# ---------------------------------------------------------------------------- 12
def dalpha(no_hess=False, last_only=False, sign=1.0, plus=False, at_phi=False, fd=False, vector=False):
    def f(net, phi, task, alpha, k):
        xs, ys, xq, yq = task
        if fd:

            def F(a):
                p = phi
                for _ in range(k):
                    p = p - a * _g(net, p, xs, ys)
                return net.loss(p, xq, yq)

            return (F(alpha + 1e-6) - F(alpha - 1e-6)) / 2e-6
        p, u = phi, np.zeros_like(phi)
        for _ in range(k):
            g = _g(net, phi if at_phi else p, xs, ys)
            Hu = 0 if no_hess else net.hvp(p, xs, ys, u)
            u = -g if last_only else u + (1 if plus else -1) * alpha * Hu - g
            p = p - alpha * _g(net, p, xs, ys)
        gq = _g(net, p, xq, yq)
        return gq * u if vector else sign * float(gq @ u)

    return f


MISTAKES_12 = [
    ("12", "the Hessian terms dropped", dalpha(no_hess=True), "Hessian terms are missing"),
    ("12", "only the last step", dalpha(last_only=True), "only the last inner step"),
    ("12", "sign flipped", dalpha(sign=-1.0), "sign flipped"),
    ("12", "I + alpha H_i", dalpha(plus=True), "sign error in the Hessian term"),
    ("12", "inner gradients at phi", dalpha(at_phi=True), "taken at phi"),
    ("12", "central difference in alpha", dalpha(fd=True), "finite"),
    ("12", "returned a vector", dalpha(vector=True), "dF/dalpha is one number"),
]

MISTAKES = (
    MISTAKES_05
    + MISTAKES_06
    + MISTAKES_07
    + MISTAKES_08
    + MISTAKES_09
    + MISTAKES_10
    + MISTAKES_11
    + MISTAKES_12
)
