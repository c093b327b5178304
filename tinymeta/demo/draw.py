"""Drawing one frame of the demo on matplotlib Axes: the fit panel(s) and the query-MSE panel.

A fit panel shows the true curve, the support points, the prediction at step 0 (the
initialisation, dashed) and after each step up to the one shown (earlier steps fainter), and the
query MSE at the step shown (a text artist with ``gid="mse"``). The MSE panel plots the query MSE
against steps, up to the step shown, on axes fixed by the whole adaptation so they do not jump.

:func:`layout` places the panels in a rectangle of a figure (one fit panel, or one per
initialisation side by side for the teacher's view); :func:`snapshot_figure` draws a frame on a
new ``Figure`` without pyplot (no display needed) and :func:`save_png` writes it atomically.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .state import X_RANGE, Y_RANGE, adaptation

CLIP = 1e3  # predictions beyond this are left out of the drawing: an exploding step must not break it
MSE_CAP = 1e4  # top of the MSE axis at most


def colors(names):
    """One colour per initialisation, by its place in ``names``: ``{name: "C0", ...}``."""
    return {name: f"C{i}" for i, name in enumerate(names)}


def layout(fig, names, compare, rect=(0.0, 0.0, 1.0, 1.0)):
    """Add the panels of a frame to ``fig`` inside ``rect`` = (left, bottom, width, height).

    Returns
    -------
    (fit_axes, mse_ax): a list of Axes (one, or one per name with ``compare``) and the MSE Axes.
    """
    left, bottom, width, height = rect
    if not compare:
        fit = fig.add_axes((left + 0.06 * width, bottom + 0.1 * height, 0.54 * width, 0.8 * height))
        mse = fig.add_axes((left + 0.7 * width, bottom + 0.1 * height, 0.28 * width, 0.8 * height))
        return [fit], mse
    n = len(names)
    cols = n if n <= 3 else math.ceil(n / 2)
    rows = math.ceil(n / cols)
    cell_w, cell_h = 0.66 * width / cols, 0.88 * height / rows
    fit = [fig.add_axes((left + (0.05 + (i % cols) * 0.66 / cols) * width,
                         bottom + 0.08 * height + (rows - 1 - i // cols) * cell_h,
                         0.82 * cell_w, 0.7 * cell_h)) for i in range(n)]  # fmt: skip
    mse = fig.add_axes((left + 0.76 * width, bottom + 0.1 * height, 0.22 * width, 0.78 * height))
    return fit, mse


def draw(fit_axes, mse_ax, state, adaptations, labels, palette):
    """Draw ``state`` on the panels made by :func:`layout` (clearing them first).

    Parameters
    ----------
    fit_axes : list of Axes, one (the state's initialisation) or one per entry of ``adaptations``
    mse_ax : Axes
    state : DemoState
    adaptations : dict name -> Adaptation (:func:`~tinymeta.demo.state.adaptation`)
    labels, palette : dict name -> str, the label and colour of each initialisation
    """
    names = list(adaptations) if state.compare else [state.init]
    for ax, name in zip(fit_axes, names, strict=True):
        draw_fit(ax, state, adaptations[name], labels[name], palette[name], history=not state.compare)
    draw_mse(mse_ax, state, {labels[n]: (adaptations[n].mse, palette[n]) for n in names})


def draw_fit(ax, state, ad, label, color, history=True):
    """One fit panel. Lines: the truth, step 0, and every step up to the one shown (``history``) or
    only the step shown; at most ``state.shown + 2`` lines."""
    ax.cla()
    shown = min(state.shown, len(ad.mse) - 1)
    pred = np.where(np.abs(ad.predictions) <= CLIP, ad.predictions, np.nan)  # gaps where a step explodes
    ax.plot(ad.x, state.truth(ad.x), color="black", lw=2, label="truth", gid="truth")
    ax.plot(ad.x, pred[0], color="0.4", lw=1.5, ls="--", label="step 0 (initialisation)", gid="step 0")
    for s in range(1, shown + 1) if history else ([shown] if shown else []):
        last = s == shown
        ax.plot(ad.x, pred[s], color=color, lw=2.5 if last else 1.0,
                alpha=1.0 if last else 0.2 + 0.5 * s / shown,  # earlier steps fainter
                label=f"after {s} step{'s' if s > 1 else ''}" if last else None, gid=f"step {s}")  # fmt: skip
    ax.scatter(state.x, state.y, s=60, facecolor="white", edgecolor="black", lw=1.5, zorder=5,
               label=f"{len(state.x)} support point{'' if len(state.x) == 1 else 's'}")  # fmt: skip
    ax.set_xlim(*X_RANGE)
    ax.set_ylim(*Y_RANGE)
    detail = f": step {shown} of {state.steps}, alpha = {state.alpha:.3g}" if history else ""
    ax.set_title(label + detail)
    ax.text(0.02, 0.97, f"query MSE after {shown} step{'' if shown == 1 else 's'}: {ad.mse[shown]:.4g}",
            transform=ax.transAxes, va="top", ha="left", gid="mse",
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85})  # fmt: skip
    if ad.problem:
        ax.text(0.02, 0.03, ad.problem, transform=ax.transAxes, color="C3", va="bottom", gid="problem")
    if history:
        ax.legend(loc="lower right", fontsize="small", framealpha=0.85)
        ax.set_xlabel("x")
        ax.set_ylabel("y")


def draw_mse(ax, state, curves):
    """The query MSE against steps, one line per entry of ``curves`` (label -> (mse, colour)), up to
    the step shown; the axes span every step so that they stay put while the adaptation plays."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.cla()
    finite = [m[np.isfinite(m) & (m > 0)] for m, _ in curves.values()]
    finite = np.concatenate(finite) if finite else np.array([])
    for label, (mse, color) in curves.items():
        shown = min(state.shown, len(mse) - 1)
        ax.plot(np.arange(shown + 1), mse[: shown + 1], marker="o", ms=4, color=color, label=label)
    ax.set_yscale("log")
    if finite.size:  # an exploding step would squash every other value to the bottom: cap the axis
        ax.set_ylim(finite.min() / 1.5, min(finite.max() * 1.5, MSE_CAP))
    low, high = ax.get_ylim()
    minor = (2, 3, 5) if high / low < 20 else (2, 5) if high / low < 1000 else ()
    ax.yaxis.set_major_formatter(FuncFormatter(_plain(minor)))  # 0.3, 1, 2 rather than 3 x 10^-1
    ax.yaxis.set_minor_formatter(FuncFormatter(_plain(minor)) if minor else NullFormatter())
    ax.set_xlim(-0.3, state.steps + 0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("inner steps")
    ax.set_ylabel("query MSE")
    ax.set_title("query MSE as steps go")
    ax.grid(True, which="both", alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize="small")


def _plain(minor):
    """Tick labels of a log axis as plain numbers (0.3, 2, 1e+04): powers of ten and, of the other
    ticks, those whose leading digit is in ``minor``."""

    def label(value, _position):
        lead = value / 10 ** np.floor(np.log10(value) + 1e-9)
        return f"{value:.3g}" if round(lead) in (1, *minor) else ""

    return label


def adaptations_for(state, trained):
    """``{name: adaptation(state, trained[name])}`` for all initialisations (``compare``) or the shown one."""
    names = list(trained) if state.compare else [state.init]
    return {name: adaptation(state, trained[name]) for name in names}


def snapshot_figure(state, trained, figsize=None):
    """A frame of ``state`` on a new ``matplotlib.figure.Figure`` (no pyplot, no display).

    Parameters
    ----------
    state : DemoState
    trained : dict name -> Trained, the available initialisations (``state.init`` among them)
    figsize : (float, float) or None, inches
    """
    from matplotlib.figure import Figure

    names = list(trained)
    fig = Figure(figsize=figsize or ((13.0, 6.5) if state.compare and len(names) > 3 else (12.0, 4.6)))
    fit_axes, mse_ax = layout(fig, names, state.compare)
    labels = {n: t.init.label for n, t in trained.items()}
    draw(fit_axes, mse_ax, state, adaptations_for(state, trained), labels, colors(names))
    if state.compare:
        fig.suptitle(f"every initialisation on the same {len(state.x)} points: step {state.shown} of "
                     f"{state.steps}, alpha = {state.alpha:.3g}")  # fmt: skip
    return fig


def save_png(fig, path, dpi=110) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically: a temporary file in the same folder, then
    ``os.replace``, so a reader never sees a half-written image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
