"""Preallocated buffers for the fused kernels, made once per shape and reused.

A kernel call allocates nothing in its loops: every activation, delta, R-operator
buffer, inner-loop iterate and scratch product lives in one flat array per *slot* (one
slot per worker thread), of the dtype the kernel computes in (float64; float32 for the
single-precision build), and the kernel takes views into it at the offsets computed
here. Workspaces are cached per thread (so two Python threads never share one) and keyed
by every shape and the dtype they depend on; the few most recent are kept.

Layout of one slot
------------------
* ``nsets`` *sets* of per-layer buffers (roles ACT, DACT, DELTA, ERR of :mod:`.layers`; with batch
  norm also ZHAT, DTILDE and the (d_{l+1},) INV_STD of each hidden layer), each for ``rows[t]``
  rows: ``off[t, role, l]`` is where the (rows[t], d_{l+1}) buffer starts;
* for each of the first ``paired`` sets t, an R-set ``off[nsets + t]`` for the R-operator at
  that inner step: its R{a_l} lies right before a_l and its R{delta_l} right after delta_l, so
  that [R{a_l}; a_l] and [delta_l; R{delta_l}] are (2n, d) arrays and
  R{a}^T delta + a^T R{delta} is one product; R{z_l} and R{e_l} (with batch norm also R{zhat_l}
  and R{r_l}) are shared by all R-sets;
* the named extras of :data:`EXTRAS`: ``extra_off[ITERATES]`` (``ntraj`` x P inner iterates, rows adjacent),
  ``extra_off[GRAD]`` (P, a step's gradient), ``extra_off[HVP_OUT]`` (P, a Hessian-vector product),
  ``extra_off[SCRATCH]`` (scratch for one (n, d) product), ``extra_off[X_BATCH]`` /
  ``extra_off[Y_BATCH]`` (a gathered mini-batch of inputs / mse targets), ``extra_off[COLS]``
  (batch norm: 4 max(d_l) column means).

Every buffer starts on a 64-byte boundary. Without batch norm the batch-norm buffers have
length 0 and the float64 layout is the one the kernels had before batch norm.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .layers import ACT, DACT, DELTA, ERR, INV_STD, NROLES, ZHAT

ITERATES, GRAD, HVP_OUT, SCRATCH, X_BATCH, Y_BATCH, COLS = range(7)
EXTRAS = ("ITERATES", "GRAD", "HVP_OUT", "SCRATCH", "X_BATCH", "Y_BATCH", "COLS")
ALIGN_BYTES = 64
MAX_CACHED = 4


class Workspace(NamedTuple):
    """Everything a fused kernel writes, preallocated (shapes in the comments)."""

    sizes: np.ndarray  # (L + 1,) int64, the layer widths
    buf: np.ndarray  # (nslots, size) float64 or float32, one row per worker thread
    ibuf: np.ndarray  # (nslots, m) int64, a gathered mini-batch of labels
    set_off: np.ndarray  # (nsets, NROLES, L) int64, per-set per-role per-layer offsets into a buf row
    extra_off: np.ndarray  # (len(EXTRAS),) int64, offsets of the extras
    param_off: np.ndarray  # (L, 3) int64, start of W_l, b_l and beta_l (-1: none) in the flat phi
    task_rows: np.ndarray  # (B, P) as buf, one result row per task (g_i, or phi~_i - phi)
    values: np.ndarray  # (B,) float64, one loss per task
    status: np.ndarray  # (B, 2) int64, per task: (code, inner step), see meta.py


def param_offsets(sizes, bn=False) -> np.ndarray:
    """(L, 3): where W_l, b_l and the batch-norm shift beta_l start in phi (layout of
    :mod:`tinymeta.params`: the hidden layers' shifts after every (W_l, b_l)); -1: no shift."""
    out, o = [], 0
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        out.append([o, o + d_in * d_out, -1])
        o += (d_in + 1) * d_out
    if bn:
        for row, d_out in zip(out[:-1], sizes[1:-1], strict=True):
            row[2], o = o, o + d_out
    return np.array(out, dtype=np.int64).reshape(len(sizes) - 1, 3)


def num_params(sizes, bn=False) -> int:
    """P: every (W_l, b_l), and with batch norm the hidden layers' shifts."""
    pairs = zip(sizes[:-1], sizes[1:], strict=True)
    return int(sum((a + 1) * b for a, b in pairs) + (sum(sizes[1:-1]) if bn else 0))


def _size(role, n, d, hidden, bn):
    """Entries of a set's ``role`` buffer for n rows of width d (0: a batch-norm role without it)."""
    if role == INV_STD:
        return d if bn and hidden else 0
    if role >= ZHAT:  # ZHAT, DTILDE
        return n * d if bn and hidden else 0
    return n * d


def layout(sizes, rows, ntraj, m, paired=0, bn=False, align=8):
    """Offsets for sets of ``rows[t]`` rows (R-sets for the first ``paired``), ``ntraj`` iterates
    and mini-batches of ``m`` rows; with ``bn`` the batch-norm buffers. ``align``: entries per 64 bytes.

    Returns ``(off, extra_off, size)``: the (nsets + paired, NROLES, L) and (len(EXTRAS),) offset
    tables and the slot length, in entries.
    """
    sizes = [int(s) for s in sizes]
    L, P, S = len(sizes) - 1, num_params(sizes, bn), len(rows)

    def rounded(n):
        return -(-n // align) * align

    off = np.zeros((S + paired, NROLES, L), dtype=np.int64)
    o = 0
    for t, n in enumerate(rows):
        for role in range(NROLES):
            for l in range(L):
                size = _size(role, n, sizes[l + 1], l < L - 1, bn)
                if t < paired and role == ACT:  # [R{a_l}; a_l]
                    off[S + t, ACT, l], off[t, ACT, l] = o, o + size
                    o += rounded(2 * size)
                elif t < paired and role == DELTA:  # [delta_l; R{delta_l}]
                    off[t, DELTA, l], off[S + t, DELTA, l] = o, o + size
                    o += rounded(2 * size)
                else:  # R{dtilde} needs no buffer of its own: it is formed in R{delta}'s
                    off[t, role, l] = o
                    o += rounded(size)
    if paired:
        for role in (DACT, ERR, ZHAT, INV_STD):  # R{z_l}, R{e_l}, R{zhat_l}, R{r_l}: shared by the R-sets
            for l in range(L):
                off[S:, role, l] = o
                o += rounded(_size(role, max(rows[:paired]), sizes[l + 1], l < L - 1, bn))
    n_max, d_max = max(list(rows) + [m]), max(sizes)
    lengths = (ntraj * P, P, P, n_max * d_max, m * sizes[0], m * sizes[-1], 4 * d_max if bn else 0)
    extra_off = np.zeros(len(EXTRAS), dtype=np.int64)
    for j, length in enumerate(lengths):
        extra_off[j] = o
        o += rounded(length)
    return off, extra_off, o


def _aligned_empty(shape, dtype):
    """An uninitialised array of ``dtype`` whose data starts on a 64-byte boundary."""
    n, item = int(np.prod(shape)), np.dtype(dtype).itemsize
    raw = np.empty(n + ALIGN_BYTES // item, dtype=dtype)
    start = (-raw.ctypes.data % ALIGN_BYTES) // item
    return raw[start : start + n].reshape(shape)


_local = threading.local()


def get(sizes, rows, ntraj, m, nslots, B, key=None, paired=0, bn=False, dtype=np.float64):
    """The cached :class:`Workspace` for these shapes and dtype (made on first use, per thread).

    ``key``: a cheaper hashable stand-in for all the other arguments, if the caller has one.
    """
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    dtype = np.dtype(dtype)
    key = (tuple(sizes), tuple(rows), ntraj, m, nslots, B, paired, bn, dtype) if key is None else key
    ws = cache.get(key)
    if ws is not None:
        if len(cache) > 1:
            cache.move_to_end(key)
        return ws
    off, extra_off, size = layout(sizes, rows, ntraj, m, paired, bn, ALIGN_BYTES // dtype.itemsize)
    ws = Workspace(np.array(sizes, dtype=np.int64), _aligned_empty((nslots, size), dtype),
                   np.zeros((nslots, max(m, 1)), dtype=np.int64), off, extra_off, param_offsets(sizes, bn),
                   _aligned_empty((B, num_params(sizes, bn)), dtype), np.empty(B),
                   np.zeros((B, 2), np.int64))  # fmt: skip
    cache[key] = ws
    while len(cache) > MAX_CACHED:
        cache.popitem(last=False)
    return ws


def for_maml(sizes, K, Kq, k, exact, nslots, B, bn=False, dtype=np.float64):
    """Workspace of exact MAML (``exact`` true: sets 0..k-1 for the inner steps, k for the query, k+1+i
    the R-set of step i; k iterates) or FOMAML (support and query sets; 2 iterates, alternating)."""
    key = ("maml", sizes, K, Kq, k, exact, nslots, B, bn, dtype)
    if exact:
        return get(sizes, [K] * k + [Kq], max(k, 1), 0, nslots, B, key, paired=k, bn=bn, dtype=dtype)
    return get(sizes, [K, Kq], 2, 0, nslots, B, key, bn=bn, dtype=dtype)


def for_reptile(sizes, K, m, nslots, B, bn=False, dtype=np.float64):
    """Workspace of Reptile: one set for max(K, m) rows, 2 iterates, mini-batches of m rows."""
    key = ("reptile", sizes, K, m, nslots, B, bn, dtype)
    return get(sizes, [max(K, m)], 2, m, nslots, B, key, bn=bn, dtype=dtype)


def clear():
    """Drop this thread's cached workspaces (frees their memory)."""
    getattr(_local, "cache", OrderedDict()).clear()
