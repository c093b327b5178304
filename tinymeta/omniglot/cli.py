"""``tinymeta omniglot``: meta-train an MLP on N-way K-shot Omniglot tasks, evaluate on held-out characters.

Writes OUT/summary.json (accuracy with its 95 % interval, iterations, timings, accuracy against training
time), OUT/checkpoint.npz (atomically, at every learning-curve point and at the end of training; ``--resume``
continues from it) and OUT/omniglot.png. Exit status: 0 on success, 2 for bad arguments or missing
data (the message says where the files were looked for and how to get them), 1 if training diverges.

Example (the MAML paper's 5-way 1-shot protocol, 10 minutes of training)::

    tinymeta omniglot --algo maml --ways 5 --shots 1 --test-steps 3 --budget-s 600 --out runs/maml-1shot
"""

from __future__ import annotations

import argparse
import sys

from ..cli import _count0, _count1, _count2, _non_negative, _positive
from .job import DEFAULTS, JobConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tinymeta omniglot",
        description="Meta-train an MLP 784-hidden-N (ReLU, softmax cross-entropy as the plain mean NLL) "
        "on Omniglot N-way K-shot tasks with MAML, first-order MAML or Reptile; evaluate on held-out "
        "characters.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    a = p.add_argument
    a("--algo", choices=tuple(DEFAULTS), default="maml", help="meta-learning algorithm")
    a("--ways", type=_count2, default=5, help="N, classes per task")
    a("--shots", type=_count1, default=1, help="K, support examples per class")
    a("--query-shots", type=_count1, default=15, help="query examples per class")
    a("--iterations", type=_count1, default=60000, help="outer iterations (upper bound with --budget-s)")
    a("--budget-s", type=_positive, default=None, help="stop training after this many seconds")
    a("--seed", type=_count0, default=0, help="seeds the initialisation, the task stream and the test tasks")
    a("--meta-batch", type=_count1, default=None, help="tasks per outer iteration (default 32; reptile 5)")
    a("--alpha", type=_positive, default=None,
      help="inner step size on the plain mean cross-entropy (default 0.4 SGD; reptile: Adam lr 1e-3). "
      "MAML's code steps on N x the mean: its 0.4 is 2.0 here for 5-way")  # fmt: skip
    a("--k", type=_count1, default=None, help="inner steps in training (default 1; reptile 5)")
    a("--test-steps", type=_count0, default=None, help="inner steps at test time (default: --k; reptile 50)")
    a("--test-tasks", type=_count2, default=1000, help="held-out tasks for the final accuracy")
    a("--hidden", default="256,128,64,64", help="hidden layer widths, comma-separated")
    a("--split", choices=("maml", "lake"), default="maml",
      help="maml: 1200 of the 1623 characters to train on; lake: background alphabets")  # fmt: skip
    a("--backend", choices=("numpy", "numba"), default=None,
      help="numerical backend of the meta-batch (default: $TINYMETA_BACKEND or numba)")  # fmt: skip
    a("--inner-optimizer", choices=("sgd", "adam"), default=None,
      help="reptile's inner optimizer (default adam with beta1 = 0, state kept across tasks)")  # fmt: skip
    a("--inner-batch", type=_count1, default=None, help="reptile's inner mini-batch size (default 10)")
    a(
        "--train-shots",
        type=_count1,
        default=None,
        help="support examples per class in training tasks (default: --shots; reptile 10: 5 x 10 = one pass)",
    )
    a("--test-batch", type=_count1, default=None, help="reptile's test-time mini-batch size (default 5)")
    a("--epsilon", type=_non_negative, nargs="+", metavar=("START", "END"), default=[1.0, 0.0],
      help="reptile's outer step, linear from START to END over the run (or the budget)")  # fmt: skip
    a("--outer-lr", type=_positive, default=1e-3, help="outer Adam learning rate (maml, fomaml)")
    a("--outer-lr-final", type=_non_negative, default=None,
      help="final outer learning rate, reached linearly over the run (or budget)")  # fmt: skip
    a("--curve-every-s", type=_positive, default=None,
      help="seconds of training between learning-curve points (default budget/8 or 60)")  # fmt: skip
    a("--data-dir", default=None, help="directory with the Omniglot npz files (else $TINYMETA_DATA, then "
      "the user cache directory)")  # fmt: skip
    a("--out", default=None, help="output directory (default runs/omniglot-ALGO-Nway-Kshot)")
    a("--resume", action="store_true",
      help="continue from OUT/checkpoint.npz (written at every learning-curve point); same settings, "
      "--iterations / --budget-s may be raised")  # fmt: skip
    a("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def config_from_args(args, error) -> JobConfig:
    """A :class:`JobConfig` from parsed arguments; ``error`` reports misuse (exit status 2)."""
    try:
        hidden = tuple(int(h) for h in args.hidden.split(","))
        if not hidden or min(hidden) < 1:
            raise ValueError
    except ValueError:
        error(f"argument --hidden: expected widths >= 1 joined by commas, e.g. 256,128; got {args.hidden!r}")
    eps = args.epsilon
    if len(eps) > 2 or eps[0] <= 0 or eps[-1] > eps[0]:
        error(f"argument --epsilon: expected START > 0 and optionally 0 <= END <= START; got {eps}")
    if args.algo != "reptile" and (args.inner_optimizer == "adam" or args.inner_batch or args.test_batch):
        error("arguments --inner-optimizer adam / --inner-batch / --test-batch are for --algo reptile")
    if args.algo == "reptile" and args.outer_lr_final is not None:
        error("argument --outer-lr-final: reptile has no outer optimizer (its outer step is --epsilon)")
    if args.shots + args.query_shots > 20:
        error(f"--shots + --query-shots must be <= 20 drawings; got {args.shots} + {args.query_shots}")
    if args.backend is None:
        from ..backends import default_backend

        args.backend = default_backend()
    return JobConfig(algo=args.algo, ways=args.ways, shots=args.shots, iterations=args.iterations,
                     seed=args.seed, meta_batch=args.meta_batch, alpha=args.alpha, k=args.k,
                     test_steps=args.test_steps, query_shots=args.query_shots, test_tasks=args.test_tasks,
                     hidden=hidden, split=args.split, backend=args.backend, budget_s=args.budget_s,
                     inner_optimizer=args.inner_optimizer, inner_batch=args.inner_batch,
                     train_shots=args.train_shots, test_batch=args.test_batch,
                     epsilon=(eps[0], eps[-1]), outer_lr=args.outer_lr, outer_lr_final=args.outer_lr_final,
                     curve_every_s=args.curve_every_s,
                     data_dir=args.data_dir)  # fmt: skip


def main(argv=None) -> int:
    """Run ``tinymeta omniglot``; returns the exit status."""
    from ..inner import DivergenceError
    from .data import OmniglotError
    from .job import run

    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    cfg = config_from_args(args, parser.error)
    out = args.out or f"runs/omniglot-{cfg.algo}-{cfg.ways}way-{cfg.shots}shot"
    try:
        resolved = cfg.resolved()
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if args.resume:
        from pathlib import Path

        from .checkpoint import load

        try:
            load(Path(out) / "checkpoint.npz", resolved)
        except (FileNotFoundError, ValueError) as e:
            print(f"tinymeta omniglot: error: {e}", file=sys.stderr)
            return 2
    try:
        s = run(cfg, out, progress=args.progress, resume=args.resume)
    except OmniglotError as e:
        print(f"tinymeta omniglot: error: {e}", file=sys.stderr)
        return 2
    except DivergenceError as e:
        print(f"tinymeta omniglot: error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        if "numba" not in str(e) and "kernels" not in str(e):
            raise
        msg = f"backend {cfg.backend!r} is not available ({e}); pass --backend numpy"
        print(f"tinymeta omniglot: error: {msg}", file=sys.stderr)
        return 1
    print(
        f"{cfg.algo} {cfg.ways}-way {cfg.shots}-shot: accuracy {s['accuracy']:.2%} ± {s['ci95']:.2%} "
        f"(95 % CI, {s['test_tasks']} held-out tasks, {s['test_steps']} test steps) after {s['iterations']} "
        f"iterations in {s['train_seconds']:.0f} s; wrote {out}/summary.json, omniglot.png, checkpoint.npz"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
