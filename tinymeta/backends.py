"""Where the per-iteration work runs: the NumPy reference or its Numba twins.

Both backends offer the same functions with the same arguments, results (to rtol 1e-12) and
errors: ``maml``, ``fomaml``, ``reptile`` (SGD inner loop), ``reptile_adam`` (Adam inner loop
whose state runs through the tasks), ``metasgd``, ``anil`` and ``imaml_approx`` (iMAML's practical
variant; rtol 1e-12 where iMAML's system I + H_A/lam is positive definite, see
tests/test_kernels_beyond.py). ``imaml`` (exact iMAML) is the NumPy reference in both: its time goes
to SciPy's solver loops, which a kernel would have to re-implement (measured in
benchmarks/bench_beyond.py).
:func:`batch_functions` returns them for a backend; :func:`default_backend` reads
``TINYMETA_BACKEND``. This module is the only place that chooses; nothing switches backend silently.

Precision (``dtype``): "float64", the reference's arithmetic, on both backends; "float32" on the Numba
backend only, where ``maml``, ``fomaml``, ``reptile`` and ``reptile_adam`` run their kernels compiled
for float32 (arguments and results stay float64; see :mod:`tinymeta.kernels`). A function without a
float32 build raises when called with "float32" rather than computing in float64 unasked.
"""

from __future__ import annotations

import functools
import os

from . import batch
from .anil import anil_batch
from .imaml import imaml_batch
from .imaml_approx import imaml_approx_batch
from .metasgd import metasgd_batch

BACKENDS = ("numpy", "numba")
DTYPES = ("float64", "float32")
ENV_VAR = "TINYMETA_BACKEND"
FLOAT32_KERNELS = ("maml", "fomaml", "reptile", "reptile_adam")
"""The functions with a float32 build (Numba backend)."""


def default_backend():
    """``$TINYMETA_BACKEND`` if set and not empty, else ``"numba"``.

    Raises
    ------
    ValueError
        naming the variable and the accepted values, if it holds anything else.
    """
    name = os.environ.get(ENV_VAR, "").strip() or "numba"
    if name not in BACKENDS:
        raise ValueError(f"environment variable {ENV_VAR}={os.environ[ENV_VAR]!r} is not a backend; "
                         f"expected one of {list(BACKENDS)} (or unset it)")  # fmt: skip
    return name


def check_backend(backend):
    """``backend`` if it is one of :data:`BACKENDS`; ``None`` means :func:`default_backend`."""
    if backend is None:
        return default_backend()
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}; got {backend!r}")
    return backend


def check_dtype(dtype, backend="numba"):
    """``dtype`` if it is one of :data:`DTYPES` and ``backend`` (a checked name) computes in it."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}; got {dtype!r}")
    if dtype == "float32" and backend != "numba":
        raise ValueError(f"dtype='float32' runs the Numba kernels; the NumPy reference (backend={backend!r}) "
                         "computes in float64 only")  # fmt: skip
    return dtype


def _no_float32(name):
    def refuse(*args, **kwargs):
        raise ValueError(f"{name} has no float32 kernel yet (those with one: {', '.join(FLOAT32_KERNELS)}); "
                         "use dtype='float64'")  # fmt: skip

    return refuse


def batch_functions(backend=None, dtype="float64"):
    """``{"maml": fn, "fomaml": fn, "reptile": fn, "reptile_adam": fn, "metasgd": fn, "anil": fn,
    "imaml": fn, "imaml_approx": fn}`` of the chosen backend.

    The signatures are those of :mod:`tinymeta.batch`, :func:`tinymeta.metasgd.metasgd_batch`,
    :func:`tinymeta.anil.anil_batch`, :func:`tinymeta.imaml.imaml_batch` and
    :func:`tinymeta.imaml_approx.imaml_approx_batch`. The Numba kernels are imported only
    here, on first use, so that ``import tinymeta`` never compiles anything. ``dtype``: see the
    module docstring.
    """
    backend = check_backend(backend)
    dtype = check_dtype(dtype, backend)
    if backend == "numpy":
        return {"maml": batch.maml_batch, "fomaml": batch.fomaml_batch, "reptile": batch.reptile_batch,
                "reptile_adam": batch.reptile_adam_batch, "metasgd": metasgd_batch, "anil": anil_batch,
                "imaml": imaml_batch, "imaml_approx": imaml_approx_batch}  # fmt: skip
    from . import kernels

    functions = {"maml": kernels.maml_batch, "fomaml": kernels.fomaml_batch, "reptile": kernels.reptile_batch,
                 "reptile_adam": kernels.reptile_adam_batch, "metasgd": kernels.metasgd_batch,
                 "anil": kernels.anil_batch, "imaml": imaml_batch,
                 "imaml_approx": kernels.imaml_approx_batch}  # fmt: skip
    if dtype == "float64":
        return functions
    return {name: functools.partial(fn, dtype=dtype) if name in FLOAT32_KERNELS else _no_float32(name)
            for name, fn in functions.items()}  # fmt: skip
