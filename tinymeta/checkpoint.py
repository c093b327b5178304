"""Checkpoints: everything needed to continue a meta-training run bit for bit, in one ``.npz`` file.

A checkpoint holds phi, the outer optimizer's state (Adam's m, v, t), the state of
the task-sampling generator (``rng.bit_generator.state`` as JSON), the iteration
count, the history so far and the run's :class:`~tinymeta.train_config.TrainConfig`.

Writes are atomic: the file is written to a temporary file in the same directory,
flushed and fsync'ed, then moved over the old checkpoint with ``os.replace``. A
crash at any moment leaves either the previous checkpoint or the new one, never a
torn file.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import NamedTuple

import numpy as np

from .atomic import write_npz_atomic
from .train_config import TrainConfig

FORMAT = "tinymeta-checkpoint-1"
_REQUIRED = ("format", "phi", "iteration", "rng_state", "config")


class CheckpointError(ValueError):
    """A file that is not a readable, consistent tinymeta checkpoint."""


class Checkpoint(NamedTuple):
    """The contents of a checkpoint.

    Attributes
    ----------
    phi : ndarray, shape (P,)
    optimizer_state : dict, e.g. ``{"m": (P,), "v": (P,), "t": int}`` for Adam, ``{}`` for SGD/Reptile
    rng_state : dict, ``np.random.Generator.bit_generator.state`` of the task stream
    iteration : int, outer iterations completed
    history : dict of lists, as in :class:`tinymeta.TrainResult`
    config : TrainConfig
    """

    phi: np.ndarray
    optimizer_state: dict
    rng_state: dict
    iteration: int
    history: dict
    config: TrainConfig


def save_checkpoint(path, checkpoint: Checkpoint):
    """Write ``checkpoint`` to ``path`` atomically (temp file, fsync, ``os.replace``).

    The directory is created if needed. If anything fails, the previous file at
    ``path`` is left untouched and the temporary file is removed.
    """
    path = os.fspath(path)
    arrays = {
        "format": np.array(FORMAT),
        "phi": np.asarray(checkpoint.phi, dtype=np.float64),
        "iteration": np.array(int(checkpoint.iteration), dtype=np.int64),
        "rng_state": np.array(json.dumps(checkpoint.rng_state)),
        "config": np.array(checkpoint.config.to_json()),
    }
    for key, value in checkpoint.optimizer_state.items():
        arrays["opt__" + key] = np.asarray(value)
    for key, value in checkpoint.history.items():
        arrays["history__" + key] = np.asarray(value)
    write_npz_atomic(path, arrays)


def load_checkpoint(path) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        The file is not an ``.npz`` archive, lacks entries, or its entries are inconsistent.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path!r} is not a readable .npz checkpoint ({type(e).__name__}: {e})") from e
    missing = [key for key in _REQUIRED if key not in arrays]
    if missing:
        raise CheckpointError(f"{path!r} is not a tinymeta checkpoint: it lacks {missing}")
    if str(arrays["format"]) != FORMAT:
        raise CheckpointError(f"{path!r} has format {str(arrays['format'])!r}; expected {FORMAT!r}")
    phi = arrays["phi"]
    if phi.ndim != 1 or phi.dtype != np.float64 or not np.all(np.isfinite(phi)):
        raise CheckpointError(f"{path!r}: phi must be a finite float64 vector; got {phi.dtype} {phi.shape}")
    iteration = int(arrays["iteration"])
    if iteration < 0:
        raise CheckpointError(f"{path!r}: iteration must be >= 0; got {iteration}")
    try:
        config = TrainConfig.from_json(str(arrays["config"]))
        rng_state = json.loads(str(arrays["rng_state"]))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path!r}: unreadable config or rng_state ({e})") from e
    if not isinstance(rng_state, dict) or rng_state.get("bit_generator") != "PCG64":
        raise CheckpointError(f"{path!r}: rng_state must be a PCG64 bit-generator state; got {rng_state!r}")
    opt = {key[5:]: value for key, value in arrays.items() if key.startswith("opt__")}
    if "t" in opt:
        opt["t"] = int(opt["t"])
    for key in ("m", "v"):
        if key in opt and opt[key].shape != phi.shape:
            raise CheckpointError(
                f"{path!r}: optimizer {key} has shape {opt[key].shape}; phi has {phi.shape}"
            )
    history = {key[9:]: value.tolist() for key, value in arrays.items() if key.startswith("history__")}
    if len(history.get("iteration", [])) != iteration:
        raise CheckpointError(f"{path!r}: the history holds {len(history.get('iteration', []))} iterations; "
                              f"the checkpoint says {iteration}")  # fmt: skip
    return Checkpoint(phi, opt, rng_state, iteration, history, config)
