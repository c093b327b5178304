"""The interactive sine demo: click a few points of a sine wave and watch each initialisation adapt.

``tinymeta demo`` opens it in a window, :func:`show` in a notebook, and ``tinymeta demo --snapshot
OUT.png`` renders one frame. The modules, from the bottom up:

* :mod:`~tinymeta.demo.inits`: the initialisations offered, as a registry of records (how each is
  trained, how it adapts at test time);
* :mod:`~tinymeta.demo.store`: their parameters, from a quick training run cached in the user cache
  directory, or from a run directory;
* :mod:`~tinymeta.demo.state`: the frame shown, and the pure functions that change it (one per
  control) and compute what is drawn (no matplotlib);
* :mod:`~tinymeta.demo.draw`: the panels of a frame on matplotlib Axes, and PNG snapshots;
* :mod:`~tinymeta.demo.app`: the window with matplotlib's widgets;
* :mod:`~tinymeta.demo.notebook`: :func:`show` for Jupyter;
* :mod:`tinymeta.cli.demo`: the ``tinymeta demo`` command.

Importing this package imports neither matplotlib nor the training code's kernels.
"""

from __future__ import annotations


def show(*args, **kwargs):
    """The demo in a notebook: see :func:`tinymeta.demo.notebook.show` (imported on first use)."""
    from .notebook import show as _show

    return _show(*args, **kwargs)


__all__ = ["show"]
