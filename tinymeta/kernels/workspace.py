"""Preallocated buffers for the fused kernels, made once per shape and reused.

A kernel call allocates nothing in its loops: every activation, delta, R-operator
buffer, inner-loop iterate and scratch product lives in one flat float64 array per
*slot* (one slot per worker thread), and the kernel takes views into it at the
offsets computed here. Workspaces are cached per thread (so two Python threads never
share one) and keyed by every shape they depend on; the few most recent are kept.

Layout of one slot
------------------
* ``nsets`` *sets* of per-layer buffers (roles ACT, DACT, DELTA, ERR of :mod:`.layers`), each
  for ``rows[t]`` rows: ``off[t, role, l]`` is where the (rows[t], d_{l+1}) buffer starts;
* for each of the first ``paired`` sets t, an R-set ``off[nsets + t]`` for the R-operator at
  that inner step: its R{a_l} lies right before a_l and its R{delta_l} right after delta_l, so
  that [R{a_l}; a_l] and [delta_l; R{delta_l}] are (2n, d) arrays and
  R{a}^T delta + a^T R{delta} is one product; R{z_l} and R{e_l} are shared by all R-sets;
* the named extras of :data:`EXTRAS`: ``extra_off[ITERATES]`` (``ntraj`` x P inner iterates, rows adjacent),
  ``extra_off[GRAD]`` (P, a step's gradient), ``extra_off[HVP_OUT]`` (P, a Hessian-vector product),
  ``extra_off[SCRATCH]`` (scratch for one (n, d) product), ``extra_off[X_BATCH]`` /
  ``extra_off[Y_BATCH]`` (a gathered mini-batch of inputs / mse targets).

Every buffer starts on a 64-byte boundary.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .layers import ACT, DACT, DELTA, ERR

ITERATES, GRAD, HVP_OUT, SCRATCH, X_BATCH, Y_BATCH = range(6)
EXTRAS = ("ITERATES", "GRAD", "HVP_OUT", "SCRATCH", "X_BATCH", "Y_BATCH")
ALIGN = 8  # float64 entries per 64 bytes
MAX_CACHED = 4


class Workspace(NamedTuple):
    """Everything a fused kernel writes, preallocated (shapes in the comments)."""

    sizes: np.ndarray  # (L + 1,) int64, the layer widths
    buf: np.ndarray  # (nslots, size) float64, one row per worker thread
    ibuf: np.ndarray  # (nslots, m) int64, a gathered mini-batch of labels
    set_off: np.ndarray  # (nsets, 4, L) int64, per-set per-role per-layer offsets into a buf row
    extra_off: np.ndarray  # (len(EXTRAS),) int64, offsets of the extras
    param_off: np.ndarray  # (L, 2) int64, start of W_l and of b_l in the flat phi
    task_rows: np.ndarray  # (B, P) float64, one result row per task (g_i, or phi~_i - phi)
    values: np.ndarray  # (B,) float64, one loss per task
    status: np.ndarray  # (B, 2) int64, per task: (code, inner step), see meta.py


def param_offsets(sizes) -> np.ndarray:
    """(L, 2): offset of W_l and of b_l in phi (layout of :mod:`tinymeta.params`)."""
    out, o = [], 0
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        out.append((o, o + d_in * d_out))
        o += (d_in + 1) * d_out
    return np.array(out, dtype=np.int64).reshape(len(sizes) - 1, 2)


def _round(n):
    return -(-n // ALIGN) * ALIGN


def layout(sizes, rows, ntraj, m, paired=0):
    """Offsets for sets of ``rows[t]`` rows (R-sets for the first ``paired``), ``ntraj`` iterates
    and mini-batches of ``m`` rows.

    Returns ``(off, extra_off, size)``: the (nsets + paired, 4, L) and (6,) offset tables and the slot length.
    """
    sizes = [int(s) for s in sizes]
    L, P, S = len(sizes) - 1, sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)), len(rows)
    off = np.zeros((S + paired, 4, L), dtype=np.int64)
    o = 0
    for t, n in enumerate(rows):
        for role in range(4):
            for l in range(L):
                size = n * sizes[l + 1]
                if t < paired and role == ACT:  # [R{a_l}; a_l]
                    off[S + t, ACT, l], off[t, ACT, l] = o, o + size
                    o += _round(2 * size)
                elif t < paired and role == DELTA:  # [delta_l; R{delta_l}]
                    off[t, DELTA, l], off[S + t, DELTA, l] = o, o + size
                    o += _round(2 * size)
                else:
                    off[t, role, l] = o
                    o += _round(size)
    if paired:
        for role in (DACT, ERR):  # R{z_l}, R{e_l}: one copy serves every R-set
            for l in range(L):
                off[S:, role, l] = o
                o += _round(max(rows[:paired]) * sizes[l + 1])
    n_max, d_max = max(list(rows) + [m]), max(sizes)
    lengths = (ntraj * P, P, P, n_max * d_max, m * sizes[0], m * sizes[-1])
    extra_off = np.zeros(len(EXTRAS), dtype=np.int64)
    for j, length in enumerate(lengths):
        extra_off[j] = o
        o += _round(length)
    return off, extra_off, o


def _aligned_empty(shape):
    """An uninitialised float64 array whose data starts on a 64-byte boundary."""
    n = int(np.prod(shape))
    raw = np.empty(n + ALIGN, dtype=np.float64)
    start = (-raw.ctypes.data // 8) % ALIGN
    return raw[start : start + n].reshape(shape)


_local = threading.local()


def get(sizes, rows, ntraj, m, nslots, B, key=None, paired=0):
    """The cached :class:`Workspace` for these shapes (made on first use, per thread).

    ``key``: a cheaper hashable stand-in for all the other arguments, if the caller has one.
    """
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    key = (tuple(sizes), tuple(rows), ntraj, m, nslots, B, paired) if key is None else key
    ws = cache.get(key)
    if ws is not None:
        if len(cache) > 1:
            cache.move_to_end(key)
        return ws
    off, extra_off, size = layout(sizes, rows, ntraj, m, paired)
    P = int(sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)))
    ws = Workspace(np.array(sizes, dtype=np.int64), _aligned_empty((nslots, size)),
                   np.zeros((nslots, max(m, 1)), dtype=np.int64), off, extra_off, param_offsets(sizes),
                   _aligned_empty((B, P)), np.empty(B), np.zeros((B, 2), np.int64))  # fmt: skip
    cache[key] = ws
    while len(cache) > MAX_CACHED:
        cache.popitem(last=False)
    return ws


def for_maml(sizes, K, Kq, k, exact, nslots, B):
    """Workspace of exact MAML (``exact`` true: sets 0..k-1 for the inner steps, k for the query, k+1+i
    the R-set of step i; k iterates) or FOMAML (support and query sets; 2 iterates, alternating)."""
    key = ("maml", sizes, K, Kq, k, exact, nslots, B)
    if exact:
        return get(sizes, [K] * k + [Kq], max(k, 1), 0, nslots, B, key, paired=k)
    return get(sizes, [K, Kq], 2, 0, nslots, B, key)


def for_reptile(sizes, K, m, nslots, B):
    """Workspace of Reptile: one set for max(K, m) rows, 2 iterates, mini-batches of m rows."""
    return get(sizes, [max(K, m)], 2, m, nslots, B, ("reptile", sizes, K, m, nslots, B))


def clear():
    """Drop this thread's cached workspaces (frees their memory)."""
    getattr(_local, "cache", OrderedDict()).clear()
