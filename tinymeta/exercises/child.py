"""The check process: import one student file, run its function on the cases, report the outputs.

``python -m tinymeta.exercises.child IN OUT``: ``IN`` is written by the grading process
(:mod:`tinymeta.exercises.isolate`) and holds the student's path, the function's name, the
limits and each case's inputs; ``OUT`` receives one JSON line per event (``start``, ``load``,
``case``, ``done``), flushed at once, so that the grader knows how far a run got before a
time-out or a crash. Nothing is compared here: no right answer ever enters this process.
"""

from __future__ import annotations

import pickle
import sys

try:
    import resource
except ImportError:  # not on Windows: only the grader's wall-clock time limit applies there
    resource = None

from . import wire
from .harness import call_case
from .loader import load_function
from .trace import exception_info


def _vm_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def set_limits(memory_mb, cpu_seconds, file_mb=64):
    """Memory (address space beyond what is in use now), CPU time, file size; no core dumps."""
    if resource is None:
        return
    limits = [
        (resource.RLIMIT_CPU, int(cpu_seconds)),
        (resource.RLIMIT_FSIZE, file_mb * 2**20),
        (resource.RLIMIT_CORE, 0),
    ]
    if memory_mb and _vm_bytes():
        limits.append((resource.RLIMIT_AS, _vm_bytes() + int(memory_mb) * 2**20))
    for what, soft in limits:
        try:
            hard = resource.getrlimit(what)[1]
            resource.setrlimit(what, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
        except (ValueError, OSError):  # a platform without this limit: the wall-clock time-out remains
            pass


def main(argv) -> int:
    in_path, out_path = argv
    with open(in_path, "rb") as f:
        job = pickle.load(f)  # written by the grading process, before any student code runs
    out = open(out_path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 (kept open for the run)

    def emit(record):
        out.write(wire.dumps(record) + "\n")
        out.flush()

    set_limits(job["memory_mb"], job["cpu_seconds"])
    emit({"event": "start"})
    path = job["path"]
    try:
        fn = load_function(path, job["function"])
    except BaseException as e:  # a syntax error, sys.exit at import, a missing function, ...
        emit({"event": "load", "error": exception_info(e, path), "stub": isinstance(e, NotImplementedError)})
        return 0
    emit({"event": "load", "error": None})
    for index, (args, probes) in enumerate(job["cases"]):
        res = call_case(fn, args, path=path, probes=probes, catch_interrupt=True)
        res["out"] = wire.encode(res["out"])
        emit({"event": "case", "index": index, **res})
        if res["status"] == "not attempted" and index == 0:
            break  # an untouched stub: every case would say the same
    emit({"event": "done"})
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
