"""Input checks of the kernel wrappers: cheap on the common path, the reference's errors otherwise.

The fast path accepts real arrays of the right shapes after a few attribute comparisons
and converts them to what the kernels take (float64, int64 labels, C order; a no-op when
they already are); finiteness and label ranges are checked inside the kernel. Anything else --
or a problem the kernel reports -- goes through :func:`reference_checks`, which validates
task by task in the order of the NumPy reference (:mod:`tinymeta.batch`) with the same
functions, so the same exception with the same message is raised; valid but unusual
inputs (float32, lists, non-contiguous views) are converted and accepted.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import validate
from ..inner import DivergenceError
from ..losses import LOSSES
from ..mlp import MLP
from ..tasks import Task, check_task
from .meta import DIVERGED

F64, I64 = np.dtype(np.float64), np.dtype(np.int64)
NO_F3, NO_I2, NO_IDX = np.zeros((1, 1, 1)), np.zeros((1, 1), np.int64), np.zeros((1, 1, 1), np.int64)


class Prepared(NamedTuple):
    """Kernel-ready arguments: float64 C arrays; targets split into float (mse) and int (labels)."""

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
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a tinymeta.MLP; got {type(net).__name__}")


def _fields(batch, query):
    names = ("xs", "ys", "xq", "yq") if query else ("xs", "ys")
    if not all(hasattr(batch, f) for f in names):
        raise TypeError(
            f"batch must be a tinymeta.batch.TaskBatch (fields {', '.join(names)}); "
            f"got {type(batch).__name__}"
        )
    return [getattr(batch, f) for f in names]


def _ok(a, kinds, shape):
    return type(a) is np.ndarray and a.shape == shape and a.dtype.kind in kinds


def _c(a, dtype):
    return a if a.dtype is dtype and a.flags.c_contiguous else np.ascontiguousarray(a, dtype=dtype)


def fast(net, phi, batch, alpha, k, loss, query):
    """``Prepared`` if every argument has the right type and shape and the scalars are valid, else None.

    Real-valued arrays (float or int; not bool) of the right shapes are converted to
    float64 C order here -- a no-op when they already are -- and labels to int64; their
    finiteness and label ranges are checked in the kernel. A few microseconds: this runs
    once per meta-iteration.
    """
    if not (isinstance(net, MLP) and type(loss) is str and loss in LOSSES):
        return None
    if not (type(alpha) is float and 0.0 < alpha < math.inf) or not (type(k) is int and k >= 0):
        try:
            alpha, k = validate.positive("alpha", alpha), validate.count("k", k)
        except (TypeError, ValueError):
            return None
    try:
        xs, ys = batch.xs, batch.ys
        xq, yq = (batch.xq, batch.yq) if query else (None, None)
    except AttributeError:
        return None
    if type(xs) is not np.ndarray or xs.ndim != 3 or xs.shape[0] == 0 or xs.shape[1] == 0:
        return None
    B, K, d0, dL = xs.shape[0], xs.shape[1], net.sizes[0], net.sizes[-1]
    ce = loss == "cross_entropy"
    if not (_ok(phi, "fiu", (net.num_params,)) and _ok(xs, "fiu", (B, K, d0))):
        return None
    if not (_ok(ys, "iu", (B, K)) if ce else _ok(ys, "fiu", (B, K, dL))):
        return None
    if query:
        if type(xq) is not np.ndarray or xq.ndim != 3 or xq.shape[1] == 0:
            return None
        Kq = xq.shape[1]
        if not (
            _ok(xq, "fiu", (B, Kq, d0)) and (_ok(yq, "iu", (B, Kq)) if ce else _ok(yq, "fiu", (B, Kq, dL)))
        ):
            return None
        xq, yq = _c(xq, F64), _c(yq, I64 if ce else F64)
    return _split(_c(phi, F64), [_c(xs, F64), _c(ys, I64 if ce else F64), xq, yq], ce, alpha, k, query)


def _split(phi, arrays, ce, alpha, k, query):
    xs, ys = arrays[0], arrays[1]
    xq, yq = (arrays[2], arrays[3]) if query else (NO_F3, None)
    if ce:
        return Prepared(phi, xs, NO_F3, ys, xq, NO_F3, NO_I2 if yq is None else yq, alpha, k)
    return Prepared(phi, xs, ys, NO_I2, xq, NO_F3 if yq is None else yq, NO_I2, alpha, k)


def reference_checks(net, phi, batch, alpha, k, loss, query, status=None, values=None):
    """Validate in the order of the NumPy reference and raise its error; returns ``Prepared`` if valid.

    ``query``: MAML/FOMAML order (per task: the task's data, then -- at task 0 -- phi, alpha,
    k, then the task's inner loop, whose divergence the kernel reported in ``status``/``values``);
    otherwise Reptile's (phi, alpha, k, then each support set).
    """
    check_net(net)
    arrays = _fields(batch, query)
    if not query:
        phi, alpha, k = net.check_phi(phi), validate.positive("alpha", alpha), validate.count("k", k)
    validate.one_of("loss", loss, LOSSES)
    B = _num_tasks(arrays)
    for i in range(B):
        if query:
            check_task(net, Task(*(a[i] for a in arrays)), loss)
            if i == 0:
                phi, alpha, k = net.check_phi(phi), validate.positive("alpha", alpha), validate.count("k", k)
        else:
            net.check_data(arrays[0][i], arrays[1][i], loss, names=("x_support", "y_support"))
        if status is not None and status[i, 0] == DIVERGED:
            raise DivergenceError(
                f"inner step {int(status[i, 1])}: the support loss is not finite ({float(values[i])}); "
                f"alpha={alpha} is too large for this network/task, try a smaller alpha"
            )
    if status is not None:
        raise ValueError("the kernel reported invalid input that the reference checks accept")  # a bug
    ce = loss == "cross_entropy"
    try:
        arrays = [np.ascontiguousarray(a, dtype=(I64 if ce and j % 2 else F64)) for j, a in enumerate(arrays)]
    except ValueError:
        raise ValueError("the tasks of a batch must all have the same numbers of points") from None
    return _split(np.ascontiguousarray(phi), arrays, ce, alpha, k, query)


def _num_tasks(arrays):
    names = ("xs", "ys", "xq", "yq")
    lengths = []
    for name, a in zip(names, arrays, strict=False):
        try:
            lengths.append(len(a))
        except TypeError:
            raise TypeError(
                f"batch.{name} must be an array with one entry per task; got {type(a).__name__}"
            ) from None
    if lengths[0] == 0:
        raise ValueError("batch has no tasks (batch.xs is empty); a meta-batch needs at least one task")
    for name, n in zip(names, lengths, strict=False):
        if n != lengths[0]:
            raise ValueError(f"batch.{name} holds {n} tasks but batch.xs holds {lengths[0]}")
    return lengths[0]


def indices(inner_indices, B, k, K):
    """Validate Reptile's (B, k, m) mini-batch indices: integers in [0, K). Returns int64 C array."""
    idx = np.asarray(inner_indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"inner_indices must hold integer row indices; got dtype {idx.dtype}")
    if idx.ndim != 3 or idx.shape[:2] != (B, k) or idx.shape[2] == 0:
        raise ValueError(f"inner_indices has shape {idx.shape}; expected ({B}, {k}, m) with m >= 1 "
                         f"(tasks, inner steps, mini-batch size)")  # fmt: skip
    lo, hi = idx.min(), idx.max()
    if lo < 0 or hi >= K:
        raise ValueError(
            f"inner_indices has values in [{lo}, {hi}]; expected rows of the support set, in [0, {K})"
        )
    return np.ascontiguousarray(idx, dtype=np.int64)
