"""Atomic file writes: a crash at any moment leaves the old file or the new one, never a torn one.

The data go to a temporary file in the target's directory, which is flushed and
fsync'ed, then moved over the target with ``os.replace`` (atomic on POSIX and
Windows); finally the directory is fsync'ed so that the rename itself is durable.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np


def write_npz_atomic(path, arrays: dict, compressed: bool = False) -> Path:
    """Write ``arrays`` with ``np.savez`` (or ``np.savez_compressed``) to ``path``, atomically.

    Parent directories are created. The new file gets the permissions a plain
    ``open(path, "w")`` would give it. Returns ``path`` as a :class:`~pathlib.Path`.
    """
    return _write_atomic(path, lambda f: (np.savez_compressed if compressed else np.savez)(f, **arrays))


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path``, atomically; as :func:`write_npz_atomic`."""
    return _write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_json_atomic(path, obj) -> Path:
    """Write ``obj`` as strict JSON (indented, UTF-8) to ``path``, atomically.

    Strict: NaN and infinities, which JSON cannot hold (``json.dumps`` would write the invalid
    ``NaN``/``Infinity``), are written as ``null``; NumPy scalars and arrays become numbers and lists.
    Use :func:`has_nonfinite` to tell the reader, e.g. with a ``"diverged": true`` field.
    """
    text = json.dumps(_strict(obj), indent=2, allow_nan=False) + "\n"
    return _write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_with_atomic(path, write) -> Path:
    """Call ``write(file)`` on a binary file object and move the result to ``path`` atomically (e.g.
    ``lambda f: figure.savefig(f, format="png")``)."""
    return _write_atomic(path, write)


def has_nonfinite(obj) -> bool:
    """True if ``obj`` (nested dicts, lists, numbers, arrays) holds a NaN or an infinity."""
    if isinstance(obj, dict):
        return any(has_nonfinite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(has_nonfinite(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return obj.dtype.kind in "fc" and not np.all(np.isfinite(obj))
    if isinstance(obj, (float, np.floating)):
        return not math.isfinite(obj)
    return False


def _strict(obj):
    if isinstance(obj, dict):
        return {str(k): _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _strict(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def remove_stale_temporaries(directory) -> list[Path]:
    """Delete the temporary files (``NAME.XXXXXXXX.tmp``) that a process killed while writing left in
    ``directory``; returns what was deleted. Call it only when no other process writes there."""
    removed = []
    for p in Path(directory).glob("*.tmp"):
        stem = p.name[: -len(".tmp")]
        if "." in stem and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def _write_atomic(path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)
    return path


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory):
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
