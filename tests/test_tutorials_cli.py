"""`tinymeta tutorials`: list them, copy them as notebooks or sources; refusals are one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinymeta.cli import main
from tinymeta.cli.tutorials import SOURCES, tutorials

pytestmark = pytest.mark.fast
ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_sources_are_the_repository_tutorials():
    assert [p.name for p in tutorials()] == sorted(
        p.name for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.py")
    )
    assert (SOURCES / "00_gradient_checking.py").read_bytes() == (
        ROOT / "tutorials/00_gradient_checking.py"
    ).read_bytes()


def test_list_names_every_tutorial(capsys):
    assert main(["tutorials", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(tutorials()) and out[0].startswith("00_gradient_checking")


def test_copy_writes_notebooks_that_jupyter_reads(tmp_path, capsys):
    pytest.importorskip("jupytext")
    assert main(["tutorials", "copy", str(tmp_path / "nb")]) == 0
    notebooks = sorted((tmp_path / "nb").glob("*.ipynb"))
    assert [p.stem for p in notebooks] == [p.stem for p in tutorials()]
    nb = json.loads(notebooks[0].read_text())
    assert nb["nbformat"] == 4 and any(c["cell_type"] == "code" for c in nb["cells"])
    assert main(["tutorials", "copy", str(tmp_path / "nb")]) == 2  # kept unless --overwrite
    err = capsys.readouterr().err
    assert "pass --overwrite" in err and err.count("\n") == 1
    assert main(["tutorials", "copy", str(tmp_path / "nb"), "--overwrite"]) == 0


def test_copy_as_sources_and_refusals(tmp_path, capsys):
    assert main(["tutorials", "copy", str(tmp_path / "py"), "--format", "py"]) == 0
    assert len(list((tmp_path / "py").glob("*.py"))) == len(tutorials())
    (tmp_path / "file").write_text("x")
    assert main(["tutorials", "copy", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["tutorials", "paste", str(tmp_path)])
    assert e.value.code == 2
