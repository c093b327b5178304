"""Atomic file writes: a crash at any moment leaves the old file or the new one, never a torn one.

The data go to a temporary file in the target's directory, which is flushed and
fsync'ed, then moved over the target with ``os.replace`` (atomic on POSIX and
Windows); finally the directory is fsync'ed so that the rename itself is durable.
"""

from __future__ import annotations

import contextlib
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
