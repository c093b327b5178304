"""Optimizers on flat parameter vectors, as pure functions of (phi, g, state).

``update`` returns new arrays and a new state; nothing is modified in place, so
a training loop (and a checkpoint) holds the whole optimizer state explicitly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import validate


class SGD(NamedTuple):
    """phi <- phi - lr * g."""

    lr: float

    def init(self, num_params):
        return {}

    def update(self, phi, g, state, lr=None):
        lr = self.lr if lr is None else lr
        return phi - lr * g, state


class Adam(NamedTuple):
    """Adam (Kingma & Ba 2015) with bias correction; ``beta1 = 0`` as in the Reptile paper's inner loop.

    m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2,
    phi <- phi - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t).
    """

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

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
    """``"sgd"`` or ``"adam"`` with a validated learning rate."""
    validate.one_of("optimizer", name, {"sgd", "adam"})
    lr = validate.positive("lr", lr)
    if not 0.0 <= beta1 < 1.0:
        raise ValueError(f"beta1 must be in [0, 1); got {beta1!r}")
    return SGD(lr) if name == "sgd" else Adam(lr, beta1=beta1)


def linear_schedule(start, end, iteration, total):
    """Linear annealing from ``start`` (iteration 0) to ``end`` (iteration ``total``), as in the Reptile code.

    value = start + (end - start) * iteration / total
    """
    frac = min(max(iteration / max(total, 1), 0.0), 1.0)
    return start + (end - start) * frac
