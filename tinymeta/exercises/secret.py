"""Public and hidden cases: which random generator an exercise's cases are drawn from.

Students check with the *public* cases: a fixed seed per exercise, the same on every machine.
An instructor grades with *hidden* cases drawn from a secret (``--seed S`` or the environment
variable ``TINYMETA_GRADER_SEED``): every exercise gets its own generator, seeded by SHA-256
of the secret and the exercise id, so the inputs -- values and sizes -- cannot be known, and
so cannot be fitted, before grading. Every student of a class gets the same hidden cases.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

ENV = "TINYMETA_GRADER_SEED"
PUBLIC, HIDDEN = "public", "hidden"


def seed_from_env():
    """The secret in ``$TINYMETA_GRADER_SEED``, or None when it is unset or empty."""
    return os.environ.get(ENV) or None


def case_rng(exercise_id, public_seed, seed=None):
    """``(generator, kind)``: the public generator, or a hidden one derived from ``seed``.

    Parameters
    ----------
    exercise_id : str, e.g. ``"05_maml_k1"``
    public_seed : int, the exercise's fixed public seed
    seed : None for the public cases; otherwise the instructor's secret (any str or int)
    """
    if seed is None:
        return np.random.default_rng(public_seed), PUBLIC
    text = str(seed)
    if not text.strip():
        raise ValueError(f"seed must be a non-empty secret; got {seed!r}")
    digest = hashlib.sha256(f"tinymeta-grader|{text}|{exercise_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little")), HIDDEN
