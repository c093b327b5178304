"""The user cache directory, where tinymeta keeps what it can rebuild: downloaded data, quick trainings.

``$XDG_CACHE_HOME/tinymeta`` if that variable is set (and not empty), else the platform's cache folder:
``~/.cache/tinymeta`` on Linux, ``~/Library/Caches/tinymeta`` on macOS, ``%LOCALAPPDATA%/tinymeta`` on
Windows. Nothing in it is needed to reproduce a result; deleting it only costs the time to rebuild.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def default_cache_dir() -> Path:
    """The tinymeta cache directory (see the module docstring); not created here."""
    if os.environ.get("XDG_CACHE_HOME", "").strip():
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "tinymeta"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "tinymeta"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "tinymeta"
    return Path.home() / ".cache" / "tinymeta"
