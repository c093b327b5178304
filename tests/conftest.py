"""Shared fixtures: a seeded generator, a factory for (X, y) batches, the Omniglot data directory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded generator per test, so tests do not depend on their order."""
    return np.random.default_rng(20240601)


def _hidden_preactivations(net, phi, X):
    """z_l of every hidden layer, each of shape (n, d_l)."""
    a = X
    out = []
    for W, b in net.unflatten(phi)[:-1]:
        z = a @ W + b
        out.append(z)
        a = net.sigma.f(z)
    return out


def _make_batch(net, phi, n, loss, rng, margin=1e-3):
    """A batch ``(X, y)`` of ``n`` examples for ``net``.

    X ~ N(0, 1); y ~ N(0, 1) of shape (n, d_L) for ``"mse"``, uniform integer labels of
    shape (n,) for ``"cross_entropy"``. For ReLU networks, rows are redrawn until every
    hidden pre-activation satisfies |z| > ``margin``: a finite-difference step (h <= 1e-5
    on one parameter moves z by about h) then never crosses the kink at z = 0.
    """
    d_in, d_out = net.sizes[0], net.sizes[-1]
    rows, have = [], 0
    for _ in range(100):
        X = rng.standard_normal((4 * n, d_in))
        if net.activation == "relu":
            keep = np.ones(len(X), dtype=bool)
            for z in _hidden_preactivations(net, phi, X):
                keep &= np.all(np.abs(z) > margin, axis=1)
            X = X[keep]
        rows.append(X)
        have += len(X)
        if have >= n:
            break
    else:
        raise RuntimeError(f"could not draw {n} kink-free rows for {net!r}")
    X = np.concatenate(rows)[:n]
    if loss == "mse":
        y = rng.standard_normal((n, d_out))
    else:
        y = rng.integers(0, d_out, size=n)
    return X, y


@pytest.fixture(scope="session")
def make_batch():
    """Factory ``make_batch(net, phi, n, loss, rng)`` -> ``(X, y)``; kink-free inputs for ReLU."""
    return _make_batch


OMNIGLOT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


@pytest.fixture(scope="session")
def shared():
    """Directory of the real Omniglot files: $TINYMETA_DATA if it holds them, else the checkout's
    sibling ../shared/data/omniglot; tests that need it are skipped, with the reason, when absent."""
    from tinymeta.omniglot import OmniglotNotFoundError, find_data_dir

    for d in (os.environ.get("TINYMETA_DATA"), OMNIGLOT_SHARED):
        if d is None:
            continue
        try:
            return find_data_dir(d)
        except OmniglotNotFoundError:
            pass
    pytest.skip(f"Omniglot 28x28 npz files not found in $TINYMETA_DATA or {OMNIGLOT_SHARED}")
