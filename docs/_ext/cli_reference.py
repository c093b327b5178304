"""The command-line reference, generated from the argparse parsers on every build.

``cli_reference_parsers`` (conf.py) names a function, ``"module:function"``, that returns
``{"tinymeta sine": parser, ...}``: every command line and its ``argparse.ArgumentParser``.
At the start of each build this extension writes ``cli_reference_file`` (Markdown, included by
``cli.md``) with, for each command: its description, its usage line, and every option with its
metavar, choices, help text and default, grouped as the parser groups them. Sub-commands
(``add_subparsers``) are listed and documented in turn unless the function returns them itself.
The file is rewritten only when its text changes, so an unchanged CLI rebuilds nothing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import textwrap
from contextlib import contextmanager
from pathlib import Path

USAGE_WIDTH = "100"  # columns of the usage lines, whatever the terminal of the build
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|$#])")


# Options (--iterations), quoted command lines ('tinymeta sine --help') and $VARIABLES in a help text
# are shown as code: typed as they are, not turned into dashes and curly quotes.
CODE_LIKE = re.compile(r"('[^'\s][^']*'|(?<![\w-])--?[A-Za-z][\w-]*|\$[A-Z_][A-Z0-9_]*)")


def escape(text: str) -> str:
    """Plain text for Markdown: no emphasis, links, math or HTML by accident; options as code."""
    parts = CODE_LIKE.split(text)
    out = []
    for k, part in enumerate(parts):
        if k % 2 and (part.startswith("-") or part.startswith("$") or " -" in part or "tinymeta" in part):
            out.append(f"`{part.strip(chr(39))}`")
        else:
            out.append(MARKDOWN_SPECIAL.sub(r"\\\1", part))
    return "".join(out)


def plain(text: str) -> str:
    """A help text as it should read on any machine: the builder's home folder shown as ``~``."""
    return text.replace(str(Path.home()), "~")


@contextmanager
def columns(width: str):
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help string with ``%(default)s`` etc. filled in, as argparse does, but without the
    "(default: ...)" that a parser's ArgumentDefaultsHelpFormatter appends (shown separately)."""
    if not action.help:
        return ""
    params = {k: v for k, v in dict(vars(action), prog=parser.prog).items() if v is not argparse.SUPPRESS}
    params = {k: getattr(v, "__name__", v) for k, v in params.items()}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    return action.help % params


def option_entry(parser: argparse.ArgumentParser, action: argparse.Action) -> list[str]:
    """One definition-list entry: the option as typed, then its help, choices and default."""
    formatter = parser._get_formatter()
    invocation = formatter._format_action_invocation(action)
    text = plain(" ".join(help_text(parser, action).split()))
    details = []
    takes_value = action.nargs != 0
    if takes_value and action.default not in (None, argparse.SUPPRESS) and "default" not in text.lower():
        default = action.default
        if isinstance(default, (list, tuple)):
            default = " ".join(str(d) for d in default)
        details.append(f"Default: `{plain(str(default))}`.")
    if action.required and action.option_strings:
        details.append("Required.")
    body = escape(text) if text else ""
    if body and not body.endswith("."):
        body += "."
    definition = " ".join(part for part in [body, *details] if part) or "(no description)"
    return [f"`{invocation}`", f": {definition}", ""]


def prose(text: str) -> list[str]:
    """A description or epilog: paragraphs as text; indented lines (examples) kept as typed."""
    out = []
    for block in textwrap.dedent(text).strip().split("\n\n"):
        lines = block.splitlines()
        if any(line.startswith((" ", "\t")) for line in lines[1:]) or any(
            line.lstrip().startswith("tinymeta ") for line in lines
        ):
            out += ["```text", *(plain(line.rstrip()) for line in lines), "```", ""]
        else:
            out += [escape(plain(" ".join(block.split()))), ""]
    return out


def command_section(name: str, parser: argparse.ArgumentParser, known: dict, level: int) -> list[str]:
    """The Markdown of one command, then of its sub-commands not documented on their own."""
    lines = [f"{'#' * level} `{name}`", ""]
    if parser.description:
        lines += prose(parser.description % {"prog": parser.prog})
    with columns(USAGE_WIDTH):
        usage = parser.format_usage().strip()
    lines += ["```text", plain(usage), "```", ""]
    nested = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
        actions = [a for a in actions if not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        title = (group.title or "options").capitalize()
        if all(isinstance(a, argparse._SubParsersAction) for a in actions):
            title = "Commands"
        lines += [f"**{escape(title)}**", ""]
        if group.description:
            lines += [escape(plain(group.description)), ""]
        for action in actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {choice.dest: choice.help for choice in action._choices_actions}
                for sub_name, sub_parser in action.choices.items():
                    full = f"{name} {sub_name}"
                    link = f" ([below](#{anchor(full)}))" if sub_parser._actions else ""
                    if full in known:
                        link = f" ([`{full}`](#{anchor(full)}))"
                    text = escape(plain(" ".join((helps.get(sub_name) or "").split())))
                    lines += [f"`{sub_name}`", f": {text or '(no description)'}{link}", ""]
                    if full not in known and sub_parser._actions:
                        nested.append((full, sub_parser))
            else:
                lines += option_entry(parser, action)
    if parser.epilog:
        lines += prose(parser.epilog % {"prog": parser.prog})
    for full, sub_parser in nested:
        lines += command_section(full, sub_parser, known, min(level + 1, 4))
    return lines


def anchor(title: str) -> str:
    """The anchor MyST gives a heading ``# `tinymeta sine` `` (myst_heading_anchors)."""
    return re.sub(r"[^\w\- ]", "", title.lower()).strip().replace(" ", "-")


def reference(parsers: dict) -> str:
    lines = ["<!-- Written by docs/_ext/cli_reference.py on every build; do not edit. -->", ""]
    for name, parser in parsers.items():
        lines += command_section(name, parser, parsers, 2)
    return "\n".join(lines).rstrip() + "\n"


def load(spec: str):
    """The function named by ``"module:function"``; a missing one fails the build, saying which."""
    from sphinx.errors import ExtensionError

    module, _, function = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as e:
        raise ExtensionError(f"cli_reference: cannot load {spec} (cli_reference_parsers): {e}") from e


def write_reference(app) -> None:
    out = Path(app.srcdir) / app.config.cli_reference_file
    text = reference(load(app.config.cli_reference_parsers)())
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


def setup(app):
    app.add_config_value("cli_reference_parsers", "tinymeta.cli:all_parsers", "env")
    app.add_config_value("cli_reference_file", "cli_generated.md", "env")
    app.connect("builder-inited", write_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
