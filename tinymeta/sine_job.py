"""The body of ``tinymeta sine``: meta-train on sine waves, evaluate on held-out tasks, save the results.

Defaults are the MAML paper's (Finn et al. 2017, Sec. 5.1): a 1-40-40-1 ReLU network,
K = 10 support points, inner SGD alpha = 0.01, meta-batch 25, outer Adam 1e-3, k = 1
(MAML, first-order MAML). Reptile: k = 5 full-batch SGD steps with alpha = 0.01 and
epsilon annealed linearly from 0.1 to 0. "joint" trains at phi itself (k = 0).

Held-out tasks: ``Sine(K).evaluation_tasks(n, seed=20170309, K_query=100)``; with n = 500
these are, up to float32 rounding, the 500 test tasks of the reference implementations
(same generator, same draw order).

Files written to the output directory: ``summary.json``, ``sine.png`` and one checkpoint
per algorithm (``checkpoint.npz`` for the main one, ``checkpoint_<algo>.npz`` for the others).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from . import __version__
from .evaluation import evaluate
from .mlp import MLP
from .optim import Adam
from .tasks import Sine
from .train import meta_train
from .train_config import ALGOS

EVAL_SEED = 20170309
EVAL_QUERY_POINTS = 100
DEFAULT_K = {"maml": 1, "fomaml": 1, "reptile": 5, "joint": 0}
LABELS = {"maml": "MAML", "fomaml": "first-order MAML", "reptile": "Reptile", "joint": "joint training"}


@dataclass(frozen=True)
class SineJob:
    """The options of ``tinymeta sine`` (see ``tinymeta sine --help``); ``k=None``: per-algorithm default."""

    algo: str = "maml"
    iterations: int = 3000
    seed: int = 0
    out: str = "runs/sine-maml"
    k: int | None = None
    alpha: float = 0.01
    meta_batch: int = 25
    outer_lr: float | None = None
    epsilon: tuple | None = None
    K: int = 10
    backend: str | None = None
    eval_tasks: int = 500
    checkpoint_every: int | None = 500
    resume: bool = False
    compare: bool = False
    progress: bool = True

    @property
    def algos(self):
        """The main algorithm first, then (with ``compare``) the others."""
        return [self.algo] + ([a for a in ALGOS if a != self.algo] if self.compare else [])

    def checkpoint(self, algo):
        name = "checkpoint.npz" if algo == self.algo else f"checkpoint_{algo}.npz"
        return os.path.join(self.out, name)

    def train_kwargs(self, algo):
        """Keyword arguments of :func:`meta_train` for ``algo``; ``k`` applies to the main algorithm only."""
        k = self.k if (algo == self.algo and self.k is not None) else DEFAULT_K[algo]
        kw = {"k": k}
        if algo == "reptile":
            kw["epsilon"] = self.epsilon
        else:
            kw["outer_optimizer"] = Adam(1e-3 if self.outer_lr is None else self.outer_lr)
        return kw


def run_sine(job: SineJob, log=print) -> dict:
    """Train every algorithm of ``job``, evaluate, write summary.json / sine.png / checkpoints.

    Returns the summary (also written to ``<out>/summary.json``).
    """
    t0 = time.perf_counter()
    os.makedirs(job.out, exist_ok=True)
    net, family = MLP([1, 40, 40, 1], "relu"), Sine(K=job.K)
    tasks, amp, phase = family.evaluation_tasks(job.eval_tasks, seed=EVAL_SEED, K_query=EVAL_QUERY_POINTS)
    runs = {}
    for algo in job.algos:
        path = job.checkpoint(algo)
        resume = job.resume and (algo == job.algo or os.path.exists(path))
        result = meta_train(net, family, algo, job.iterations, alpha=job.alpha, meta_batch=job.meta_batch,
                            seed=job.seed, backend=job.backend, checkpoint_path=path,
                            checkpoint_every=job.checkpoint_every, resume=resume, progress=job.progress,
                            **job.train_kwargs(algo))  # fmt: skip
        runs[algo] = (result, evaluate(net, result.phi, tasks, job.alpha, range(11)))
    main, scores = runs[job.algo]
    curves = {f"{LABELS[a]} (k={r.config.k})": e for a, (r, e) in runs.items()}
    figure = os.path.join(job.out, "sine.png")
    _save_figure(figure, net, main.phi, tasks[0], job.alpha, amp[0], phase[0], curves,
                 f"{LABELS[job.algo]} on sine waves: {job.iterations} iterations, K = {job.K}")  # fmt: skip
    summary = {
        "algo": job.algo,
        "iterations": job.iterations,
        "seed": job.seed,
        "backend": main.config.backend,
        "K": job.K,
        "k": main.config.k,
        "alpha": job.alpha,
        "mse_after_steps": scores.as_dict(),
        "mse_stderr": scores.as_dict(scores.stderr),
        "eval_tasks": job.eval_tasks,
        "eval_seed": EVAL_SEED,
        "eval_query_points": EVAL_QUERY_POINTS,
        "resumed_from_iteration": main.start_iteration,
        "train_time_s": main.seconds,
        "meta_iters_per_s": main.iterations_per_second,
        "config": main.config.to_dict(),
        "compare": {a: _run_summary(r, e) for a, (r, e) in runs.items()} if job.compare else {},
        "figure": figure,
        "checkpoint": job.checkpoint(job.algo),
        "tinymeta_version": __version__,
    }
    summary["wall_time_s"] = time.perf_counter() - t0
    with open(os.path.join(job.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    for algo, (r, e) in runs.items():
        mse = ", ".join(f"{e.mean[s]:.3f} after {s}" for s in (0, 1, 10))
        speed = f"{r.iterations_per_second:.0f} it/s"
        log(f"{LABELS[algo]:>16} (k={r.config.k}): held-out query MSE {mse} steps; {speed}")
    log(f"summary: {os.path.join(job.out, 'summary.json')}")
    log(f"figure: {figure}")
    return summary


def _run_summary(result, scores):
    return {
        "k": result.config.k,
        "mse_after_steps": scores.as_dict(),
        "mse_stderr": scores.as_dict(scores.stderr),
        "train_time_s": result.seconds,
        "meta_iters_per_s": result.iterations_per_second,
        "config": result.config.to_dict(),
    }


def _save_figure(path, net, phi, task, alpha, amp, phase, curves, title):
    from .plots import sine_figure  # matplotlib is imported only when a figure is drawn

    fig = sine_figure(net, phi, task, alpha, amp, phase, curves, title=title)
    fig.savefig(path, dpi=120)
