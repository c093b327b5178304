r"""Gradient checking: the numerical checks that tests, tutorials and exercises share.

Every check reports the relative error (the formula used everywhere in tinymeta, cs231n's)
rel_err(a, a_hat) = ||a - a_hat|| / max(||a|| + ||a_hat||, tiny), with Euclidean norms over the
whole vector, ``a`` the analytic value and ``a_hat`` the numerical estimate (docs: Notation).
With float64 and central differences the truncation error is O(h^2) and the round-off error
O(eps / h), so h ~ 1e-5 per coordinate and h ~ 1e-6 along a random direction give errors around
1e-9..1e-11 for smooth functions; a correct derivative of a smooth function passes the default
threshold 1e-6, a wrong one (a sign, a missing term, a transpose) lands near 1.

ReLU is not differentiable at 0: if a finite-difference step crosses a kink
the numerical derivative is wrong, not the analytic one. Use a smooth
activation for exact checks, or a looser threshold (tinymeta's tests use 1e-4
with ReLU) and inputs away from the kinks.

Math
----
\operatorname{rel\_err}(a, \hat a)
= \frac{\lVert a - \hat a \rVert}{\max\left(\lVert a \rVert + \lVert \hat a \rVert,\ 10^{-300}\right)}
(see :doc:`/notation`)

\text{error} = \underbrace{O(h^2)}_{\text{truncation}}
+ \underbrace{O(\epsilon_{\text{mach}} / h)}_{\text{round-off}}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import validate

TINY = 1e-300
DEFAULT_THRESHOLD = 1e-6


@dataclass(frozen=True)
class CheckReport:
    """The outcome of one check: what was compared, the error, the threshold, the verdict."""

    name: str
    error: float
    threshold: float

    @property
    def passed(self) -> bool:
        return bool(self.error < self.threshold)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{self.name}: relative error {self.error:.2e} (threshold {self.threshold:.0e}) {verdict}"


def rel_error(analytic, numerical) -> float:
    r"""||a - a_hat|| / max(||a|| + ||a_hat||, 1e-300), a analytic, a_hat numerical; 0 when both are zero.

    Math
    ----
    \operatorname{rel\_err}(a, \hat a)
    = \frac{\lVert a - \hat a \rVert}{\max\left(\lVert a \rVert + \lVert \hat a \rVert,\ 10^{-300}\right)}
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"analytic has shape {a.shape} but numerical has shape {n.shape}")
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), TINY))


def numerical_grad(f, x, h=1e-5) -> np.ndarray:
    r"""Central-difference gradient of scalar ``f`` at ``x``, one coordinate at a time.

    g_j = (f(x + h e_j) - f(x - h e_j)) / (2h); costs 2 * x.size evaluations.
    ``f`` may return any shape; the result then has shape ``x.shape + f(x).shape``
    (a Jacobian, transposed).

    Math
    ----
    \hat g_j = \frac{f(x + h e_j) - f(x - h e_j)}{2h} = \frac{\partial f}{\partial x_j}(x) + O(h^2)
    """
    x = validate.float_array("x", x, np.ndim(x))
    validate.positive("h", h)
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = h
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2.0 * h))
    return np.stack(cols).reshape(x.shape + np.shape(cols[0]))


def directional_derivative(f, x, u, h=1e-6):
    r"""(f(x + h u) - f(x - h u)) / (2h): the derivative of ``f`` along ``u``.

    Math
    ----
    \frac{f(x + h u) - f(x - h u)}{2h} = \nabla f(x)^\top u + O(h^2)
    """
    return (np.asarray(f(x + h * u)) - np.asarray(f(x - h * u))) / (2.0 * h)


def check_grad(f, grad, x, h=1e-5, threshold=DEFAULT_THRESHOLD, name="gradient") -> CheckReport:
    """Compare ``grad(x)`` with the coordinate-wise central difference of ``f`` at ``x``."""
    return CheckReport(
        f"{name} vs central differences (h={h:g})", rel_error(grad(x), numerical_grad(f, x, h)), threshold
    )


def check_directional(
    f, grad, x, rng=0, num_directions=5, h=1e-6, threshold=DEFAULT_THRESHOLD, name="gradient"
) -> CheckReport:
    r"""Compare <grad(x), u> with the central difference of ``f`` along random unit vectors u.

    Cheap for large x (2 evaluations per direction). The error reported is the
    relative error between the vector of analytic and of numerical directional
    derivatives over all directions.

    Math
    ----
    \operatorname{rel\_err}\Big( \big(\mathrm{grad}(x)^\top u_m\big)_{m},
    \ \Big(\frac{f(x + h u_m) - f(x - h u_m)}{2h}\Big)_{m} \Big), \qquad \lVert u_m \rVert = 1
    """
    rng = validate.rng(rng)
    validate.count("num_directions", num_directions, minimum=1)
    g = np.asarray(grad(x))
    analytic, numerical = [], []
    for _ in range(num_directions):
        u = rng.standard_normal(np.shape(x))
        u /= np.linalg.norm(u)
        analytic.append(np.vdot(g, u))
        numerical.append(directional_derivative(f, x, u, h))
    return CheckReport(
        f"{name} along {num_directions} random directions (h={h:g})",
        rel_error(analytic, numerical),
        threshold,
    )


def check_hvp(grad, hvp, x, v, h=1e-5, threshold=DEFAULT_THRESHOLD, name="Hessian-vector product"):
    r"""Compare ``hvp(x, v)`` with the central difference of the exact gradient along ``v``.

    H v ~= (grad(x + h v) - grad(x - h v)) / (2h): first-order differences of an
    exact gradient, so the same O(h^2) truncation applies.

    Math
    ----
    H v = \frac{\nabla f(x + h v) - \nabla f(x - h v)}{2h} + O(h^2)
    (eq. :eq:`eq-rop-def`, the R-operator)
    """
    return CheckReport(
        f"{name} vs differences of the gradient (h={h:g})",
        rel_error(hvp(x, v), directional_derivative(grad, x, v, h)),
        threshold,
    )


def check_model(net, phi, X, y, loss="mse", h=1e-5, threshold=DEFAULT_THRESHOLD):
    """Check ``net.loss_and_grad`` against coordinate-wise central differences of ``net.loss``."""
    return check_grad(
        lambda p: net.loss(p, X, y, loss),
        lambda p: net.loss_and_grad(p, X, y, loss)[1],
        phi,
        h=h,
        threshold=threshold,
        name=f"{net!r} {loss} gradient",
    )
