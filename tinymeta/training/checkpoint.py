"""Checkpoints: everything needed to continue a meta-training run bit for bit, in one ``.npz`` file.

One format for every job (sine, Omniglot, every algorithm), versioned by its ``format`` entry.
A checkpoint holds the run's :class:`~tinymeta.training.config.TrainConfig`, phi, the outer
optimizer's state (Adam's m, v, t), the state the algorithm carries (Reptile's inner Adam), the
task generator's state, the iteration count, the seconds of training so far, the meta-loss of every
iteration and the evaluations made. Writes are atomic (:mod:`tinymeta.atomic`): a crash at any
moment leaves the previous checkpoint or the new one, never a torn file. Reading checks every
entry, so a truncated, foreign or tampered file is a :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

from ..atomic import write_npz_atomic
from .config import TrainConfig

FORMAT = "tinymeta-checkpoint-2"
REQUIRED = ("format", "phi", "iteration", "train_seconds", "next_eval_seconds", "rng_state", "config",
            "meta_loss", "evaluations")  # fmt: skip


class CheckpointError(ValueError):
    """A file that is not a readable, consistent tinymeta checkpoint."""


class Checkpoint(NamedTuple):
    """The contents of a checkpoint (and the state the training loop carries from iteration to iteration).

    Attributes
    ----------
    phi : ndarray, the parameters being meta-learned: the network's phi, shape (P,), or for Meta-SGD
        params = [phi; alphas], shape (2P,) (:attr:`~tinymeta.training.algorithms.Algorithm.initial`)
    outer_state : dict, e.g. ``{"m": (P,), "v": (P,), "t": int}`` for Adam, ``{}`` for SGD and Reptile
    inner_state : dict, what the algorithm carries across iterations (Reptile's inner Adam), or ``{}``
    rng_state : dict, ``np.random.Generator.bit_generator.state`` of the task stream
    iteration : int, outer iterations completed
    train_seconds : float, seconds of training so far (evaluations and checkpoints excluded)
    next_eval_seconds : float, training seconds at which the next timed evaluation is due
    meta_loss : list of float, one per completed iteration
    evaluations : list of dict, one per evaluation: ``iteration``, ``seconds``, ``steps``, ``loss``,
        ``stderr``, ``diverged`` and, for classification, ``accuracy``
    config : TrainConfig
    """

    phi: np.ndarray
    outer_state: dict
    inner_state: dict
    rng_state: dict
    iteration: int
    train_seconds: float
    next_eval_seconds: float
    meta_loss: list
    evaluations: list
    config: TrainConfig


def save_checkpoint(path, checkpoint: Checkpoint):
    """Write ``checkpoint`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    c = checkpoint
    arrays = {
        "format": np.array(FORMAT),
        "phi": np.asarray(c.phi, dtype=np.float64),
        "iteration": np.array(int(c.iteration), dtype=np.int64),
        "train_seconds": np.array(float(c.train_seconds)),
        "next_eval_seconds": np.array(float(c.next_eval_seconds)),
        "rng_state": np.array(json.dumps(c.rng_state)),
        "config": np.array(c.config.to_json()),
        "meta_loss": np.asarray(c.meta_loss, dtype=np.float64).reshape(-1),
        "evaluations": np.array(json.dumps(c.evaluations)),
    }
    for prefix, state in (("outer__", c.outer_state), ("inner__", c.inner_state)):
        for key, value in state.items():
            arrays[prefix + key] = np.asarray(value)
    return write_npz_atomic(path, arrays)


def load_checkpoint(path) -> Checkpoint:
    """Read and check a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        The file is not an ``.npz`` archive, is truncated, lacks entries, comes from another program or
        another version of tinymeta, or its entries are inconsistent. The message names the file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise CheckpointError(f"{path} is not a readable .npz checkpoint ({type(e).__name__}: {e})") from None
    if "format" in arrays and str(arrays["format"]) != FORMAT:
        raise CheckpointError(f"{path} has format {str(arrays['format'])!r}, written by another version of "
                              f"tinymeta; this one reads {FORMAT!r}. Start a new run.")  # fmt: skip
    missing = [key for key in REQUIRED if key not in arrays]
    if missing:
        raise CheckpointError(f"{path} is not a tinymeta checkpoint: it lacks {missing}")
    try:
        return _checked(path, arrays)
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
        raise CheckpointError(f"{path}: inconsistent checkpoint ({type(e).__name__}: {e})") from None


def _checked(path, arrays):
    phi = arrays["phi"]
    if phi.ndim != 1 or phi.dtype != np.float64 or phi.size == 0 or not np.all(np.isfinite(phi)):
        raise CheckpointError(f"{path}: phi must be a finite float64 vector; got {phi.dtype} {phi.shape}")
    config = TrainConfig.from_json(str(arrays["config"]))
    scalars = {}
    for key in ("iteration", "train_seconds", "next_eval_seconds"):
        a = arrays[key]
        if a.shape != () or a.dtype.kind not in "iuf" or not math.isfinite(float(a)) or float(a) < 0:
            raise CheckpointError(f"{path}: {key} must be a number >= 0; got {a.dtype} {a.shape}")
        scalars[key] = int(a) if key == "iteration" else float(a)
    rng_state = json.loads(str(arrays["rng_state"]))
    if not isinstance(rng_state, dict) or rng_state.get("bit_generator") != "PCG64":
        raise CheckpointError(f"{path}: rng_state must be a PCG64 bit-generator state")
    np.random.default_rng().bit_generator.state = rng_state  # raises if it is malformed
    meta_loss = arrays["meta_loss"]
    if meta_loss.ndim != 1 or meta_loss.size != scalars["iteration"]:
        raise CheckpointError(f"{path}: meta_loss holds {meta_loss.size} values for "
                              f"{scalars['iteration']} iterations")  # fmt: skip
    evaluations = json.loads(str(arrays["evaluations"]))
    if not isinstance(evaluations, list) or not all(isinstance(e, dict) for e in evaluations):
        raise CheckpointError(f"{path}: evaluations must be a list of records")
    states = [_state(path, arrays, prefix, phi.size) for prefix in ("outer__", "inner__")]
    if scalars["iteration"] > config.iterations:
        raise CheckpointError(
            f"{path}: iteration {scalars['iteration']} exceeds the run's {config.iterations}"
        )
    return Checkpoint(phi, states[0], states[1], rng_state, scalars["iteration"], scalars["train_seconds"],
                      scalars["next_eval_seconds"], meta_loss.tolist(), evaluations, config)  # fmt: skip


def _state(path, arrays, prefix, size):
    """An optimizer state saved under ``prefix``: {} or Adam's {"m", "v", "t"} with m, v like phi."""
    state = {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}
    if not state:
        return {}
    if set(state) != {"m", "v", "t"}:
        raise CheckpointError(f"{path}: optimizer state {prefix[:-2]} has entries {sorted(state)}; "
                              "expected m, v, t")  # fmt: skip
    for key in ("m", "v"):
        a = state[key]
        if a.shape != (size,) or a.dtype != np.float64 or not np.all(np.isfinite(a)):
            raise CheckpointError(f"{path}: {prefix[:-2]} {key} must be a finite float64 ({size},) vector")
    if (
        np.any(state["v"] < 0)
        or state["t"].shape != ()
        or state["t"].dtype.kind not in "iu"
        or state["t"] < 0
    ):
        raise CheckpointError(f"{path}: {prefix[:-2]} state is not an Adam state (v >= 0, t >= 0)")
    return {"m": state["m"], "v": state["v"], "t": int(state["t"])}
