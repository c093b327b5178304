"""The settings of one meta-training run: one immutable record, validated once, that round-trips through JSON.

A checkpoint stores its :class:`TrainConfig`. The one resume rule: a run may continue under a new
config only if every field outside :data:`MAY_CHANGE` is equal -- those fields decide the
trajectory of phi; the ones inside say when to stop, when to evaluate and where to compute
(NumPy and Numba agree to rounding, so a run continues, though not bit for bit).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from .. import validate
from ..backends import check_backend, check_dtype
from ..evaluation import check_steps
from ..hessian_operator import check_tol
from ..losses import LOSSES
from ..optim import SGD, Adam
from .algorithms import ALGORITHMS

MAY_CHANGE = ("iterations", "time_budget", "eval_every", "eval_every_seconds", "eval_steps",
              "eval_batch_size",
              "checkpoint_every", "backend")  # fmt: skip
"""Fields that may differ between a checkpoint and the run that resumes it; every other must be equal."""

INITS = ("uniform", "he", "phi0", "truncnormal")
FLOAT32_ALGORITHMS = ("maml", "fomaml", "joint", "reptile", "fomaml-tail")
"""Algorithms whose per-iteration functions all have a float32 kernel (see ``backends.FLOAT32_KERNELS``)."""
LATER_FIELDS = {"tail": None, "tail_shots": None, "lam": None, "tol": None, "cg_iterations": None,
                "dtype": "float64"}  # fmt: skip
"""Fields added after the checkpoint format was fixed, with the value an older config means."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything the training loop is asked to do, in JSON-friendly types; checked when built.

    Attributes
    ----------
    algo : str, a name in :data:`tinymeta.training.algorithms.ALGORITHMS`
        ("maml", "fomaml", "reptile", "joint", "fomaml-tail", "imaml", "metasgd", "anil")
    iterations : int >= 1, outer iterations of the run (an upper bound when ``time_budget`` is set)
    alpha : float > 0, inner step size (Reptile with ``inner_optimizer="adam"``: Adam's learning rate;
        Meta-SGD: the initial value of every learned step size; ANIL: the head's step size)
    k : int >= 0, inner steps (0 for "joint", which takes its gradient at phi itself, and for exact iMAML,
        which solves its inner problem to ``tol``)
    meta_batch : int >= 1, tasks per outer iteration (M)
    loss : {"mse", "cross_entropy"}
    inner_optimizer : {"sgd", "adam"}; "adam" (beta1 = 0, its state carried across tasks and
        iterations, as in the Reptile code) for Reptile only
    inner_batch_size : int >= 1 or None, Reptile's inner mini-batches (None: the full support set)
    outer_optimizer : dict or None
        ``{"name": "adam", "lr", "beta1", "beta2", "eps"}`` or ``{"name": "sgd", "lr"}``; None for
        Reptile, whose outer step is the interpolation ``epsilon``
    outer_lr_final : float or None, the outer learning rate is annealed linearly from ``lr`` to this
        over the run (None: constant)
    epsilon : (float, float) or None, Reptile's outer step, annealed linearly from the first to the second
    time_budget : float > 0 or None, stop after this many seconds of training (evaluations excluded);
        the schedules then run over the budget or the iterations, whichever ends first
    seed : int >= 0, seeds the initial phi and the task stream
    backend : {"numpy", "numba"}
    dtype : {"float64", "float32"}, the arithmetic of the per-iteration work: "float32" runs the Numba
        kernels in single precision (backend "numba" only); phi, the optimizers' states and checkpoints
        stay float64 either way. Not in :data:`MAY_CHANGE`: it changes the trajectory
    eval_every : int >= 1 or None, evaluate every this many iterations
    eval_every_seconds : float > 0 or None, evaluate every this many seconds of training (and at 0)
    eval_steps : tuple of int, inner steps after which held-out tasks are scored
    eval_batch_size : int >= 1 or None, Reptile with Adam: the test-time mini-batch size (default:
        ``inner_batch_size``; the Reptile code uses 5 at test time and 10 in training)
    checkpoint_every : int >= 1 or None, also write the checkpoint every this many iterations
    init : {"uniform", "he", "phi0", "truncnormal"}, how phi starts (:meth:`tinymeta.MLP.init`, He-normal,
        given, or MAML's code's N(0, 0.01^2) truncated: :mod:`tinymeta.training.init`)
    net : dict, ``{"sizes": [...], "activation": ..., "batch_norm": bool}`` (see :func:`net_spec`)
    family : str, ``repr`` of the task family
    tail : {"shared", "separate"} or None, algo="fomaml-tail" only: where its final inner mini-batch comes
        from (:mod:`tinymeta.fomaml_tail`)
    tail_shots : int >= 1 or None, tail="separate" only: examples per class held apart for the final step
    lam : float > 0 or None, algo="imaml" only: the proximal strength lambda (default 2.0)
    tol : float in (0, 1) or None, algo="imaml" only, exact: the inner problem's proximal-gradient norm and
        the CG relative residual (default 1e-8; :func:`tinymeta.imaml.imaml_grad`)
    cg_iterations : int >= 1 or None, algo="imaml" only: the paper's practical variant (approximate):
        k gradient steps of size alpha on the proximal objective, then this many CG iterations
        (:mod:`tinymeta.imaml_approx`); None: exact
    """

    algo: str
    iterations: int
    alpha: float
    k: int
    meta_batch: int = 25
    loss: str = "mse"
    inner_optimizer: str = "sgd"
    inner_batch_size: int | None = None
    outer_optimizer: dict | None = None
    outer_lr_final: float | None = None
    epsilon: tuple | None = None
    time_budget: float | None = None
    seed: int = 0
    backend: str = "numba"
    eval_every: int | None = None
    eval_every_seconds: float | None = None
    eval_steps: tuple = tuple(range(11))
    eval_batch_size: int | None = None
    checkpoint_every: int | None = None
    init: str = "uniform"
    net: dict = dataclasses.field(default_factory=dict)
    family: str = ""
    tail: str | None = None
    tail_shots: int | None = None
    lam: float | None = None
    tol: float | None = None
    cg_iterations: int | None = None
    dtype: str = "float64"

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        algo = validate.one_of("algo", self.algo, ALGORITHMS)
        set_("iterations", validate.count("iterations", self.iterations, minimum=1))
        set_("alpha", validate.positive("alpha", self.alpha))
        set_("k", validate.count("k", self.k))
        set_("meta_batch", validate.count("meta_batch", self.meta_batch, minimum=1))
        set_("loss", validate.one_of("loss", self.loss, LOSSES))
        set_("seed", validate.count("seed", self.seed))
        set_("backend", check_backend(self.backend))
        set_("dtype", check_dtype(self.dtype, self.backend))
        if self.dtype == "float32" and algo not in FLOAT32_ALGORITHMS:
            raise ValueError(f"dtype='float32': {algo} has no float32 kernel yet (those with one: "
                             f"{', '.join(FLOAT32_ALGORITHMS)}); use dtype='float64'")  # fmt: skip
        set_("init", validate.one_of("init", self.init, INITS))
        set_("eval_steps", check_steps(self.eval_steps))
        if self.net:  # every config names its network in full (batch norm off unless said)
            set_("net", {"batch_norm": False, **self.net})
        if algo != "fomaml-tail":
            for name in ("tail", "tail_shots"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is a setting of algo='fomaml-tail'; got {name}="
                                     f"{getattr(self, name)!r} with algo={algo!r}")  # fmt: skip
        if algo != "imaml":
            for name in ("lam", "tol", "cg_iterations"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is a setting of algo='imaml'; got {name}="
                                     f"{getattr(self, name)!r} with algo={algo!r}")  # fmt: skip
        counts = ("eval_every", "checkpoint_every", "inner_batch_size", "eval_batch_size", "cg_iterations")
        for name in counts:
            if getattr(self, name) is not None:
                set_(name, validate.count(name, getattr(self, name), minimum=1))
        if self.lam is not None:
            set_("lam", validate.positive("lam", self.lam))
        if self.tol is not None:
            set_("tol", check_tol(self.tol))
        for name in ("time_budget", "eval_every_seconds"):
            if getattr(self, name) is not None:
                set_(name, validate.positive(name, getattr(self, name)))
        for name, value in ALGORITHMS[algo].check(self).items():  # the algorithm's own rules and defaults
            set_(name, value)
        if self.outer_optimizer is not None:
            set_("outer_optimizer", optimizer_to_dict(optimizer_from_dict(self.outer_optimizer)))
            if self.outer_lr_final is not None:
                final, lr = self.outer_lr_final, self.outer_optimizer["lr"]
                if isinstance(final, bool) or not isinstance(final, (int, float)) or not 0.0 <= final <= lr:
                    raise ValueError(f"outer_lr_final must be in [0, outer lr={lr}]; got {final!r}")
                set_("outer_lr_final", float(final))
        if self.epsilon is not None:
            set_("epsilon", epsilon_pair(self.epsilon))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """Inverse of :meth:`to_json` (JSON lists become tuples again); checks the values again."""
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        if isinstance(data, dict):  # configs written before a field existed hold its default
            data = {**{name: value for name, value in LATER_FIELDS.items() if name not in data}, **data}
        if not isinstance(data, dict) or set(data) != names:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"config must be a JSON object with fields {sorted(names)}; got {got}")
        for key in ("epsilon", "eval_steps"):
            if data[key] is not None:
                data[key] = tuple(data[key])
        return cls(**data)

    def fraction_done(self, iteration, train_seconds):
        """How far the run is, for the schedules: iterations done / ``iterations``, or the share of the
        time budget spent if that is larger."""
        return max(iteration / self.iterations, train_seconds / self.time_budget if self.time_budget else 0.0)


def net_spec(net) -> dict:
    """The JSON description of an :class:`~tinymeta.MLP` kept in a config: sizes, activation, batch norm."""
    return {"sizes": list(net.sizes), "activation": net.activation, "batch_norm": bool(net.batch_norm)}


def make_net(spec: dict):
    """The :class:`~tinymeta.MLP` a config's ``net`` describes (inverse of :func:`net_spec`)."""
    from ..mlp import MLP

    return MLP(spec["sizes"], spec["activation"], batch_norm=spec.get("batch_norm", False))


def optimizer_to_dict(opt) -> dict:
    """``SGD``/``Adam`` (from :mod:`tinymeta.optim`) as a JSON-friendly dict."""
    if isinstance(opt, Adam):
        return {"name": "adam", "lr": opt.lr, "beta1": opt.beta1, "beta2": opt.beta2, "eps": opt.eps}
    if isinstance(opt, SGD):
        return {"name": "sgd", "lr": opt.lr}
    raise TypeError(
        f"outer_optimizer must be tinymeta.Adam(...) or tinymeta.SGD(...); got {type(opt).__name__} {opt!r}"
    )


def optimizer_from_dict(spec):
    """Inverse of :func:`optimizer_to_dict`; an optimizer object is returned as it is."""
    if isinstance(spec, (SGD, Adam)):
        return spec
    if not isinstance(spec, dict) or spec.get("name") not in ("sgd", "adam"):
        raise TypeError(f"outer_optimizer must be tinymeta.Adam(...) or tinymeta.SGD(...); got {spec!r}")
    args = {key: value for key, value in spec.items() if key != "name"}
    try:
        return Adam(**args) if spec["name"] == "adam" else SGD(**args)
    except TypeError:
        raise TypeError(f"outer_optimizer {spec!r} has unknown fields") from None


def epsilon_pair(epsilon):
    """``0.1`` -> (0.1, 0.1) (constant); ``(0.1, 0.0)`` -> linear annealing from 0.1 to 0."""
    pair = (epsilon, epsilon) if not isinstance(epsilon, (tuple, list)) else tuple(epsilon)
    if len(pair) != 2:
        raise ValueError(f"epsilon must be a number or a (start, end) pair; got {epsilon!r}")
    start = validate.positive("epsilon start", pair[0])
    end = pair[1]
    if isinstance(end, bool) or not isinstance(end, (int, float)) or not (0.0 <= end <= start):
        raise ValueError(f"epsilon end must be in [0, start={start}]; got {pair[1]!r}")
    return (start, float(end))


def check_resumable(saved: TrainConfig, new: TrainConfig, iteration: int, path):
    """Raise ``ValueError`` unless a run saved with ``saved`` at ``iteration`` may continue as ``new``."""
    diffs = [f"{f.name}: checkpoint {getattr(saved, f.name)!r}, now {getattr(new, f.name)!r}"
             for f in dataclasses.fields(TrainConfig)
             if f.name not in MAY_CHANGE and getattr(saved, f.name) != getattr(new, f.name)
             and not _opaque(f.name, saved, new)]  # fmt: skip
    if diffs:
        raise ValueError(
            f"cannot resume from {path}: the settings differ from the checkpoint's ({'; '.join(diffs)}). "
            f"Only {', '.join(MAY_CHANGE)} may change; use the original settings or start a new run."
        )
    if iteration > new.iterations:
        raise ValueError(
            f"cannot resume from {path}: it is at iteration {iteration}, beyond iterations={new.iterations}"
        )


def _opaque(name, saved, new):
    # a family without its own __repr__ prints its address, which differs between processes
    return name == "family" and (" at 0x" in saved.family or " at 0x" in new.family)
