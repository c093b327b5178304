"""``tinymeta demo``: the interactive sine demo in a window, or one frame of it as a PNG.

    tinymeta demo                              # a window (needs a display and an interactive backend)
    tinymeta demo --compare                    # the teacher's view: every initialisation side by side
    tinymeta demo --snapshot OUT.png --algo reptile --points "-3,1;0,2;2.5,-1" --steps 5

Initialisations come from the quick-training cache (trained on first use) or, with ``--from
RUN_DIR``, from the checkpoints of a ``tinymeta sine --out RUN_DIR`` run. Bad arguments exit with
status 2 and a one-line message; an environment without a display exits with status 1.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from .. import CheckpointError  # the public names: the training code moves, they stay
from ..demo import inits
from ..demo.app import MAX_STEPS
from ..demo.state import start_state
from ..demo.store import QuickTraining, initialisations
from ..inner import DivergenceError
from .args import Parser, number


def _pairs(count, what, example):
    """A parser of ``"a,b;c,d;..."`` into a tuple of float pairs (``count``: how many, or None: any)."""

    def parse(text):
        expected = f"{what} as {example!r} (finite numbers)"
        try:
            pairs = [tuple(float(v) for v in item.split(",")) for item in text.split(";") if item.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
        if (not pairs or any(len(p) != 2 or not all(map(math.isfinite, p)) for p in pairs)
                or (count is not None and len(pairs) != count)):  # fmt: skip
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return tuple(pairs)

    return parse


parse_points = _pairs(None, "x,y points separated by ';'", "-3,1;0,2.5;2,-1")
parse_task = _pairs(1, "AMPLITUDE,PHASE", "2.5,1.0")


def build_parser():
    """The argument parser of ``tinymeta demo``."""
    p = Parser(prog="tinymeta demo", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                description="Click a few points of a sine wave and watch meta-learned initialisations adapt "
                "to them, step by step (or render one frame with --snapshot).")  # fmt: skip
    a = p.add_argument
    a("--algo", choices=list(inits.REGISTRY), default="maml", help="the initialisation shown first")
    a("--compare", action="store_true", help="every initialisation side by side on the same points")
    a("--snapshot", metavar="OUT.png", default=None, help="write one frame to OUT.png; no window")
    a("--points", type=parse_points, default=None, metavar='"x1,y1;x2,y2;..."',
      help="the support points (default: --num-points points on the task)")  # fmt: skip
    a("--task", type=parse_task, default=None, metavar="AMPLITUDE,PHASE",
      help="the true curve y = A sin(x - p) (default: drawn with --seed)")  # fmt: skip
    a("--num-points", type=number(int, lambda v: 1 <= v <= 100, "an integer in [1, 100]"), default=5,
      help="support points of a random task")  # fmt: skip
    a("--steps", type=number(int, lambda v: 1 <= v <= MAX_STEPS, f"an integer in [1, {MAX_STEPS}]"),
      default=10, help="inner SGD steps (a snapshot shows the last)")  # fmt: skip
    a("--alpha", type=number(float, lambda v: math.isfinite(v) and v > 0, "a number > 0"), default=None,
      help="test-time inner step size (default: the alpha of training, 0.01)")  # fmt: skip
    a("--seed", type=number(int, lambda v: v >= 0, "an integer >= 0"), default=0,
      help="draws the task (and the next ones in the window)")  # fmt: skip
    a("--from", dest="run_dir", metavar="RUN_DIR", default=None,
      help="use the checkpoints of 'tinymeta sine --out RUN_DIR', not the quick-training cache")  # fmt: skip
    a("--cache-dir", default=None, help="quick-training cache (default: the user cache directory/demo)")
    a("--iterations", type=number(int, lambda v: v >= 1, "an integer >= 1"),
      default=QuickTraining.iterations, help="meta-training iterations of the quick training")  # fmt: skip
    a("--backend", choices=("numpy", "numba"), default=None, help="backend of the quick training")
    a("--dpi", type=number(int, lambda v: 20 <= v <= 600, "an integer in [20, 600]"), default=110,
      help="resolution of --snapshot")  # fmt: skip
    return p


def _attach_values(argv):
    """``--points -3,1;0,2`` -> ``--points=-3,1;0,2``: argparse would take a value starting with '-' for
    an option, and a first point with a negative x is common."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in ("--points", "--task") and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None) -> int:
    """Run ``tinymeta demo`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(_attach_values(sys.argv[1:] if argv is None else list(argv)))
    if args.snapshot is not None and not args.snapshot.lower().endswith(".png"):
        parser.error(f"argument --snapshot: expected a path ending in .png; got {args.snapshot!r}")
    window = args.snapshot is None
    names = list(inits.REGISTRY) if (window or args.compare) else [args.algo]
    settings = QuickTraining(iterations=args.iterations, backend=args.backend)
    try:
        trained = initialisations(names, run_dir=args.run_dir, cache_dir=args.cache_dir, settings=settings,
                                  log=lambda text: print(text, file=sys.stderr))  # fmt: skip
    except (FileNotFoundError, NotADirectoryError, CheckpointError, ValueError) as e:
        parser.error(f"argument --from: {e}" if args.run_dir is not None else str(e))
    except (DivergenceError, ImportError) as e:
        print(f"{parser.prog}: error: quick training failed: {e}", file=sys.stderr)
        return 1
    if args.algo not in trained:
        parser.error(f"argument --algo: {args.run_dir} holds {list(trained)}; got {args.algo!r}")
    points = None if args.points is None else tuple(zip(*args.points, strict=True))
    task = None if args.task is None else args.task[0]
    alpha = trained[args.algo].alpha if args.alpha is None else args.alpha
    state = start_state(args.algo, seed=args.seed, task=task, points=points, num_points=args.num_points,
                        alpha=alpha, steps=args.steps, shown=0 if window else args.steps,
                        compare=args.compare)  # fmt: skip
    if not window:
        return _snapshot(parser, state, trained, args.snapshot, args.dpi)
    return _window(parser, state, trained, np.random.default_rng(args.seed + 1), args.num_points)


def _snapshot(parser, state, trained, path, dpi):
    from ..demo.draw import save_png, snapshot_figure

    try:
        save_png(snapshot_figure(state, trained), path, dpi=dpi)
    except OSError as e:
        parser.error(f"argument --snapshot: cannot write {path!r} ({e.strerror or e})")
    print(path)
    return 0


def _window(parser, state, trained, rng, num_points):
    import matplotlib
    import matplotlib.pyplot as plt

    from ..demo.app import window
    from ..demo.notebook import is_interactive_backend

    backend = matplotlib.get_backend()
    if not is_interactive_backend(backend):
        print(f"{parser.prog}: error: matplotlib has no interactive backend here (it chose {backend!r}: no "
              "display?); set MPLBACKEND=TkAgg or QtAgg with a display, or write a frame with "
              "--snapshot OUT.png", file=sys.stderr)  # fmt: skip
        return 1
    app = window(trained, state, rng, num_points)
    plt.show()
    del app  # kept alive while the window is open
    return 0
