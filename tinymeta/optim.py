"""Optimizers on flat parameter vectors, as pure functions of (phi, g, state).

``update`` returns new arrays and a new state; nothing is modified in place, so
a training loop (and a checkpoint) holds the whole optimizer state explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import validate


@dataclass(frozen=True)
class SGD:
    """phi <- phi - lr * g.  ``lr`` must be a finite number > 0 (checked when built)."""

    lr: float

    def __post_init__(self):
        object.__setattr__(self, "lr", validate.positive("lr", self.lr))

    def init(self, num_params):
        return {}

    def update(self, phi, g, state, lr=None):
        lr = self.lr if lr is None else lr
        return phi - lr * g, state


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) with bias correction; ``beta1 = 0`` as in the Reptile paper's inner loop.

    m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2,
    phi <- phi - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t).

    Checked when built: lr > 0, beta1 and beta2 in [0, 1), eps > 0, all finite.
    """

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        object.__setattr__(self, "lr", validate.positive("lr", self.lr))
        for name in ("beta1", "beta2"):
            object.__setattr__(self, name, validate.unit_interval(name, getattr(self, name)))
        object.__setattr__(self, "eps", validate.positive("eps", self.eps))

    def init(self, num_params):
        return {"m": np.zeros(num_params), "v": np.zeros(num_params), "t": 0}

    def update(self, phi, g, state, lr=None):
        lr = self.lr if lr is None else lr
        t = state["t"] + 1
        m = self.beta1 * state["m"] + (1.0 - self.beta1) * g
        v = self.beta2 * state["v"] + (1.0 - self.beta2) * (g * g)
        m_hat = m / (1.0 - self.beta1**t)
        v_hat = v / (1.0 - self.beta2**t)
        return phi - lr * m_hat / (np.sqrt(v_hat) + self.eps), {"m": m, "v": v, "t": t}

    @staticmethod
    def check_state(state, num_params):
        """``state`` checked as an Adam state for P = ``num_params``: m (P,), v (P,) >= 0, t int >= 0."""
        if not isinstance(state, dict) or not {"m", "v", "t"} <= state.keys():
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise TypeError(f"adam_state must be a dict with keys 'm', 'v', 't' (from Adam.init); got {got}")
        m = validate.float_array("adam_state['m']", state["m"], 1, (num_params,))
        v = validate.float_array("adam_state['v']", state["v"], 1, (num_params,))
        if np.any(v < 0):
            raise ValueError(f"adam_state['v'] must be >= 0 (a running mean of g^2); min is {v.min()}")
        return {"m": m, "v": v, "t": validate.count("adam_state['t']", state["t"])}


def make_optimizer(name, lr, beta1=0.9):
    """``SGD(lr)`` for ``"sgd"``, ``Adam(lr, beta1=beta1)`` for ``"adam"`` (both check their arguments)."""
    validate.one_of("optimizer", name, {"sgd", "adam"})
    return SGD(lr) if name == "sgd" else Adam(lr, beta1=beta1)


def linear_schedule(start, end, iteration, total):
    """Linear annealing from ``start`` (iteration 0) to ``end`` (iteration ``total``), as in the Reptile code.

    value = start + (end - start) * iteration / total
    """
    frac = min(max(iteration / max(total, 1), 0.0), 1.0)
    return start + (end - start) * frac
