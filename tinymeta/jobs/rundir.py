"""A job's output directory: never overwritten by accident, never written by two runs at once.

Rules (the same for every job):

* a new run needs a directory that holds no run yet (no ``summary.json``, checkpoint or figure):
  an existing run is continued with ``resume`` or replaced with ``overwrite``, never silently;
* ``resume`` needs the checkpoint; ``resume`` and ``overwrite`` together are refused;
* one process at a time: a lock file (``.tinymeta.lock``, ``flock``) refuses a second run in the
  same directory while the first is alive; the lock goes with the process however it ends;
* temporary files that a killed run left behind (``*.XXXXXXXX.tmp``) are removed when the next run
  takes the directory;
* ``summary.json`` is strict JSON written atomically, before the figure; the figure is written
  atomically too, and a figure that fails to draw warns and leaves the results in place.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from ..atomic import has_nonfinite, remove_stale_temporaries, write_json_atomic, write_with_atomic

LOCK = ".tinymeta.lock"


class RunDirError(ValueError):
    """The output directory cannot be used as asked (the message says why and what to do)."""


def run_files(out: Path) -> list[Path]:
    """The files of a tinymeta run present in ``out``."""
    names = [
        "summary.json",
        *[p.name for p in out.glob("checkpoint*.npz")],
        *[p.name for p in out.glob("*.png")],
    ]
    return [out / n for n in names if (out / n).is_file()]


def prepare(out, *, resume: bool, overwrite: bool, checkpoint: str = "checkpoint.npz"):
    """Check and take ``out`` for a run; returns ``(Path, lock)`` -- keep ``lock`` open for the whole run
    (close it, or let the process end, to release the directory).

    Raises
    ------
    RunDirError
        With a one-line message naming the directory and the fix.
    """
    out = Path(out).expanduser()
    if resume and overwrite:
        raise RunDirError("--resume continues the run in the output directory and --overwrite replaces it: "
                          "choose one")  # fmt: skip
    if out.exists() and not out.is_dir():
        raise RunDirError(f"output directory {out} is a file; choose a directory (--out)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(
            f"cannot create the output directory {out}: {e.strerror or e}; choose another --out"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise RunDirError(f"output directory {out} is not writable; choose another --out")
    lock = _lock(out)
    try:
        remove_stale_temporaries(out)
        existing = run_files(out)
        if resume and not (out / checkpoint).is_file():
            raise RunDirError(f"--resume: there is no checkpoint at {out / checkpoint} to continue; "
                              "run without --resume to start")  # fmt: skip
        if existing and not (resume or overwrite):
            raise RunDirError(f"{out} already holds a run ({existing[0].name}); continue it with --resume, "
                              "replace it with --overwrite, or choose another --out")  # fmt: skip
        if overwrite:
            for p in existing:
                p.unlink()
    except BaseException:
        lock.close()
        raise
    return out, lock


def _lock(out: Path):
    path = out / LOCK
    try:
        f = open(path, "a+")  # noqa: SIM115 (held open for the whole run)
    except OSError as e:
        raise RunDirError(f"cannot write in the output directory {out}: {e.strerror or e}") from None
    try:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # no flock (Windows): no protection against a second run, as before
        pass
    except OSError as e:
        f.close()
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise RunDirError(
                f"another tinymeta run is using {out}; wait for it or choose another --out"
            ) from None
        raise
    return f


def write_summary(out: Path, summary: dict) -> Path:
    """``out/summary.json``, atomically and as strict JSON; non-finite numbers become null and the
    summary says so with ``"diverged": true`` (it keeps a ``diverged`` the job set itself)."""
    summary = dict(summary)
    summary["diverged"] = bool(summary.get("diverged")) or has_nonfinite(summary)
    return write_json_atomic(out / "summary.json", summary)


def write_figure(path: Path, draw, log=print) -> str | None:
    """Draw with ``draw() -> matplotlib Figure`` and save it as PNG at ``path``, atomically.

    Returns None on success, else the error as text (after warning through ``log``): a figure that
    cannot be drawn never costs the results, which are written before it.
    """
    try:
        fig = draw()
        write_with_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))
    except Exception as e:  # matplotlib raises many types; the results are already saved
        with contextlib.suppress(Exception):
            log(f"warning: the figure {path} could not be written ({type(e).__name__}: {e}); "
                "the results are in summary.json")  # fmt: skip
        return f"{type(e).__name__}: {e}"
    return None
