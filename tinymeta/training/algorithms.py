"""Each meta-learning algorithm as one plug-in of the training loop: its direction and the state it carries.

The loop (:mod:`tinymeta.training.loop`) draws a meta-batch and asks the algorithm for
``(value, direction, inner_state)``; it then moves phi in one of two ways:

* ``outer="optimizer"``: phi <- OuterOpt(phi, direction), the direction being a meta-gradient
  (MAML eq. (3.3), first-order MAML eq. (3.4), joint training = first-order MAML with k = 0);
* ``outer="interpolate"``: phi <- phi + epsilon_t * direction, with direction = mean(phi~ - phi)
  (Reptile, eq. (4.1)), or the mean of the last inner step alone (first-order MAML as the Reptile
  code runs it, :mod:`tinymeta.fomaml_tail`).

``inner_state`` is whatever the algorithm carries from iteration to iteration (Reptile's inner Adam
moments; ``{}`` otherwise); it is saved in every checkpoint. A new algorithm is one more entry of
:data:`ALGORITHMS`, never a second loop (iMAML, Meta-SGD and ANIL: :mod:`.beyond_maml`).

The vector the loop optimises, ``params``, is the network's phi for every algorithm but Meta-SGD,
which learns a step size per parameter along with it: params = [phi; alphas], 2P entries
(Li et al. 2017, eq. (2)). :attr:`Algorithm.initial` makes params from the initial phi and
:attr:`Algorithm.network` takes phi back out; the outer optimizer, the checkpoints and the resume
rule see only params.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .. import validate
from ..evaluation import adam_adapter, sgd_adapter
from ..fomaml_tail import TAILS, fomaml_tail_direction, fomaml_tail_indices
from ..optim import Adam
from ..reptile import inner_batch_indices
from . import beyond_maml as beyond

DEFAULT_OUTER = {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
"""The outer optimizer of MAML's sine experiments: Adam with learning rate 1e-3."""
DEFAULT_EPSILON = (0.1, 0.0)
"""Reptile's outer step on sine waves: 0.1 annealed linearly to 0 (the Reptile code's default)."""


def _phi_is_params(net, phi, config):
    return phi


def _params_are_phi(net, params):
    return params


class Algorithm(NamedTuple):
    """One algorithm, as the loop sees it.

    Attributes
    ----------
    name, label : str, the config name and a readable one for figures and logs
    outer : {"optimizer", "interpolate"}, how the direction moves phi (module docstring)
    check : ``config -> dict``: raises on settings this algorithm cannot use; returns defaults to fill in
    start : ``(net, params, config) -> inner_state``, the state carried across iterations
    step : ``(functions, net, config, params, batch, inner_state, rng) -> (value, direction, inner_state)``;
        ``functions`` are the backend's (:func:`tinymeta.backends.batch_functions`); ``rng`` is the
        task stream's generator (used for inner mini-batches); ``direction`` has the shape of params
    adapter : ``(functions, net, config, inner_state, seed, params=None) -> adapt``, the test-time inner
        loop for :func:`tinymeta.evaluation.evaluate`, which scores the network's ``network(net, params)``;
        ``params`` is the run's whole vector (Meta-SGD's adapter needs its learned step sizes; the others
        ignore it)
    meta_loss : str, what ``value`` is (for plots)
    initial : ``(net, phi, config) -> params``, the vector the loop optimises, made from the initial phi
        (default: phi itself)
    network : ``(net, params) -> phi``, the network's parameters inside params (default: params itself)
    """

    name: str
    label: str
    outer: str
    check: Callable
    start: Callable
    step: Callable
    adapter: Callable
    meta_loss: str
    initial: Callable = _phi_is_params
    network: Callable = _params_are_phi


def _check_gradient_based(config):
    for name in ("epsilon", "inner_batch_size", "eval_batch_size"):
        if getattr(config, name) is not None:
            raise ValueError(f"{name} is used only by algo='reptile'; got {name}={getattr(config, name)!r}, "
                             f"algo={config.algo!r}")  # fmt: skip
    if config.inner_optimizer != "sgd":
        raise ValueError(f"inner_optimizer={config.inner_optimizer!r} is for algo='reptile' only; "
                         f"{config.algo} differentiates through plain SGD steps (first-order MAML with "
                         "Reptile's inner loop, as in the Reptile code: algo='fomaml-tail')")  # fmt: skip
    if config.algo == "joint" and config.k != 0:
        raise ValueError(f"algo='joint' takes its gradient at phi itself, so k must be 0; got k={config.k}")
    return {"outer_optimizer": DEFAULT_OUTER} if config.outer_optimizer is None else {}


def _check_reptile(config):
    for name in ("outer_optimizer", "outer_lr_final"):
        if getattr(config, name) is not None:
            raise ValueError(f"{name} is not used by {config.algo} (its outer step is epsilon); pass None")
    if config.inner_optimizer not in ("sgd", "adam"):
        raise ValueError(f"inner_optimizer must be 'sgd' or 'adam'; got {config.inner_optimizer!r}")
    if config.eval_batch_size is not None and config.inner_optimizer != "adam":
        raise ValueError("eval_batch_size is used only with inner_optimizer='adam' (Reptile's test-time "
                         "mini-batches); SGD adapts on the full support set")  # fmt: skip
    return {"epsilon": DEFAULT_EPSILON} if config.epsilon is None else {}


def _check_fomaml_tail(config):
    defaults = _check_reptile(config)
    tail = validate.one_of("tail", "shared" if config.tail is None else config.tail, TAILS)
    if tail == "separate":
        validate.count("tail_shots", config.tail_shots, minimum=1)
    elif config.tail_shots is not None:
        raise ValueError(f"tail_shots is for tail='separate'; got tail_shots={config.tail_shots!r} with "
                         "tail='shared' (the final mini-batch is drawn like the others)")  # fmt: skip
    if config.k < 1:
        raise ValueError(f"algo='fomaml-tail' keeps the last of k inner steps; need k >= 1, got k={config.k}")
    return {**defaults, "tail": tail}


def _check_imaml(config):
    return {**_check_gradient_based(config), **beyond.imaml_defaults(config)}


def _no_state(net, phi, config):
    return {}


def _reptile_start(net, phi, config):
    return Adam(config.alpha, beta1=0.0).init(phi.size) if config.inner_optimizer == "adam" else {}


def _maml_step(functions, net, config, phi, batch, inner_state, rng):
    value, g = functions["maml"](net, phi, batch, config.alpha, config.k, config.loss)
    return value, g, inner_state


def _fomaml_step(functions, net, config, phi, batch, inner_state, rng):
    value, g = functions["fomaml"](net, phi, batch, config.alpha, config.k, config.loss)
    return value, g, inner_state


def _joint_step(functions, net, config, phi, batch, inner_state, rng):
    value, g = functions["fomaml"](net, phi, batch, config.alpha, 0, config.loss)  # the query gradient at phi
    return value, g, inner_state


def _reptile_step(functions, net, config, phi, batch, inner_state, rng):
    idx = None
    if config.inner_batch_size is not None:
        idx = inner_batch_indices(rng, batch.num_tasks, batch.xs.shape[1], config.inner_batch_size, config.k)
    if config.inner_optimizer == "adam":
        return functions["reptile_adam"](net, phi, batch, config.alpha, config.k, inner_state, config.loss,
                                         beta1=0.0, inner_indices=idx)  # fmt: skip
    value, delta = functions["reptile"](
        net, phi, batch, config.alpha, config.k, config.loss, inner_indices=idx
    )
    return value, delta, inner_state


def _one_task_run(functions, net, config):
    """One task's Reptile step: ``(phi, batch, steps, state, rows) -> (value, delta, state)``."""
    if config.inner_optimizer == "adam":
        return lambda start, one, steps, state, rows: functions["reptile_adam"](
            net, start, one, config.alpha, steps, state, config.loss, beta1=0.0, inner_indices=rows
        )
    return lambda start, one, steps, state, rows: (
        *functions["reptile"](net, start, one, config.alpha, steps, config.loss, inner_indices=rows),
        state,
    )


def _fomaml_tail_step(functions, net, config, phi, batch, inner_state, rng):
    inner, last = fomaml_tail_indices(rng, batch.ys, config.k, config.inner_batch_size, config.tail,
                                      config.tail_shots, config.loss)  # fmt: skip
    run = _one_task_run(functions, net, config)
    return fomaml_tail_direction(run, phi, batch, config.k, inner_state, inner, last)


def _sgd_adapter(functions, net, config, inner_state, seed, params=None):
    return sgd_adapter(net, config.alpha, config.loss)


def _reptile_adapter(functions, net, config, inner_state, seed, params=None):
    if config.inner_optimizer == "sgd":
        return sgd_adapter(net, config.alpha, config.loss)
    size = config.eval_batch_size or config.inner_batch_size or 10**9  # None: the whole support set
    return adam_adapter(net, config.alpha, inner_state, size, seed, config.loss, functions["reptile_adam"])


QUERY_LOSS = "query loss after adapting"
ALGORITHMS = {
    "maml": Algorithm("maml", "MAML", "optimizer", _check_gradient_based, _no_state, _maml_step,
                      _sgd_adapter, QUERY_LOSS),
    "fomaml": Algorithm("fomaml", "first-order MAML", "optimizer", _check_gradient_based, _no_state,
                        _fomaml_step, _sgd_adapter, QUERY_LOSS),
    "reptile": Algorithm("reptile", "Reptile", "interpolate", _check_reptile, _reptile_start, _reptile_step,
                         _reptile_adapter, "support loss at phi"),
    "joint": Algorithm("joint", "joint training", "optimizer", _check_gradient_based, _no_state, _joint_step,
                       _sgd_adapter, "query loss at phi"),
    "fomaml-tail": Algorithm("fomaml-tail", "first-order MAML (last inner step)", "interpolate",
                             _check_fomaml_tail, _reptile_start, _fomaml_tail_step, _reptile_adapter,
                             "support loss at phi"),
    "imaml": Algorithm("imaml", "iMAML", "optimizer", _check_imaml, _no_state, beyond.imaml_step,
                       beyond.imaml_test_time, "query loss at the inner solution"),
    "metasgd": Algorithm("metasgd", "Meta-SGD", "optimizer", _check_gradient_based, _no_state,
                         beyond.metasgd_step, beyond.metasgd_test_time, QUERY_LOSS, beyond.metasgd_initial,
                         beyond.metasgd_network),
    "anil": Algorithm("anil", "ANIL", "optimizer", _check_gradient_based, _no_state, beyond.anil_step,
                      beyond.anil_test_time, "query loss after adapting the head"),
}  # fmt: skip
"""The algorithms the loop knows, by config name."""
