"""tinymeta: small, exact, fast meta-learning in NumPy.

MAML, first-order MAML and Reptile on small MLPs whose gradients and
Hessian-vector products are derived by hand and checked numerically.
"""

from . import gradcheck
from .mlp import MLP

__version__ = "0.1.0"

__all__ = ["MLP", "gradcheck", "__version__"]
