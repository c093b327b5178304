"""``tinymeta omniglot``: N-way K-shot Omniglot with an MLP: meta-train, evaluate on held-out characters.

Network: MLP 784 -> hidden -> N with ReLU, He-normal start, softmax cross-entropy as the *plain mean*
NLL over the support set (:mod:`tinymeta.losses`). Step-size convention: MAML's code sums ``NLL / K``
over the N*K support examples, i.e. it steps on N times the mean, so its alpha = 0.4 equals alpha = 2.0
here for 5-way; the defaults below use alpha = 0.4 on the plain mean.

Training runs on the one loop (:mod:`tinymeta.training`): MAML / first-order MAML with outer Adam (its
learning rate optionally annealed), Reptile with an inner Adam (beta1 = 0) whose state persists across
tasks and iterations, as in the Reptile code (resetting it per task does not learn). As in the Reptile
code, Reptile's training tasks have ``train_shots`` = 10 examples per class whatever the test K (5 steps
of 10 = one pass over 5 x 10) and test-time adaptation uses mini-batches of ``test_batch`` = 5.

First-order MAML as the Reptile code runs it (``fomaml-tail``, :mod:`tinymeta.fomaml_tail`) takes Reptile's
data, inner loop and defaults and keeps only the last inner step; its final mini-batch is drawn like the
others (``tail="shared"``) or is ``tail_shots`` examples per class held apart (``tail="separate"``).

Batch norm (``batch_norm=True``, the MAML paper's MLP): every hidden layer is normalised with the mean
and variance of the rows passed, with a learned shift beta (no scale, eps 1e-3, as MAML's code); the
query set is normalised with its own statistics (transductive). The inner loop adapts all of phi,
beta included (MAML's code leaves beta to the outer loop).

Evaluation: adapt to each held-out task's support set with the training inner loop for ``test_steps``
steps (Reptile/Adam: each task starts from a copy of the trained Adam state) and score the query set;
accuracy is the mean over tasks with a 95 % interval mean +- 1.96 std / sqrt(n). A learning curve is
measured on ``curve_tasks`` other held-out tasks every ``curve_every_s`` seconds of training.

References: Finn et al. (2017), MAML, section 5.1; Nichol et al. (2018), Reptile, section 6 and appendix.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from .. import __version__, validate
from ..backends import batch_functions
from ..evaluation import evaluate
from ..inner import DivergenceError
from ..omniglot import OmniglotTasks, evaluation_tasks, find_data_dir, load_split
from ..optim import Adam
from ..training import ALGORITHMS, TrainConfig, train
from ..training.config import epsilon_pair, make_net, optimizer_to_dict
from . import rundir

LOSS = "cross_entropy"
DRAWINGS = 20
DEFAULTS = {  # per algorithm: MAML's code and the Reptile paper's Omniglot settings, used where None is given
    "maml": dict(alpha=0.4, k=1, meta_batch=32, inner_optimizer="sgd"),
    "fomaml": dict(alpha=0.4, k=1, meta_batch=32, inner_optimizer="sgd"),
    "reptile": dict(alpha=1e-3, k=5, meta_batch=5, inner_optimizer="adam", inner_batch=10, test_steps=50,
                    train_shots=10, test_batch=5),
}  # fmt: skip
DEFAULTS["fomaml-tail"] = dict(DEFAULTS["reptile"])  # first-order MAML as the Reptile code runs it
DEFAULTS["metasgd"] = dict(DEFAULTS["maml"])  # every learned step size starts at alpha
DEFAULTS["anil"] = dict(DEFAULTS["maml"])  # alpha: the head's step
DEFAULTS["imaml"] = dict(alpha=0.4, k=5, meta_batch=32, inner_optimizer="sgd", lam=2.0, cg_iterations=5)
"""iMAML runs its practical variant here (the ReLU network rules out the exact solve), with the paper's
lam = 2 and 5 CG iterations (Rajeswaran et al. 2019, Table 2), and 5 inner steps where the paper takes 16."""


class OmniglotJobError(ValueError):
    """Settings that the data cannot satisfy (e.g. more ways than classes)."""


@dataclass(frozen=True)
class OmniglotJob:
    """One ``tinymeta omniglot`` run: the training config and the task, evaluation and data settings.
    Build it with :func:`omniglot_job`, which fills the per-algorithm defaults and checks everything."""

    train: TrainConfig
    ways: int
    shots: int
    query_shots: int
    train_shots: int
    test_steps: int
    test_tasks: int
    hidden: tuple
    split: str
    curve_tasks: int
    data_dir: str | None

    def to_dict(self) -> dict:
        job = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "train"}
        return {**job, "hidden": list(self.hidden), "train": self.train.to_dict()}


def omniglot_job(algo="maml", *, ways=5, shots=1, iterations=60000, seed=0, meta_batch=None, alpha=None,
                 k=None,
                 test_steps=None, query_shots=15, test_tasks=1000, hidden=(256, 128, 64, 64), split="maml",
                 backend=None, time_budget=None, inner_optimizer=None, inner_batch=None, train_shots=None,
                 test_batch=None, epsilon=(1.0, 0.0), outer_lr=1e-3, outer_lr_final=None, curve_every_s=None,
                 curve_tasks=50, data_dir=None, batch_norm=False, tail=None,
                 tail_shots=None, dtype="float64", lam=None, tol=None, init="he",
                 cg_iterations=None) -> OmniglotJob:  # fmt: skip
    """The settings of an Omniglot run with the per-algorithm :data:`DEFAULTS` filled in, checked once.

    ``batch_norm=True``: the MAML paper's network, each hidden layer normalised with the statistics of
    the batch at hand (transductive, :mod:`tinymeta.batchnorm`), on either backend.
    ``init``: "he" (He-normal, the default) or "truncnormal" (MAML's code's start, which matters with
    batch norm: :func:`tinymeta.training.init.truncated_normal`).
    ``tail``, ``tail_shots``: algo="fomaml-tail" only (:mod:`tinymeta.fomaml_tail`).
    ``lam``, ``tol``, ``cg_iterations``: algo="imaml" only (:class:`TrainConfig`; exact iMAML, ``tol``, is
    refused on this ReLU network with the reason).
    ``dtype="float32"``: the Numba kernels compute in single precision (training images are then built
    as float32), also in Reptile's test-time Adam steps; phi, the optimizers and MAML's test-time SGD
    steps stay float64 (:class:`TrainConfig`)."""
    d = DEFAULTS[validate.one_of("algo", algo, tuple(DEFAULTS))]
    pick = lambda value, name: d.get(name) if value is None else value  # noqa: E731
    if algo == "imaml" and tol is not None and k is None:
        k = 0  # exact iMAML solves its inner problem; it takes no steps
    alpha, k, meta_batch = pick(alpha, "alpha"), pick(k, "k"), pick(meta_batch, "meta_batch")
    inner_optimizer = pick(inner_optimizer, "inner_optimizer")
    reptile = ALGORITHMS[algo].outer == "interpolate"  # Reptile's data and inner loop (also fomaml-tail)
    if not reptile and (inner_batch is not None or test_batch is not None or train_shots is not None):
        raise ValueError("inner_batch, test_batch and train_shots are Reptile's settings; use algo='reptile' "
                         "or 'fomaml-tail'")  # fmt: skip
    if reptile and outer_lr_final is not None:
        raise ValueError(f"outer_lr_final: {algo} has no outer optimizer (its outer step is epsilon)")
    if not isinstance(batch_norm, bool):
        raise TypeError(f"batch_norm must be True or False; got {batch_norm!r}")
    train_shots = shots if (train_shots is None and not reptile) else pick(train_shots, "train_shots")
    test_steps = (k if not reptile else d["test_steps"]) if test_steps is None else test_steps
    for name, value in (("ways", ways), ("shots", shots), ("query_shots", query_shots), ("train_shots",
                        train_shots), ("test_tasks", test_tasks), ("curve_tasks", curve_tasks)):  # fmt: skip
        validate.count(name, value, minimum=2 if name in ("ways", "test_tasks") else 1)
    if algo == "imaml":
        lam = pick(lam, "lam")
        cg_iterations = pick(cg_iterations, "cg_iterations") if tol is None else cg_iterations
    validate.count("k", k, minimum=0 if tol is not None else 1)
    validate.count("test_steps", test_steps)
    train_query = 1 if reptile else query_shots  # Reptile never looks at a query set in training
    if max(shots + query_shots, train_shots + train_query) > DRAWINGS:
        raise ValueError(
            f"shots (and train_shots) + query_shots must be <= the {DRAWINGS} drawings of a "
            f"character; got shots={shots}, train_shots={train_shots}, query_shots={query_shots}"
        )
    hidden = tuple(validate.count("each hidden width", h, minimum=1) for h in hidden)
    if time_budget is not None:
        time_budget = validate.positive("time_budget", time_budget)
    epsilon = epsilon_pair(epsilon)  # checked whatever the algorithm: a bad value is a mistake either way
    every = curve_every_s or (time_budget / 8 if time_budget else 60.0)
    config = TrainConfig(
        algo=algo, iterations=iterations, alpha=alpha, k=k, meta_batch=meta_batch, loss=LOSS,
        inner_optimizer=inner_optimizer,
        inner_batch_size=pick(inner_batch, "inner_batch") if reptile else None,
        outer_optimizer=None if reptile else optimizer_to_dict(Adam(outer_lr)),
        outer_lr_final=outer_lr_final, epsilon=epsilon if reptile else None, time_budget=time_budget,
        seed=seed, backend=backend, eval_every_seconds=every, eval_steps=sorted({0, test_steps}),
        eval_batch_size=pick(test_batch, "test_batch") if reptile and inner_optimizer == "adam" else None,
        init=init, net={"sizes": [784, *hidden, ways], "activation": "relu", "batch_norm": batch_norm},
        family=f"omniglot(split={split!r}, ways={ways}, shots={train_shots}, query_shots={train_query})",
        tail=tail, tail_shots=tail_shots, dtype=dtype, lam=lam, tol=tol, cg_iterations=cg_iterations,
    )  # fmt: skip
    job = OmniglotJob(config, ways, shots, query_shots, train_shots, test_steps, test_tasks, hidden,
                      validate.one_of("split", split, ("maml", "lake")), curve_tasks, data_dir)  # fmt: skip
    _check_memory(job)
    return job


def _check_memory(job):
    """Refuse networks too large to train here before allocating anything: phi, its gradient, the
    optimizers' moments, the inner iterates and one result row per task of a meta-batch are P-vectors,
    and every layer keeps its activations for the k + 2 passes of each task."""
    c, sizes = job.train, job.train.net["sizes"]
    P = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    rows = job.ways * max(job.train_shots, job.shots) + job.ways * job.query_shots
    vectors = (c.meta_batch + 2 * c.k + 12) * P * 8
    activations = 2 * (2 * c.k + 2) * rows * sum(sizes[1:]) * 4 * 8
    validate.fits_in_memory(
        f"a network of {P:,} parameters (hidden {list(job.hidden)})", vectors + activations
    )


def reported_steps(job: OmniglotJob):
    """The numbers of test-time steps scored at the end: 0, 1, k, the test steps, and 5, 10, 25 below it."""
    t = job.test_steps
    return sorted({0, 1, job.train.k, t} | ({5, 10, 25} & set(range(t))))


def run_omniglot(job: OmniglotJob, out, *, resume=False, overwrite=False, progress=True, log=print) -> dict:
    """Train, evaluate on ``job.test_tasks`` held-out tasks, write ``out``/{checkpoint.npz, summary.json,
    omniglot.png}; return the summary.

    Raises :class:`~tinymeta.omniglot.OmniglotNotFoundError` (with instructions) if the data is missing,
    :class:`OmniglotJobError` if the data cannot make the tasks asked for,
    :class:`~tinymeta.jobs.rundir.RunDirError` if ``out`` cannot be used as asked.
    """
    t_start = time.perf_counter()
    c = job.train
    data_dir = find_data_dir(job.data_dir)
    out, lock = rundir.prepare(out, resume=resume, overwrite=overwrite)
    with lock:
        meta_train, meta_test = load_split(job.split, data_dir)
        try:
            support_only = ALGORITHMS[c.algo].outer == "interpolate"  # Reptile, fomaml-tail: no query set
            train_tasks = OmniglotTasks(meta_train, job.ways, job.train_shots,
                                        1 if support_only else job.query_shots, dtype=c.dtype)  # fmt: skip
            test_sampler = OmniglotTasks(meta_test, job.ways, job.shots, job.query_shots)
        except ValueError as e:
            raise OmniglotJobError(f"{e} (split {job.split!r})") from None
        tests = evaluation_tasks(test_sampler, job.test_tasks, seed=10_000 + c.seed)
        curve = evaluation_tasks(test_sampler, job.curve_tasks, seed=20_000 + c.seed)
        net = make_net(c.net)
        try:
            result = train(net, train_tasks, c, eval_tasks=curve, checkpoint_path=out / "checkpoint.npz",
                           resume=resume, progress=progress)  # fmt: skip
        except DivergenceError as e:
            rundir.write_summary(
                out, {"algo": c.algo, "diverged": True, "error": str(e), "config": job.to_dict()}
            )
            raise
        steps = reported_steps(job)
        adapter = _adapter(net, c, result)
        t_eval = time.perf_counter()
        scores = evaluate(net, result.phi, tests, c.alpha, steps, LOSS, adapt=adapter())
        summary = _summary(job, result, scores, steps, net, data_dir, time.perf_counter() - t_eval, out)
        summary["wall_seconds"] = time.perf_counter() - t_start
        rundir.write_summary(out, summary)
        error = rundir.write_figure(out / "omniglot.png", lambda: _figure(net, result, summary, tests, job,
                                                                          adapter()), log)  # fmt: skip
        if error is not None:
            summary.update(figure=None, figure_error=error)
            rundir.write_summary(out, summary)
    return summary


def _adapter(net, config, result):
    """A fresh test-time inner loop each call (Reptile/Adam: the same mini-batches for the same tasks)."""
    functions = batch_functions(config.backend, config.dtype)
    return lambda: ALGORITHMS[config.algo].adapter(
        functions, net, config, result.inner_state, config.seed, params=result.params
    )


def _summary(job, result, scores, steps, net, data_dir, eval_seconds, out):
    acc, ci = scores.accuracy_ci95()
    j = steps.index(job.test_steps)
    curve = [{"seconds": e["seconds"], "iteration": e["iteration"], "accuracy": e["accuracy"][-1]}
             for e in result.history["evaluations"]]  # fmt: skip
    return {
        "accuracy": acc[j], "ci95": ci[j], "test_tasks": job.test_tasks, "iterations": result.iterations,
        "algo": job.train.algo, "ways": job.ways, "shots": job.shots, "seed": job.train.seed,
        "test_steps": job.test_steps, "train_seconds": result.train_seconds,
        "iterations_per_second": result.iterations / max(result.train_seconds, 1e-9),
        "stopped_by": result.stopped_by, "resumed_from_iteration": result.start_iteration,
        "batch_norm": job.train.net["batch_norm"], "backend": job.train.backend, "dtype": job.train.dtype,
        "eval_seconds": eval_seconds,
        "accuracy_by_test_steps": {str(s): a for s, a in zip(steps, acc, strict=True)},
        "ci95_by_test_steps": {str(s): h for s, h in zip(steps, ci, strict=True)},
        "accuracy_vs_time": curve, "num_params": net.num_params, "data_dir": str(data_dir),
        "alpha_convention": "inner step alpha on the plain mean cross-entropy of the support set "
        "(MAML's code: alpha on N x the mean; its 0.4 is 2.0 here for 5-way)",
        "config": job.to_dict(), "figure": str(out / "omniglot.png"), "diverged": False,
        "tinymeta_version": __version__,
    }  # fmt: skip


def _figure(net, result, summary, tests, job, adapt):
    from .omniglot_figures import omniglot_figure

    def predict(task):
        phi = adapt(result.phi, task, [job.test_steps])[-1]
        return net.forward(phi, task.x_query).argmax(axis=1)

    return omniglot_figure(summary, result.history["meta_loss"], tests, predict, job.ways, job.shots,
                           ALGORITHMS[job.train.algo].meta_loss)  # fmt: skip
