"""Import a student's file under a fresh module name and return one of its functions."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

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
    fn = getattr(module, function, None)
    if not callable(fn):
        raise AttributeError(f"{path.name} defines no function {function!r}")
    return fn
