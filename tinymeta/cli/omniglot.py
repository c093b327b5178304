"""``tinymeta omniglot``: meta-train an MLP on N-way K-shot Omniglot tasks, evaluate on held-out characters.

Writes OUT/summary.json (accuracy with its 95 % interval, iterations, timings, accuracy against training
time), OUT/checkpoint.npz (atomically, at every learning-curve point and at the end; ``--resume``
continues from it) and OUT/omniglot.png. The command only parses and reports:
:func:`tinymeta.jobs.omniglot.omniglot_job` builds and checks the settings.

Example (the MAML paper's 5-way 1-shot protocol, 10 minutes of training)::

    tinymeta omniglot --algo maml --ways 5 --shots 1 --test-steps 3 --time-budget 600 --out runs/maml-1shot
"""

from __future__ import annotations

from . import args as a

PROG = "tinymeta omniglot"


def build_parser() -> a.Parser:
    from ..jobs.omniglot import DEFAULTS

    p = a.Parser(
        prog=PROG,
        description="Meta-train an MLP 784-hidden-N (ReLU, softmax cross-entropy as the plain mean NLL) on "
        "Omniglot N-way K-shot tasks with MAML, first-order MAML, Reptile, iMAML, Meta-SGD or ANIL; evaluate "
        "on held-out "
        "characters. fomaml-tail is first-order MAML as the Reptile code runs it (Reptile's inner loop, "
        "only the last step kept).",
        formatter_class=a.HelpFormatter,
    )
    add = p.add_argument
    add("--algo", choices=tuple(DEFAULTS), default="maml", help="meta-learning algorithm")
    add("--ways", type=a.count2, default=5, help="N, classes per task")
    add("--shots", type=a.count1, default=1, help="K, support examples per class")
    add("--query-shots", type=a.count1, default=15, help="query examples per class")
    add(
        "--iterations",
        type=a.count1,
        default=60000,
        help="outer iterations (an upper bound with --time-budget)",
    )
    add(
        "--time-budget",
        type=a.positive,
        default=None,
        metavar="SECONDS",
        help="stop training after this many seconds (evaluations excluded)",
    )
    add(
        "--seed",
        type=a.count0,
        default=0,
        help="seeds the initialisation, the task stream and the test tasks",
    )
    add(
        "--meta-batch",
        type=a.count1,
        default=None,
        help="M, tasks per outer iteration (default 32; reptile, fomaml-tail 5)",
    )
    add(
        "--alpha",
        type=a.positive,
        default=None,
        help="inner step size on the plain mean cross-entropy (default 0.4 SGD; reptile, fomaml-tail: "
        "Adam lr 1e-3). MAML's code steps on N x the mean: its 0.4 is 2.0 here for 5-way",
    )
    add(
        "--inner-steps",
        "--k",
        dest="k",
        type=a.count1,
        default=None,
        help="k, inner steps in training (default 1; reptile and imaml 5)",
    )
    add("--test-steps", type=a.count0, default=None, help="inner steps at test time (default: k; reptile 50)")
    add("--test-tasks", type=a.count2, default=1000, help="held-out tasks for the final accuracy")
    add("--hidden", default="256,128,64,64", help="hidden layer widths, comma-separated")
    add(
        "--split",
        choices=("maml", "lake"),
        default="maml",
        help="maml: 1200 of the 1623 characters to train on; lake: background alphabets",
    )
    add(
        "--backend",
        choices=("numpy", "numba"),
        default=None,
        help="numerical backend of the meta-batch (default: $TINYMETA_BACKEND or numba)",
    )
    add(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="arithmetic of the meta-batch: float32 runs the Numba kernels in single precision, about "
        "twice as fast (phi and the optimizers stay float64); numba backend only",
    )
    add(
        "--inner-optimizer",
        choices=("sgd", "adam"),
        default=None,
        help="inner optimizer of reptile and fomaml-tail (default adam with beta1 = 0, state kept across "
        "tasks)",
    )
    add("--inner-batch", type=a.count1, default=None, help="reptile's inner mini-batch size (default 10)")
    add(
        "--train-shots",
        type=a.count1,
        default=None,
        help="reptile: support examples per class in training tasks (default 10: 5 x 10 = one pass)",
    )
    add("--test-batch", type=a.count1, default=None, help="reptile's test-time mini-batch size (default 5)")
    a.add_epsilon_option(p, [1.0, 0.0], "reptile's outer step, linear from START to END over the run (or the "
                         "time budget)")  # fmt: skip
    add(
        "--tail",
        choices=("shared", "separate"),
        default=None,
        help="fomaml-tail: the final inner mini-batch drawn like the others (shared, the default) or held "
        "apart from them (separate)",
    )
    add(
        "--tail-shots",
        type=a.count1,
        default=None,
        help="fomaml-tail with --tail separate: examples per class held apart for the final step",
    )
    add("--lam", type=a.positive, default=None, help="imaml: proximal strength lambda (default 2)")
    add(
        "--cg-iterations",
        type=a.count1,
        default=None,
        help="imaml, practical variant (approximate; the default): k gradient steps on the proximal "
        "objective, then this many CG iterations (default 5)",
    )
    add(
        "--tol",
        type=a.positive,
        default=None,
        help="imaml, exact: solve to this tolerance (needs a smooth activation: refused on this ReLU MLP)",
    )
    add(
        "--batch-norm",
        action="store_true",
        help="the MAML paper's MLP: batch norm on every hidden layer with the statistics of the batch at "
        "hand (transductive), a learned shift, eps 1e-3",
    )
    add(
        "--init",
        choices=("he", "truncnormal"),
        default="he",
        help="how phi starts: He-normal weights, or MAML's code's N(0, 0.01^2) truncated at 0.02 (biases and "
        "shifts 0 either way)",
    )
    add("--outer-lr", type=a.positive, default=1e-3, help="outer Adam learning rate (maml, fomaml)")
    add(
        "--outer-lr-final",
        type=a.non_negative,
        default=None,
        help="final outer learning rate, reached linearly over the run (or the time budget)",
    )
    add(
        "--curve-every-s",
        type=a.positive,
        default=None,
        help="seconds of training between learning-curve points (default: time budget / 8, or 60)",
    )
    add(
        "--data-dir",
        default=None,
        help="directory with the Omniglot npz files (else $TINYMETA_DATA, then the user cache directory)",
    )
    a.add_run_options(
        p,
        "output directory (default runs/omniglot-ALGO-Nway-Kshot)",
        "continue the run in OUT (same settings; --iterations and --time-budget may be raised)",
    )
    return p  # fmt: skip


def main(argv=None) -> int:
    """Run ``tinymeta omniglot``; returns the exit status (0, 1 diverged, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..jobs.omniglot import omniglot_job, run_omniglot

    try:
        hidden = tuple(int(h) for h in args.hidden.split(","))
    except ValueError:
        parser.error(
            f"argument --hidden: expected widths >= 1 joined by commas, e.g. 256,128; got {args.hidden!r}"
        )
    epsilon = a.start_end(parser, "--epsilon", args.epsilon)
    try:
        job = omniglot_job(args.algo, ways=args.ways, shots=args.shots, iterations=args.iterations,
                           seed=args.seed,
                           meta_batch=args.meta_batch, alpha=args.alpha, k=args.k, test_steps=args.test_steps,
                           query_shots=args.query_shots, test_tasks=args.test_tasks, hidden=hidden,
                           split=args.split, backend=args.backend, time_budget=args.time_budget,
                           inner_optimizer=args.inner_optimizer, inner_batch=args.inner_batch,
                           train_shots=args.train_shots, test_batch=args.test_batch,
                           epsilon=epsilon, outer_lr=args.outer_lr,
                           outer_lr_final=args.outer_lr_final, curve_every_s=args.curve_every_s,
                           curve_tasks=50, data_dir=args.data_dir, batch_norm=args.batch_norm,
                           tail=args.tail, tail_shots=args.tail_shots, dtype=args.dtype, lam=args.lam,
                           tol=args.tol, cg_iterations=args.cg_iterations, init=args.init)  # fmt: skip
    except a.user_errors() as e:
        return a.fail(PROG, e)
    out = args.out or f"runs/omniglot-{job.train.algo}-{job.ways}way-{job.shots}shot"
    return a.run_job(
        PROG,
        job,
        run_omniglot,
        out,
        args,
        report=lambda s: print(
            f"{s['algo']} {s['ways']}-way {s['shots']}-shot: accuracy {s['accuracy']:.2%} ± {s['ci95']:.2%} "
            f"(95 % CI, {s['test_tasks']} held-out tasks, {s['test_steps']} test steps) after "
            f"{s['iterations']} iterations in {s['train_seconds']:.0f} s; wrote {out}/summary.json, "
            "omniglot.png, checkpoint.npz"
        ),
    )
