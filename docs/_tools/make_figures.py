"""Draw the site's figures from the recorded results in ``docs/_data``.

    python docs/_tools/make_figures.py            # every figure, into docs/_static/figures/

Each figure is drawn only from a data file, never from a new run; each data file says where its
numbers come from (``what`` and ``source``). The PNGs are committed; run this again after a data
file changes.

============================  ===============================  ===================================
figure                        data                             page
============================  ===============================  ===================================
``index_sine.png``            ``sine_fig2.json``               index
``sine_fig2.png``             ``sine_fig2.json``               Reproductions (Finn et al. Fig. 2)
``sine_curves.png``           ``sine_fig2.json``,              Reproductions (Finn et al. Fig. 3)
                              ``sine_table.json``
``omniglot_curves.png``       ``omniglot.json``                Reproductions
``omniglot_final.png``        ``omniglot.json``                Reproductions
``speed_sine.png``            ``speed.json``                   Performance
``speed_omniglot.png``        ``speed.json``                   Performance
============================  ===============================  ===================================
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DOCS = Path(__file__).resolve().parents[1]
DATA, OUT = DOCS / "_data", DOCS / "_static" / "figures"

# One colour per algorithm on every figure (matplotlib's default cycle, as tinymeta's own plots).
COLOURS = {"maml": "C0", "fomaml": "C1", "reptile": "C2", "joint": "C3"}
LABELS = {"maml": "MAML", "fomaml": "first-order MAML", "reptile": "Reptile", "joint": "joint training"}
STEP_COLOURS = {"0": "0.5", "1": "C4", "10": "C9"}  # not the algorithms' colours
STEP_LABELS = {"0": "before adaptation", "1": "after 1 step", "10": "after 10 steps"}
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 10.5,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def save(fig, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # Fixed metadata: the same data gives the same bytes, so a rerun changes no committed file.
    fig.savefig(OUT / name, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    print(f"wrote {(OUT / name).relative_to(DOCS.parent)}")


def task_panel(ax, d: dict, run: str, title: str, legend: bool) -> None:
    """One held-out task: the truth, the support points, the prediction before and after adaptation."""
    ex = d["example"]
    x = np.array(ex["x"])
    K = int(run.rsplit("_K", 1)[1])
    ax.plot(x, ex["amplitude"] * np.sin(x - ex["phase"]), color="black", lw=2, label="true function")
    for steps, y in d["predictions"][run].items():
        style = "--" if steps == "0" else "-"
        ax.plot(x, y, color=STEP_COLOURS[steps], lw=1.6, ls=style, label=STEP_LABELS[steps])
    ax.plot(ex["x_support"][:K], ex["y_support"][:K], "^", color="black", ms=7, label=f"{K} support points")
    ax.set_title(title)
    ax.set_xlabel("x")
    ax.set_ylim(-5.5, 5.5)
    if legend:  # below the panel: the curves fill it
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=9, columnspacing=1.2)


def curve_panel(ax, d: dict, K: int, algos, table: dict | None = None) -> None:
    """Held-out query MSE against the number of SGD steps, one line per algorithm (log scale)."""
    for algo in algos:
        c = d["curves"].get(f"{algo}_K{K}")
        if c is None:
            continue
        steps, mse, se = np.array(c["steps"]), np.array(c["mse"]), np.array(c["stderr"])
        ax.plot(steps, mse, "o-", ms=3.5, color=COLOURS[algo], label=LABELS[algo])
        ax.fill_between(steps, mse - se, mse + se, color=COLOURS[algo], alpha=0.2, lw=0)
    if table is not None:
        for algo, values in table["values"].items():
            ax.plot(table["steps"], values, table["marker"], color=COLOURS[algo], ms=8, mfc="none", mew=1.5)
        ax.plot([], [], table["marker"], color="0.3", ms=8, mfc="none", mew=1.5, label=table["label"])
    ax.set_yscale("log")
    ax.set_ylim(0.06, 20)  # room for the legend above the curves
    ax.set_xlabel("SGD steps on the support set")
    ax.set_ylabel("held-out query MSE")
    ax.set_xticks(range(0, 11))


def index_sine() -> None:
    d = load("sine_fig2.json")
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.9), gridspec_kw={"width_ratios": [1, 1.1]})
        task_panel(left, d, "maml_K10", "MAML on a held-out task, K = 10", legend=True)
        curve_panel(right, d, 10, ["maml", "fomaml", "reptile", "joint"])
        right.set_title("all 500 held-out tasks")
        right.legend(loc="upper right", fontsize=9)
        fig.suptitle("Sine waves: one gradient step from a meta-learned initialisation fits a new task")
        fig.tight_layout()
        save(fig, "index_sine.png")


def sine_fig2() -> None:
    d = load("sine_fig2.json")
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(10, 6.6), sharex=True, sharey=True)
        for ax, (run, title) in zip(axes.flat, [
            ("maml_K5", "MAML, K = 5"),
            ("maml_K10", "MAML, K = 10"),
            ("joint_K5", "pretrained (joint training), K = 5"),
            ("joint_K10", "pretrained (joint training), K = 10"),
        ], strict=True):  # fmt: skip
            task_panel(ax, d, run, title, legend=False)
        for ax in axes[0]:
            ax.set_xlabel("")
        for ax in axes[:, 0]:
            ax.set_ylabel("y")
        handles, labels = axes[0, 1].get_legend_handles_labels()
        labels = [label.replace("10 support points", "K support points") for label in labels]
        fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=9.5, bbox_to_anchor=(0.5, -0.01))
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        save(fig, "sine_fig2.png")


def sine_curves() -> None:
    d, t = load("sine_fig2.json"), load("sine_table.json")
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
        curve_panel(
            left, d, 10, ["maml", "fomaml", "reptile", "joint"],
            table={"steps": t["steps"], "values": t["reference"], "marker": "s",
                   "label": "reference implementation (JAX/PyTorch)"},
        )  # fmt: skip
        left.set_title("K = 10 support points")
        left.legend(loc="upper right", fontsize=9)
        curve_panel(
            right, d, 5, ["maml", "joint"],
            table={"steps": t["steps"], "values": t["paper_K5"], "marker": "D",
                   "label": "Finn et al. (2017)"},
        )  # fmt: skip
        right.set_title("K = 5 support points (the paper's numbers)")
        right.legend(loc="upper right", fontsize=9)
        fig.tight_layout()
        save(fig, "sine_curves.png")


def omniglot_curves() -> None:
    d = load("omniglot.json")
    curves = {**d["curves"], **d["reference_curves"]}
    panels = {  # label: (colour, line style, marker)
        "1-shot": {
            "MAML 1-shot, alpha 0.4 (1 test step)": ("C0", "-", "o"),
            "MAML 1-shot (JAX, 3 test steps)": ("C0", ":", "x"),
            "Reptile 1-shot": ("C2", "-", "o"),
        },
        "5-shot": {
            "MAML 5-shot, alpha 0.4": ("C9", "-", "o"),
            "MAML 5-shot, alpha 2.0": ("C4", "-", "o"),
            "MAML 5-shot, alpha 2.0, annealed outer lr": ("C0", "-", "s"),
            "Reptile 5-shot": ("C2", "-", "o"),
            "Reptile 5-shot (JAX)": ("C2", ":", "x"),
        },
    }
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharey=True)
        for ax, (shots, styles) in zip(axes, panels.items(), strict=True):
            for label, (colour, ls, marker) in styles.items():
                minutes, acc = np.array(curves[label]).T
                name = label if "JAX" in label else f"tinymeta: {label}"
                ax.plot(minutes, acc, ls=ls, marker=marker, ms=4, color=colour, label=name)
            ax.set_title(f"5-way {shots}")
            ax.set_xlabel("training time, minutes (one core)")
            ax.legend(loc="lower right", fontsize=8.5)
        axes[0].set_ylabel("held-out accuracy, % (50 tasks)")
        axes[0].set_ylim(20, 100)
        fig.tight_layout()
        save(fig, "omniglot_curves.png")


def omniglot_final() -> None:
    d = load("omniglot.json")
    rows = d["final"]
    sources = [("paper", "Finn et al. (2017), MLP with batch norm", "D", "0.35"),
               ("reference", "reference implementation (JAX, 12 min)", "s", "C1"),
               ("tinymeta", "tinymeta", "o", "C0")]  # fmt: skip
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(10, 3.6))
        for offset, (key, label, marker, colour) in zip((-0.22, 0.0, 0.22), sources, strict=True):
            ys, xs, errs = [], [], []
            for i, row in enumerate(rows):
                if row[key] is not None:
                    ys.append(i + offset)
                    xs.append(row[key][0])
                    errs.append(row[key][1])
            ax.errorbar(xs, ys, xerr=errs, fmt=marker, color=colour, ms=6, capsize=3, label=label)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([f"{r['run']}" + (f" ({r['tinymeta_minutes']} min)") for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel("accuracy on 1000 held-out tasks, % (95 % confidence interval)")
        ax.set_xlim(50, 100)
        ax.grid(axis="y", alpha=0)
        ax.legend(loc="upper left", fontsize=9)
        ax.set_title("Omniglot 5-way, MLP without batch norm: final accuracy")
        fig.tight_layout()
        save(fig, "omniglot_final.png")


def implementation_colour(name: str) -> str:
    """The same colour for an implementation on every speed figure."""
    colours = {"single": "C2", "Numba": "C0", "JAX": "C1", "batched": "C3"}  # single precision before Numba
    colours.update({"NumPy": "0.55", "one task": "0.75"})
    for key, colour in colours.items():
        if key in name:
            return colour
    return "C7"


def speed(key: str, name: str, title: str) -> None:
    d = load("speed.json")[key]
    rows = d["rows"]
    n = len(rows)
    width = 0.8 / n
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(11, 4.2))
        for j, row in enumerate(rows):
            x = np.arange(len(d["columns"])) + (j - (n - 1) / 2) * width
            label = f"{row['name']} (float{row['float']})"
            bars = ax.bar(x, row["it_per_s"], width, color=implementation_colour(row["name"]), label=label)
            for bar, v in zip(bars, row["it_per_s"], strict=True):
                text = f"{v:g}" if v < 100 else f"{v:.0f}"
                centre = bar.get_x() + bar.get_width() / 2
                ax.text(centre, v * 1.08, text, ha="center", va="bottom", fontsize=7.5)
        ax.set_xticks(range(len(d["columns"])))
        ax.set_xticklabels(d["columns"])
        ax.set_yscale("log")
        top = max(max(r["it_per_s"]) for r in rows)
        ax.set_ylim(min(min(r["it_per_s"]) for r in rows) / 2, top * 12)  # room for the legend
        ax.set_ylabel("meta-iterations per second (log scale)")
        ax.grid(axis="x", alpha=0)
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8.5, ncol=3 if n > 3 else n)
        fig.tight_layout()
        save(fig, name)


FIGURES = {
    "index_sine": index_sine,
    "sine_fig2": sine_fig2,
    "sine_curves": sine_curves,
    "omniglot_curves": omniglot_curves,
    "omniglot_final": omniglot_final,
    "speed_sine": lambda: speed("sine", "speed_sine.png", "Sine benchmark (meta-batch 25): higher is faster"),
    "speed_omniglot": lambda: speed(
        "omniglot", "speed_omniglot.png", "Omniglot 5-way, MLP 784-256-128-64-64-5: higher is faster"
    ),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("figures", nargs="*", help=f"only these (default: all): {', '.join(FIGURES)}")
    args = parser.parse_args(argv)
    unknown = set(args.figures) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figure(s) {sorted(unknown)}; choose from {list(FIGURES)}")
    for name in args.figures or FIGURES:
        FIGURES[name]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
