"""``tinymeta sine``: meta-train on sine waves, evaluate on held-out tasks, write summary.json and sine.png.

Defaults are the MAML paper's (Finn et al. 2017, Sec. 5.1): a 1-40-40-1 ReLU network, K = 10
support points, inner SGD alpha = 0.01, meta-batch 25, outer Adam 1e-3, k = 1 (MAML, first-order
MAML). Reptile: k = 5 full-batch SGD steps of alpha = 0.01 and epsilon annealed linearly from 1 to 0
(:data:`DEFAULT_EPSILON`). "joint" trains at phi itself (k = 0): the pretrained baseline of the MAML
paper. 10,000 iterations by default: about 25 s for all four algorithms with the Numba kernels on one
core (plus their one-time compilation), where every meta-learner is far ahead of joint training.

Beyond MAML, in the same setting (:mod:`tinymeta.training.beyond_maml`): Meta-SGD (k = 1, every learned
step size starting at alpha) and ANIL (k = 1, the head only) adapt as they were trained; iMAML runs the
paper's practical variant by default (:data:`IMAML_DEFAULTS`: k gradient steps of size alpha on the
proximal objective, lam, 5 CG iterations; approximate), which works on the ReLU network. Exact iMAML
(``tol``) needs a smooth ``activation`` (tanh, softplus): on ReLU its inner solve cannot converge, and
it is refused with that reason. ``compare=True`` trains the four algorithms above beside the main one;
``compare="all"`` all seven.

Held-out tasks: ``Sine(K).evaluation_tasks(n, seed=20170309, K_query=100)``; with n = 500 these are, up
to float32 rounding, the 500 test tasks of the reference implementations (same generator, same order).

Files written to the output directory: ``summary.json`` (strict JSON, written first), ``sine.png`` and
one checkpoint per algorithm (``checkpoint.npz`` for the main one, ``checkpoint_<algo>.npz`` for the
others); see :mod:`tinymeta.jobs.rundir` for the rules of the directory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import __version__, validate
from ..backends import batch_functions
from ..evaluation import evaluate
from ..inner import DivergenceError
from ..mlp import MLP
from ..optim import Adam
from ..tasks import Sine
from ..training import ALGORITHMS, TrainConfig, train
from ..training.config import optimizer_to_dict
from . import rundir

SIZES, ACTIVATION = (1, 40, 40, 1), "relu"
ACTIVATIONS = ("relu", "tanh", "softplus", "sigmoid")
CLASSIC = ("maml", "fomaml", "reptile", "joint")
ALGOS = (*CLASSIC, "imaml", "metasgd", "anil")
DEFAULT_K = {"maml": 1, "fomaml": 1, "reptile": 5, "joint": 0, "imaml": 1, "metasgd": 1, "anil": 1}
IMAML_DEFAULTS = {"lam": 50.0, "cg_iterations": 5}
"""iMAML's practical variant here: one inner step, lam = 50 and 5 CG iterations (the paper's number).
With k = 1 the inner step is MAML's (the proximal term vanishes at u_0 = phi), and (I + H_A/lam)^{-1} is
I - H_A/lam to first order: MAML's factor with alpha = 1/lam. Measured (5000 iterations, seed 0, held-out
MSE after 1 / 10 test steps): lam = 50, k = 1: 2.37 / 2.35; the paper's lam = 2 with k = 5: 3.73 / 4.10
(it does not learn: I + H_A/2 is indefinite on these ReLU nets, lambda_min(H_A) reaches -38); lam = 100:
the test-time steps diverge on some tasks (they need alpha (lam + lambda_max) < 2); lam = 10 to 20 with
k = 20 to 30: the training diverges."""
DEFAULT_ITERATIONS = 10000
DEFAULT_EPSILON = (1.0, 0.0)
"""Reptile's outer step here: 1 annealed linearly to 0, as in the Reptile code's own experiments. With the
reference implementations' 0.1 -> 0 (``--epsilon 0.1 0``) Reptile learns more slowly: after 10,000
iterations (seed 0, 500 held-out tasks) its query MSE after 1 / 10 steps is 1.85 / 0.94 against 0.91 / 0.32
with 1 -> 0 (joint training: 2.33 / 1.63)."""
EVAL_SEED = 20170309
EVAL_QUERY_POINTS = 100
EVAL_STEPS = tuple(range(11))


@dataclass(frozen=True)
class SineJob:
    """One ``tinymeta sine`` run: a :class:`TrainConfig` per algorithm (the main one first), the task
    family's K and the number of held-out tasks. Build it with :func:`sine_job`, which checks it."""

    runs: tuple
    K: int
    eval_tasks: int

    @property
    def activation(self) -> str:
        return self.main.net["activation"]

    @property
    def main(self) -> TrainConfig:
        return self.runs[0]

    def checkpoint_name(self, config) -> str:
        return "checkpoint.npz" if config is self.main else f"checkpoint_{config.algo}.npz"


def sine_job(algo="maml", *, iterations=DEFAULT_ITERATIONS, seed=0, k=None, alpha=0.01, meta_batch=25,
             outer_lr=None, epsilon=None, K=10, backend=None, eval_tasks=500, checkpoint_every=500,
             time_budget=None, compare=False, activation=ACTIVATION, lam=None, tol=None,
             cg_iterations=None) -> SineJob:  # fmt: skip
    """The settings of a sine run, checked once (every error names the setting and what it expects).

    ``k`` applies to the main algorithm (default :data:`DEFAULT_K`); ``outer_lr`` to the algorithms with an
    outer optimizer, ``epsilon`` to Reptile, ``lam``, ``tol`` (exact) and ``cg_iterations`` (practical
    variant) to iMAML; with ``compare`` (True: the four of :data:`CLASSIC`; ``"all"``: all of
    :data:`ALGOS`) the other algorithms are trained too, with their defaults and the same budget.
    """
    validate.one_of("algo", algo, ALGOS)
    validate.one_of("activation", activation, ACTIVATIONS)
    K, eval_tasks = validate.count("K", K, minimum=1), validate.count("eval_tasks", eval_tasks, minimum=2)
    if compare not in (False, True, "all"):
        raise ValueError(
            f"compare must be False, True (the four classic algorithms) or 'all'; got {compare!r}"
        )
    others = ALGOS if compare == "all" else CLASSIC if compare else ()
    algos = [algo] + [a for a in others if a != algo]
    imaml = {"lam": lam, "tol": tol, "cg_iterations": cg_iterations}
    if any(v is not None for v in imaml.values()) and "imaml" not in algos:
        raise ValueError("lam, tol and cg_iterations are iMAML's settings; they need algo='imaml' or "
                         "compare='all'")  # fmt: skip
    if tol is not None and activation == "relu":
        raise ValueError("tol: exact iMAML needs a smooth activation (on ReLU the inner minimiser lies on a "
                         "kink and the solve cannot converge); use activation='tanh' or 'softplus', or "
                         "the practical variant (cg_iterations) without tol")  # fmt: skip
    if tol is None and cg_iterations is None:
        imaml["cg_iterations"] = IMAML_DEFAULTS["cg_iterations"]
    imaml["lam"] = IMAML_DEFAULTS["lam"] if lam is None else lam
    if epsilon is not None and "reptile" not in algos:
        raise ValueError("epsilon is Reptile's outer step; it needs algo='reptile' or compare")
    if outer_lr is not None and algos == ["reptile"]:
        raise ValueError(
            "outer_lr: reptile has no outer optimizer (its outer step is epsilon), unless compare"
        )
    if k is not None and algo == "joint" and k != 0:
        raise ValueError(f"k: algo='joint' trains at phi itself (k = 0); got k={k}")
    outer = optimizer_to_dict(Adam(1e-3 if outer_lr is None else outer_lr))
    default_k = {**DEFAULT_K, "imaml": 0 if tol is not None else DEFAULT_K["imaml"]}  # exact iMAML: k = 0
    runs = []
    for a in algos:
        runs.append(TrainConfig(
            algo=a, iterations=iterations, alpha=alpha,
            k=k if (a == algo and k is not None) else default_k[a],
            meta_batch=meta_batch, seed=seed, backend=backend, time_budget=time_budget,
            checkpoint_every=checkpoint_every, eval_steps=EVAL_STEPS,
            outer_optimizer=None if a == "reptile" else outer,
            epsilon=(DEFAULT_EPSILON if epsilon is None else epsilon) if a == "reptile" else None,
            net={"sizes": list(SIZES), "activation": activation, "batch_norm": False}, family=repr(Sine(K=K)),
            **(imaml if a == "imaml" else {}),
        ))  # fmt: skip
    job = SineJob(tuple(runs), K, eval_tasks)
    _check_memory(job)
    return job


def _check_memory(job):
    """Refuse sizes that cannot fit before allocating anything: the held-out tasks (K + 100 points each),
    a meta-batch, and the kernels' buffers (every layer's activations for k + 2 passes)."""
    K, width = job.K, sum(SIZES[1:])
    held_out = job.eval_tasks * (K + EVAL_QUERY_POINTS) * 2 * 8 * 2
    per_run = max(c.meta_batch * 2 * K * 2 * 8 * 3 + 2 * (2 * c.k + 2) * K * width * 4 * 8 for c in job.runs)
    validate.fits_in_memory(f"K={K} support points with {job.eval_tasks} held-out tasks", held_out + per_run)


def run_sine(job: SineJob, out, *, resume=False, overwrite=False, progress=True, log=print) -> dict:
    """Train every algorithm of ``job``, evaluate, write ``out``/summary.json, sine.png and checkpoints.

    Returns the summary. Raises :class:`~tinymeta.jobs.rundir.RunDirError` if ``out`` cannot be used
    as asked, and :class:`~tinymeta.DivergenceError` (after writing the summary of what was done, with
    ``"diverged": true``) if a run diverges.
    """
    t0 = time.perf_counter()
    out, lock = rundir.prepare(out, resume=resume, overwrite=overwrite)
    with lock:
        net, family = MLP(list(SIZES), job.activation), Sine(K=job.K)
        tasks, amp, phase = family.evaluation_tasks(job.eval_tasks, seed=EVAL_SEED, K_query=EVAL_QUERY_POINTS)
        runs, failure = {}, None
        for config in job.runs:
            path = out / job.checkpoint_name(config)
            try:
                result = train(net, family, config, checkpoint_path=path, resume=resume and path.is_file(),
                               progress=progress)  # fmt: skip
            except DivergenceError as e:
                failure = e
                break
            functions = batch_functions(config.backend)
            adapt = ALGORITHMS[config.algo].adapter(functions, net, config, result.inner_state, config.seed,
                                                    params=result.params)  # fmt: skip
            runs[config.algo] = (
                result,
                evaluate(net, result.phi, tasks, config.alpha, EVAL_STEPS, adapt=adapt),
            )
        summary = _summary(job, out, runs, failure, time.perf_counter() - t0)
        rundir.write_summary(out, summary)
        if failure is not None:
            raise failure
        main, _ = runs[job.main.algo]
        error = rundir.write_figure(out / "sine.png", lambda: _figure(net, main, runs, tasks[0], amp[0],
                                                                      phase[0], job), log)  # fmt: skip
        if error is not None:
            summary = {**summary, "figure": None, "figure_error": error}
            rundir.write_summary(out, summary)
    for algo, (r, e) in runs.items():
        mse = ", ".join(f"{e.mean[s]:.3f} after {s}" for s in (0, 1, 10))
        log(f"{ALGORITHMS[algo].label:>16} (k={r.config.k}): held-out query MSE {mse} steps; "
            f"{r.iterations_per_second:.0f} it/s")  # fmt: skip
    log(f"summary: {out / 'summary.json'}")
    if summary["figure"] is not None:
        log(f"figure: {summary['figure']}")
    return summary


def _summary(job, out, runs, failure, wall):
    main = job.main
    result, scores = runs.get(main.algo, (None, None))
    summary = {
        "algo": main.algo, "iterations": main.iterations, "seed": main.seed, "backend": main.backend,
        "K": job.K, "k": main.k, "alpha": main.alpha, "time_budget": main.time_budget,
        "eval_tasks": job.eval_tasks, "eval_seed": EVAL_SEED, "eval_query_points": EVAL_QUERY_POINTS,
        "mse_after_steps": None if scores is None else scores.as_dict(),
        "mse_stderr": None if scores is None else scores.as_dict(scores.stderr),
        "iterations_done": None if result is None else result.iterations,
        "stopped_by": None if result is None else result.stopped_by,
        "resumed_from_iteration": None if result is None else result.start_iteration,
        "train_time_s": None if result is None else result.train_seconds,
        "meta_iters_per_s": None if result is None else result.iterations_per_second,
        "config": main.to_dict(),
        "compare": {a: _run_summary(r, e) for a, (r, e) in runs.items()} if len(job.runs) > 1 else {},
        "figure": str(out / "sine.png") if failure is None else None,
        "checkpoint": str(out / "checkpoint.npz"),
        "diverged": failure is not None,
        "error": None if failure is None else str(failure),
        "tinymeta_version": __version__,
        "wall_time_s": wall,
    }  # fmt: skip
    return summary


def _run_summary(result, scores):
    return {
        "k": result.config.k,
        "mse_after_steps": scores.as_dict(),
        "mse_stderr": scores.as_dict(scores.stderr),
        "iterations_done": result.iterations,
        "train_time_s": result.train_seconds,
        "meta_iters_per_s": result.iterations_per_second,
        "config": result.config.to_dict(),
    }


def _figure(net, main, runs, task, amp, phase, job):
    from ..plots import sine_figure  # matplotlib is imported only when a figure is drawn

    curves = {f"{ALGORITHMS[a].label} (k={r.config.k})": e for a, (r, e) in runs.items()}
    title = (f"{ALGORITHMS[job.main.algo].label} on sine waves: {main.iterations} iterations, K = {job.K}; "
             f"{job.eval_tasks} held-out tasks")  # fmt: skip
    c = job.main
    label = ALGORITHMS[c.algo].label
    adapt = ALGORITHMS[c.algo].adapter(batch_functions(c.backend), net, c, main.inner_state, c.seed,
                                       params=main.params)  # fmt: skip
    return sine_figure(
        net, main.phi, task, c.alpha, amp, phase, curves, title=title, label=label, adapt=adapt
    )
