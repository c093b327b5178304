"""The training loop: one loop for every job and every algorithm.

Outer iteration t = 0, 1, ... draws a meta-batch of M tasks and asks the algorithm
(:mod:`tinymeta.training.algorithms`) for a direction; then

    outer="optimizer":    phi <- OuterOpt(phi, g; lr_t)         (MAML eq. (3.3), FOMAML (3.4), joint)
    outer="interpolate":  phi <- phi + eps_t * mean(phi~ - phi)  (Reptile eq. (4.1))

(Meta-SGD moves params = [phi; alphas] the same way, see :mod:`tinymeta.training.algorithms`),
with lr_t and eps_t linear in the fraction of the run done (iterations, or the time budget if that
ends first). It stops after ``iterations``, or after ``time_budget`` seconds of training; it
evaluates every ``eval_every`` iterations and/or ``eval_every_seconds`` seconds and at the end;
it writes the checkpoint after every evaluation, every ``checkpoint_every`` iterations, at the end,
on Ctrl-C or SIGTERM, and when the run diverges (then it raises :class:`~tinymeta.DivergenceError`).

Randomness: phi starts from ``config.init`` with ``config.seed``; one generator,
``np.random.default_rng(seed + 1)``, draws every meta-batch and every inner mini-batch, in that order
(the reference implementations seed their task streams the same way). A seed therefore fixes a run
bit for bit when it stops by iterations, and a checkpoint (which stores that generator's state)
continues it bit for bit.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..backends import batch_functions
from ..evaluation import evaluate
from ..inner import DivergenceError
from ..optim import linear_schedule
from ..tasks import TaskBatch, check_task, iter_tasks
from . import signals
from .algorithms import ALGORITHMS
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig, check_resumable, net_spec, optimizer_from_dict
from .init import initial_phi

_WARM = set()  # algorithms whose kernels this process has run (only the first warm-up is announced)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    phi : ndarray, shape (P,), the meta-learned initial parameters of the network
    history : dict
        ``meta_loss``: one value per iteration (iteration i + 1 at index i): the mean query loss
        after adapting (maml, fomaml), at phi (joint), or the mean support loss at phi (reptile);
        ``evaluations``: one record per evaluation (see :class:`~tinymeta.training.checkpoint.Checkpoint`).
    config : TrainConfig
    optimizer_state : dict, the outer optimizer's final state
    inner_state : dict, the state the algorithm carries (Reptile's inner Adam), or {}
    start_iteration : int, where this call began (> 0 after resuming)
    iterations : int, iterations completed in all
    train_seconds : float, seconds of training of the whole run (evaluations excluded)
    iterations_per_second : float, in this call, compilation and evaluations excluded
    stopped_by : {"iterations", "time_budget"}
    params : ndarray, the whole vector the run optimised: phi itself, or [phi; alphas] of shape (2P,) for
        Meta-SGD (:attr:`~tinymeta.training.algorithms.Algorithm.initial`)
    """

    phi: np.ndarray
    history: dict
    config: TrainConfig
    optimizer_state: dict
    inner_state: dict
    start_iteration: int
    iterations: int
    train_seconds: float
    iterations_per_second: float
    stopped_by: str
    params: np.ndarray


def batch_sampler(family):
    """``sample(rng, M) -> TaskBatch`` for a family with ``sample_batch`` or (like Sine) ``sample_arrays``."""
    if hasattr(family, "sample_batch"):
        return lambda rng, M: TaskBatch(*family.sample_batch(rng, M))
    if hasattr(family, "sample_arrays"):
        return lambda rng, M: TaskBatch(*family.sample_arrays(rng, M)[2:])
    raise TypeError(f"family must have sample_batch(rng, M) or sample_arrays(rng, M); got {family!r}")


def train(net, family, config: TrainConfig, *, eval_tasks=None, checkpoint_path=None, resume=False,
          progress=True, phi0=None, log=None) -> TrainResult:  # fmt: skip
    """Meta-train ``net`` on tasks from ``family`` as ``config`` says (see the module docstring).

    Parameters
    ----------
    net : MLP, the one ``config.net`` describes
    family : task family with ``sample_batch(rng, M)`` or ``sample_arrays(rng, M)`` (e.g. :class:`Sine`)
    config : TrainConfig
    eval_tasks : sequence of Task, optional; scored with :func:`tinymeta.evaluation.evaluate` after each
        number of steps in ``config.eval_steps``, with the algorithm's own test-time inner loop
    checkpoint_path : path of the ``.npz`` checkpoint, or None
    resume : bool, continue from ``checkpoint_path`` (which must exist, be consistent and hold the same
        settings but for :data:`~tinymeta.training.config.MAY_CHANGE`); ``phi0`` is then not used
    progress : bool, a progress bar (tqdm) and messages on stderr
    phi0 : ndarray, shape (P,), the start when ``config.init == "phi0"``
    log : callable or None, receives messages (default: print to stderr when ``progress``)

    Raises
    ------
    DivergenceError
        A non-finite meta-loss, direction or phi, or a diverging inner loop; the message names the
        iteration and the checkpoint keeps the last good state.
    KeyboardInterrupt
        Ctrl-C, or :class:`~tinymeta.training.signals.Interrupted` for SIGTERM, after saving.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a tinymeta.TrainConfig; got {type(config).__name__}")
    if config.net and net_spec(net) != config.net:
        raise ValueError(f"net {net!r} is not the config's {config.net}")
    if resume and checkpoint_path is None:
        raise ValueError("resume needs a checkpoint_path")
    sample = batch_sampler(family)
    if eval_tasks is not None:  # fail now rather than at the first evaluation
        first = next(iter(iter_tasks(eval_tasks)), None)
        if first is None:
            raise ValueError("eval_tasks is empty; pass held-out tasks or None")
        check_task(net, first, config.loss)
    try:
        functions = batch_functions(config.backend, config.dtype)
    except ImportError as e:
        raise ImportError(f"backend={config.backend!r} is not available ({e}); use backend 'numpy'") from e
    if log is None:
        log = _stderr if progress else (lambda message: None)
    start = _resume(net, config, checkpoint_path) if resume else _fresh(net, config, phi0)
    loop = _Loop(net, config, functions, sample, eval_tasks, checkpoint_path, log, progress)
    if config.backend == "numba" and start.iteration < config.iterations:
        loop.warm_up(start)
    with signals.interrupts_raise():
        return loop.run(start)


class _Loop:
    """The loop's fixed parts (network, config, backend, sampler, evaluation tasks, where to save)."""

    def __init__(self, net, config, functions, sample, eval_tasks, path, log, progress):
        self.net, self.config, self.functions, self.sample = net, config, functions, sample
        self.eval_tasks, self.path, self.log, self.progress = eval_tasks, path, log, progress
        self.algorithm = ALGORITHMS[config.algo]
        self.outer = None if config.outer_optimizer is None else optimizer_from_dict(config.outer_optimizer)
        if self.outer is not None:  # the outer learning rate at the end of the run (linear schedule)
            self.outer_lr_final = self.outer.lr if config.outer_lr_final is None else config.outer_lr_final

    def warm_up(self, ckpt):
        """Compile (or load from the cache) the kernels on a one-task batch drawn from a separate generator,
        so that the iterations timed and shown in the progress bar exclude compilation."""
        t0 = time.perf_counter()
        if not _WARM:
            self.log(
                "Numba kernels: compiled on first use on a machine (about 20 s), then read from its cache"
            )
        batch = self.sample(np.random.default_rng(0), 1)
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                self.algorithm.step(self.functions, self.net, self.config, ckpt.phi, batch, ckpt.inner_state,
                                    np.random.default_rng(0))  # fmt: skip
            except DivergenceError:
                pass  # the real iterations will say so, with their own message
        if time.perf_counter() - t0 > 1.0:
            self.log(f"Numba kernels ready in {time.perf_counter() - t0:.1f} s")
        _WARM.add(self.config.algo)

    def run(self, ckpt):
        c, a = self.config, self.algorithm
        rng = np.random.default_rng()
        rng.bit_generator.state = ckpt.rng_state
        state, start = ckpt, ckpt.iteration
        timed = 0.0  # training seconds in this call
        bar = _progress_bar(self.progress, c, start)
        try:
            while state.iteration < c.iterations and not self._out_of_time(state):
                if self._timed_evaluation_due(state):
                    state = self._evaluate(
                        state, bar, next_eval=state.next_eval_seconds + c.eval_every_seconds
                    )
                t0 = time.perf_counter()
                batch = self.sample(rng, c.meta_batch)
                fraction = c.fraction_done(state.iteration, state.train_seconds)
                with np.errstate(over="ignore", invalid="ignore"):
                    try:
                        value, direction, inner = a.step(self.functions, self.net, c, state.phi, batch,
                                                         state.inner_state, rng)  # fmt: skip
                    except DivergenceError as e:  # an inner loop blew up; the cause stays chained
                        raise self._diverged(state, "an inner loop produced non-finite values") from e
                    if a.outer == "interpolate":
                        phi, outer = state.phi + linear_schedule(*c.epsilon, fraction, 1.0) * direction, {}
                    else:
                        lr = linear_schedule(self.outer.lr, self.outer_lr_final, fraction, 1.0)
                        phi, outer = self.outer.update(state.phi, direction, state.outer_state, lr=lr)
                for what, x in (("meta-loss", value), ("meta-gradient", direction), ("phi", phi)):
                    if not np.all(np.isfinite(x)):
                        raise self._diverged(state, f"the {what} is not finite")
                seconds = time.perf_counter() - t0
                timed += seconds
                state.meta_loss.append(float(value))  # the lists grow in place: no copy per iteration
                state = state._replace(phi=phi, outer_state=outer, inner_state=inner,
                                       rng_state=rng.bit_generator.state, iteration=state.iteration + 1,
                                       train_seconds=state.train_seconds + seconds)  # fmt: skip
                _advance(bar, state)
                if c.eval_every and state.iteration % c.eval_every == 0:
                    state = self._evaluate(state, bar)
                elif c.checkpoint_every and state.iteration % c.checkpoint_every == 0:
                    self._save(state)
            if self.eval_tasks is not None and not _evaluated_at(state):
                state = self._evaluate(state, bar)
        except (DivergenceError, KeyboardInterrupt):
            self._save(state)  # the last good state: phi, optimizers and generator after `state.iteration`
            raise
        finally:
            bar.close()
        self._save(state)
        stopped = "iterations" if state.iteration >= c.iterations else "time_budget"
        history = {"meta_loss": state.meta_loss, "evaluations": state.evaluations}
        done = state.iteration - start
        return TrainResult(a.network(self.net, state.phi), history, c, state.outer_state, state.inner_state,
                           start, state.iteration, state.train_seconds, done / timed if timed > 0 else 0.0,
                           stopped, state.phi)  # fmt: skip

    def _out_of_time(self, state):
        return self.config.time_budget is not None and state.train_seconds >= self.config.time_budget

    def _timed_evaluation_due(self, state):
        c = self.config
        return c.eval_every_seconds is not None and state.train_seconds >= state.next_eval_seconds

    def _evaluate(self, state, bar, next_eval=None):
        """Score the evaluation tasks (if any), record it in the state, and save the checkpoint."""
        if self.eval_tasks is not None:
            c = self.config
            a, params = self.algorithm, state.phi  # the checkpoint's phi entry holds params
            adapt = a.adapter(self.functions, self.net, c, state.inner_state, c.seed, params=params)
            phi = a.network(self.net, params)
            res = evaluate(self.net, phi, self.eval_tasks, c.alpha, c.eval_steps, c.loss, adapt=adapt)
            record = {"iteration": state.iteration, "seconds": state.train_seconds, "steps": list(res.steps),
                      "loss": res.mean.tolist(), "stderr": res.stderr.tolist(),
                      "diverged": res.diverged.tolist()}  # fmt: skip
            if res.accuracy is not None:
                record["accuracy"] = res.accuracy.tolist()
            state.evaluations.append(record)
            if self.progress:
                bar.write(_describe(record), file=sys.stderr)
        if next_eval is not None:
            state = state._replace(next_eval_seconds=next_eval)
        self._save(state)
        return state

    def _save(self, state):
        if self.path is not None:
            with signals.deferred():  # a Ctrl-C now would tear nothing, but would lose this save
                save_checkpoint(self.path, state)

    def _diverged(self, state, what):
        c = self.config
        outer = f"epsilon={c.epsilon}" if c.outer_optimizer is None else f"outer lr={c.outer_optimizer['lr']}"
        saved = "" if self.path is None else (f" The last good state (iteration {state.iteration}) is in "
                                              f"{os.fspath(self.path)}.")  # fmt: skip
        return DivergenceError(
            f"{c.algo} diverged at iteration {state.iteration + 1} of {c.iterations}: {what}. Try a smaller "
            f"inner step size (alpha={c.alpha}) or a smaller outer step ({outer}).{saved}"
        )


def _fresh(net, config, phi0):
    algorithm = ALGORITHMS[config.algo]
    params = algorithm.initial(net, initial_phi(net, config, phi0), config)  # phi, or [phi; alphas]
    opt = None if config.outer_optimizer is None else optimizer_from_dict(config.outer_optimizer)
    outer = {} if opt is None else opt.init(params.size)
    rng_state = np.random.default_rng(config.seed + 1).bit_generator.state
    return Checkpoint(params, outer, algorithm.start(net, params, config), rng_state, 0, 0.0, 0.0, [], [],
                      config)  # fmt: skip


def _resume(net, config, path):
    ckpt = load_checkpoint(path)
    check_resumable(ckpt.config, config, ckpt.iteration, path)
    size = ALGORITHMS[config.algo].initial(net, np.zeros(net.num_params), config).size  # P, or 2P (Meta-SGD)
    if ckpt.phi.size != size:
        raise CheckpointError(f"{os.fspath(path)}: its parameter vector has {ckpt.phi.size} entries; "
                              f"{config.algo} on this network optimises {size}")  # fmt: skip
    return ckpt._replace(config=config)


def _evaluated_at(state):
    return bool(state.evaluations) and state.evaluations[-1]["iteration"] == state.iteration


def _describe(record):
    best = "accuracy" if "accuracy" in record else "loss"
    values = ", ".join(f"{v:.4g}" for v in record[best][-1:])
    return (f"iteration {record['iteration']} ({record['seconds']:.0f} s of training): held-out {best} "
            f"{values} after {record['steps'][-1]} steps")  # fmt: skip


def _stderr(message):
    print(message, file=sys.stderr, flush=True)


def _progress_bar(progress, c, start):
    from tqdm import tqdm  # imported here so that `import tinymeta` stays light

    total = None if c.time_budget else c.iterations
    return tqdm(total=total, initial=start, desc=f"{c.algo} ({c.backend})", unit="it", dynamic_ncols=True,
                disable=not progress)  # fmt: skip


def _advance(bar, state):
    bar.update(1)
    if state.iteration % 25 == 0:
        bar.set_postfix(meta_loss=f"{np.mean(state.meta_loss[-25:]):.4g}", refresh=False)
