"""``tinymeta sine``: meta-train on sine waves, evaluate on held-out tasks, write summary.json and sine.png.

The command only parses and reports: :func:`tinymeta.jobs.sine.sine_job` builds (and checks) the run's
settings, :func:`tinymeta.jobs.sine.run_sine` runs it.
"""

from __future__ import annotations

import os

from . import args as a

PROG = "tinymeta sine"


def build_parser() -> a.Parser:
    from ..jobs.sine import ACTIVATION, ACTIVATIONS, ALGOS, DEFAULT_ITERATIONS, IMAML_DEFAULTS

    p = a.Parser(
        prog=PROG,
        description="Meta-train a 1-40-40-1 network (ReLU unless --activation) on sine waves (Finn et al. "
        "2017, Sec. 5.1) with MAML, first-order MAML, Reptile, joint training, iMAML, Meta-SGD or ANIL, "
        "evaluate on held-out tasks, write OUT/summary.json, OUT/sine.png and OUT/checkpoint.npz.",
        formatter_class=a.HelpFormatter,
    )
    add = p.add_argument
    add("--algo", choices=ALGOS, default="maml", help="meta-learning algorithm")
    add("--iterations", type=a.count1, default=DEFAULT_ITERATIONS, help="outer iterations")
    add(
        "--time-budget",
        type=a.positive,
        default=None,
        metavar="SECONDS",
        help="stop each algorithm's training after this many seconds (an upper bound with --iterations)",
    )
    add("--seed", type=a.count0, default=0, help="seeds the initialisation and the task stream")
    add(
        "--inner-steps",
        "--k",
        dest="k",
        type=a.count0,
        default=None,
        help="k, inner steps (default: 1 for maml/fomaml/metasgd/anil/imaml, 5 for reptile, 0 for joint "
        "and exact imaml)",
    )
    add(
        "--alpha",
        type=a.positive,
        default=0.01,
        help="inner SGD step size (training and evaluation); metasgd: the start of every learned step size",
    )
    add("--meta-batch", type=a.count1, default=25, help="M, tasks per outer iteration")
    add(
        "--outer-lr",
        type=a.positive,
        default=None,
        help="outer Adam learning rate (default 1e-3; not reptile)",
    )
    a.add_epsilon_option(p, None, "Reptile's outer step, annealed linearly from START to END (default 1 0)")
    add("--shots", dest="K", type=a.count1, default=10, help="K, support points per task")
    add(
        "--activation",
        choices=ACTIVATIONS,
        default=ACTIVATION,
        help="hidden activation of the 1-40-40-1 network (exact imaml needs a smooth one: tanh, softplus)",
    )
    add(
        "--lam",
        type=a.positive,
        default=None,
        help=f"imaml: proximal strength lambda (default {IMAML_DEFAULTS['lam']})",
    )
    add(
        "--cg-iterations",
        type=a.count1,
        default=None,
        help="imaml, practical variant (approximate): k "
        f"gradient steps on the proximal objective, then this many CG iterations (default "
        f"{IMAML_DEFAULTS['cg_iterations']})",
    )
    add(
        "--tol",
        type=a.positive,
        default=None,
        help="imaml, exact: solve the inner problem and the CG "
        "system to this tolerance (k = 0; needs --activation tanh or softplus)",
    )
    add(
        "--backend",
        choices=("numpy", "numba"),
        default=None,
        help="numerical backend (default: $TINYMETA_BACKEND or numba)",
    )
    add("--eval-tasks", type=a.count2, default=500, help="held-out tasks (100 query points each)")
    add("--checkpoint-every", type=a.count1, default=500, help="iterations between checkpoints")
    add(
        "--compare",
        nargs="?",
        const="classic",
        choices=("classic", "all"),
        default=None,
        help="also train the other algorithms with the same budget: maml, fomaml, reptile and joint "
        "(--compare), or all seven (--compare all)",
    )
    a.add_run_options(p, "output directory (default: runs/sine-ALGO)",
                      "continue the run in OUT (same settings; --iterations may grow)")  # fmt: skip
    return p  # fmt: skip


def main(argv=None) -> int:
    """Run ``tinymeta sine``; returns the exit status (0, 1 diverged, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..jobs.sine import run_sine, sine_job

    epsilon = a.start_end(parser, "--epsilon", args.epsilon)
    try:
        job = sine_job(args.algo, iterations=args.iterations, seed=args.seed, k=args.k, alpha=args.alpha,
                       meta_batch=args.meta_batch, outer_lr=args.outer_lr, epsilon=epsilon, K=args.K,
                       backend=args.backend, eval_tasks=args.eval_tasks,
                       checkpoint_every=args.checkpoint_every,
                       time_budget=args.time_budget, compare={None: False, "classic": True, "all": "all"}[
                           args.compare], activation=args.activation, lam=args.lam, tol=args.tol,
                       cg_iterations=args.cg_iterations)  # fmt: skip
    except a.user_errors() as e:
        return a.fail(PROG, e)
    out = args.out if args.out is not None else os.path.join("runs", f"sine-{args.algo}")
    return a.run_job(PROG, job, run_sine, out, args)
