"""Arguments of the kernel wrappers: accepted cheaply on the common path, converted otherwise.

:func:`fast` accepts a :class:`~tinymeta.tasks.TaskBatch` of real arrays of the right shapes
after a few attribute comparisons and converts them to what the kernels take (the kernel's
float dtype -- float64, or float32 for the single-precision build --, int64 labels, C order; a no-op
when they already are): every other dtype or layout would compile the kernels anew. Finiteness and
label ranges are checked inside the kernel. Anything else goes through the NumPy reference's own validator
(:func:`tinymeta.batch.check_maml_batch` / :func:`~tinymeta.batch.check_reptile_batch`, called by the
wrappers), so the same exception with the same message is raised; valid but unusual inputs
(float32, lists, non-contiguous views) are then converted by :func:`convert` and accepted.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import validate
from ..losses import LOSSES
from ..mlp import MLP
from ..tasks import TaskBatch

F64, F32, I64 = np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.int64)
DTYPES = {"float64": F64, "float32": F32}
"""The float dtypes the kernels are built for, by name."""
NO_F3 = {dt: np.zeros((1, 1, 1), dt) for dt in (F64, F32)}  # an unused float target, per dtype
NO_I2, NO_IDX = np.zeros((1, 1), np.int64), np.zeros((1, 1, 1), np.int64)


def dtype_of(name):
    """The NumPy dtype of a kernel dtype name ("float64" or "float32"); ValueError otherwise."""
    dt = DTYPES.get(name) if isinstance(name, str) else None
    if dt is None:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}; got {name!r}")
    return dt


class Prepared(NamedTuple):
    """Kernel-ready arguments: C arrays of the kernel's dtype; targets split into float (mse) and int
    (labels); ``alpha`` a scalar of that dtype."""

    phi: np.ndarray  # (P,)
    xs: np.ndarray  # (B, K, d_0)
    ysf: np.ndarray  # (B, K, d_L) for mse, else a dummy
    ysi: np.ndarray  # (B, K) for cross-entropy, else a dummy
    xq: np.ndarray  # (B, K_query, d_0), or a dummy for Reptile
    yqf: np.ndarray
    yqi: np.ndarray
    alpha: float
    k: int


def check_net(net):
    """``net`` if it is a :class:`tinymeta.MLP` (else the reference's TypeError)."""
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a tinymeta.MLP; got {type(net).__name__}")
    return net


def _ok(a, kinds, shape):
    return type(a) is np.ndarray and a.shape == shape and a.dtype.kind in kinds


def _c(a, dtype):
    return a if a.dtype is dtype and a.flags.c_contiguous else np.ascontiguousarray(a, dtype=dtype)


def fast(net, phi, batch, alpha, k, loss, with_query, dtype=F64):
    """``Prepared`` if every argument has the right type and shape and the scalars are valid, else None.

    Real-valued arrays (float or int; not bool) of the right shapes are converted to
    ``dtype`` in C order here -- a no-op when they already are -- and labels to int64; their
    finiteness and label ranges are checked in the kernel. A few microseconds: this runs
    once per meta-iteration (plus the conversion, if any).
    """
    if not (isinstance(net, MLP) and type(loss) is str and loss in LOSSES):
        return None
    if not (type(alpha) is float and 0.0 < alpha < math.inf) or not (type(k) is int and k >= 0):
        try:
            alpha, k = validate.positive("alpha", alpha), validate.count("k", k)
        except (TypeError, ValueError):
            return None
    if not isinstance(batch, TaskBatch):
        return None
    xs, ys = batch.xs, batch.ys
    xq, yq = (batch.xq, batch.yq) if with_query else (None, None)
    if type(xs) is not np.ndarray or xs.ndim != 3 or xs.shape[0] == 0 or xs.shape[1] == 0:
        return None
    B, K, d0, dL = xs.shape[0], xs.shape[1], net.sizes[0], net.sizes[-1]
    ce = loss == "cross_entropy"
    if not (_ok(phi, "fiu", (net.num_params,)) and _ok(xs, "fiu", (B, K, d0))):
        return None
    if not (_ok(ys, "iu", (B, K)) if ce else _ok(ys, "fiu", (B, K, dL))):
        return None
    if with_query:
        if type(xq) is not np.ndarray or xq.ndim != 3 or xq.shape[1] == 0:
            return None
        Kq = xq.shape[1]
        if not (
            _ok(xq, "fiu", (B, Kq, d0)) and (_ok(yq, "iu", (B, Kq)) if ce else _ok(yq, "fiu", (B, Kq, dL)))
        ):
            return None
        xq, yq = _c(xq, dtype), _c(yq, I64 if ce else dtype)
    arrays = [_c(xs, dtype), _c(ys, I64 if ce else dtype), xq, yq]
    return _split(_c(phi, dtype), arrays, ce, alpha, k, with_query, dtype)


def _split(phi, arrays, ce, alpha, k, with_query, dtype):
    xs, ys = arrays[0], arrays[1]
    no_f3, alpha = NO_F3[dtype], dtype.type(alpha)
    xq, yq = (arrays[2], arrays[3]) if with_query else (no_f3, None)
    if ce:
        return Prepared(phi, xs, no_f3, ys, xq, no_f3, NO_I2 if yq is None else yq, alpha, k)
    return Prepared(phi, xs, ys, NO_I2, xq, no_f3 if yq is None else yq, NO_I2, alpha, k)


def convert(net, phi, alpha, k, batch, loss, with_query=True, dtype=F64):
    """``Prepared`` arguments from ones the reference's validator has accepted (``phi``, ``alpha``,
    ``k`` as it returned them): ``dtype`` / int64 C arrays."""
    ce = loss == "cross_entropy"
    names = ("xs", "ys", "xq", "yq") if with_query else ("xs", "ys")
    try:
        arrays = [np.ascontiguousarray(getattr(batch, f), dtype=(I64 if ce and j % 2 else dtype))
                  for j, f in enumerate(names)]  # fmt: skip
    except ValueError:
        raise ValueError("the tasks of a batch must all have the same numbers of points") from None
    return _split(np.ascontiguousarray(phi, dtype=dtype), arrays, ce, alpha, k, with_query, dtype)
