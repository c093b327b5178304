"""tinymeta: small, exact, fast meta-learning in NumPy.

MAML, first-order MAML, Reptile, iMAML, Meta-SGD and ANIL on small MLPs whose
gradients and Hessian-vector products are derived by hand and checked numerically.
"""

from . import backends, gradcheck, plots, tasks, taylor
from .anil import anil_adapt, anil_value_and_grad
from .evaluation import EvalResult, evaluate
from .hessian_operator import ConvergenceError
from .imaml import imaml_adapt, imaml_grad, imaml_value_and_grad
from .inner import DivergenceError, adapt, adapt_trajectory
from .maml import (
    dropped_term,
    fomaml_grad,
    fomaml_value_and_grad,
    maml_grad,
    maml_value_and_grad,
    meta_objective,
)
from .metasgd import metasgd_adapt, metasgd_value_and_grad
from .mlp import MLP
from .optim import SGD, Adam, linear_schedule
from .reptile import reptile_adapt, reptile_step, reptile_step_adam
from .spectrum import StepStability, lambda_max, lambda_min, step_stability
from .tasks import Sine, Task, TaskBatch
from .training import (
    Checkpoint,
    CheckpointError,
    TrainConfig,
    TrainResult,
    load_checkpoint,
    meta_train,
    save_checkpoint,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "MLP", "Task", "TaskBatch", "Sine", "backends", "gradcheck", "tasks", "adapt", "adapt_trajectory",
    "DivergenceError",
    "maml_grad", "maml_value_and_grad", "fomaml_grad", "fomaml_value_and_grad", "meta_objective",
    "dropped_term", "reptile_step", "reptile_step_adam", "reptile_adapt", "SGD", "Adam",
    "linear_schedule",
    "__version__",
    "meta_train", "train", "TrainResult", "TrainConfig", "evaluate", "EvalResult", "save_checkpoint",
    "load_checkpoint", "Checkpoint", "CheckpointError", "plots", "taylor",
    "imaml_adapt", "imaml_grad", "imaml_value_and_grad", "metasgd_adapt", "metasgd_value_and_grad",
    "anil_adapt", "anil_value_and_grad", "lambda_max", "lambda_min", "step_stability", "StepStability",
    "ConvergenceError",
]  # fmt: skip
