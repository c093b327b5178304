"""The demo inside Jupyter: :func:`show`.

With an interactive matplotlib backend (ipympl's ``%matplotlib widget``, or a desktop backend
such as TkAgg or QtAgg in IPython) the full demo opens in the notebook or a window. In a Jupyter
kernel whose backend is the default inline one, ``show`` switches to ``%matplotlib widget`` if
ipympl is installed. Otherwise (inline without ipympl, Agg in CI, a plain script) it says what to
install and shows one static frame: the adaptation after ``steps`` steps.
"""

from __future__ import annotations

import sys

import numpy as np

from . import inits
from .app import window
from .draw import snapshot_figure
from .state import show_step, start_state
from .store import initialisations

NON_INTERACTIVE = ("agg", "cairo", "pdf", "pgf", "ps", "svg", "template", "inline")
INSTALL_HINT = ("the interactive demo needs the ipympl backend: `pip install ipympl`, restart the kernel, "
                "run `%matplotlib widget` and call tinymeta.demo.show() again")  # fmt: skip
ENABLE_HINT = "the interactive demo needs `%matplotlib widget` (ipympl is installed): run it, then show()"


def is_interactive_backend(name) -> bool:
    """Whether matplotlib backend ``name`` draws in a live window or widget (so clicks reach the demo)."""
    name = str(name).lower()
    return not any(name == b or name.endswith("backend_" + b) for b in NON_INTERACTIVE)


class StaticFrame:
    """What :func:`show` returns without an interactive backend: the frame it displayed.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
    state : DemoState
    """

    def __init__(self, figure, state):
        self.figure, self.state = figure, state

    def __repr__(self):
        return f"<static frame of the tinymeta demo: {self.state.init}, step {self.state.shown}; {_hint()}>"


def show(algo="maml", *, compare=False, params=None, run_dir=None, points=None, task=None, num_points=5,
         steps=10, alpha=None, seed=0, cache_dir=None, interactive=None):  # fmt: skip
    """Open the sine demo in a notebook (or IPython's window); see the module docstring.

    Parameters
    ----------
    algo : str, the initialisation shown first (a key of ``tinymeta.demo.inits.REGISTRY``)
    compare : bool, start in the teacher's view (every initialisation side by side)
    params : dict name -> phi, optional: initialisations you have trained (1-40-40-1 ReLU, alpha 0.01)
    run_dir : path, optional: the checkpoints of a ``tinymeta sine --out RUN_DIR`` run
    points : (x, y) sequences, optional: the support points (default: ``num_points`` on the task)
    task : (amplitude, phase), optional: the true curve (default: drawn with ``seed``)
    steps : int in [1, 50], alpha : float > 0 (default: the training alpha), seed : int >= 0
    cache_dir : path, optional: where quick-trained initialisations are kept
    interactive : bool or None, None: decide from the backend (see the module docstring)

    Returns
    -------
    DemoApp (interactive; keep it, the widgets live as long as it does) or :class:`StaticFrame`.
    In a plain script with a desktop backend, call ``matplotlib.pyplot.show()`` afterwards (or run
    ``tinymeta demo``); Jupyter and IPython show the figure themselves.
    """
    trained = initialisations(list(inits.REGISTRY), run_dir=run_dir, params=params, cache_dir=cache_dir,
                              log=lambda text: print(text, file=sys.stderr))  # fmt: skip
    if algo not in trained:
        raise ValueError(f"algo must be one of {list(trained)}; got {algo!r}")
    alpha = trained[algo].alpha if alpha is None else alpha
    state = start_state(algo, seed=seed, task=task, points=points, num_points=num_points, alpha=alpha,
                        steps=steps, compare=compare)  # fmt: skip
    if interactive is None:
        interactive = _interactive_backend_available()
    if interactive:
        import matplotlib

        app = window(trained, state, np.random.default_rng(seed + 1), num_points)
        if "ipympl" in matplotlib.get_backend() and not matplotlib.is_interactive():
            _display(app.fig.canvas)
        return app
    print(f"tinymeta.demo.show: {_hint()}. Showing a static frame instead.")
    frame = StaticFrame(snapshot_figure(show_step(state, state.steps), trained), state)
    _display_png(frame.figure)
    return frame


def _interactive_backend_available():
    import matplotlib

    backend = matplotlib.get_backend()
    if is_interactive_backend(backend):
        return True
    shell = _jupyter_shell()
    if shell is None or "inline" not in backend.lower():
        return False  # a script, or a backend chosen on purpose (MPLBACKEND=Agg in CI): keep it
    try:
        import ipympl  # noqa: F401
    except ImportError:
        return False
    shell.run_line_magic("matplotlib", "widget")
    print("tinymeta.demo.show: switched matplotlib to the interactive ipympl backend (%matplotlib widget)")
    return True


def _hint():
    try:
        import ipympl  # noqa: F401
    except ImportError:
        return INSTALL_HINT
    return ENABLE_HINT


def _jupyter_shell():
    """The running Jupyter kernel's shell, or None (plain Python, terminal IPython)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if shell is not None and type(shell).__name__ == "ZMQInteractiveShell" else None


def _display(obj):
    from IPython.display import display

    display(obj)


def _display_png(fig):
    """Show ``fig`` as a PNG in a notebook; in a plain script there is nowhere to show it (a hint only)."""
    if sys.modules.get("IPython") is None or sys.modules["IPython"].get_ipython() is None:
        print("tinymeta.demo.show: not in IPython; save a frame with `tinymeta demo --snapshot OUT.png`")
        return
    import io

    from IPython.display import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _display(Image(data=buffer.getvalue(), format="png"))
