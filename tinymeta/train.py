"""Meta-training: MAML, first-order MAML, Reptile and the joint-training baseline in one loop.

Outer iteration t = 0 .. T-1 draws a meta-batch of B tasks and updates phi:

    maml, fomaml:  g = mean_i g_i(phi)   (eq. (3.3), (3.4)),          phi <- OuterOpt(phi, g)  (Adam 1e-3)
    joint:         g = mean_i grad L_query,i(phi) = fomaml with k = 0, phi <- OuterOpt(phi, g)
    reptile:       phi <- phi + eps_t mean_i (phi~_i - phi)  (eq. (4.1)),  eps_t linear from eps_0 to eps_end

"joint" is the pretrained baseline of Finn et al. (2017), Sec. 5.1: ordinary training
on the pooled tasks, with no inner loop in the objective; it is implemented as
first-order MAML with k = 0 (the query gradient at phi itself).

Randomness: ``net.init(seed)`` gives the start (unless ``phi0``), and one generator,
``np.random.default_rng(seed + 1)``, draws every meta-batch and every Reptile
mini-batch, in that order (the reference implementations seed their task streams
the same way). A seed therefore fixes the run bit for bit, and a checkpoint
(which stores that generator's state) continues it bit for bit.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from .backends import batch_functions
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .evaluation import evaluate
from .inner import DivergenceError
from .optim import linear_schedule
from .reptile import inner_batch_indices
from .tasks import TaskBatch, check_task, iter_tasks
from .train_config import TrainConfig, check_resumable, make_config, optimizer_from_dict


@dataclass
class TrainResult:
    """What :func:`meta_train` returns.

    Attributes
    ----------
    phi : ndarray, shape (P,), the meta-learned initial parameters
    history : dict of lists
        ``iteration`` (1-based) and ``meta_loss`` per outer iteration: the mean query loss
        after adaptation (maml, fomaml), at phi (joint), or the mean support loss at phi
        before adaptation (reptile). With ``eval_tasks``: ``eval_iteration``,
        ``eval_loss`` and ``eval_stderr`` (one row of len(eval_steps) per evaluation),
        plus ``eval_accuracy`` for ``loss="cross_entropy"``.
    config : TrainConfig
    optimizer_state : dict, the outer optimizer's final state
    start_iteration : int, where this call began (> 0 after resuming)
    seconds : float, wall time of this call
    iterations_per_second : float, outer iterations per second in this call
    """

    phi: np.ndarray
    history: dict
    config: TrainConfig
    optimizer_state: dict
    start_iteration: int
    seconds: float
    iterations_per_second: float


def batch_sampler(family):
    """``sample(rng, B) -> TaskBatch`` for a family with ``sample_batch`` or (like Sine) ``sample_arrays``."""
    if hasattr(family, "sample_batch"):
        return lambda rng, B: TaskBatch(*family.sample_batch(rng, B))
    if hasattr(family, "sample_arrays"):
        return lambda rng, B: TaskBatch(*family.sample_arrays(rng, B)[2:])
    raise TypeError(f"family must have sample_batch(rng, B) or sample_arrays(rng, B); got {family!r}")


def meta_train(net, family, algo, iterations, *, alpha, k, meta_batch=25, outer_optimizer=None, epsilon=None,
               inner_batch_size=None, seed=0, backend=None, loss="mse", eval_tasks=None, eval_every=None,
               eval_steps=tuple(range(11)), checkpoint_path=None, checkpoint_every=None, resume=False,
               progress=True, phi0=None) -> TrainResult:  # fmt: skip
    """Meta-train ``net`` on tasks from ``family`` for ``iterations`` outer iterations.

    Parameters
    ----------
    net : MLP
    family : task family with ``sample_batch(rng, B)`` or ``sample_arrays(rng, B)`` (e.g. :class:`Sine`)
    algo : {"maml", "fomaml", "reptile", "joint"}
    iterations : int >= 1, total outer iterations (including those before a resumed checkpoint)
    alpha : float > 0, inner SGD step size
    k : int >= 0, inner steps; must be 0 for "joint"
    meta_batch : int >= 1, tasks per outer iteration
    outer_optimizer : tinymeta.Adam or tinymeta.SGD, default ``Adam(1e-3)``; not for reptile
    epsilon : float or (start, end), reptile only, default (0.1, 0.0): eps_t linear from start to end
    inner_batch_size : int, reptile only: inner mini-batches of the support set (default: full set)
    seed : int >= 0, fixes phi's initialisation and the task stream
    backend : {"numpy", "numba"}, default :func:`tinymeta.batch.default_backend`; never swapped silently
    loss : {"mse", "cross_entropy"}
    eval_tasks : sequence of Task, optional; scored with :func:`evaluate` every ``eval_every``
        iterations (default: only at the end) after each number of steps in ``eval_steps``
    checkpoint_path : path of an ``.npz`` checkpoint, written every ``checkpoint_every`` iterations,
        at the end, before raising :class:`DivergenceError` and on ``KeyboardInterrupt``
    resume : bool, continue from ``checkpoint_path`` (which must exist and match these settings);
        the end result equals the uninterrupted run's bit for bit. ``phi0`` is then not used.
        Reptile's epsilon schedule spans ``iterations``: resume with the same value to reproduce a run.
    progress : bool, show a tqdm bar with the running meta-loss
    phi0 : ndarray, shape (P,), optional start instead of ``net.init(seed)``

    Returns
    -------
    TrainResult

    Raises
    ------
    DivergenceError
        A non-finite meta-loss, meta-gradient or phi; the message names the iteration.
    """
    config = make_config(net, family, algo, iterations, alpha=alpha, k=k, meta_batch=meta_batch,
                         outer_optimizer=outer_optimizer, epsilon=epsilon, inner_batch_size=inner_batch_size,
                         seed=seed, backend=backend, loss=loss, eval_every=eval_every, eval_steps=eval_steps,
                         checkpoint_every=checkpoint_every, phi0=phi0)  # fmt: skip
    if (resume or checkpoint_every is not None) and checkpoint_path is None:
        raise ValueError("resume and checkpoint_every need a checkpoint_path")
    sample = batch_sampler(family)
    if eval_tasks is not None:  # fail now rather than at the first evaluation
        first = next(iter_tasks(eval_tasks), None)
        if first is None:
            raise ValueError("eval_tasks is empty; pass held-out tasks or None")
        check_task(net, first, loss)
    try:
        step_fn = batch_functions(config.backend)["fomaml" if algo == "joint" else algo]
    except ImportError as e:
        raise ImportError(f"backend={config.backend!r} is not available ({e}); pass backend='numpy'") from e
    ckpt = _start(net, config, phi0, checkpoint_path, resume)
    rng = np.random.default_rng()
    rng.bit_generator.state = ckpt.rng_state
    return _loop(net, config, ckpt, rng, sample, step_fn, eval_tasks, checkpoint_path, progress)


def _start(net, config, phi0, path, resume) -> Checkpoint:
    if resume:
        ckpt = load_checkpoint(path)
        check_resumable(ckpt.config, config, ckpt.iteration, path)
        net.check_phi(ckpt.phi, name=f"phi in {path}")
        return ckpt._replace(config=config)
    phi = net.init(config.seed) if phi0 is None else net.check_phi(phi0, name="phi0").copy()
    opt = config.outer_optimizer
    opt_state = {} if opt is None else optimizer_from_dict(opt).init(phi.size)
    history = {"iteration": [], "meta_loss": []}
    rng_state = np.random.default_rng(config.seed + 1).bit_generator.state
    return Checkpoint(phi, opt_state, rng_state, 0, history, config)


def _loop(net, config, ckpt, rng, sample, step_fn, evals, path, progress) -> TrainResult:
    c, start, t0 = config, ckpt.iteration, time.perf_counter()
    opt = None if c.outer_optimizer is None else optimizer_from_dict(c.outer_optimizer)
    phi, opt_state, history, good_rng = ckpt.phi, ckpt.optimizer_state, ckpt.history, rng.bit_generator.state
    done = start

    def save():
        if path is not None:
            save_checkpoint(path, Checkpoint(phi, opt_state, good_rng, done, history, c))

    bar = _progress_bar(progress, c, start)
    try:
        for it in range(start, c.iterations):
            batch = sample(rng, c.meta_batch)
            with np.errstate(over="ignore", invalid="ignore"):
                try:
                    if c.algo == "reptile":
                        idx = None if c.inner_batch_size is None else inner_batch_indices(
                            rng, c.meta_batch, batch.xs.shape[1], c.inner_batch_size, c.k)  # fmt: skip
                        value, g = step_fn(net, phi, batch, c.alpha, c.k, c.loss, inner_indices=idx)
                        new_phi = phi + linear_schedule(*c.epsilon, it, c.iterations) * g
                        new_state = opt_state
                    else:
                        value, g = step_fn(net, phi, batch, c.alpha, 0 if c.algo == "joint" else c.k, c.loss)
                        new_phi, new_state = opt.update(phi, g, opt_state)
                except DivergenceError as e:  # an inner loop blew up; the cause stays chained
                    raise _diverged(c, it, "an inner loop produced a non-finite loss", path) from e
            for what, x in (("meta-loss", value), ("meta-gradient", g), ("phi", new_phi)):
                if not np.all(np.isfinite(x)):
                    raise _diverged(c, it, f"the {what} is not finite", path)
            phi, opt_state, done, good_rng = new_phi, new_state, it + 1, rng.bit_generator.state
            history["iteration"].append(done)
            history["meta_loss"].append(float(value))
            bar.update(1)
            if done % 25 == 0 or done == c.iterations:
                bar.set_postfix(meta_loss=f"{np.mean(history['meta_loss'][-25:]):.4g}", refresh=False)
            if evals is not None and ((c.eval_every and done % c.eval_every == 0) or done == c.iterations):
                _evaluate_into(history, net, phi, evals, c, it, path)
            if c.checkpoint_every and done % c.checkpoint_every == 0 and done != c.iterations:
                save()
    except (DivergenceError, KeyboardInterrupt):
        save()  # the last good state: phi, optimizer and generator as they were after iteration `done`
        raise
    finally:
        bar.close()
    save()
    seconds = time.perf_counter() - t0
    return TrainResult(phi, history, c, opt_state, start, seconds, (done - start) / max(seconds, 1e-12))


def _evaluate_into(history, net, phi, tasks, c, it, path):
    res = evaluate(net, phi, tasks, c.alpha, c.eval_steps, c.loss)  # diverging tasks score inf, see evaluate
    history.setdefault("eval_iteration", []).append(it + 1)
    history.setdefault("eval_loss", []).append(res.mean.tolist())
    history.setdefault("eval_stderr", []).append(res.stderr.tolist())
    if res.accuracy is not None:
        history.setdefault("eval_accuracy", []).append(res.accuracy.tolist())


def _diverged(c, it, what, path):
    outer = f"epsilon={c.epsilon}" if c.outer_optimizer is None else f"outer lr={c.outer_optimizer['lr']}"
    saved = "" if path is None else f" The last good state (iteration {it}) is in {os.fspath(path)}."
    return DivergenceError(
        f"{c.algo} diverged at iteration {it + 1} of {c.iterations}: {what}. Try a smaller inner step size "
        f"(alpha={c.alpha}) or a smaller outer step ({outer}).{saved}"
    )


def _progress_bar(progress, c, start):
    from tqdm import tqdm  # imported here so that `import tinymeta` stays light

    desc = f"{c.algo} ({c.backend})"
    return tqdm(
        total=c.iterations, initial=start, desc=desc, unit="it", dynamic_ncols=True, disable=not progress
    )
