"""The exercises, easy to hard: id, the function a student writes, its threshold and its grader.

Each exercise ``NN_name`` has a reference solution ``solutions/NN_name.py`` and a student file
``student/NN_name.py`` generated from it by :mod:`tinymeta.exercises.make_student`.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import grade_hvp, grade_layers, grade_meta, grade_taylor

HERE = Path(__file__).resolve().parent
SOLUTIONS = HERE.parents[1] / "instructor" / "solutions"  # a checkout only; moving to instructor.py
STUDENT = HERE / "student"


@dataclass(frozen=True)
class Exercise:
    """One exercise.

    Attributes
    ----------
    id : str, e.g. ``"03_mlp_backward"``; the first two characters are its number
    title : str, one line
    function : str, the name of the function the student writes
    todo : str, what the stub's ``NotImplementedError`` says
    threshold : float, the relative error below which a check passes
    expect : str, the error a correct answer gives (measured on the reference solution)
    cases : callable returning the seeded :class:`~tinymeta.exercises.checks.Case` objects
    """

    id: str
    title: str
    function: str
    todo: str
    threshold: float
    expect: str
    cases: Callable

    @property
    def number(self) -> str:
        return self.id[:2]

    @property
    def filename(self) -> str:
        return f"{self.id}.py"


EXERCISES = (
    Exercise(
        "01_activation_derivatives",
        "sigma' and sigma'' of softplus",
        "softplus_derivatives",
        "write softplus' and softplus''",
        grade_layers.THRESHOLD,
        "~1e-11 (sigma') and ~1e-10 (sigma'') against central differences",
        grade_layers.activation_cases,
    ),
    Exercise(
        "02_dense_vjp",
        "the vector-Jacobian product of a dense tanh layer",
        "dense_vjp",
        "write dL/dW, dL/db and dL/da",
        grade_layers.THRESHOLD,
        "~1e-11 against central differences",
        grade_layers.dense_cases,
    ),
    Exercise(
        "03_mlp_backward",
        "backprop through a 2-hidden-layer tanh MLP",
        "mlp_loss_grad",
        "write the backward pass",
        grade_layers.THRESHOLD,
        "~1e-10 against central differences of the loss",
        grade_layers.mlp_cases,
    ),
    Exercise(
        "04_hvp_r_operator",
        "the Hessian-vector product by the R-operator",
        "hvp_one_hidden",
        "write the R-operator pass",
        grade_layers.THRESHOLD,
        "~1e-11 against differences of the exact gradient along v",
        grade_hvp.hvp_cases,
    ),
    Exercise(
        "05_maml_k1",
        "the exact MAML gradient for one inner step",
        "maml_grad_k1",
        "write the exact MAML gradient for k = 1",
        grade_meta.THRESHOLD,
        "~1e-10 against central differences of the meta-objective",
        grade_meta.maml_k1_cases,
    ),
    Exercise(
        "06_maml_k_steps",
        "the exact MAML gradient for k inner steps",
        "maml_grad",
        "write the exact MAML gradient for any k",
        grade_meta.THRESHOLD,
        "~1e-10 against central differences of the meta-objective",
        grade_meta.maml_cases,
    ),
    Exercise(
        "07_reptile_step",
        "one Reptile outer step",
        "reptile_step",
        "write the Reptile step",
        grade_meta.REPTILE_THRESHOLD,
        "0 to ~1e-16 (round-off) against tinymeta.reptile_step",
        grade_meta.reptile_cases,
    ),
    Exercise(
        "08_reptile_taylor",
        "the Taylor coefficients of MAML, FOMAML and Reptile",
        "taylor_coefficients",
        "write the coefficients (c0, c1)",
        grade_taylor.NUMERIC_THRESHOLD,
        "0 against the exact expansion, ~1e-10 against the measured values",
        grade_taylor.taylor_cases,
    ),
)


def get(name) -> Exercise:
    """The exercise called ``name``: its number (``3``, ``"03"``), its id, or its id without the number."""
    key = str(name).strip()
    key = key.removesuffix(".py")
    for ex in EXERCISES:
        if key in (ex.id, ex.number, ex.id[3:]) or (key.isdigit() and int(key) == int(ex.number)):
            return ex
    known = ", ".join(ex.id for ex in EXERCISES)
    raise KeyError(f"no exercise {name!r}; the exercises are: {known}")


_counter = itertools.count()


def load_function(path, function):
    """Import the file at ``path`` under a fresh module name and return its attribute ``function``.

    Raises
    ------
    FileNotFoundError, AttributeError, or whatever importing the file raises.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    name = f"_tinymeta_exercise_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as a real import does (dataclasses and pickling look it up)
    spec.loader.exec_module(module)
    if not hasattr(module, function):
        raise AttributeError(f"{path.name} defines no function {function!r}")
    return getattr(module, function)
