"""Resumable Omniglot checkpoints: all that training needs to continue exactly where it stopped.

``OUT/checkpoint.npz`` is written atomically (:func:`tinymeta.atomic.write_npz_atomic`) at every
learning-curve point and when training ends, so an interrupted run loses at most one curve interval.
It holds phi, the outer Adam state, Reptile's inner Adam state, the task generator's state, the
iteration, the training seconds so far, the loss history and the learning curve. Resuming with the
same settings continues the same stream of tasks: with ``--iterations`` as the stopping rule, a run
stopped and resumed ends with the same phi, bit for bit, as one run straight through.

Only the stopping rule and the evaluation settings may change on resume (:data:`MAY_CHANGE`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..atomic import write_npz_atomic

# Settings that may differ between a checkpoint and the run resuming it: when to stop, how to evaluate.
# The backend too: NumPy and Numba agree to rounding, so the run continues, though not bit for bit.
MAY_CHANGE = ("iterations", "budget_s", "test_tasks", "curve_every_s", "curve_tasks", "data_dir", "backend")


class TrainState(NamedTuple):
    """Everything :func:`tinymeta.omniglot.job.train` carries from one iteration to the next."""

    phi: np.ndarray  # (P,)
    outer_state: dict  # Adam {"m", "v", "t"} of the outer loop (maml, fomaml)
    adam_state: dict | None  # Reptile's inner Adam state, or None
    rng_state: dict  # numpy Generator.bit_generator.state of the task stream
    iteration: int
    train_seconds: float
    next_curve: float  # training seconds at which the next learning-curve point is due
    meta_loss: list
    curve: list


def _config_dict(cfg) -> dict:
    return {**dataclasses.asdict(cfg), "hidden": list(cfg.hidden), "epsilon": list(cfg.epsilon)}


def save(path, cfg, state: TrainState, sizes) -> Path:
    """Write ``state`` (and ``cfg``, ``sizes``) to ``path`` atomically."""
    arrays = {
        "phi": state.phi, "sizes": np.asarray(sizes), "config": json.dumps(_config_dict(cfg)),
        "outer_m": state.outer_state["m"], "outer_v": state.outer_state["v"],
        "outer_t": state.outer_state["t"], "rng_state": json.dumps(state.rng_state),
        "iteration": state.iteration, "train_seconds": state.train_seconds, "next_curve": state.next_curve,
        "meta_loss": np.asarray(state.meta_loss, dtype=np.float64), "curve": json.dumps(state.curve),
    }  # fmt: skip
    if state.adam_state is not None:
        a = state.adam_state
        arrays.update(adam_m=a["m"], adam_v=a["v"], adam_t=a["t"])
    return write_npz_atomic(path, arrays)


def load(path, cfg) -> TrainState:
    """The :class:`TrainState` saved at ``path`` for a run with settings ``cfg``.

    Raises ``FileNotFoundError`` if there is none and ``ValueError`` naming the settings that differ
    (other than :data:`MAY_CHANGE`) or if the file is not a resumable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: no checkpoint at {path}; run once without --resume")
    with np.load(path) as ck:
        if "rng_state" not in ck.files:
            raise ValueError(f"{path} is not a resumable Omniglot checkpoint (it has no task-stream state)")
        saved, now = json.loads(str(ck["config"])), _config_dict(cfg)
        differ = [f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}" for k in now
                  if k not in MAY_CHANGE and saved.get(k) != now[k]]  # fmt: skip
        if differ:
            raise ValueError(f"cannot resume from {path}: settings differ ({'; '.join(differ)}); "
                             f"only {', '.join(MAY_CHANGE)} may change")  # fmt: skip
        adam = None
        if "adam_m" in ck.files:
            adam = {"m": ck["adam_m"].copy(), "v": ck["adam_v"].copy(), "t": int(ck["adam_t"])}
        return TrainState(
            phi=ck["phi"].copy(),
            outer_state={"m": ck["outer_m"].copy(), "v": ck["outer_v"].copy(), "t": int(ck["outer_t"])},
            adam_state=adam, rng_state=json.loads(str(ck["rng_state"])), iteration=int(ck["iteration"]),
            train_seconds=float(ck["train_seconds"]), next_curve=float(ck["next_curve"]),
            meta_loss=ck["meta_loss"].tolist(), curve=json.loads(str(ck["curve"])),
        )  # fmt: skip
