r'''Math in docstrings: a ``Math`` section shown as display equations, and plain text kept plain.

The convention (NumPy-style docstrings, read by napoleon):

.. code-block:: python

    def maml_grad(net, phi, task, alpha, k, loss="mse"):
        r"""Exact MAML meta-gradient g = (I - alpha H_0) ... (I - alpha H_{k-1}) grad L_B(phi_k).

        Parameters
        ----------
        ...

        Math
        ----
        g_{\mathrm{MAML}} = (I - \alpha H_0) \cdots (I - \alpha H_{k-1})\, \nabla L_B(\varphi_k)
        (eq. :eq:`eq-maml-grad`)
        """

- Each paragraph of a ``Math`` section is one display equation in LaTeX, in the symbols of the
  notation page; a paragraph of several lines is one equation (use ``\\`` and ``&`` inside
  ``\begin{aligned} ... \end{aligned}`` for several lines). The docstring is then a raw string.
- A paragraph's last line, if it is in parentheses and starts with ``eq.``, ``tutorial`` or
  ``see``, says where the equation is derived; it is printed under the equation, and
  ``:eq:`label``` there links to the derivation's number.
- The summary line and the prose stay plain text, readable in ``help()``: ``phi_k``,
  ``grad L_B``, ``||v||``. Inline math in prose may use ``:math:`...```.
- Plain text stays plain: outside inline literals, roles, literal blocks and directives, every
  ``|`` is escaped, so ``|x|`` and ``||v||`` print as written instead of being read as
  reStructuredText substitutions (which would fail the build).

Registered with a priority that runs it before napoleon (which must know ``Math`` as a custom
section: ``napoleon_custom_sections = ["Math"]`` in conf.py).
'''

from __future__ import annotations

import re

SECTION_UNDERLINE = re.compile(r"-{3,}\s*")
SOURCE_LINE = re.compile(r"\((?:eq\.|tutorial\b|see\b).*\)\s*", re.IGNORECASE)
INLINE_CODE = re.compile(r"(``.+?``|`[^`]*`)")  # inline literals, roles and links: left alone


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_header(lines: list[str], i: int) -> bool:
    """A NumPy-style section header: a title line and a dashed underline at the same indent."""
    return (
        i + 1 < len(lines)
        and lines[i].strip() != ""
        and SECTION_UNDERLINE.fullmatch(lines[i + 1].strip()) is not None
        and _indent(lines[i]) == _indent(lines[i + 1])
    )


def math_sections(lines: list[str]) -> list[str]:
    """Replace the body of every ``Math`` section with ``.. math::`` directives."""
    out, i = [], 0
    while i < len(lines):
        if not (lines[i].strip() == "Math" and _is_header(lines, i)):
            out.append(lines[i])
            i += 1
            continue
        out += lines[i : i + 2]
        j = i + 2
        while j < len(lines) and not _is_header(lines, j):
            j += 1
        paragraphs, current = [], []
        for line in lines[i + 2 : j] + [""]:
            if line.strip():
                current.append(line.strip())
            elif current:
                paragraphs.append(current)
                current = []
        for paragraph in paragraphs:
            source = paragraph[-1] if len(paragraph) > 1 and SOURCE_LINE.fullmatch(paragraph[-1]) else None
            latex = paragraph[:-1] if source else paragraph
            out += [".. math::", ""] + ["   " + line for line in latex] + [""]
            if source:
                out += [".. container:: tm-eq-source", "", "   " + source[1:-1].strip(), ""]
        i = j
    return out


def escape_bars(lines: list[str]) -> list[str]:
    """Escape ``|`` in running text, so that plain-text math is never a substitution reference."""
    out = []
    block_indent = None  # inside a literal block or a directive's body: lines indented deeper
    for line in lines:
        stripped, indent = line.strip(), _indent(line)
        if block_indent is not None and (not stripped or indent > block_indent):
            out.append(line)
            continue
        block_indent = None
        if stripped.startswith(">>>") or stripped.startswith(".. "):
            out.append(line)
        else:
            parts = INLINE_CODE.split(line)
            out.append("".join(p if k % 2 else p.replace("|", r"\|") for k, p in enumerate(parts)))
        if stripped.endswith("::"):
            block_indent = indent  # a literal block or a directive's body follows
    return out


def process(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = escape_bars(math_sections(list(lines)))


def setup(app):
    app.connect("autodoc-process-docstring", process, priority=400)  # before napoleon (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
