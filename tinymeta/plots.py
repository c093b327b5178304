"""Figures of few-shot adaptation, drawn on Axes the caller provides.

* :func:`plot_adaptation`: one held-out sine task -- the true curve, the K support
  points and the network's predictions after 0, 1, ... inner steps from the
  meta-learned phi (Finn et al. 2017, Fig. 2; the Reptile paper's sine demo).
* :func:`plot_loss_vs_steps`: mean held-out query loss against the number of inner
  steps, one curve per algorithm (Finn et al. 2017, Fig. 3), with a band of
  one standard error.

Both draw on a ``matplotlib.axes.Axes`` and return it, so tutorials can place them in
their own figures. :func:`sine_figure` builds both panels on a ``matplotlib.figure.Figure``
created without pyplot: it needs no display and does not touch the global backend.
"""

from __future__ import annotations

import numpy as np

from .evaluation import check_steps
from .inner import adapt_trajectory


def plot_adaptation(ax, net, phi, task, alpha, amplitude, phase, steps=(0, 1, 10), x_range=(-5.0, 5.0),
                    num_points=200, loss="mse", adapt=None):  # fmt: skip
    """Draw the true curve y = A sin(x - p), the support points and the predictions after ``steps``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    net : MLP with one input and one output
    phi : ndarray, shape (P,), the meta-learned initial parameters
    task : Task, its support set (K, 1) is what the network adapts on
    alpha : float > 0, inner SGD step size
    amplitude, phase : float, the task's A and p
    steps : iterable of int >= 0, inner step counts to show
    x_range : (float, float), where to draw the curves
    adapt : callable ``(phi, task, steps) -> (len(steps), P)`` or None, the test-time inner loop of the
        algorithm that trained phi (e.g. :func:`tinymeta.adapters.metasgd_adapter`); None: plain SGD of alpha

    Returns
    -------
    matplotlib.axes.Axes
    """
    steps = check_steps(steps)
    x = np.linspace(*x_range, num_points)[:, None]
    if adapt is None:
        rows = adapt_trajectory(net, phi, task[0], task[1], alpha, steps[-1], loss)[list(steps)]
    else:
        rows = adapt(phi, task, steps)
    ax.plot(x[:, 0], amplitude * np.sin(x[:, 0] - phase), color="black", lw=2, label="ground truth")
    for i, s in enumerate(steps):
        label = "pre-update (phi)" if s == 0 else f"after {s} step{'s' if s > 1 else ''}"
        if not np.all(np.isfinite(rows[i])):  # the inner loop diverged on this task: nothing to draw
            ax.plot([], [], ls="-", color=f"C{i}", label=f"{label}: diverged")
            continue
        ax.plot(
            x[:, 0], net.forward(rows[i], x)[:, 0], ls="--" if s == 0 else "-", color=f"C{i}", label=label
        )
    ax.scatter(np.ravel(task[0]), np.ravel(task[1]), color="black", marker="^", s=40, zorder=5,
               label=f"{len(task[0])} support points")  # fmt: skip
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize="small")
    return ax


def plot_loss_vs_steps(ax, curves, logy=True, ylabel="mean query MSE"):
    """One line (mean, with a band of +- one standard error) per entry of ``curves``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    curves : mapping name -> EvalResult, or name -> (steps, mean, stderr)
    logy : bool, logarithmic y axis
    ylabel : str

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not curves:
        raise ValueError("curves is empty; pass at least one name -> EvalResult")
    for i, (name, curve) in enumerate(curves.items()):
        steps, mean, stderr = (np.asarray(v, dtype=float) for v in tuple(curve)[:3])
        ax.plot(steps, mean, marker="o", ms=3, color=f"C{i}", label=name)
        band = np.nan_to_num(stderr)
        ax.fill_between(steps, np.maximum(mean - band, 1e-12), mean + band, color=f"C{i}", alpha=0.2, lw=0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("inner gradient steps on the support set")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    return ax


def sine_figure(net, phi, task, alpha, amplitude, phase, curves, title=None, steps=(0, 1, 10), label=None,
                adapt=None):  # fmt: skip
    """Both panels side by side on a new ``matplotlib.figure.Figure`` (no pyplot, no global state);
    ``label`` names the algorithm whose ``phi`` adapts in the left panel, with ``adapt`` (see
    :func:`plot_adaptation`).

    Save it with ``fig.savefig(path)``.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    plot_adaptation(left, net, phi, task, alpha, amplitude, phase, steps, adapt=adapt)
    left.set_title("a held-out task" if label is None else f"{label}: adapting to a held-out task")
    plot_loss_vs_steps(right, curves)
    right.set_title("held-out tasks: query MSE after adapting")
    if title:
        fig.suptitle(title)
    return fig
