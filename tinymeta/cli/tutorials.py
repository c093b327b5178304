"""``tinymeta tutorials``: list the tutorials, or copy them into a folder as Jupyter notebooks.

The tutorials are jupytext percent-format ``.py`` files (``tutorials/`` in the repository, shipped inside
the package as ``tinymeta/tutorial_sources``). ``copy DIR`` writes each as ``DIR/NN_name.ipynb`` (with
jupytext, from the ``notebooks`` extra: ``pip install "tinymeta[notebooks]"``), or as the ``.py`` source
with ``--format py``. Existing files are kept unless ``--overwrite`` is given.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import args as a

PROG = "tinymeta tutorials"
SOURCES = Path(__file__).resolve().parents[1] / "tutorial_sources"


def tutorials() -> list[Path]:
    """The tutorial sources, in teaching order."""
    return sorted(SOURCES.glob("[0-9][0-9]_*.py"))


def build_parser() -> a.Parser:
    p = a.Parser(
        prog=PROG, description="List the tutorials, or copy them into a folder as Jupyter notebooks."
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="list the tutorials")
    copy = sub.add_parser("copy", help="write the tutorials into DIR as notebooks (.ipynb)")
    copy.add_argument("dir", metavar="DIR", help="destination folder (created if needed)")
    copy.add_argument("--format", choices=("ipynb", "py"), default="ipynb",
                      help="ipynb (needs jupytext: the notebooks extra) or the .py source")  # fmt: skip
    copy.add_argument("--overwrite", action="store_true", help="replace files already in DIR")
    return p


def _first_heading(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return ""


def main(argv=None) -> int:
    """Run ``tinymeta tutorials``; returns the exit status (2 for a user error, with one line)."""
    args = build_parser().parse_args(argv)
    sources = tutorials()
    if not sources:
        return a.fail(PROG, f"no tutorials in {SOURCES}: this installation does not ship them")
    if args.action == "list":
        for s in sources:
            print(f"{s.stem:32} {_first_heading(s)}")
        return 0
    if args.format == "ipynb":
        try:
            import jupytext
        except ImportError:
            return a.fail(PROG, 'writing notebooks needs jupytext: pip install "tinymeta[notebooks]" '
                          "(or use --format py)")  # fmt: skip
    dest = Path(args.dir).expanduser()
    if dest.exists() and not dest.is_dir():
        return a.fail(PROG, f"{dest} is a file; give a folder")
    targets = [dest / f"{s.stem}.{args.format}" for s in sources]
    existing = [t.name for t in targets if t.exists()]
    if existing and not args.overwrite:
        more = " ..." if len(existing) > 3 else ""
        return a.fail(PROG, f"{dest} already has {', '.join(existing[:3])}{more}; pass --overwrite to "
                      "replace them")  # fmt: skip
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for s, t in zip(sources, targets, strict=True):
            if args.format == "py":
                shutil.copyfile(s, t)
            else:
                jupytext.write(jupytext.read(s, fmt="py:percent"), t, fmt="ipynb")
    except OSError as e:
        return a.fail(PROG, f"cannot write into {dest}: {e.strerror or e}")
    print(f"wrote {len(targets)} tutorials into {dest}; open them with: jupyter lab {dest}")
    return 0
