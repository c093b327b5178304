"""Where in the student's file something happened: the line of an exception, the first NaN.

Both look for the innermost frame whose code lives in the student's file, so a message can say
``03_mlp_backward.py:41 `delta = delta @ W``` even when the error was raised inside NumPy or
inside a tinymeta function the student called.
"""

from __future__ import annotations

import linecache
import os
import sys
import traceback


def _same_file(filename, paths) -> bool:
    return filename in paths or os.path.realpath(filename) in paths


def _paths(path):
    return {str(path), os.path.realpath(str(path))} if path else set()


def _where(filename, lineno) -> str:
    code = linecache.getline(filename, lineno).strip()
    place = f"{os.path.basename(filename)}:{lineno}"
    return f"{place} `{code[:100]}`" if code else place


def exception_info(error, path) -> dict:
    """``{"type", "message", "where"}`` of ``error``; ``where`` is the student's file:line, if any.

    Parameters
    ----------
    error : BaseException
    path : str or Path, the student's file (``None``: the innermost frame of the traceback)
    """
    frames = traceback.extract_tb(error.__traceback__)
    paths = _paths(path)
    mine = [f for f in frames if _same_file(f.filename, paths)] if paths else frames[-1:]
    where = _where(mine[-1].filename, mine[-1].lineno) if mine else ""
    if isinstance(error, SystemExit):
        message = f"sys.exit({error.code!r}) ends the process; return a value instead"
    elif isinstance(error, KeyboardInterrupt):
        message = "KeyboardInterrupt stops the check; return a value instead"
    else:
        message = str(error)[:500]
    if isinstance(error, SyntaxError) and error.lineno:
        where = _where(error.filename or str(path), error.lineno)
    return {"type": type(error).__name__, "message": message, "where": where}


class FloatingPointLog:
    """A ``numpy.seterrcall`` callback that notes the first overflow, invalid value, ... per kind.

    Use as ``with np.errstate(all="call", call=log): ...``; ``log.events`` is then a list of
    ``{"kind", "where"}`` in the order they first happened (``where`` is the student's line).
    """

    def __init__(self, path):
        self.paths = _paths(path)
        self.events = []

    def __call__(self, kind, flag):
        if any(e["kind"] == kind for e in self.events) or len(self.events) >= 8:
            return
        frame = sys._getframe(1)
        while frame is not None and not _same_file(frame.f_code.co_filename, self.paths):
            frame = frame.f_back
        where = _where(frame.f_code.co_filename, frame.f_lineno) if frame is not None else ""
        self.events.append({"kind": kind, "where": where})


def describe_fp(events) -> str:
    """E.g. ``The first floating-point problem in your code: overflow at f.py:12 `np.exp(z)```."""
    located = [e for e in events if e.get("where")]
    if not located:
        return ""
    first, later = located[0], located[1:3]
    more = "; then " + ", ".join(f"{e['kind']} at {e['where']}" for e in later) if later else ""
    return f"The first floating-point problem in your code: {first['kind']} at {first['where']}{more}"
