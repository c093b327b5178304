"""Figures of an Omniglot run: learning curves and a few held-out tasks with the adapted predictions.

:func:`omniglot_figure` builds, on a ``matplotlib.figure.Figure`` created without pyplot (no display, the
global backend untouched): held-out accuracy against training time, the meta-loss against the iteration,
and for a few test tasks the support images (one per class, labelled) and some query images with the
class predicted after adaptation (green: right, red: wrong).
"""

from __future__ import annotations

import numpy as np


def plot_accuracy_vs_time(ax, curve, chance, label=None):
    """Held-out accuracy (%) against training seconds from ``[{"seconds", "accuracy"}, ...]``."""
    ax.plot([c["seconds"] for c in curve], [100 * c["accuracy"] for c in curve], "o-", ms=3, label=label)
    ax.axhline(100 * chance, color="gray", ls=":", lw=1, label="chance")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.legend(fontsize="small")
    return ax


def plot_meta_loss(ax, meta_loss, window=50, ylabel="meta-loss"):
    """Meta-loss per iteration (light) and its running mean over ``window`` iterations."""
    v = np.asarray(meta_loss, dtype=np.float64)
    ax.plot(np.arange(1, len(v) + 1), v, color="C0", alpha=0.25, lw=0.5)
    if len(v) >= window:
        ax.plot(np.arange(window, len(v) + 1), np.convolve(v, np.ones(window) / window, "valid"), color="C0")
    ax.set_xlabel("meta-iteration")
    ax.set_ylabel(ylabel)
    return ax


def plot_task(axes, task, predicted, ways, shots, num_query=5):
    """One task on a row of ``ways + num_query`` Axes: the first support image of each class with its
    label, then ``num_query`` query images titled "pred p / true y" in green (right) or red (wrong)."""
    for j in range(ways):
        axes[j].imshow(task.x_support[j * shots].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        axes[j].set_title(f"class {j}", fontsize=7)
    pick = np.linspace(0, len(task.y_query) - 1, num_query).astype(int)
    for ax, q in zip(axes[ways:], pick, strict=False):
        ax.imshow(task.x_query[q].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        ok = predicted[q] == task.y_query[q]
        ax.set_title(
            f"pred {predicted[q]} / true {task.y_query[q]}", fontsize=6, color="green" if ok else "red"
        )
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def omniglot_figure(
    summary, meta_loss, tests, predict, ways, shots, meta_loss_label, num_tasks=3, num_query=5
):
    """Learning curves (top row) and ``num_tasks`` held-out tasks with the classes ``predict(task)`` gives
    (the query predictions after test-time adaptation), on a new Figure.

    Parameters
    ----------
    summary : dict, the run's summary (accuracy, ci95, test_tasks, accuracy_vs_time, algo, iterations,
        test_steps)
    meta_loss : sequence of float, one per iteration
    tests : sequence of Task, held-out tasks
    predict : callable, ``task -> int array (n_query,)`` of predicted classes
    ways, shots : int
    meta_loss_label : str, what the meta-loss is (e.g. "query loss after adapting")
    """
    from matplotlib.figure import Figure

    cols = ways + num_query
    fig = Figure(figsize=(1.1 * cols, 3.2 + 1.2 * num_tasks), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.6, 1.2 * num_tasks])
    ax1, ax2 = top.subplots(1, 2)
    label = f"{summary['accuracy']:.1%} ± {summary['ci95']:.1%} on {summary['test_tasks']} tasks"
    plot_accuracy_vs_time(ax1, summary["accuracy_vs_time"], 1.0 / ways, label=f"final: {label}")
    plot_meta_loss(ax2, meta_loss, ylabel=f"{meta_loss_label} (meta-batch mean)")
    top.suptitle(f"{summary['algo']}, {ways}-way {shots}-shot, {summary['iterations']} iterations, "
                 f"{summary['test_steps']} test steps", fontsize=9)  # fmt: skip
    axes = bottom.subplots(num_tasks, cols, squeeze=False)
    for r in range(min(num_tasks, len(tests))):
        t = tests[r]
        plot_task(axes[r], t, predict(t), ways, shots, num_query)
    bottom.suptitle("held-out tasks: support (one per class) | queries with predicted class", fontsize=8)
    return fig
