"""The Reptile paper's sec. 6.2 with the MLP: which sums of inner-loop gradients meta-learn (5-way 5-shot).

k inner SGD steps on k disjoint mini-batches of 25 examples give gradients g1, ..., gk; the outer step
moves phi by epsilon times a combination of the k inner steps (-alpha g_i each):

* g1 alone: Reptile with k = 1, which is joint training (eq. (4.2));
* g2, g3, g4 alone: the last step only, first-order MAML with a shared tail (algo="fomaml-tail");
* g1 + g2, ..., g1 + ... + g4: all k steps, Reptile; "/k": the same sum with epsilon / k (the mean).

Setup of the Reptile code's README for this figure (``--sgd --inner-batch 25 --learning-rate 0.003
--meta-step 0.25 --meta-step-final 0 --meta-iters 40000 --eval-batch 25 --eval-iters 5``, meta-batch 1,
``--train-shots`` 5k, ``--foml`` for gk alone), with the MLP 784-256-128-64-64-5 instead of the conv net.
The code's SGD steps on the *sum* of the 25 examples' losses, so its 0.003 is alpha = 0.075 on the plain
mean used here. Shorter runs than the paper's 40,000 iterations (the annealing of epsilon spans the run).

    python benchmarks/reptile_gradient_combinations.py --iterations 10000        # runs, then the figure
    python benchmarks/reptile_gradient_combinations.py --plot-only               # the figure from results

Writes benchmarks/results/reptile_gradient_combinations.json and
docs/_static/figures/reptile_gradient_combinations.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _section6 as s6

RESULTS = s6.RESULTS / "reptile_gradient_combinations.json"
FIGURE = s6.FIGURES / "reptile_gradient_combinations.png"
ALPHA, EPSILON, BATCH = 0.075, 0.25, 25
COMBINATIONS = {  # name: (algo, k, epsilon)
    "g1": ("reptile", 1, EPSILON),
    "g2": ("fomaml-tail", 2, EPSILON), "g3": ("fomaml-tail", 3, EPSILON), "g4": ("fomaml-tail", 4, EPSILON),
    "g1+g2": ("reptile", 2, EPSILON), "(g1+g2)/2": ("reptile", 2, EPSILON / 2),
    "g1+g2+g3": ("reptile", 3, EPSILON), "(g1+g2+g3)/3": ("reptile", 3, EPSILON / 3),
    "g1+g2+g3+g4": ("reptile", 4, EPSILON), "(g1+...+g4)/4": ("reptile", 4, EPSILON / 4),
}  # fmt: skip


def settings(name, iterations, seed, backend):
    algo, k, epsilon = COMBINATIONS[name]
    return {"algo": algo, "iterations": iterations, "alpha": ALPHA, "k": k, "meta_batch": 1,
            "inner_optimizer": "sgd", "inner_batch_size": BATCH, "epsilon": (epsilon, 0.0), "seed": seed,
            "backend": backend, "eval_steps": (0, 5)}  # fmt: skip


def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {1: "0.4", 2: "C0", 3: "C1", 4: "C2"}
    with plt.rc_context(s6.STYLE):
        fig, ax = plt.subplots(figsize=(9.6, 4.6))
        for run in results["runs"]:
            algo, k, eps = COMBINATIONS[run["name"]]
            style = "--" if algo == "fomaml-tail" else (":" if eps < EPSILON else "-")
            it = [p["iteration"] for p in run["curve"]]
            acc = [100 * p["accuracy"] for p in run["curve"]]
            label = f"{run['name']}  ({100 * run['final_accuracy']:.1f} %)"
            ax.plot(it, acc, style, color=colours[k], lw=1.6 if style == "-" else 1.3, label=label)
        ax.set_xlabel("outer iteration (one task each)")
        ax.set_ylabel("held-out accuracy (%), 5-way 5-shot")
        ax.set_title("Inner-loop gradient combinations, MLP, 5-way 5-shot Omniglot\n"
                     "solid: sum of the k steps (Reptile)   dashed: last step only (FOMAML)   dotted: mean",
                     fontsize=10)  # fmt: skip
        tasks = results["runs"][0]["final_tasks"]
        ax.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                  title=f"final accuracy\n({tasks} held-out tasks)", title_fontsize=8.5)  # fmt: skip
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
    print(f"wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iterations", type=int, default=10000, help="outer iterations per combination")
    p.add_argument("--runs", nargs="+", choices=tuple(COMBINATIONS), default=list(COMBINATIONS))
    p.add_argument("--eval-every", type=int, default=500, help="iterations between learning-curve points")
    p.add_argument("--curve-tasks", type=int, default=100, help="held-out tasks per learning-curve point")
    p.add_argument("--final-tasks", type=int, default=1000, help="held-out tasks for the final accuracy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("numpy", "numba"), default="numba")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--plot-only", action="store_true", help="draw the figure from the recorded results")
    p.add_argument("--results", type=Path, default=RESULTS, help="results file (same-named runs replaced)")
    p.add_argument("--figure", type=Path, default=FIGURE, help="where the figure is written")
    a = p.parse_args(argv)
    if not a.plot_only:
        train_chars, test_chars = s6.load_data(a.data_dir)
        curve = s6.held_out(test_chars, 5, a.curve_tasks, seed=20_000 + a.seed)
        final = s6.held_out(test_chars, 5, a.final_tasks, seed=10_000 + a.seed)
        for name in a.runs:
            k = COMBINATIONS[name][1]
            run = s6.run_one(name, settings(name, a.iterations, a.seed, a.backend), train_chars, curve, final,
                             shots=5 * k, eval_every=a.eval_every)  # fmt: skip
            s6.record(
                a.results, "Reptile paper sec. 6.2 with the Omniglot MLP", run, sys.argv, list(COMBINATIONS)
            )
    figure(s6.read_results(a.results), a.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
