"""The exercises, easy to hard: id, the function a student writes, its threshold and its grader.

Each exercise ``NN_name`` has a student file ``student/NN_name.py`` generated from the reference
solution ``instructor/solutions/NN_name.py`` (instructors only, not installed; see
:mod:`tinymeta.exercises.make_student`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import (
    grade_activation,
    grade_alpha,
    grade_anil,
    grade_backprop,
    grade_checkpoint,
    grade_cross_entropy,
    grade_dense,
    grade_gauss_newton,
    grade_hvp,
    grade_imaml,
    grade_maml,
    grade_metasgd,
    grade_reptile,
    grade_taylor,
)
from .loader import load_function  # noqa: F401  (re-exported: tinymeta.exercises.registry.load_function)
from .secret import case_rng

HERE = Path(__file__).resolve().parent
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
    cases : callable ``cases(rng)`` yielding the :class:`~tinymeta.exercises.checks.Case` objects
    public_seed : int, the seed of the public cases
    notes : dict, what a split of the cases by a tag usually means (see :mod:`.patterns`)
    """

    id: str
    title: str
    function: str
    todo: str
    threshold: float
    expect: str
    cases: Callable
    public_seed: int
    notes: dict = field(default_factory=dict)

    @property
    def number(self) -> str:
        return self.id[:2]

    @property
    def filename(self) -> str:
        return f"{self.id}.py"

    def make_cases(self, seed=None):
        """``(cases, kind)``: the public cases, or the hidden ones drawn from the secret ``seed``."""
        rng, kind = case_rng(self.id, self.public_seed, seed)
        return list(self.cases(rng)), kind


def _ex(id, title, function, todo, module, expect, seed, cases=None):
    return Exercise(
        id,
        title,
        function,
        todo,
        module.THRESHOLD,
        expect,
        cases or module.cases,
        seed,
        getattr(module, "NOTES", {}),
    )


ROUND_OFF = "~1e-16 (round-off) against the exact value"
EXERCISES = (
    _ex(
        "01_activation_derivatives",
        "sigma' and sigma'' of softplus",
        "softplus_derivatives",
        "write softplus' and softplus''",
        grade_activation,
        ROUND_OFF,
        101,
    ),
    _ex(
        "02_dense_vjp",
        "the vector-Jacobian product of a dense tanh layer",
        "dense_vjp",
        "write dL/dW, dL/db and dL/da",
        grade_dense,
        ROUND_OFF,
        202,
    ),
    _ex(
        "03_mlp_backward",
        "backprop through a 2-hidden-layer tanh MLP",
        "mlp_loss_grad",
        "write the backward pass",
        grade_backprop,
        ROUND_OFF,
        303,
    ),
    _ex(
        "04_hvp_r_operator",
        "the Hessian-vector product by the R-operator",
        "hvp_one_hidden",
        "write the R-operator pass",
        grade_hvp,
        "~1e-16 (round-off) against the exact H v",
        404,
    ),
    _ex(
        "05_maml_k1",
        "the exact MAML gradient for one inner step",
        "maml_grad_k1",
        "write the exact MAML gradient for k = 1",
        grade_maml,
        ROUND_OFF,
        505,
        grade_maml.k1_cases,
    ),
    _ex(
        "06_maml_k_steps",
        "the exact MAML gradient for k inner steps",
        "maml_grad",
        "write the exact MAML gradient for any k",
        grade_maml,
        ROUND_OFF,
        606,
        grade_maml.k_cases,
    ),
    _ex(
        "07_reptile_step",
        "one Reptile outer step",
        "reptile_step",
        "write the Reptile step",
        grade_reptile,
        "0 to ~1e-16 (round-off) against tinymeta.reptile_step",
        707,
    ),
    _ex(
        "08_reptile_taylor",
        "the Taylor coefficients of MAML, FOMAML and Reptile",
        "taylor_coefficients",
        "write the coefficients (c0, c1)",
        grade_taylor,
        "0 against the exact expansion, ~1e-10 against the measured values",
        808,
    ),
    _ex(
        "09_cross_entropy_hvp",
        "the cross-entropy gradient and output-space Hessian-vector product",
        "cross_entropy_grad_hvp",
        "write dL/dyhat and H_out u",
        grade_cross_entropy,
        ROUND_OFF,
        909,
    ),
    _ex(
        "10_gauss_newton",
        "the Gauss-Newton vector product J^T H_out J v",
        "gauss_newton_vp",
        "write the Gauss-Newton product",
        grade_gauss_newton,
        ROUND_OFF,
        1010,
    ),
    _ex(
        "11_maml_checkpointed",
        "the exact MAML gradient with checkpoints (fewer stored iterates)",
        "maml_grad_checkpointed",
        "write the checkpointed MAML gradient",
        grade_checkpoint,
        "~1e-16 (round-off) against the exact value, within the memory and gradient budgets",
        1111,
    ),
    _ex(
        "12_maml_alpha_grad",
        "the derivative of the meta-objective w.r.t. the step size alpha",
        "maml_alpha_grad",
        "write dF/dalpha",
        grade_alpha,
        ROUND_OFF,
        1212,
    ),
    _ex(
        "13_metasgd_grad",
        "the two gradients of Meta-SGD: in phi and in the per-parameter step sizes",
        "metasgd_grad",
        "write dF/dphi and dF/dalphas",
        grade_metasgd,
        ROUND_OFF,
        1313,
    ),
    _ex(
        "14_anil_grad",
        "the ANIL meta-gradient: a head-only inner loop, the gradient in all of phi",
        "anil_grad",
        "write the ANIL meta-gradient",
        grade_anil,
        ROUND_OFF,
        1414,
    ),
    _ex(
        "15_imaml_grad",
        "the implicit iMAML meta-gradient at the inner solution phi*",
        "imaml_meta_grad",
        "write the implicit meta-gradient",
        grade_imaml,
        "~1e-15 (a dense solve) to ~1e-12 (CG at rtol 1e-12) against the exact value",
        1515,
    ),
)


def get(name) -> Exercise:
    """The exercise called ``name``: its number (``3``, ``"03"``), its id, or its id without the number."""
    key = str(name).strip().removesuffix(".py")
    for ex in EXERCISES:
        if key in (ex.id, ex.number, ex.id[3:]) or (key.isdigit() and int(key) == int(ex.number)):
            return ex
    known = ", ".join(ex.id for ex in EXERCISES)
    raise KeyError(f"no exercise {name!r}; the exercises are: {known}")
