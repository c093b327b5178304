"""Check one student file in a process of its own, with a time limit and a memory limit.

The grading process draws the cases, starts ``python -m tinymeta.exercises.child`` with the
inputs, waits at most ``timeout`` seconds, reads back the outputs (JSON, never pickle) and
judges them with answers it computes itself. Whatever the student's code does -- ``sys.exit``,
``os._exit``, ``KeyboardInterrupt``, an endless loop, a crash, patching tinymeta or the
checker -- happens in the check process and ends as a *failed* check that says why.

This is not a security sandbox: the student's code runs with the grader's user rights and
can read any file that user can read (the hidden seed is not passed to it, but nothing
prevents it from looking around). Grade code you do not trust in a container or a throwaway
account.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from . import wire
from .checks import LOST, grade_results
from .harness import NOT_ATTEMPTED, RAISED
from .report import FAILED, Report
from .report import NOT_ATTEMPTED as REPORT_NOT_ATTEMPTED

DEFAULT_TIMEOUT = 30.0
"""Seconds per file. A correct answer to any exercise takes well under 2 s (the check process
itself starts in ~0.2 s); 30 s leaves room for a slow machine and still reports a hang fast."""

DEFAULT_MEMORY_MB = 1024
"""Address space a check process may add to what Python and NumPy use at start."""

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def _child_env():
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TINYMETA_GRADER", "TINYMETA_INSTRUCTOR"))
    }
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("PYTHONSTARTUP", None)
    return env


def _tail(path, lines=6) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])[-600:]


def _read_events(path):
    events = []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return events
    for line in text.splitlines():
        try:
            events.append(wire.loads(line))
        except ValueError:
            break  # a torn last line (killed mid-write) or something that is not ours
    return events


def _signal_name(code) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _ending(proc, timed_out, timeout, memory_mb, stderr):
    """Why the check process stopped without reporting every case."""
    if timed_out:
        return f"did not finish within the time limit of {timeout:g} s: an endless loop, or far too much work"
    code = proc.returncode
    if code is not None and code < 0:
        name = _signal_name(code)
        why = {
            "SIGXCPU": "the CPU-time limit",
            "SIGKILL": "killed (memory?)",
            "SIGXFSZ": "wrote too much output",
        }
        msg = f"the check process crashed ({name}{': ' + why[name] if name in why else ''})"
    else:
        msg = (
            f"the check process ended (exit code {code}) before reporting: os._exit(), or exiting "
            "while the file is imported"
        )
    tail = stderr.strip()
    if "MemoryError" in tail:
        msg += f" -- the memory limit is {memory_mb} MB"
    return f"{msg}; its last output: {tail.splitlines()[-1][:200]}" if tail else msg


def _kill(proc):
    """End the check process and anything it started (its process group, where there is one)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass


def run_file(exercise, path, *, seed=None, timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB) -> Report:
    """Check the function of ``exercise`` in the file ``path`` in a check process of its own.

    Parameters
    ----------
    exercise : Exercise
    path : str or Path, the student's file
    seed : None for the public cases, or the instructor's secret for hidden ones
    timeout : float > 0, seconds for the whole file (all cases)
    memory_mb : int, the memory the check process may allocate

    Returns
    -------
    Report; never raises for anything the student's code does.
    """
    ex, path = exercise, Path(path)
    if not path.is_file():
        return Report(ex.id, ex.title, FAILED, message=f"no such file: {path}", expect=ex.expect)
    cases, kind = ex.make_cases(seed)
    with tempfile.TemporaryDirectory(prefix="tinymeta-check-") as tmp:
        job = {
            "path": str(path.resolve()),
            "function": ex.function,
            "memory_mb": memory_mb,
            "cpu_seconds": int(timeout) + 5,
            "cases": [(c.args, c.probes) for c in cases],
        }
        in_path, out_path = Path(tmp, "in.pkl"), Path(tmp, "out.jsonl")
        with open(in_path, "wb") as f:
            pickle.dump(job, f)
        work = Path(tmp, "work")
        work.mkdir()
        with open(Path(tmp, "stdout"), "wb") as so, open(Path(tmp, "stderr"), "wb") as se:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tinymeta.exercises.child", str(in_path), str(out_path)],
                cwd=work,
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=so,
                stderr=se,
                start_new_session=True,
            )
            timed_out = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill(proc)
                proc.wait()
        events = _read_events(out_path)
        stderr = _tail(Path(tmp, "stderr"))
    return _report(ex, cases, kind, events, proc, timed_out, timeout, memory_mb, stderr)


def _report(ex, cases, kind, events, proc, timed_out, timeout, memory_mb, stderr):
    load = next((e for e in events if e.get("event") == "load"), None)
    if load is not None and load.get("error"):
        err = load["error"]
        status = REPORT_NOT_ATTEMPTED if load.get("stub") else FAILED
        where = f" at {err['where']}" if err.get("where") else ""
        msg = (
            f"{err['message']}"
            if load.get("stub")
            else f"could not load the file: {err['type']}: {err['message']}{where}"
        )
        return Report(ex.id, ex.title, status, message=msg, expect=ex.expect, cases=kind)
    results = {}
    for e in events:
        if e.get("event") == "case" and isinstance(e.get("index"), int) and 0 <= e["index"] < len(cases):
            try:
                e["out"] = wire.decode(e.get("out"))
            except (ValueError, KeyError, TypeError) as err:
                e.update(
                    status=RAISED,
                    error={"type": "BadReport", "message": f"unreadable output ({err})", "where": ""},
                )
            results[e["index"]] = e
    finished = any(e.get("event") == "done" for e in events)
    message = "" if finished else _ending(proc, timed_out, timeout, memory_mb, stderr)
    if results.get(0, {}).get("status") == NOT_ATTEMPTED:
        results = {i: results[0] for i in range(len(cases))}
    filled = []
    for i in range(len(cases)):
        if i in results:
            filled.append(results[i])
            continue
        during = "during this case" if i == len(results) else "(not run)"
        filled.append({"status": LOST, "error": {"message": f"no result {during}: {message or 'no report'}"}})
    return grade_results(ex, cases, filled, kind, message)
