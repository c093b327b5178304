"""Plausible student mistakes for exercises 13-15 (Meta-SGD, ANIL, iMAML), written as a student would.

Each entry: (exercise, what the student did, the function, a phrase the hint must contain).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, cg

from tinymeta.anil import head_mask


def _g(net, p, X, Y):
    return net.loss_and_grad(p, X, Y)[1]


# ---------------------------------------------------------------------------- 13
def metasgd(fo=False, after=False, late=False, plus=False, last=False, scalar=False, vector_only=False):
    def f(net, phi, alphas, task, k):
        xs, ys, xq, yq = task
        ps, gs = [phi], []
        for _ in range(k):
            gs.append(_g(net, ps[-1], xs, ys))
            ps.append(ps[-1] - alphas * gs[-1])
        v = _g(net, ps[-1], xq, yq)
        da = np.zeros(phi.size)
        for i in reversed(range(k)):
            if not late and not (last and i != k - 1):
                da = da + (1 if plus else -1) * gs[i] * v
            if not fo:
                if after:
                    v = v - alphas * net.hvp(ps[i], xs, ys, v)  # diag(alphas) H, as in the forward step
                else:
                    v = v - net.hvp(ps[i], xs, ys, (alphas.mean() if scalar else alphas) * v)
            if late:
                da = da + (1 if plus else -1) * gs[i] * v
        return (v, float(da.sum())) if vector_only else (v, da)

    return f


MISTAKES_13 = [
    ("13", "no Jacobian, v stays grad L_B(phi_k)", metasgd(fo=True), "first-order Meta-SGD"),
    ("13", "alphas multiplied after the HVP", metasgd(after=True), "wrong side of the Hessian"),
    ("13", "dF/dalphas accumulated after updating v", metasgd(late=True), "pairs with v_{i+1}"),
    ("13", "+g_i * v in dF/dalphas", metasgd(plus=True), "sign of dF/dalphas"),
    ("13", "dF/dalphas from the last step only", metasgd(last=True), "from the last step only"),
    ("13", "the mean step size in the Jacobian", metasgd(scalar=True), "a scalar step size"),
    ("13", "dF/dalphas summed to one number", metasgd(vector_only=True), "one entry per parameter"),
]


# ---------------------------------------------------------------------------- 14
def anil(fo=False, no_body=False, full=False, maml=False, mask_after=False, no_alpha=False):
    def f(net, phi, task, alpha, k):
        xs, ys, xq, yq = task
        m = np.ones(phi.size) if maml else head_mask(net)
        ps = [phi]
        for _ in range(k):
            ps.append(ps[-1] - alpha * m * _g(net, ps[-1], xs, ys))
        g = _g(net, ps[-1], xq, yq)
        for i in reversed(range(k)):
            if fo:
                break
            a = 1.0 if no_alpha else alpha
            if mask_after:  # H_ww v only: the head block of the HVP
                g = g - a * m * net.hvp(ps[i], xs, ys, m * g)
            else:
                g = g - a * net.hvp(ps[i], xs, ys, g if full else m * g)
        return m * g if no_body else g

    return f


MISTAKES_14 = [
    ("14", "first-order ANIL", anil(fo=True), "first-order ANIL"),
    ("14", "only the head's gradient returned", anil(no_body=True), "the body's gradient is zero"),
    ("14", "HVP along the whole g", anil(full=True), "MAML's full factor"),
    ("14", "the inner loop moves everything", anil(maml=True), "this is MAML's gradient"),
    ("14", "the mixed term masked away", anil(mask_after=True), "the body's mixed term is missing"),
    ("14", "alpha forgotten in the Hessian term", anil(no_alpha=True), "missing alpha"),
]


# ---------------------------------------------------------------------------- 15
def imaml(none=False, times=False, at_phi=False, mult=False, loose=False, minus=False):
    def f(net, phi, phi_star, task, lam):
        xs, ys, xq, yq = task
        v = _g(net, phi_star, xq, yq)
        if none:
            return v
        at = phi if at_phi else phi_star
        c = (lam if times else 1.0 / lam) * (-1 if minus else 1)
        A = LinearOperator((v.size, v.size), matvec=lambda p: p + c * net.hvp(at, xs, ys, p))
        if mult:
            return A.matvec(v)
        return cg(A, v)[0] if loose else cg(A, v, rtol=1e-12, atol=0.0)[0]

    return f


MISTAKES_15 = [
    ("15", "returns the query gradient at phi*", imaml(none=True), "first-order iMAML"),
    ("15", "(I + lam H)", imaml(times=True), "lam multiplies the Hessian"),
    ("15", "Hessian at phi", imaml(at_phi=True), "Hessian taken at phi"),
    ("15", "multiplies instead of solving", imaml(mult=True), "SOLVES a linear system"),
    ("15", "CG at scipy's default tolerance", imaml(loose=True), "loose tolerance"),
    ("15", "(I - H/lam)", imaml(minus=True), "sign error"),
]

MISTAKES = MISTAKES_13 + MISTAKES_14 + MISTAKES_15
