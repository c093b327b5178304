"""The settings of one meta-training run, as an immutable record that round-trips through JSON.

A checkpoint stores its :class:`TrainConfig`; resuming compares the stored settings
with the new call's and refuses to continue a run under different settings
(:func:`check_resumable`), because the result would then match neither run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from . import validate
from .backends import BACKENDS, default_backend
from .evaluation import check_steps
from .losses import LOSSES
from .optim import SGD, Adam

ALGOS = ("maml", "fomaml", "reptile", "joint")

# Fields that determine the trajectory of phi. ``iterations`` is checked separately (it may grow);
# backend, evaluation and checkpointing settings may change between a run and its resumption.
TRAJECTORY_FIELDS = ("algo", "alpha", "k", "meta_batch", "outer_optimizer", "epsilon", "inner_batch_size",
                     "seed", "loss", "net", "family")  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Everything :func:`tinymeta.meta_train` was asked to do, in JSON-friendly types.

    Attributes
    ----------
    algo : {"maml", "fomaml", "reptile", "joint"}
    iterations : int, total outer iterations of the run
    alpha : float, inner SGD step size
    k : int, inner steps (0 for "joint": its gradient is taken at phi itself)
    meta_batch : int, tasks per outer iteration
    outer_optimizer : dict or None
        ``{"name": "adam", "lr", "beta1", "beta2", "eps"}`` or ``{"name": "sgd", "lr"}``;
        ``None`` for Reptile, whose outer step is the interpolation ``epsilon``.
    epsilon : (float, float) or None
        Reptile's outer step size, annealed linearly from the first to the second value.
    inner_batch_size : int or None, Reptile's inner mini-batch size (None: full support set)
    seed : int, seeds the initial phi (``net.init(seed)``) and the task stream
    backend : {"numpy", "numba"}
    loss : {"mse", "cross_entropy"}
    eval_every, checkpoint_every : int or None
    eval_steps : tuple of int, inner steps after which held-out tasks are scored
    net : dict, ``{"sizes": [...], "activation": ...}``
    family : str, ``repr`` of the task family
    init : str, ``"net.init(seed)"`` or ``"phi0"``
    """

    algo: str
    iterations: int
    alpha: float
    k: int
    meta_batch: int
    outer_optimizer: dict | None
    epsilon: tuple | None
    inner_batch_size: int | None
    seed: int
    backend: str
    loss: str
    eval_every: int | None
    eval_steps: tuple
    checkpoint_every: int | None
    net: dict
    family: str
    init: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """Inverse of :meth:`to_json`; JSON lists become tuples again."""
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"config must be a JSON object with fields {sorted(names)}; got {got}")
        for key in ("epsilon", "eval_steps"):
            if data[key] is not None:
                data[key] = tuple(data[key])
        return cls(**data)


def make_config(net, family, algo, iterations, *, alpha, k, meta_batch=25, outer_optimizer=None, epsilon=None,
                inner_batch_size=None, seed=0, backend=None, loss="mse", eval_every=None,
                eval_steps=tuple(range(11)), checkpoint_every=None, phi0=None) -> TrainConfig:  # fmt: skip
    """Validate the arguments of :func:`tinymeta.meta_train` and collect them in a :class:`TrainConfig`."""
    algo = validate.one_of("algo", algo, ALGOS)
    k = validate.count("k", k)
    if algo == "joint" and k != 0:
        raise ValueError(f"algo='joint' takes its gradient at phi itself, so k must be 0; got k={k}")
    opt = None
    if algo == "reptile":
        if outer_optimizer is not None:
            raise ValueError("outer_optimizer is not used by reptile (its outer step is epsilon); pass None")
        epsilon = epsilon_pair((0.1, 0.0) if epsilon is None else epsilon)
        if inner_batch_size is not None:
            inner_batch_size = validate.count("inner_batch_size", inner_batch_size, minimum=1)
    else:
        for name, value in (("epsilon", epsilon), ("inner_batch_size", inner_batch_size)):
            if value is not None:
                raise ValueError(
                    f"{name} is used only by algo='reptile'; got {name}={value!r}, algo={algo!r}"
                )
        opt = optimizer_to_dict(Adam(1e-3) if outer_optimizer is None else outer_optimizer)
    pairs = (("eval_every", eval_every), ("checkpoint_every", checkpoint_every))
    every = {name: None if value is None else validate.count(name, value, minimum=1) for name, value in pairs}
    return TrainConfig(
        algo=algo,
        iterations=validate.count("iterations", iterations, minimum=1),
        alpha=validate.positive("alpha", alpha),
        k=k,
        meta_batch=validate.count("meta_batch", meta_batch, minimum=1),
        outer_optimizer=opt,
        epsilon=epsilon,
        inner_batch_size=inner_batch_size,
        seed=validate.count("seed", seed),
        backend=default_backend() if backend is None else validate.one_of("backend", backend, BACKENDS),
        loss=validate.one_of("loss", loss, LOSSES),
        eval_every=every["eval_every"],
        eval_steps=check_steps(eval_steps),
        checkpoint_every=every["checkpoint_every"],
        net={"sizes": list(net.sizes), "activation": net.activation},
        family=repr(family),
        init="net.init(seed)" if phi0 is None else "phi0",
    )


def optimizer_to_dict(opt):
    """``SGD``/``Adam`` (from :mod:`tinymeta.optim`) as a JSON-friendly dict."""
    if isinstance(opt, Adam):
        lr = validate.positive("outer_optimizer.lr", opt.lr)
        return {
            "name": "adam",
            "lr": lr,
            "beta1": float(opt.beta1),
            "beta2": float(opt.beta2),
            "eps": float(opt.eps),
        }
    if isinstance(opt, SGD):
        return {"name": "sgd", "lr": validate.positive("outer_optimizer.lr", opt.lr)}
    raise TypeError(
        f"outer_optimizer must be tinymeta.Adam(...) or tinymeta.SGD(...); got {type(opt).__name__} {opt!r}"
    )


def optimizer_from_dict(spec):
    """Inverse of :func:`optimizer_to_dict`."""
    if spec["name"] == "adam":
        return Adam(spec["lr"], spec["beta1"], spec["beta2"], spec["eps"])
    return SGD(spec["lr"])


def epsilon_pair(epsilon):
    """``0.1`` -> (0.1, 0.1) (constant); ``(0.1, 0.0)`` -> linear annealing from 0.1 to 0."""
    pair = (epsilon, epsilon) if not isinstance(epsilon, (tuple, list)) else tuple(epsilon)
    if len(pair) != 2:
        raise ValueError(f"epsilon must be a number or a (start, end) pair; got {epsilon!r}")
    start = validate.positive("epsilon start", pair[0])
    end = float(pair[1])
    if not (end >= 0.0 and end <= start):
        raise ValueError(f"epsilon end must be in [0, start={start}]; got {pair[1]!r}")
    return (start, end)


def check_resumable(saved: TrainConfig, new: TrainConfig, iteration: int, path):
    """Raise ``ValueError`` unless a run saved with ``saved`` at ``iteration`` may continue as ``new``."""
    diffs = [f"{name}: checkpoint {getattr(saved, name)!r}, now {getattr(new, name)!r}"
             for name in TRAJECTORY_FIELDS
             if getattr(saved, name) != getattr(new, name) and not _opaque(name, saved, new)]  # fmt: skip
    if diffs:
        raise ValueError(
            f"cannot resume from {path}: the settings differ from the checkpoint's ({'; '.join(diffs)}). "
            "Use the original settings or a new checkpoint_path."
        )
    if iteration > new.iterations:
        raise ValueError(
            f"cannot resume from {path}: it is at iteration {iteration}, beyond iterations={new.iterations}"
        )


def _opaque(name, saved, new):
    # a family without its own __repr__ prints its address, which differs between processes
    return name == "family" and (" at 0x" in saved.family or " at 0x" in new.family)
