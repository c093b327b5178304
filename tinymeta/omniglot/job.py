"""Omniglot N-way K-shot classification with an MLP: meta-train, evaluate on held-out characters, summarise.

Network: MLP 784 -> hidden -> N with ReLU, softmax cross-entropy as the *plain mean* NLL over the support
set (:mod:`tinymeta.losses`). Step-size convention: MAML's code sums ``NLL / K`` over the N*K support
examples, i.e. it steps on N times the mean, so its alpha = 0.4 equals alpha = 2.0 here for 5-way; the
defaults below use alpha = 0.4 on the plain mean.

One outer iteration (B tasks from the meta-training characters):

* maml / fomaml: g = mean_i g_i(phi) (eq. (3.3) / (3.4), k inner SGD steps of alpha), phi <- Adam(phi, g);
* reptile: phi <- phi + eps_t mean_i (phi~_i - phi) (eq. (4.1)), eps_t linear from eps_0 to eps_1 over the
  run (over the wall-clock budget when one is given). phi~_i: k inner steps on mini-batches of the support
  set with SGD(alpha) or with Adam(alpha, beta1 = 0) whose state persists across tasks and iterations, as in
  the Reptile code (resetting it per task does not learn). As in the Reptile code, training tasks have
  ``train_shots`` = 10 examples per class whatever the test K (5 steps of 10 = one pass over 5 x 10), and
  test-time adaptation uses mini-batches of ``test_batch`` = 5.

Evaluation: adapt to each held-out task's support set with the training inner loop for ``test_steps``
steps (Reptile/Adam: each task starts from a copy of the trained Adam state) and score the query set;
accuracy is the mean over tasks with a 95 % interval mean +- 1.96 std / sqrt(n).

References: Finn et al. (2017), MAML, section 5.1; Nichol et al. (2018), Reptile, section 6 and appendix.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import validate
from ..atomic import write_text_atomic
from ..backends import batch_functions
from ..inner import DivergenceError, adapt_trajectory
from ..mlp import MLP
from ..optim import Adam, linear_schedule
from ..reptile import inner_batch_indices
from ..tasks import TaskBatch
from .checkpoint import TrainState
from .checkpoint import load as load_checkpoint
from .checkpoint import save as save_checkpoint
from .data import find_data_dir, load_split
from .sampler import OmniglotTasks, evaluation_tasks

LOSS = "cross_entropy"
# Per-algorithm defaults (MAML's code and the Reptile paper's Omniglot settings), used where a field is None.
DEFAULTS = {
    "maml": dict(alpha=0.4, k=1, meta_batch=32, inner_optimizer="sgd"),
    "fomaml": dict(alpha=0.4, k=1, meta_batch=32, inner_optimizer="sgd"),
    "reptile": dict(
        alpha=1e-3,
        k=5,
        meta_batch=5,
        inner_optimizer="adam",
        inner_batch=10,
        test_steps=50,
        train_shots=10,
        test_batch=5,
    ),
}


@dataclass(frozen=True)
class JobConfig:
    """Settings of one Omniglot run; ``None`` fields take the algorithm's entry of :data:`DEFAULTS`."""

    algo: str = "maml"
    ways: int = 5
    shots: int = 1
    iterations: int = 60000
    seed: int = 0
    meta_batch: int | None = None
    alpha: float | None = None
    k: int | None = None
    test_steps: int | None = None  # default: k (maml, fomaml) -- test as trained; 50 for reptile
    query_shots: int = 15
    test_tasks: int = 1000
    hidden: tuple = (256, 128, 64, 64)
    split: str = "maml"
    backend: str = "numpy"
    budget_s: float | None = None
    inner_optimizer: str | None = None
    inner_batch: int | None = None
    train_shots: int | None = None  # examples per class of training tasks; default shots (reptile 10)
    test_batch: int | None = None  # reptile's test-time mini-batch; default 5
    epsilon: tuple = (1.0, 0.0)
    outer_lr: float = 1e-3
    outer_lr_final: float | None = None  # maml, fomaml: outer lr linear from outer_lr to this; None: constant
    curve_every_s: float | None = None  # default: budget / 8, else 60 s
    curve_tasks: int = 50
    data_dir: str | None = None

    def resolved(self) -> JobConfig:
        """A copy with every ``None`` default filled in and the values validated."""
        validate.one_of("algo", self.algo, tuple(DEFAULTS))
        d = DEFAULTS[self.algo]
        c = dataclasses.replace(self, **{f: d[f] for f in d if getattr(self, f) is None})
        c = dataclasses.replace(c, test_steps=c.k if c.test_steps is None else c.test_steps,
                                train_shots=c.shots if c.train_shots is None else c.train_shots)  # fmt: skip
        validate.one_of("inner_optimizer", c.inner_optimizer, ("sgd", "adam"))
        if c.inner_optimizer == "adam" and c.algo != "reptile":
            raise ValueError(f"inner_optimizer='adam' is for reptile only; got algo={c.algo!r}")
        for name in ("ways", "shots", "train_shots", "iterations", "meta_batch", "query_shots", "test_tasks"):
            validate.count(name, getattr(c, name), 1)
        validate.count("k", c.k, 1)
        validate.count("curve_tasks", c.curve_tasks, 1)
        train_query = 1 if c.algo == "reptile" else c.query_shots
        if max(c.shots + c.query_shots, c.train_shots + train_query) > 20:
            got = f"shots={c.shots}, train_shots={c.train_shots}, query_shots={c.query_shots}"
            raise ValueError(f"shots (and train_shots) + query_shots must be <= the 20 drawings; got {got}")
        validate.count("test_steps", c.test_steps, 0)
        validate.positive("alpha", c.alpha)
        validate.positive("outer_lr", c.outer_lr)
        if c.outer_lr_final is not None and not 0.0 <= c.outer_lr_final <= c.outer_lr:
            raise ValueError(f"outer_lr_final must be in [0, outer_lr={c.outer_lr}]; got {c.outer_lr_final}")
        if c.budget_s is not None:
            validate.positive("budget_s", c.budget_s)
        return c


def make_net(cfg: JobConfig) -> MLP:
    """``MLP([784, *hidden, ways])`` with ReLU hidden layers."""
    return MLP([784, *cfg.hidden, cfg.ways], "relu")


def he_init(net: MLP, rng) -> np.ndarray:
    """W_l ~ N(0, 2 / d_{l-1}), b_l = 0 (He et al. 2015): keeps ReLU activations at unit scale through
    depth, where the default uniform(+-1/sqrt(d)) init shrinks them by about sqrt(6) per layer."""
    rng = validate.rng(rng)
    parts = []
    for d_in, d_out in zip(net.sizes[:-1], net.sizes[1:], strict=True):
        parts += [rng.normal(0.0, np.sqrt(2.0 / d_in), d_in * d_out), np.zeros(d_out)]
    return np.concatenate(parts)


def adapt_at(net, phi, task, cfg, steps, adam_state=None, rng=None):
    """Parameters after each number of inner steps in ``steps`` (sorted) on ``task``'s support set.

    SGD: full-batch steps of alpha (eq. (3.1)); Adam (Reptile): mini-batches of ``test_batch`` drawn
    with ``rng``, starting from ``adam_state`` (which is not changed), on ``cfg.backend``.
    Returns a list of (P,) arrays, one per entry of ``steps``.
    """
    if cfg.inner_optimizer == "sgd":
        traj = adapt_trajectory(net, phi, task.x_support, task.y_support, cfg.alpha, steps[-1], LOSS)
        return [traj[s] for s in steps]
    adam_batch = batch_functions(cfg.backend)["reptile_adam"]
    one = TaskBatch(*(np.asarray(a)[None] for a in task))
    idx = inner_batch_indices(rng, 1, len(task.x_support), cfg.test_batch, steps[-1])
    out, done, state = [], 0, adam_state
    for s in steps:  # Adam from step `done` to step s, then record
        if s > done:
            _, delta, state = adam_batch(net, phi, one, cfg.alpha, s - done, state, LOSS, 0.0,
                                         idx[:, done:s])  # fmt: skip
            phi, done = phi + delta, s
        out.append(phi)
    return out


def evaluate_accuracy(net, phi, tasks, cfg, steps, adam_state=None, seed=0) -> np.ndarray:
    """Query accuracy of every task after each number of inner steps: array (num_tasks, len(steps))."""
    rng = np.random.default_rng(seed)
    acc = np.empty((len(tasks), len(steps)))
    for i in range(len(tasks)):
        t = tasks[i]
        for j, p in enumerate(adapt_at(net, phi, t, cfg, steps, adam_state, rng)):
            acc[i, j] = np.mean(np.argmax(net.forward(p, t.x_query), axis=1) == t.y_query)
    return acc


def mean_ci95(values) -> tuple[float, float]:
    """(mean, 1.96 * std(ddof=1) / sqrt(n)) of per-task accuracies."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def train(net, cfg, train_tasks, curve_tasks=None, progress=True, resume=None, checkpoint=None):
    """Meta-train from ``he_init(net, seed)``; stops after ``iterations`` or ``budget_s`` seconds of training.

    ``resume``: a :class:`~tinymeta.omniglot.checkpoint.TrainState` to continue from (the budget counts
    the training seconds before it too). ``checkpoint``: a path written atomically at every
    learning-curve point and at the end (see :mod:`tinymeta.omniglot.checkpoint`).

    Returns ``(phi, adam_state or None, history)``; ``history`` has ``meta_loss`` per iteration,
    ``train_seconds`` (excluding learning-curve evaluations) and ``curve``: a list of
    ``{"seconds", "iteration", "accuracy"}`` measured on ``curve_tasks`` after ``cfg.test_steps`` steps.
    """
    rng = np.random.default_rng(cfg.seed + 1)  # task stream (net init uses cfg.seed)
    if resume is None:
        phi = he_init(net, cfg.seed)
        adam_state = Adam(cfg.alpha, beta1=0.0).init(phi.size) if cfg.inner_optimizer == "adam" else None
        resume = TrainState(phi, Adam(cfg.outer_lr).init(phi.size), adam_state, rng.bit_generator.state,
                            0, 0.0, 0.0, [], [])  # fmt: skip
    phi, outer_state, adam_state, _, it, train_s, next_curve, losses, curve = resume
    rng.bit_generator.state = resume.rng_state
    outer, fns = Adam(cfg.outer_lr), batch_functions(cfg.backend)
    every = cfg.curve_every_s or (cfg.budget_s / 8 if cfg.budget_s else 60.0)
    history = {"meta_loss": list(losses), "curve": list(curve), "train_seconds": train_s}
    bar = _bar(progress, cfg, it)

    def record():
        steps = sorted({0, cfg.test_steps})
        acc = evaluate_accuracy(net, phi, curve_tasks, cfg, steps, adam_state, seed=cfg.seed)[:, -1]
        history["curve"].append({"seconds": train_s, "iteration": it, "accuracy": float(acc.mean())})
        if progress:
            bar.write(
                f"{train_s:7.1f} s, iteration {it}: held-out accuracy {acc.mean():.1%} ({len(acc)} tasks)"
            )

    def save():
        if checkpoint is not None:
            state = TrainState(phi, outer_state, adam_state, rng.bit_generator.state, it, train_s, next_curve,
                               history["meta_loss"], history["curve"])  # fmt: skip
            save_checkpoint(checkpoint, cfg, state, net.sizes)

    while it < cfg.iterations and (cfg.budget_s is None or train_s < cfg.budget_s):
        if curve_tasks is not None and train_s >= next_curve:
            record()
            next_curve += every
            save()
        t0 = time.perf_counter()
        batch = train_tasks.sample_batch(rng, cfg.meta_batch)
        with np.errstate(over="ignore", invalid="ignore"):
            frac = max(it / cfg.iterations, train_s / cfg.budget_s if cfg.budget_s else 0.0)  # of the run
            if cfg.algo == "reptile":
                eps = linear_schedule(*cfg.epsilon, frac, 1.0)
                idx = inner_batch_indices(rng, batch.num_tasks, batch.xs.shape[1], cfg.inner_batch, cfg.k)
                if cfg.inner_optimizer == "adam":
                    value, delta, adam_state = fns["reptile_adam"](net, phi, batch, cfg.alpha, cfg.k,
                                                                   adam_state, LOSS, 0.0, idx)  # fmt: skip
                else:
                    value, delta = fns["reptile"](net, phi, batch, cfg.alpha, cfg.k, LOSS, inner_indices=idx)
                phi = phi + eps * delta
            else:
                value, g = fns[cfg.algo](net, phi, batch, cfg.alpha, cfg.k, LOSS)
                lr_end = cfg.outer_lr if cfg.outer_lr_final is None else cfg.outer_lr_final
                lr = linear_schedule(cfg.outer_lr, lr_end, frac, 1.0)
                phi, outer_state = outer.update(phi, g, outer_state, lr=lr)
        if not (np.isfinite(value) and np.all(np.isfinite(phi))):
            where = f"; the last checkpoint ({checkpoint}) holds the state before" if checkpoint else ""
            raise DivergenceError(f"{cfg.algo} diverged at iteration {it + 1}; try a smaller alpha "
                                  f"(alpha={cfg.alpha}) or outer step{where}")  # fmt: skip
        train_s += time.perf_counter() - t0
        it += 1
        history["meta_loss"].append(float(value))
        bar.update(1)
        if it % 20 == 0:
            bar.set_postfix(
                loss=f"{np.mean(history['meta_loss'][-20:]):.3f}", t=f"{train_s:.0f}s", refresh=False
            )
    if curve_tasks is not None:
        record()
    save()
    bar.close()
    history["train_seconds"] = train_s
    return phi, adam_state, history


def _bar(progress, cfg, start=0):
    from tqdm import tqdm

    total = None if cfg.budget_s else cfg.iterations
    return tqdm(total=total, initial=start, desc=f"{cfg.algo} {cfg.ways}-way {cfg.shots}-shot", unit="it",
                disable=not progress)  # fmt: skip


def run(cfg: JobConfig, out_dir, progress=True, figure=True, resume=False) -> dict:
    """Train, evaluate on ``cfg.test_tasks`` held-out tasks, write ``out_dir``/{checkpoint.npz, summary.json,
    omniglot.png}; return the summary dict. ``resume``: continue from ``out_dir``/checkpoint.npz.

    Raises :class:`~tinymeta.omniglot.OmniglotNotFoundError` (with instructions) if the data is missing,
    ``FileNotFoundError`` / ``ValueError`` if ``resume`` finds no checkpoint or one of other settings.
    """
    t_start = time.perf_counter()
    cfg = cfg.resolved()
    data_dir = find_data_dir(cfg.data_dir)
    out = Path(out_dir)
    start = load_checkpoint(out / "checkpoint.npz", cfg) if resume else None
    out.mkdir(parents=True, exist_ok=True)
    meta_train, meta_test = load_split(cfg.split, data_dir)
    # Reptile never looks at a query set in training: one query drawing leaves room for train_shots = 10
    query = 1 if cfg.algo == "reptile" else cfg.query_shots
    train_tasks = OmniglotTasks(meta_train, cfg.ways, cfg.train_shots, query)
    test_sampler = OmniglotTasks(meta_test, cfg.ways, cfg.shots, cfg.query_shots)
    tests = evaluation_tasks(test_sampler, cfg.test_tasks, seed=10_000 + cfg.seed)
    net = make_net(cfg)
    curve = evaluation_tasks(test_sampler, cfg.curve_tasks, seed=20_000 + cfg.seed)
    phi, adam_state, history = train(net, cfg, train_tasks, curve, progress, start, out / "checkpoint.npz")
    steps = sorted({0, 1, cfg.k, cfg.test_steps} | ({5, 10, 25} & set(range(cfg.test_steps))))
    t_eval = time.perf_counter()
    acc = evaluate_accuracy(net, phi, tests, cfg, steps, adam_state, seed=cfg.seed)
    mean, ci = mean_ci95(acc[:, steps.index(cfg.test_steps)])
    iters, train_s = len(history["meta_loss"]), history["train_seconds"]
    summary = {
        "accuracy": mean, "ci95": ci, "test_tasks": cfg.test_tasks, "iterations": iters,
        "algo": cfg.algo, "ways": cfg.ways, "shots": cfg.shots, "seed": cfg.seed,
        "test_steps": cfg.test_steps, "train_seconds": train_s,
        "iterations_per_second": iters / max(train_s, 1e-9),
        "eval_seconds": time.perf_counter() - t_eval,
        "accuracy_by_test_steps": {str(s): mean_ci95(acc[:, j])[0] for j, s in enumerate(steps)},
        "ci95_by_test_steps": {str(s): mean_ci95(acc[:, j])[1] for j, s in enumerate(steps)},
        "accuracy_vs_time": history["curve"], "num_params": net.num_params, "data_dir": str(data_dir),
        "alpha_convention": "inner step alpha on the plain mean cross-entropy of the support set "
        "(MAML's code: alpha on N x the mean; its 0.4 is 2.0 here for 5-way)",
        "config": {**dataclasses.asdict(cfg), "hidden": list(cfg.hidden)},
    }  # fmt: skip
    if figure:
        from .plots import omniglot_figure

        fig = omniglot_figure(net, phi, summary, history, tests, cfg, adam_state)
        fig.savefig(out / "omniglot.png", dpi=110)
    summary["wall_seconds"] = time.perf_counter() - t_start
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
