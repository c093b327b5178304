"""What every tinymeta command shares: argument types, one-line errors, and the outcome of a run.

A user's mistake -- a bad argument, a bad environment variable, a missing or foreign file, an output
directory that holds another run, sizes that cannot fit in memory -- ends with one line on stderr that
names the problem and the fix, and exit status 2; never a traceback. A run that diverges ends with
status 1 and advice; Ctrl-C or SIGTERM with status 130 after saving the checkpoint. Set
``TINYMETA_DEBUG=1`` to see the traceback of an error reported in one line.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

USAGE_ERROR, DIVERGED, INTERRUPTED = 2, 1, 130


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default after its help, unless the help already says it, there is none, or the
    option is a switch (``--overwrite``, ``--no-progress``: their name says what they change)."""

    def _get_help_string(self, action):
        text = action.help or ""
        switch = action.nargs == 0
        if switch or "default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``prog: error: message (see prog --help)``."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def number(kind, test, expected):
    """An argparse type: ``kind(text)`` that passes ``test``, else an error saying what was ``expected``."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value

    return parse


positive = number(float, lambda v: math.isfinite(v) and v > 0, "a number > 0")
non_negative = number(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
count0 = number(int, lambda v: v >= 0, "an integer >= 0")
count1 = number(int, lambda v: v >= 1, "an integer >= 1")
count2 = number(int, lambda v: v >= 2, "an integer >= 2")


def add_run_options(parser, out_help, resume_help):
    """The options every training command shares: --out, --resume, --overwrite, --no-progress."""
    add = parser.add_argument
    add("--out", default=None, help=out_help)
    add("--resume", action="store_true", help=resume_help)
    add("--overwrite", action="store_true", help="replace the run in OUT")
    add("--no-progress", dest="progress", action="store_false", help="no progress bar")


def add_epsilon_option(parser, default, help):
    """Reptile's outer step ``--epsilon START [END]``; read it with :func:`start_end`."""
    parser.add_argument("--epsilon", type=non_negative, nargs="+", metavar=("START", "END"), default=default,
                        help=help)  # fmt: skip


def start_end(parser, option, values):
    """``(START, END)`` from one or two numbers (END = START when only START is given); None stays None."""
    if values is None:
        return None
    if len(values) > 2:
        parser.error(f"argument {option}: expected START and optionally END; got {len(values)} numbers")
    return values[0], values[-1]


def user_errors():
    """The exception types that are the user's to fix (reported in one line, exit 2)."""
    from ..jobs.rundir import RunDirError
    from ..omniglot import OmniglotError
    from ..training import CheckpointError

    return (
        ValueError,
        TypeError,
        MemoryError,
        FileNotFoundError,
        RunDirError,
        OmniglotError,
        CheckpointError,
    )


def fail(prog, message, status=USAGE_ERROR) -> int:
    """Print ``prog: error: message`` (on one line) to stderr; return ``status``."""
    one_line = " ".join(str(message).split())
    print(f"{prog}: error: {one_line}", file=sys.stderr)
    return status


def run_job(prog, job, run, out, args, report=None) -> int:
    """Run ``run(job, out, ...)`` and turn its outcome into an exit status (module docstring);
    on success, ``report(summary)`` prints what the user should know."""
    from ..inner import DivergenceError

    try:
        summary = run(job, out, resume=args.resume, overwrite=args.overwrite, progress=args.progress)
    except DivergenceError as e:
        return fail(prog, f"{e} The summary is in {out}/summary.json.", DIVERGED)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; the last finished iteration is saved in {out}/checkpoint.npz: "
              "continue with --resume (and the same settings)", file=sys.stderr)  # fmt: skip
        return INTERRUPTED
    except ImportError as e:  # the Numba kernels cannot be loaded here
        if "backend=" not in str(e):
            raise
        return fail(prog, e)
    except user_errors() as e:
        if os.environ.get("TINYMETA_DEBUG"):
            raise  # the full traceback, for reporting a bug
        return fail(prog, e)
    if report is not None:
        report(summary)
    return 0
