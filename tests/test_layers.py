"""The package's layer order, read from its source: imports only point down, never in a circle.

Layers, lowest first (docs/api.md, "How the package is laid out", shows them):

    core        -> the math on flat vectors: MLP, losses, activations, batch norm, gradcheck, tasks
    algorithms  -> inner loop, MAML, FOMAML, Reptile, iMAML, Meta-SGD, ANIL, evaluation, plots
    backends    -> tinymeta.backends chooses the NumPy reference or the Numba kernels
    training    -> the one training loop, its configuration and checkpoints
    jobs        -> the sine and Omniglot jobs, the Omniglot data, the demo, the exercises
    cli         -> the commands

Every import is counted, also those inside functions ("lazy" imports), since a lazy import is
still a dependency a reader has to follow. The top-level ``tinymeta/__init__.py`` only re-exports
names and is left out, as is a package's ``__init__`` importing its own submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tinymeta

pytestmark = pytest.mark.fast

ROOT = Path(tinymeta.__file__).parent
LAYERS = {
    "core": ["validate", "params", "activations", "losses", "batchnorm", "mlp", "gradcheck", "tasks",
             "atomic", "cache", "hessian_operator"],
    "algorithms": ["inner", "optim", "maml", "reptile", "taylor", "batch", "evaluation", "imaml",
                   "imaml_approx", "metasgd", "anil", "spectrum", "fomaml_tail", "adapters", "plots"],
    "backends": ["backends", "kernels"],
    "training": ["training"],
    "jobs": ["jobs", "omniglot", "demo", "exercises"],
    "cli": ["cli", "__main__"],
}  # fmt: skip
ORDER = list(LAYERS)


def modules():
    """{dotted module name: path} of every module of the package (tutorial sources excluded)."""
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        if "tutorial_sources" in rel.parts or "student" in rel.parts:
            continue
        name = ".".join(rel.parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name, path, known):
    """Yield (target module, imported name or None) for every import statement in the module."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub, None) if sub in known else (base, alias.name)


def layer(module):
    """Index of the module's layer in ORDER (None for the top-level package)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    for i, members in enumerate(LAYERS.values()):
        if parts[1] in members:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to the table in docs/api.md")


def edges():
    known = modules()
    graph = {m: set() for m in known}
    private = []
    for name, path in known.items():
        for target, imported in imports(name, path, known):
            if not target.startswith("tinymeta"):
                continue
            if imported and imported.startswith("_") and not imported.startswith("__"):
                private.append(f"{name} imports the private name {target}.{imported}")
            if name == "tinymeta" or target == "tinymeta" or name.startswith(target + "."):
                continue  # re-exports; a submodule reaching its own package
            if target.startswith(name + "."):
                continue  # a package importing its own submodule
            graph[name].add(target)
    return graph, private


def test_no_module_imports_a_private_name():
    _, private = edges()
    assert private == []


def test_imports_only_point_down_the_layers():
    graph, _ = edges()
    upward = [f"{m} ({ORDER[layer(m)]}) -> {t} ({ORDER[layer(t)]})"
              for m, targets in graph.items() for t in targets if layer(t) > layer(m)]  # fmt: skip
    assert upward == []


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph, _ = edges()
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    """Negative control: a planted cycle (and only it) is reported."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_layer_check_sees_an_upward_import():
    """Negative control: the checker flags an algorithm module that imports the training layer."""
    assert layer("tinymeta.training.loop") > layer("tinymeta.maml")
    assert layer("tinymeta.cli.sine") == len(ORDER) - 1
