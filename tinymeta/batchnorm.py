"""Batch normalisation of one layer's pre-activations: forward, VJP and R-operator, side by side.

Each column (hidden unit) of ``z``, shape (n, d), is normalised with the mean and the variance
of the n rows passed (tutorial 9, eq. (9.1)); :class:`tinymeta.MLP` then adds the learned shift
beta. Below, ``bar{x} = (1/n) 1^T x`` is a column mean, shape (d,), and a (d,) vector acts on every
row of an (n, d) array. Forward, eq. (9.1)::

    mu = bar{z},   s2 = bar{(z - mu)^2},   r = (s2 + EPS)^(-1/2),   zhat = (z - mu) r

Backward (vector-Jacobian product), eq. (9.2), from g = dL/dzhat::

    dL/dz = r (g - bar{g} - zhat bar{g zhat})

R-forward, eq. (9.3): how the statistics move when z moves by R{z}::

    R{mu} = bar{R{z}},   R{s2} = 2 bar{(z - mu)(R{z} - R{mu})},   R{r} = -r^3 R{s2} / 2,
    R{zhat} = (R{z} - R{mu}) r + (z - mu) R{r}

R-backward, eq. (9.4): the product rule on eq. (9.2), with m = bar{g zhat}::

    R{dL/dz} = R{r} (g - bar{g} - zhat m) + r (R{g} - bar{R{g}} - R{zhat} m - zhat R{m}),
    R{m} = bar{R{g} zhat + g R{zhat}}

The statistics depend on every row, so every row's output depends on every other row's input:
the terms with bar{.} are that coupling, and dropping them (treating mu and s2 as constants) is
the classic mistake that the negative controls in tests/test_batchnorm.py catch.

References
----------
Ioffe & Szegedy (2015), Batch normalization, Alg. 1 and Sec. 3; the R-operator: Pearlmutter (1994).
"""

from __future__ import annotations

import numpy as np

from . import validate

EPS = 1e-3
"""epsilon added to the variance inside the square root: the default of ``tf.contrib.layers.batch_norm``
(``epsilon=0.001``), which MAML's reference code uses. It bounds r by EPS^(-1/2) ~ 31.6."""


# ------------------------------------------------------------------ forward, eq. (9.1)
def statistics(z):
    """Column mean and variance of ``z``, shape (n, d) -> ((d,), (d,)).

    The variance divides by n (the batch's own variance, as in training-mode batch norm), not n - 1.
    """
    mean = z.mean(axis=0)
    centred = z - mean
    return mean, (centred * centred).mean(axis=0)


def normalise(z, mean, var):
    """``(zhat, r)`` with zhat = (z - mean) r, shape (n, d), and r = (var + EPS)^(-1/2), shape (d,).

    With ``(mean, var) = statistics(z)`` this is eq. (9.1); with statistics of another batch,
    each row is normalised on its own (the non-transductive use).
    """
    inv_std = 1.0 / np.sqrt(var + EPS)
    return (z - mean) * inv_std, inv_std


def check_statistics(name, statistics, widths):
    """``statistics`` checked as one (mean, var) pair of float arrays of shape (d,) per width d in
    ``widths``, var >= 0; returns them as a list of float64 pairs. Errors name ``name``."""
    if not isinstance(statistics, (list, tuple)) or len(statistics) != len(widths):
        got = (
            f"length {len(statistics)}"
            if isinstance(statistics, (list, tuple))
            else type(statistics).__name__
        )
        raise ValueError(
            f"{name} must be a list of {len(widths)} (mean, var) pairs, one per hidden layer; got {got}"
        )
    checked = []
    for i, (pair, d) in enumerate(zip(statistics, widths, strict=True)):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"{name}[{i}] must be a (mean, var) pair of arrays of shape ({d},)")
        mean = validate.float_array(f"{name}[{i}][0] (mean)", pair[0], 1, (d,))
        var = validate.float_array(f"{name}[{i}][1] (var)", pair[1], 1, (d,))
        if var.min() < 0:
            raise ValueError(f"{name}[{i}][1] (var) has a negative entry {var.min()!r}; a variance is >= 0")
        checked.append((mean, var))
    return checked


# ------------------------------------------------------------------ backward (VJP), eq. (9.2)
def vjp(g, zhat, inv_std):
    """dL/dz = r (g - bar{g} - zhat bar{g zhat}), shape (n, d), from g = dL/dzhat, eq. (9.2).

    Valid for zhat, r from ``normalise(z, *statistics(z))``: it differentiates through the batch
    statistics. The columns of the result sum to zero (a shift of z changes nothing).
    """
    return inv_std * (g - g.mean(axis=0) - zhat * (g * zhat).mean(axis=0))


# ------------------------------------------------------------------ R-forward, eq. (9.3)
def rop(Rz, zhat, inv_std):
    """``(R{zhat}, R{r})`` from R{z}, shape (n, d), eq. (9.3): through R{mu} and R{s2}.

    Returns
    -------
    (ndarray of shape (n, d), ndarray of shape (d,))
    """
    centred = zhat / inv_std  # z - mu
    R_mean = Rz.mean(axis=0)
    R_centred = Rz - R_mean
    R_var = 2.0 * (centred * R_centred).mean(axis=0)
    R_inv_std = -0.5 * inv_std**3 * R_var
    return R_centred * inv_std + centred * R_inv_std, R_inv_std


# ------------------------------------------------------------------ R-backward, eq. (9.4)
def rop_vjp(g, Rg, zhat, inv_std, R_zhat, R_inv_std):
    """R{dL/dz}, shape (n, d), eq. (9.4): the R-operator applied to :func:`vjp`.

    Parameters
    ----------
    g, Rg : ndarray, shape (n, d)
        dL/dzhat and its R-derivative.
    zhat, inv_std : from :func:`normalise` (shapes (n, d) and (d,))
    R_zhat, R_inv_std : from :func:`rop` (shapes (n, d) and (d,))
    """
    m = (g * zhat).mean(axis=0)
    R_m = (Rg * zhat + g * R_zhat).mean(axis=0)
    return R_inv_std * (g - g.mean(axis=0) - zhat * m) + inv_std * (
        Rg - Rg.mean(axis=0) - R_zhat * m - zhat * R_m
    )
