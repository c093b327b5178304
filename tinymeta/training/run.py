"""``meta_train``: a whole run in one call with keyword arguments, for notebooks, tutorials and tests.

It builds the :class:`~tinymeta.training.config.TrainConfig` (which checks every value) and hands it
to :func:`~tinymeta.training.loop.train`, the one loop.
"""

from __future__ import annotations

from .config import TrainConfig, net_spec, optimizer_to_dict
from .loop import TrainResult, train


def meta_train(net, family, algo, iterations, *, alpha, k, meta_batch=25, outer_optimizer=None,
               outer_lr_final=None, epsilon=None, inner_optimizer="sgd", inner_batch_size=None,
               time_budget=None, seed=0, backend=None, loss="mse", init=None, eval_tasks=None,
               eval_every=None, eval_every_seconds=None, eval_steps=tuple(range(11)), eval_batch_size=None,
               checkpoint_path=None, checkpoint_every=None, resume=False, progress=True, phi0=None,
               log=None, lam=None, tol=None, cg_iterations=None, dtype="float64") -> TrainResult:  # fmt: skip
    """Meta-train ``net`` on tasks from ``family`` with ``algo`` for ``iterations`` outer iterations.

    Parameters
    ----------
    net : MLP
    family : task family with ``sample_batch(rng, M)`` or ``sample_arrays(rng, M)`` (e.g. :class:`Sine`)
    algo : {"maml", "fomaml", "reptile", "joint", "imaml", "metasgd", "anil"} (or "fomaml-tail")
    iterations : int >= 1, total outer iterations (including those before a resumed checkpoint)
    alpha : float > 0, inner step size
    k : int >= 0, inner steps; 0 for "joint"
    meta_batch : int >= 1, tasks per outer iteration
    outer_optimizer : tinymeta.Adam or tinymeta.SGD, default ``Adam(1e-3)``; not for reptile
    outer_lr_final : float >= 0, anneal the outer learning rate linearly to this value (default: constant)
    epsilon : float or (start, end), reptile only, default (0.1, 0.0): eps_t linear from start to end
    inner_optimizer : {"sgd", "adam"}, reptile only: Adam(alpha, beta1 = 0) with its state carried along
    inner_batch_size : int, reptile only: inner mini-batches of the support set (default: the full set)
    time_budget : float > 0, stop after this many seconds of training (the schedules then span the budget)
    seed : int >= 0, fixes phi's initialisation and the task stream
    backend : {"numpy", "numba"}, default :func:`tinymeta.backends.default_backend`; never swapped silently
    dtype : {"float64", "float32"}, the kernels' arithmetic ("float32": backend "numba"; phi stays float64)
    loss : {"mse", "cross_entropy"}
    init : {"uniform", "he", "phi0"}, default "phi0" if ``phi0`` is given, else "uniform" (``net.init(seed)``)
    eval_tasks : sequence of Task, optional; scored every ``eval_every`` iterations, every
        ``eval_every_seconds`` seconds of training, and at the end, after each number of steps in
        ``eval_steps`` (Reptile with Adam: mini-batches of ``eval_batch_size``)
    checkpoint_path : path of the ``.npz`` checkpoint, written after every evaluation, every
        ``checkpoint_every`` iterations, at the end, on Ctrl-C or SIGTERM and before raising
        :class:`DivergenceError`
    resume : bool, continue from ``checkpoint_path``; the end result equals the uninterrupted run's bit
        for bit. ``phi0`` is then not used. The schedules span ``iterations``: resume with the same value
        to reproduce a run.
    progress : bool, a tqdm bar with the running meta-loss, and messages
    phi0 : ndarray, shape (P,), optional start
    log : callable, receives the messages (default: stderr when ``progress``)
    lam, tol, cg_iterations : iMAML only: the proximal strength (default 2.0); exact iMAML's tolerance
        (default 1e-8, with k = 0), or the practical variant's CG iterations (approximate, with k inner
        gradient steps); see :class:`~tinymeta.training.config.TrainConfig`

    Returns
    -------
    TrainResult
    """
    outer = None if outer_optimizer is None else optimizer_to_dict(outer_optimizer)
    config = TrainConfig(
        algo=algo, iterations=iterations, alpha=alpha, k=k, meta_batch=meta_batch, loss=loss,
        inner_optimizer=inner_optimizer, inner_batch_size=inner_batch_size, outer_optimizer=outer,
        outer_lr_final=outer_lr_final, epsilon=epsilon, time_budget=time_budget, seed=seed,
        backend=backend, eval_every=eval_every, eval_every_seconds=eval_every_seconds,
        eval_steps=eval_steps, eval_batch_size=eval_batch_size, checkpoint_every=checkpoint_every,
        init=("phi0" if phi0 is not None else "uniform") if init is None else init,
        net=net_spec(net), family=repr(family), lam=lam, tol=tol, cg_iterations=cg_iterations, dtype=dtype,
    )  # fmt: skip
    if (resume or checkpoint_every is not None) and checkpoint_path is None:
        raise ValueError("resume and checkpoint_every need a checkpoint_path")
    return train(net, family, config, eval_tasks=eval_tasks, checkpoint_path=checkpoint_path, resume=resume,
                 progress=progress, phi0=phi0, log=log)  # fmt: skip
