"""Training: one loop for every job and algorithm, its config record, checkpoints and clean stops.

* :mod:`.config`: :class:`TrainConfig`, the one record of a run's settings, and the resume rule;
* :mod:`.algorithms`: each algorithm as a plug-in (its direction, the state it carries, its test-time
  inner loop);
* :mod:`.loop`: :func:`train`, the loop; :mod:`.run`: :func:`meta_train`, the same in one call;
* :mod:`.checkpoint`: the versioned checkpoint format; :mod:`.signals`: Ctrl-C and SIGTERM;
* :mod:`.init`: where a run starts.
"""

from .algorithms import ALGORITHMS, Algorithm
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .config import MAY_CHANGE, TrainConfig
from .init import he_normal, initial_phi
from .loop import TrainResult, train
from .run import meta_train
from .signals import Interrupted

__all__ = ["ALGORITHMS", "Algorithm", "Checkpoint", "CheckpointError", "Interrupted", "MAY_CHANGE",
           "TrainConfig", "TrainResult", "he_normal", "initial_phi", "load_checkpoint", "meta_train",
           "save_checkpoint", "train"]  # fmt: skip
