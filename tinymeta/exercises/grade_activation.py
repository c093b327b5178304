"""Grader of exercise 01: sigma' and sigma'' of softplus, sigma(z) = log(1 + e^z).

The exact answers are the logistic s(z) and s(z)(1 - s(z)), evaluated here in a form that
never overflows (``e^-|z|`` only). The oracle the test suite compares them with is the central
difference of softplus and of the exact sigma'.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .. import activations
from .checks import Case
from .compare import compare, unpack

THRESHOLD = 1e-12
"""Stable formulas for s and s(1 - s) (tanh, ``e^-|z|``, 1/(1 + e^-z), expit) agree to < 1e-16
(measured); a central difference reaches ~1e-11 at best; a wrong formula misses by > 1e-2."""

OVERFLOW = (
    "e^z overflows float64 above z ~ 709; write the logistic as 0.5 * (1 + tanh(z / 2)) "
    "or use np.exp(-np.abs(z)) so that no exponent is large"
)
NOTES = {
    ("max |z|", "low"): "only large |z| fails: an overflow, or a formula that loses all its digits there",
}


def logistic(z):
    """s(z) = 1 / (1 + e^-z) with no overflow for any float64 z."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logistic_d1(z):
    """``s(z) (1 - s(z)) = e^-|z| / (1 + e^-|z|)^2``, accurate for large ``|z|`` too."""
    e = np.exp(-np.abs(z))
    return e / (1.0 + e) ** 2


def cases(rng):
    big = rng.uniform(700.0, 900.0)
    zs = [
        ("case 1 (z ~ N(0, 9), 50 values)", 3.0 * rng.standard_normal(50)),
        ("case 2 (z of shape (4, 5))", rng.standard_normal((4, 5))),
        (f"case 3 (edge: z = +-{big:.0f}, +-40, +-1e-8, 0)", np.array([-big, -40, -1e-8, 0, 1e-8, 40, big])),
    ]
    for label, z in zs:
        yield Case(
            label,
            (z,),
            partial(grade, z=z),
            tags={"max |z|": float(np.round(np.abs(z).max(), 1))},
            expected=lambda z=z: (logistic(z), logistic_d1(z)),
            oracle=lambda z=z: (_central(activations.softplus, z), _central(activations.softplus_d1, z)),
        )


def _central(f, z, h=1e-5):
    return (f(z + h) - f(z - h)) / (2 * h)


def _where(z):
    def where(mask):
        vals = ", ".join(f"{v:g}" for v in np.unique(z[mask])[:4])
        return f"at z = {vals}{' ...' if mask.sum() > 4 else ''}"

    return where


def grade(out, measured, z):
    d1, d2 = unpack(out, 2, "(d1, d2)")
    s, s1 = logistic(z), logistic_d1(z)
    with np.errstate(all="ignore"):
        wrong1 = [
            ("tanh(z) is the derivative of log cosh(z), not of softplus = log(1 + e^z)", lambda: np.tanh(z)),
            (
                "sign error inside the logistic: sigma'(z) = 1 / (1 + e^(-z)), which tends to 1 as z -> +inf",
                lambda: logistic(-z),
            ),
            ("d/dz log(1 + e^z) = e^z / (1 + e^z): the denominator 1 + e^z is missing", lambda: np.exp(z)),
            (
                "you returned softplus itself, log(1 + e^z), not its derivative",
                lambda: activations.softplus(z),
            ),
            ("that is sigma'' = s (1 - s); sigma' is the logistic s(z) = 1 / (1 + e^-z)", lambda: s1),
            (
                "the derivative of log(u) is u'/u: e^z / (1 + e^z), not 1 / (1 + e^z)",
                lambda: 1.0 / (1.0 + np.exp(z)),
            ),
        ]
        wrong2 = [
            ("1 - s is the logistic mirrored, s(-z); sigma'' = d/dz s(z) = s (1 - s)", lambda: 1 - s),
            (
                "that is the logistic's second derivative s (1 - s)(1 - 2 s), i.e. softplus''': "
                "one derivative too many",
                lambda: s1 * (1 - 2 * s),
            ),
            ("you returned sigma' again; sigma'' = d/dz logistic(z) = s (1 - s)", lambda: s),
            ("1 - s^2 is the pattern of tanh; the logistic's derivative is s (1 - s)", lambda: 1 - s * s),
            (
                "d/dz 1/(1 + e^-z) = e^-z / (1 + e^-z)^2 = s (1 - s), not 1 / (1 + e^-z)^2 = s^2",
                lambda: s * s,
            ),
            ("s (1 + s)? the derivative of s = 1/(1 + e^-z) is s (1 - s)", lambda: s * (1 + s)),
        ]
    where = _where(z)
    return [
        compare("sigma'", d1, s, THRESHOLD, variants=wrong1, nonfinite=OVERFLOW, where=where),
        compare("sigma''", d2, s1, THRESHOLD, variants=wrong2, nonfinite=OVERFLOW, where=where),
    ]
