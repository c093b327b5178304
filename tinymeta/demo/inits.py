"""The initialisations the demo can show, as data: one :class:`Initialisation` record per entry.

An entry says how to obtain its parameters (``train``, by default a short :func:`tinymeta.meta_train`
run with the entry's ``algo``, ``k`` and options) and how a network adapts from them (``adapt``, by
default ``steps`` plain SGD steps of size alpha on the support points, eq. (3.1)). An algorithm whose
test-time adaptation differs (Meta-SGD's per-parameter step sizes, ANIL's head-only steps) brings its
own ``adapt``; its parameters may then hold more than the network's phi, since only ``adapt`` reads them.
New entries are added with :func:`register`; the demo's menus, caches and side-by-side view list
whatever :data:`REGISTRY` holds, in its order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .. import meta_train  # the public name: the training code moves, it stays
from ..anil import anil_trajectory
from ..inner import adapt_trajectory
from ..metasgd import metasgd_trajectory
from ..optim import Adam


def sgd_trajectory(net, params, x, y, alpha, steps):
    """phi_0 .. phi_steps of plain full-batch SGD on ``(x, y)`` from ``params`` (= phi). Eq. (3.1).

    Parameters
    ----------
    net : MLP
    params : ndarray, shape (P,), the initial parameters phi
    x, y : ndarray, shape (K, 1), the support points
    alpha : float > 0, the inner step size
    steps : int >= 0

    Returns
    -------
    ndarray, shape (steps + 1, P): the network's parameters after 0, 1, ..., ``steps`` steps.
    """
    return adapt_trajectory(net, params, x, y, alpha, steps)


def train_with_meta_train(init, net, family, settings):
    """The entry's parameters from :func:`tinymeta.meta_train` with ``settings`` (a ``QuickTraining``).

    Returns
    -------
    ndarray, shape (P,): the meta-learned phi.
    """
    result = meta_train(net, family, init.algo, settings.iterations, alpha=settings.alpha, k=init.k,
                        meta_batch=settings.meta_batch, seed=settings.seed, backend=settings.backend,
                        progress=False, **dict(init.options))  # fmt: skip
    return result.phi


def train_params_with_meta_train(init, net, family, settings):
    """As :func:`train_with_meta_train`, but the whole vector the run optimised (Meta-SGD: [phi; alphas])."""
    result = meta_train(net, family, init.algo, settings.iterations, alpha=settings.alpha, k=init.k,
                        meta_batch=settings.meta_batch, seed=settings.seed, backend=settings.backend,
                        progress=False, **dict(init.options))  # fmt: skip
    return result.params


def metasgd_trajectory_of_params(net, params, x, y, alpha, steps):
    """Meta-SGD's adaptation from params = [phi; alphas] (shape (2P,)): ``steps`` steps of its learned
    per-parameter sizes (eq. (6.1)). ``alpha`` (the demo's step-size slider) does not apply: Meta-SGD
    learned its own steps. Returns (steps + 1, P)."""
    P = net.num_params
    if np.shape(params) != (2 * P,):
        raise ValueError(
            f"Meta-SGD's parameters [phi; alphas] must have shape ({2 * P},); got {np.shape(params)}"
        )
    return metasgd_trajectory(net, params[:P], params[P:], x, y, steps)[0]


def anil_head_trajectory(net, params, x, y, alpha, steps):
    """ANIL's adaptation: ``steps`` SGD steps of size alpha on the head (W_L, b_L) only (eq. (7.1))."""
    return anil_trajectory(net, params, x, y, alpha, steps)


@dataclass(frozen=True)
class Initialisation:
    """One initialisation the demo offers.

    Attributes
    ----------
    name : str, the key (``--algo``; a run directory's ``config.algo``)
    label : str, what menus and legends show
    algo : str, the ``algo`` of :func:`tinymeta.meta_train` that ``train`` uses by default
    k : int, inner steps during meta-training
    options : tuple of (str, object) pairs, further keyword arguments of ``meta_train``; their
        ``repr`` is part of the cache key, so they must print the same in every process
    adapt : callable ``(net, params, x, y, alpha, steps) -> ndarray (steps + 1, P)``, the network's
        parameters after each test-time step
    train : callable ``(init, net, family, settings) -> ndarray``, the parameters ``adapt`` starts from
    copies_of_phi : int, how many vectors of the network's size the parameters hold (1: phi; Meta-SGD's
        [phi; alphas]: 2)
    """

    name: str
    label: str
    algo: str
    k: int
    options: tuple = ()
    adapt: Callable = field(default=sgd_trajectory, compare=False)
    train: Callable = field(default=train_with_meta_train, compare=False)
    copies_of_phi: int = 1

    def describe(self) -> str:
        """A stable text of everything that determines the trained parameters (for cache keys)."""
        fn = self.train
        return (f"{self.name}|{self.algo}|k={self.k}|{sorted(self.options)!r}|"
                f"train={fn.__module__}.{fn.__qualname__}")  # fmt: skip


REGISTRY: dict[str, Initialisation] = {}
"""Every initialisation the demo offers, by name, in menu order."""


def register(init: Initialisation) -> Initialisation:
    """Add ``init`` to :data:`REGISTRY` (replacing an entry of the same name); returns it."""
    if not isinstance(init, Initialisation):
        raise TypeError(f"init must be a tinymeta.demo.inits.Initialisation; got {type(init).__name__}")
    REGISTRY[init.name] = init
    return init


def get(name) -> Initialisation:
    """The registered initialisation called ``name``; ``ValueError`` lists the known names otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"unknown initialisation {name!r}; expected one of {list(REGISTRY)}")
    return REGISTRY[name]


def for_algo(name) -> Initialisation:
    """The registered entry ``name``, or a plain-SGD entry labelled ``name`` for an algorithm the demo
    does not list (a run directory written by a newer tinymeta): it can still be shown."""
    return REGISTRY.get(name) or Initialisation(name, name, name, 0)


_ADAM = Adam(1e-3)
for _init in (
    Initialisation("maml", "MAML", "maml", 1, (("outer_optimizer", _ADAM),)),
    Initialisation("fomaml", "first-order MAML", "fomaml", 1, (("outer_optimizer", _ADAM),)),
    # epsilon 1 annealed to 0: the Reptile paper's batched setting, as in tutorial 5; with meta-batches
    # of 25 it learns in the quick run's 3000 iterations what epsilon = 0.1 needs many more for
    Initialisation("reptile", "Reptile", "reptile", 5, (("epsilon", (1.0, 0.0)),)),
    Initialisation("joint", "joint training", "joint", 0, (("outer_optimizer", _ADAM),)),
    Initialisation(
        "metasgd",
        "Meta-SGD",
        "metasgd",
        1,
        (("outer_optimizer", _ADAM),),
        adapt=metasgd_trajectory_of_params,
        train=train_params_with_meta_train,
        copies_of_phi=2,
    ),
    Initialisation("anil", "ANIL", "anil", 1, (("outer_optimizer", _ADAM),), adapt=anil_head_trajectory),
    # iMAML is not offered: on this ReLU network its practical variant does not learn, and the exact
    # variant needs a smooth network and trains at ~3 it/s (docs/beyond_maml_results.md)
):
    register(_init)


class Trained(NamedTuple):
    """An initialisation with its parameters, ready to adapt.

    Attributes
    ----------
    init : Initialisation
    net : MLP with one input and one output
    params : ndarray, what ``init.adapt`` starts from (phi for plain SGD)
    alpha : float, the inner step size it was meta-trained with (the demo's default)
    source : str, where the parameters came from (a cache file or a checkpoint)
    """

    init: Initialisation
    net: object
    params: np.ndarray
    alpha: float
    source: str
