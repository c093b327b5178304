"""The ``tinymeta`` command: ``tinymeta sine``, ``tinymeta exercises``, ``tinymeta omniglot``.

``tinymeta sine`` meta-trains on sine waves and writes summary.json, sine.png and
checkpoints (see :mod:`tinymeta.sine_job`). ``exercises`` and ``omniglot`` hand their
arguments to ``tinymeta.exercises.cli.main`` / ``tinymeta.omniglot.cli.main``, imported
only when used. Bad arguments exit with status 2 and a one-line message; a diverging
run exits with status 1 and says which step size to lower.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys

from .train_config import ALGOS

DEFAULT_ITERATIONS = 3000
"""Default ``tinymeta sine --iterations`` (the reference implementations report their MSE at 3,000 too)."""

LAZY_COMMANDS = {
    "exercises": ("tinymeta.exercises.cli", "check your solutions to the tutorial exercises"),
    "omniglot": ("tinymeta.omniglot.cli", "few-shot Omniglot classification"),
    "omniglot-download": ("tinymeta.omniglot.download_cli", "download and convert the Omniglot images"),
}


def _number(kind, test, expected):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value

    return parse


_positive = _number(float, lambda v: math.isfinite(v) and v > 0, "a number > 0")
_non_negative = _number(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
_count0 = _number(int, lambda v: v >= 0, "an integer >= 0")
_count1 = _number(int, lambda v: v >= 1, "an integer >= 1")
_count2 = _number(int, lambda v: v >= 2, "an integer >= 2")


def build_parser():
    """The argument parser; returns ``(parser, sine_subparser)``."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="tinymeta", description="Small, exact meta-learning in NumPy.")
    parser.add_argument("--version", action="version", version=f"tinymeta {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sine = sub.add_parser(
        "sine",
        help="meta-train on sine-wave regression and plot few-shot adaptation",
        description="Meta-train a 1-40-40-1 ReLU network on sine waves (Finn et al. 2017, Sec. 5.1), "
        "evaluate on held-out tasks, write OUT/summary.json, OUT/sine.png and OUT/checkpoint.npz.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    a = sine.add_argument
    a("--algo", choices=ALGOS, default="maml", help="meta-learning algorithm")
    a("--iterations", type=_count1, default=DEFAULT_ITERATIONS, help="outer iterations")
    a("--seed", type=_count0, default=0, help="seeds the initialisation and the task stream")
    a("--out", default=None, help="output directory (default: runs/sine-ALGO)")
    a(
        "--k",
        type=_count0,
        default=None,
        help="inner steps (default: 1 for maml/fomaml, 5 for reptile, 0 joint)",
    )
    a("--alpha", type=_positive, default=0.01, help="inner SGD step size (training and evaluation)")
    a("--meta-batch", type=_count1, default=25, help="tasks per outer iteration")
    a("--outer-lr", type=_positive, default=None, help="outer Adam learning rate (default 1e-3; not reptile)")
    a("--epsilon", type=_non_negative, nargs="+", metavar=("START", "END"), default=None,
      help="Reptile's outer step, annealed linearly from START to END (default 0.1 0)")  # fmt: skip
    a("--K", type=_count1, default=10, help="support points per task")
    a("--backend", choices=("numpy", "numba"), default=None,
      help="numerical backend (default: $TINYMETA_BACKEND or numba)")  # fmt: skip
    a("--eval-tasks", type=_count2, default=500, help="held-out tasks (100 query points each)")
    a("--checkpoint-every", type=_count1, default=500, help="iterations between checkpoints")
    a("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    a("--compare", action="store_true", help="also train the other algorithms with the same budget")
    a("--no-progress", dest="progress", action="store_false", help="no progress bar")
    for name, (_, text) in LAZY_COMMANDS.items():
        sub.add_parser(name, help=f"{text} ('tinymeta {name} --help' for its options)", add_help=False)
    return parser, sine


def _sine_job(args, error):
    """Turn parsed arguments into a :class:`~tinymeta.sine_job.SineJob`; ``error`` reports misuse (exit 2)."""
    from .sine_job import SineJob

    trained = [args.algo] + ([a for a in ALGOS if a != args.algo] if args.compare else [])
    if args.algo == "joint" and args.k not in (None, 0):
        error(f"argument --k: --algo joint trains at phi itself (k = 0); got {args.k}")
    if args.epsilon is not None:
        if len(args.epsilon) > 2 or args.epsilon[0] <= 0 or args.epsilon[-1] > args.epsilon[0]:
            error(
                f"argument --epsilon: expected START > 0 and optionally 0 <= END <= START; got {args.epsilon}"
            )
        if "reptile" not in trained:
            error("argument --epsilon: only reptile uses it; add --algo reptile or --compare")
    if args.outer_lr is not None and trained == ["reptile"]:
        error("argument --outer-lr: reptile has no outer optimizer (use --epsilon), unless --compare")
    out = args.out if args.out is not None else os.path.join("runs", f"sine-{args.algo}")
    if args.resume and not os.path.exists(os.path.join(out, "checkpoint.npz")):
        error(f"argument --resume: no checkpoint at {os.path.join(out, 'checkpoint.npz')}")
    epsilon = None if args.epsilon is None else (args.epsilon[0], args.epsilon[-1])
    return SineJob(algo=args.algo, iterations=args.iterations, seed=args.seed, out=out, k=args.k,
                   alpha=args.alpha, meta_batch=args.meta_batch, outer_lr=args.outer_lr, epsilon=epsilon,
                   K=args.K, backend=args.backend, eval_tasks=args.eval_tasks,
                   checkpoint_every=args.checkpoint_every, resume=args.resume, compare=args.compare,
                   progress=args.progress)  # fmt: skip


def _run_lazy(name, argv):
    module_name = LAZY_COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is None or not module_name.startswith(e.name):
            raise  # the command exists but one of its own imports is missing: show that
        print(f"tinymeta: error: 'tinymeta {name}' is not available in this installation "
              f"({module_name} is missing)", file=sys.stderr)  # fmt: skip
        return 2
    return int(module.main(list(argv)) or 0)


def main(argv=None) -> int:
    """Entry point of the ``tinymeta`` console script and ``python -m tinymeta``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in LAZY_COMMANDS:
        return _run_lazy(argv[0], argv[1:])
    parser, sine = build_parser()
    args = parser.parse_args(argv)
    job = _sine_job(args, sine.error)
    from .inner import DivergenceError
    from .sine_job import run_sine

    try:
        run_sine(job)
    except DivergenceError as e:
        print(f"tinymeta sine: error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        if "backend=" not in str(e):
            raise
        print(f"tinymeta sine: error: {e}", file=sys.stderr)  # the numba kernels are not available
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; the last checkpoint is in {job.out}; continue with --resume", file=sys.stderr)
        return 130
    return 0
