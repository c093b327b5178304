"""Sphinx configuration for the tinymeta documentation.

Build (warnings are errors, as in CI)::

    sphinx-build -W -b html docs docs/_build/html

Tutorials
---------
The tutorials are jupytext percent-format scripts in ``../tutorials/NN_name.py``. ``docs/tutorials``
is a symbolic link to that folder, so Sphinx sees them as ``tutorials/NN_name`` and myst-nb runs
each one in its own folder (helper files and relative paths work as they do from a terminal).
Only files named ``NN_*.py`` become pages; every other file there is excluded.

The docs build **executes every tutorial**. A tutorial that raises prints the failing cell's
traceback on the console; the build goes on with the others and then fails, listing every failed
tutorial (``_ext/tutorial_errors.py``; exit status 1 with or without ``-W``). It runs them in fast mode
(``TINYMETA_FAST=1``: fewer iterations, same code paths) unless ``TINYMETA_FAST=0`` is set in the
environment. ``TINYMETA_DOCS_EXECUTE=off`` skips execution for a quick check of the prose
(``cache`` reuses outputs of unchanged tutorials through jupyter-cache); CI uses the default, ``force``.

Command-line reference
----------------------
``cli.md`` includes ``cli_generated.md``, written by ``_ext/cli_reference.py`` on every build from
``tinymeta.cli.all_parsers()``: each command's description, usage and options.

API reference
-------------
``api.md`` includes ``api_generated.md``, written below on every build: one ``automodule`` entry
for every public module of the installed package, in the order of ``API_ORDER`` (unlisted modules
follow alphabetically), so new modules appear without editing anything here. A module that fails
to import fails the build.

Math
----
Equations are rendered in the browser by MathJax 3 served from ``_static/mathjax`` (the
``sphinx-mathjax-offline`` extension copies it there): the build and the built site need no network.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import sys
import types
from pathlib import Path

from docutils import nodes

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # document the checkout even if tinymeta is not installed
sys.path.insert(0, str(HERE / "_ext"))  # this site's own small extensions

import tinymeta  # noqa: E402

# ---------------------------------------------------------------------------- project
project = "tinymeta"
author = "tinymeta contributors"
copyright = "tinymeta contributors, MIT License"
release = tinymeta.__version__
version = release

extensions = [
    "myst_nb",  # Markdown pages (MyST) and executed jupytext tutorials
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # NumPy-style docstrings
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 bundled into _static: no CDN
    "sphinx.ext.viewcode",
    "tutorial_errors",  # a failing tutorial: its traceback on the console, and the build fails
    "docstring_math",  # a docstring's "Math" section as display equations; plain text kept plain
    "cli_reference",  # cli.md: every command's usage and options, from the argparse parsers
]

exclude_patterns = [
    "_build",
    "jupyter_execute",
    "conf.py",  # ".py" is a source suffix (tutorials): keep this file out
    "api_generated.md",  # included by api.md, not a page of its own
    "cli_generated.md",  # included by cli.md (written by _ext/cli_reference.py)
    "_tools",  # scripts (".py" is a source suffix) and their data: not pages
    "_ext",
    "_data",
    "**/.ipynb_checkpoints",
    "**/__pycache__",
]

# ---------------------------------------------------------------------------- MyST
myst_enable_extensions = [
    "dollarmath",  # $...$ and $$...$$ (label)
    "amsmath",  # top-level \begin{equation}, \begin{align}, ... outside $$
    "colon_fence",
    "deflist",
]
myst_heading_anchors = 3
# Equations are numbered per derivations page, (1.1) ... (4.4): the pages are chapters 1-4 of the
# numbered toctree in derivations.md, and numbers restart on each chapter.
numfig = True
numfig_secnum_depth = 1
math_numfig = True
math_eqref_format = "({number})"

# ---------------------------------------------------------------------------- tutorials (myst-nb)
TUTORIALS = HERE / "tutorials"  # symlink to ../tutorials
TUTORIAL_NAME = re.compile(r"\d\d_[A-Za-z0-9_]+\.py")


def tutorial_exclusions(folder: Path) -> tuple[list[str], int]:
    """Exclude everything under ``tutorials/`` that is not a ``NN_*.py`` tutorial; count the tutorials."""
    if not folder.is_dir():
        return [], 0
    excluded, found = [], 0
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and TUTORIAL_NAME.fullmatch(entry.name):
            found += 1
        else:
            excluded += [f"tutorials/{entry.name}", f"tutorials/{entry.name}/**"]
    return excluded, found


_excluded, NUM_TUTORIALS = tutorial_exclusions(TUTORIALS)
exclude_patterns += _excluded
TUTORIAL_GLOB = "tutorials/[0-9]*"  # the toctree entry in tutorials.md

nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nb_execution_mode = os.environ.get("TINYMETA_DOCS_EXECUTE", "force")
nb_execution_timeout = 600  # seconds per cell
nb_execution_raise_on_error = False  # go on with the other tutorials; tutorial_errors fails the build
nb_execution_show_tb = True  # the failing cell's traceback on the console, not only in a log file
nb_merge_streams = True
nb_ipywidgets_js = {}  # never load widget JavaScript from a CDN
os.environ.setdefault("TINYMETA_FAST", "1")  # inherited by the kernels that run the tutorials

# ---------------------------------------------------------------------------- API reference
# Every public module of the package is documented, in this order: the order of the tutorials,
# then the layers above the math (algorithms -> backends -> training -> jobs -> CLI), then the
# helpers. A package's submodules follow it, those listed here first; modules not listed (new
# ones) follow alphabetically after the listed ones of their level, so nothing is left out.
API_ORDER = [
    "tinymeta",
    # tutorials 0-2: checking derivatives, the network, its derivatives
    "tinymeta.gradcheck",
    "tinymeta.params",
    "tinymeta.activations",
    "tinymeta.losses",
    "tinymeta.mlp",
    "tinymeta.batchnorm",
    "tinymeta.hessian_operator",
    "tinymeta.spectrum",
    # tutorials 3-5 and 8: tasks and the meta-learning algorithms
    "tinymeta.tasks",
    "tinymeta.inner",
    "tinymeta.maml",
    "tinymeta.reptile",
    "tinymeta.taylor",
    "tinymeta.imaml",
    "tinymeta.imaml_approx",
    "tinymeta.metasgd",
    "tinymeta.anil",
    "tinymeta.adapters",
    "tinymeta.optim",
    # tutorial 6: a meta-batch at a time, in NumPy or in the Numba kernels
    "tinymeta.batch",
    "tinymeta.backends",
    "tinymeta.kernels",
    # training, evaluation and whole runs
    "tinymeta.training",
    "tinymeta.training.config",
    "tinymeta.training.algorithms",
    "tinymeta.training.beyond_maml",
    "tinymeta.training.loop",
    "tinymeta.training.run",
    "tinymeta.training.init",
    "tinymeta.training.checkpoint",
    "tinymeta.training.signals",
    "tinymeta.evaluation",
    "tinymeta.jobs",
    "tinymeta.jobs.sine",
    "tinymeta.jobs.omniglot",
    # tutorial 7: the Omniglot data
    "tinymeta.omniglot",
    "tinymeta.plots",
    "tinymeta.demo",
    "tinymeta.exercises",
    "tinymeta.cli",
    # helpers
    "tinymeta.validate",
    "tinymeta.cache",
    "tinymeta.atomic",
]


def api_sort_key(name: str) -> list[tuple[int, str]]:
    """Position of a module: by its package's place in API_ORDER, then its own, then by name."""
    parts = name.split(".")
    prefixes = [".".join(parts[: i + 1]) for i in range(1, len(parts))]
    return [(API_ORDER.index(p) if p in API_ORDER else len(API_ORDER), p) for p in prefixes]


def public_modules(package) -> list[str]:
    """All importable public modules of ``package`` (no ``_private`` path component), in API order.

    Importing is not guarded: a module that exists but fails to import fails the build.
    """
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            importlib.import_module(info.name)
            names.append(info.name)
    return sorted(names, key=api_sort_key)


def reexports(module) -> str:
    """A table of the names a package re-exports, each linked to where it is documented."""
    rows = []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if name.startswith("__"):
            continue
        if isinstance(obj, types.ModuleType):
            target = obj.__name__
        elif getattr(obj, "__module__", None) and getattr(obj, "__qualname__", None):
            target = f"{obj.__module__}.{obj.__qualname__}"
        else:  # a constant: documented in the submodule that defines it
            continue
        if target.rsplit(".", 1)[0] == module.__name__ and not isinstance(obj, types.ModuleType):
            continue  # defined in the package itself: automodule documents it
        rows.append(f"| `{name}` | {{py:obj}}`{target}` |")
    if not rows:
        return ""
    return "\n".join(
        [f"`import {module.__name__}` also provides:\n", "| name | documented at |", "| --- | --- |"] + rows
    )


def write_api_page() -> None:
    parts = ["<!-- Written by docs/conf.py on every build; do not edit. -->\n"]
    for name in public_modules(tinymeta):
        module = sys.modules[name]
        parts.append(f"## `{name}`\n")
        parts.append(f"```{{eval-rst}}\n.. automodule:: {name}\n```\n")
        if hasattr(module, "__path__"):
            parts.append(reexports(module) + "\n")
    text = "\n".join(parts)
    out = HERE / "api_generated.md"
    if not out.exists() or out.read_text() != text:  # rewrite only on change: no needless rebuilds
        out.write_text(text)


write_api_page()

# Members are what a module defines (its __all__ may re-export names defined elsewhere, which are
# documented where they are defined and listed in the package's table above).
autodoc_default_options = {"members": True, "member-order": "bysource", "ignore-module-all": True}
autodoc_typehints = "description"
autoclass_content = "class"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes" sections as fields: no duplicate of NamedTuple/dataclass fields
napoleon_custom_sections = ["Math"]  # display equations in LaTeX: see _ext/docstring_math.py
# Parameter types are written as plain text ("alpha : float > 0, inner step size"); Sphinx links
# every word of a type, and a word that names several objects ("alpha", an attribute of several
# records) would warn that the link is ambiguous. Such words are left to resolve to the first.
suppress_warnings = ["ref.python"]

# ---------------------------------------------------------------------------- HTML
html_theme = "furo"
html_title = f"tinymeta {release}"
html_static_path = ["_static"]
html_css_files = ["tinymeta.css"]  # a wider column; equation numbers beside, not over, equations
html_js_files = [("tinymeta.js", {"defer": "defer"})]  # draws too-wide equations smaller
html_show_sourcelink = False


# ---------------------------------------------------------------------------- hooks
def tagged_display_math(app, doctree, docname):
    """Let multi-line display math carry its own ``\\tag{n.m}``.

    The tutorials number their equations with ``\\tag`` so that Jupyter shows the same numbers.
    Sphinx wraps display math containing ``\\\\`` in a ``split`` environment, where MathJax refuses
    ``\\tag`` and renders an error box; such blocks are emitted as an ``equation`` environment instead.
    """
    for node in doctree.findall(nodes.math_block):
        latex = node.astext()
        if "\\tag" in latex and "\\\\" in latex and not node.get("number") and not node.get("nowrap"):
            node["nowrap"] = True
            node.children = [nodes.Text(f"\\begin{{equation}}{latex.strip()}\\end{{equation}}")]


def drop_empty_tutorial_glob(app, docname, source):
    """With no tutorial present the glob would match nothing, a warning (an error under -W)."""
    if docname == "tutorials" and NUM_TUTORIALS == 0:
        source[0] = source[0].replace(TUTORIAL_GLOB, "")


def setup(app):
    app.connect("source-read", drop_empty_tutorial_glob)
    app.connect("doctree-resolved", tagged_display_math)
