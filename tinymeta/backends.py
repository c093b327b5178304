"""Where the per-iteration work runs: the NumPy reference or its Numba twins.

Both backends offer the same functions with the same arguments, results (to rtol 1e-12) and
errors: ``maml``, ``fomaml``, ``reptile`` (SGD inner loop) and ``reptile_adam`` (Adam inner loop
whose state runs through the tasks). ``metasgd``, ``anil``, ``imaml`` (exact iMAML) and
``imaml_approx`` (iMAML's practical variant) are the NumPy reference in both, for now.
:func:`batch_functions` returns them for a backend; :func:`default_backend` reads
``TINYMETA_BACKEND``. This module is the only place that chooses; nothing switches backend silently.
"""

from __future__ import annotations

import os

from . import batch
from .anil import anil_batch
from .imaml import imaml_batch
from .imaml_approx import imaml_approx_batch
from .metasgd import metasgd_batch

BACKENDS = ("numpy", "numba")
ENV_VAR = "TINYMETA_BACKEND"


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


def batch_functions(backend=None):
    """``{"maml": fn, "fomaml": fn, "reptile": fn, "reptile_adam": fn, "metasgd": fn, "anil": fn,
    "imaml": fn, "imaml_approx": fn}`` of the chosen backend.

    The signatures are those of :mod:`tinymeta.batch`, :func:`tinymeta.metasgd.metasgd_batch`,
    :func:`tinymeta.anil.anil_batch`, :func:`tinymeta.imaml.imaml_batch` and
    :func:`tinymeta.imaml_approx.imaml_approx_batch`. The Numba kernels are imported only
    here, on first use, so that ``import tinymeta`` never compiles anything.
    """
    backend = check_backend(backend)
    if backend == "numpy":
        return {"maml": batch.maml_batch, "fomaml": batch.fomaml_batch, "reptile": batch.reptile_batch,
                "reptile_adam": batch.reptile_adam_batch, "metasgd": metasgd_batch, "anil": anil_batch,
                "imaml": imaml_batch, "imaml_approx": imaml_approx_batch}  # fmt: skip
    from . import kernels

    return {"maml": kernels.maml_batch, "fomaml": kernels.fomaml_batch, "reptile": kernels.reptile_batch,
            "reptile_adam": kernels.reptile_adam_batch, "metasgd": metasgd_batch, "anil": anil_batch,
            "imaml": imaml_batch, "imaml_approx": imaml_approx_batch}  # fmt: skip
