"""Argument checks shared by the public functions.

Every public function validates its inputs before doing arithmetic, so that a
mistake surfaces as a ``ValueError``/``TypeError`` that names the argument, the
value it got and what was expected -- never as a silent NaN or a broadcast.
"""

from __future__ import annotations

import numbers

import numpy as np


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"


def float_array(name: str, x, ndim: int, shape: tuple | None = None) -> np.ndarray:
    """Return ``x`` as a float64 array after checking its dimension, shape and finiteness.

    ``shape`` may contain ``None`` for an axis of any length.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a float array with {ndim} dimension(s); got {_describe(x)}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu" or arr.dtype == bool:
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimension(s); got shape {arr.shape}"
            + (f", expected {_shape_str(shape)}" if shape is not None else "")
        )
    if shape is not None:
        for got, want in zip(arr.shape, shape, strict=True):
            if want is not None and got != want:
                raise ValueError(f"{name} has shape {arr.shape}; expected {_shape_str(shape)}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def label_array(name: str, y, n: int, num_classes: int) -> np.ndarray:
    """Check integer class labels of shape ``(n,)`` with values in ``[0, num_classes)``."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must hold integer class labels for loss='cross_entropy'; got dtype {arr.dtype}"
        )
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}; expected ({n},), one label per row of X")
    if n and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name} has labels in [{arr.min()}, {arr.max()}]; expected values in [0, {num_classes})"
        )
    return arr.astype(np.int64, copy=False)


def positive(name: str, value) -> float:
    """A finite real number > 0 (learning rates, step sizes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive real number; got {_describe(value)}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


def unit_interval(name: str, value) -> float:
    """A real number in [0, 1) (Adam's beta1 and beta2)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1); got {_describe(value)}")
    if not (0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")
    return float(value)


def count(name: str, value, minimum: int = 0) -> int:
    """An integer >= ``minimum`` (inner steps k, iterations, batch sizes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def one_of(name: str, value, choices) -> str:
    """A name from a fixed set (activations, losses, algorithms)."""
    try:
        known = value in choices
    except TypeError:  # unhashable, e.g. a list: name the argument rather than "unhashable type"
        raise TypeError(f"{name} must be one of {sorted(choices)}; got {_describe(value)}") from None
    if not known:
        raise ValueError(f"{name} must be one of {sorted(choices)}; got {value!r}")
    return value


def rng(seed_or_rng) -> np.random.Generator:
    """Accept an ``np.random.Generator`` or an int seed; anything else is an error."""
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    if isinstance(seed_or_rng, numbers.Integral) and not isinstance(seed_or_rng, bool):
        if seed_or_rng < 0:
            raise ValueError(f"rng seed must be an integer >= 0; got {seed_or_rng!r}")
        return np.random.default_rng(int(seed_or_rng))
    raise TypeError(f"rng must be a np.random.Generator or an int seed; got {_describe(seed_or_rng)}")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def fits_in_memory(what: str, nbytes: float, share: float = 0.5) -> None:
    """Refuse up front (``MemoryError`` with a clear message) what would need more than ``share`` of the
    available memory, rather than being killed by the system halfway through."""
    free = available_memory()
    if free is not None and nbytes > share * free:
        raise MemoryError(f"{what} would need about {nbytes / 2**30:.1f} GiB, more than {share:.0%} of the "
                          f"{free / 2**30:.1f} GiB available; choose smaller sizes")  # fmt: skip


def _shape_str(shape) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
