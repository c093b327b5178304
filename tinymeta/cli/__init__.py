"""The ``tinymeta`` command and its subcommands.

* ``tinymeta sine`` (:mod:`.sine`), ``tinymeta omniglot`` (:mod:`.omniglot`),
  ``tinymeta omniglot-download`` (:mod:`.download`): the jobs;
* ``tinymeta exercises``, ``tinymeta demo``, ``tinymeta tutorials``: handed to their packages'
  ``main(argv)``, imported only when used.

Every command parses its arguments, hands them to the library, and reports: a user's mistake is one
line on stderr and exit status 2 (see :mod:`.args`).
"""

from __future__ import annotations

import importlib
import sys

from . import args as a

COMMANDS = {  # name: (module with main(argv) and build_parser(), help)
    "sine": ("tinymeta.cli.sine", "meta-train on sine-wave regression and plot few-shot adaptation"),
    "omniglot": ("tinymeta.cli.omniglot", "few-shot Omniglot classification with an MLP"),
    "omniglot-download": ("tinymeta.cli.download", "download and convert the Omniglot images"),
    "exercises": ("tinymeta.exercises.cli", "list, copy and check the classroom exercises; grade a class"),
    "demo": ("tinymeta.cli.demo", "an interactive sine demo: click points, watch initialisations adapt"),
    "tutorials": ("tinymeta.cli.tutorials", "copy the tutorials as Jupyter notebooks"),
}


def build_parser() -> a.Parser:
    """The top-level parser (``tinymeta --help`` lists the commands)."""
    from .. import __version__

    parser = a.Parser(prog="tinymeta", description="Small, exact meta-learning in NumPy.")
    parser.add_argument("--version", action="version", version=f"tinymeta {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=f"{text} ('tinymeta {name} --help' for its options)", add_help=False)
    return parser


def _module(name):
    """The module of command ``name``, or None if this installation lacks it."""
    module_name = COMMANDS[name][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is None or not module_name.startswith(e.name):
            raise  # the command exists but one of its own imports is missing: show that
        return None


def all_parsers() -> dict:
    """``{"tinymeta": parser, "tinymeta sine": parser, ...}``: every command's argparse parser (for the
    CLI reference in the docs); commands absent from this installation are left out."""
    parsers = {"tinymeta": build_parser()}
    for name in COMMANDS:
        module = _module(name)
        if module is not None and hasattr(module, "build_parser"):
            parsers[f"tinymeta {name}"] = module.build_parser()
    return parsers


def main(argv=None) -> int:
    """Entry point of the ``tinymeta`` console script and ``python -m tinymeta``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        module = _module(argv[0])
        if module is None:
            return a.fail("tinymeta", f"'tinymeta {argv[0]}' is not available in this installation")
        return int(module.main(argv[1:]) or 0)
    build_parser().parse_args(argv)  # --help, --version, or an error naming the unknown command
    return a.USAGE_ERROR
