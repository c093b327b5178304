"""Plausible student mistakes for exercises 01-04, written as a student would write them.

Each entry: (exercise, what the student did, the function, a phrase the hint must contain).
Run by tests/test_grader_mistakes.py; none of these reuses the graders' own wrong answers.
"""

from __future__ import annotations

import numpy as np

from tinymeta.params import flatten, unflatten


def sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def softplus(z):
    return np.logaddexp(0.0, z)


# ---------------------------------------------------------------------------- 01
def act(d1=None, d2=None):
    def f(z):
        s = sig(z)
        return (s if d1 is None else d1(z, s)), (s * (1 - s) if d2 is None else d2(z, s))

    return f


def naive(z):
    e = np.exp(z)
    s = e / (1 + e)
    return s, s * (1 - s)


def naive_d2(z):
    return sig(z), np.exp(z) / (1 + np.exp(z)) ** 2


def fd_activation(z, h=1e-5):
    d1 = (softplus(z + h) - softplus(z - h)) / (2 * h)
    return d1, (sig(z + h) - sig(z - h)) / (2 * h)


def swapped(z):
    s = sig(z)
    return s * (1 - s), s


MISTAKES_01 = [
    ("01", "sign inside the logistic", act(d1=lambda z, s: sig(-z)), "sign error inside the logistic"),
    ("01", "e^z without its denominator", act(d1=lambda z, s: np.exp(z)), "denominator 1 + e^z is missing"),
    (
        "01",
        "one derivative too many",
        act(d2=lambda z, s: s * (1 - s) * (1 - 2 * s)),
        "one derivative too many",
    ),
    ("01", "e^z / (1 + e^z), overflows", naive, "overflow at"),
    ("01", "e^z / (1 + e^z)^2 for sigma''", naive_d2, "overflows float64"),
    ("01", "negative sigma''", act(d2=lambda z, s: -s * (1 - s)), "sign flipped"),
    ("01", "sigma' returned again as sigma''", act(d2=lambda z, s: s), "returned sigma' again"),
    ("01", "the two outputs swapped", swapped, "that is sigma''"),
    ("01", "finite differences", fd_activation, "finite-difference"),
    ("01", "s^2 for sigma''", act(d2=lambda z, s: s * s), "not 1 / (1 + e^-z)^2"),
    ("01", "softplus itself for sigma'", act(d1=lambda z, s: softplus(z)), "softplus itself"),
    ("01", "1 - s^2 for sigma''", act(d2=lambda z, s: 1 - s * s), "pattern of tanh"),
]


# ---------------------------------------------------------------------------- 02
def dense(d1="ok", da_W=False, mean_b=False, dW_T=False, no_sum=False, sign=1.0, order=False, mean_all=False):
    def f(a, W, b, delta):
        z = a @ W + b
        h = np.tanh(z)
        d = {"ok": 1 - h**2, "none": 1.0, "z2": 1 - z**2, "lin": 1 - h, "of_h": 1 - np.tanh(h) ** 2}[d1]
        dz = sign * delta * d
        n = len(a) if mean_all else 1
        dW = (dz.T @ a if dW_T else a.T @ dz) / n
        db = dz if no_sum else (dz.mean(0) if mean_b or mean_all else dz.sum(0))
        da = dz @ W if da_W else dz @ W.T
        return (dW, da, db) if order else (dW, db, da)

    return f


MISTAKES_02 = [
    ("02", "missing tanh'", dense(d1="none"), "missing sigma'(z)"),
    ("02", "delta W instead of delta W^T", dense(da_W=True), "transposed weight"),
    ("02", "bias gradient averaged", dense(mean_b=True), "spurious 1/n"),
    ("02", "dW transposed", dense(dW_T=True), "transposed"),
    ("02", "1 - z^2", dense(d1="z2"), "1 - z^2 is not tanh'(z)"),
    ("02", "1 - tanh (not squared)", dense(d1="lin"), "the square is missing"),
    ("02", "bias gradient not summed over rows", dense(no_sum=True), "sum dL/dz over the rows"),
    ("02", "tanh' applied to h", dense(d1="of_h"), "applied to the activation"),
    ("02", "every gradient negated", dense(sign=-1.0), "sign flipped"),
    ("02", "outputs in the order (dW, da, db)", dense(order=True), "in the order (dL/dW, dL/db, dL/da)"),
    ("02", "every gradient averaged over the batch", dense(mean_all=True), "spurious 1/n"),
]


# ---------------------------------------------------------------------------- 03
def mlp(n=True, two=2.0, d1="ok", transpose=False, tanh_out=False, d1_out=False, mean_b=False, sign=1.0,
        skip_first=False):  # fmt: skip
    def f(phi, X, y, sizes):
        layers, a, zs = unflatten(sizes, phi), [X], []
        for l, (W, b) in enumerate(layers):
            zs.append(a[-1] @ W + b)
            a.append(np.tanh(zs[-1]) if l < 2 or tanh_out else zs[-1])
        delta = sign * two * (a[-1] - y) / (len(X) if n else 1)
        if tanh_out or d1_out:
            delta = delta * (1 - np.tanh(zs[-1]) ** 2)
        grads = [None] * 3
        for l in (2, 1, 0):
            grads[l] = (a[l].T @ delta, delta.mean(0) if mean_b else delta.sum(0))
            if l:
                back = delta @ (layers[l][0] if transpose else layers[l][0].T)
                d = {"ok": 1 - a[l] ** 2, "none": 1.0, "lin": 1 - a[l], "z2": 1 - zs[l - 1] ** 2}[d1]
                delta = d * back
        if skip_first:
            grads[0] = (np.zeros_like(grads[0][0]), np.zeros_like(grads[0][1]))
        return flatten(grads)

    return f


MISTAKES_03 = [
    ("03", "sum instead of mean (no 1/n)", mlp(n=False), "missing 1/n"),
    ("03", "loss with a 1/2 (no factor 2)", mlp(two=1.0), "missing factor 2"),
    ("03", "no sigma' between layers", mlp(d1="none"), "missing sigma'(z)"),
    ("03", "weights not transposed going back", mlp(transpose=True), "transposed weight"),
    ("03", "tanh on the output layer", mlp(tanh_out=True), "output layer is linear"),
    ("03", "sigma' applied to the linear output", mlp(d1_out=True), "sigma' applied to the linear output"),
    ("03", "1 - tanh instead of 1 - tanh^2", mlp(d1="lin"), "the square is missing"),
    ("03", "bias gradients averaged", mlp(mean_b=True), "spurious 1/n in the bias"),
    ("03", "residual y - yhat", mlp(sign=-1.0), "sign flipped"),
    ("03", "1 - z^2", mlp(d1="z2"), "1 - z^2 is not tanh'(z)"),
    ("03", "first layer's gradient left at zero", mlp(skip_first=True), "wrong: W1 (your answer is zero"),
]


# ---------------------------------------------------------------------------- 04
def hvp(d2=True, dV=True, Ra=True, n=True, d2_sign=1.0, c1=True, d1="ok", two_R=2.0):
    def f(phi, X, y, v, sizes):
        (W1, b1), (W2, b2) = unflatten(sizes, phi)
        (V1, C1), (V2, C2) = unflatten(sizes, v)
        m = len(X) if n else 1
        t = np.tanh(X @ W1 + b1)
        s1 = 1 - t**2 if d1 == "ok" else 1 - t
        delta2, Rz1 = 2 * (t @ W2 + b2 - y) / m, X @ V1 + (C1 if c1 else 0)
        Ra1 = s1 * Rz1
        Rd2 = two_R * (Ra1 @ W2 + t @ V2 + C2) / m
        Rd1 = (d2_sign * -2 * t * (1 - t**2) * Rz1 * (delta2 @ W2.T) if d2 else 0) + s1 * (
            Rd2 @ W2.T + (delta2 @ V2.T if dV else 0)
        )
        return flatten([(X.T @ Rd1, Rd1.sum(0)), ((Ra1.T @ delta2 if Ra else 0) + t.T @ Rd2, Rd2.sum(0))])

    return f


def _grad(phi, X, y, sizes):
    (W1, b1), (W2, b2) = unflatten(sizes, phi)
    t = np.tanh(X @ W1 + b1)
    d2 = 2 * (t @ W2 + b2 - y) / len(X)
    d1 = (1 - t**2) * (d2 @ W2.T)
    return flatten([(X.T @ d1, d1.sum(0)), (t.T @ d2, d2.sum(0))])


def hvp_fd(h=1e-5, central=True):
    def f(phi, X, y, v, sizes):
        if central:
            return (_grad(phi + h * v, X, y, sizes) - _grad(phi - h * v, X, y, sizes)) / (2 * h)
        return (_grad(phi + h * v, X, y, sizes) - _grad(phi, X, y, sizes)) / h

    return f


def hvp_richardson(phi, X, y, v, sizes, h=1e-3):
    D = lambda h: (_grad(phi + h * v, X, y, sizes) - _grad(phi - h * v, X, y, sizes)) / (2 * h)  # noqa: E731
    return (4 * D(h / 2) - D(h)) / 3


MISTAKES_04 = [
    ("04", "sigma'' term left out", hvp(d2=False), "missing sigma'' term"),
    ("04", "Gauss-Newton product", hvp(d2=False, dV=False, Ra=False), "Gauss-Newton"),
    ("04", "product rule on e_1 forgotten", hvp(dV=False), "missing delta_2 V_2^T"),
    ("04", "product rule on dL/dW_2 forgotten", hvp(Ra=False), "missing R{a_1}^T delta_2"),
    ("04", "no 1/n", hvp(n=False), "missing 1/n"),
    ("04", "central-difference HVP", hvp_fd(), "finite-difference product"),
    ("04", "forward-difference HVP", hvp_fd(h=1e-7, central=False), "finite-difference product"),
    ("04", "Richardson-extrapolated differences", hvp_richardson, "finite-difference product"),
    ("04", "sign of sigma''", hvp(d2_sign=-1.0), "sign error in sigma''"),
    ("04", "bias direction c_1 forgotten", hvp(c1=False), "missing c_1"),
    ("04", "1 - tanh for sigma'", hvp(d1="lin"), "the square is missing"),
    ("04", "factor 2 missing in R{delta_2}", hvp(two_R=1.0), "R{delta_2}"),
]

MISTAKES = MISTAKES_01 + MISTAKES_02 + MISTAKES_03 + MISTAKES_04
