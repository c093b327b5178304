"""The Reptile paper's sec. 6.3 with the MLP: first-order MAML when its final mini-batch overlaps the others.

First-order MAML as the Reptile code runs it (algo="fomaml-tail") keeps only the last of k inner steps;
its final mini-batch comes from the same examples as the earlier ones ("shared tail") or from examples
held apart ("separate tail", one or two per class). Whether the inner loop *cycles* decides whether a
shared tail repeats examples already stepped on:

* cycling: the training tasks have 5 shots (25 examples), as at test time; k steps on mini-batches of 10
  pass over them more than once when k >= 3;
* no cycling: the training tasks have 2k shots (10k examples), enough for k disjoint mini-batches, so even
  a shared tail is unseen (a separate tail then holds 2 shots per class, one mini-batch).

Reptile (the sum of all k steps, cycling) is the reference. Inner loop of the Reptile paper's Omniglot
runs: Adam (lr 1e-3, beta1 = 0, state kept across tasks), mini-batches of 10, meta-batch 5, epsilon 1 -> 0;
tested 5-way 5-shot after 50 Adam steps on mini-batches of 5. MLP 784-256-128-64-64-5 instead of the conv
net, and short runs (``--iterations``, default 3000; the paper's are 100,000).

    python benchmarks/reptile_tail_overlap.py --iterations 3000           # runs, then the figure
    python benchmarks/reptile_tail_overlap.py --plot-only                 # the figure from results

Writes benchmarks/results/reptile_tail_overlap.json and docs/_static/figures/reptile_tail_overlap.png.
"""

from __future__ import annotations

import argparse
import sys

import _section6 as s6

RESULTS = s6.RESULTS / "reptile_tail_overlap.json"
FIGURE = s6.FIGURES / "reptile_tail_overlap.png"
BATCH = 10
VARIANTS = {  # label: (algo, tail, tail_shots, cycling)
    "FOMAML, shared tail, cycling": ("fomaml-tail", "shared", None, True),
    "FOMAML, separate tail, cycling": ("fomaml-tail", "separate", 1, True),
    "FOMAML, shared tail, no cycling": ("fomaml-tail", "shared", None, False),
    "FOMAML, separate tail, no cycling": ("fomaml-tail", "separate", 2, False),
    "Reptile, cycling": ("reptile", None, None, True),
}
LOOKS = {  # label: (colour, marker, line): red shared, blue separate; dashed without cycling
    "FOMAML, shared tail, cycling": ("C3", "o", "-"),
    "FOMAML, separate tail, cycling": ("C0", "s", "-"),
    "FOMAML, shared tail, no cycling": ("C3", "o", "--"),
    "FOMAML, separate tail, no cycling": ("C0", "s", "--"),
    "Reptile, cycling": ("C2", "^", "-"),
}
STEPS = (2, 4, 8)


def run_name(variant, k):
    return f"{variant} | k={k}"


def settings(variant, k, iterations, seed, backend):
    algo, tail, tail_shots, _ = VARIANTS[variant]
    extra = {"tail": tail, "tail_shots": tail_shots} if algo == "fomaml-tail" else {}
    return {"algo": algo, "iterations": iterations, "alpha": 1e-3, "k": k, "meta_batch": 5,
            "inner_optimizer": "adam", "inner_batch_size": BATCH, "epsilon": (1.0, 0.0), "seed": seed,
            "backend": backend, "eval_steps": (0, 50), "eval_batch_size": 5, **extra}  # fmt: skip


def train_shots(variant, k):
    return 5 if VARIANTS[variant][3] else 2 * k


def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {r["name"]: r for r in results["runs"]}
    with plt.rc_context(s6.STYLE):
        fig, ax = plt.subplots(figsize=(7.6, 4.6))
        for i, (variant, (colour, marker, line)) in enumerate(LOOKS.items()):
            got = [(k, runs[run_name(variant, k)]) for k in STEPS if run_name(variant, k) in runs]
            if not got:
                continue
            ks = [k * 2 ** (0.04 * (i - 2)) for k, _ in got]  # side by side, not on top of each other
            acc = [100 * r["final_accuracy"] for _, r in got]
            ci = [100 * r["final_ci95"] for _, r in got]
            ax.errorbar(ks, acc, yerr=ci, color=colour, marker=marker, ls=line, capsize=3, label=variant)
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(STEPS), [str(k) for k in STEPS])
        ax.set_xlabel("inner steps k in training (mini-batches of 10)")
        ax.set_ylabel("held-out accuracy (%), 5-way 5-shot")
        first = results["runs"][0]
        ax.set_title(f"Overlap of the final mini-batch, MLP on Omniglot ({first['iterations']} iterations, "
                     f"{first['final_tasks']} tasks, 95 % CI)", fontsize=10)  # fmt: skip
        ax.legend(fontsize=8.5, loc="lower left")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
    print(f"wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iterations", type=int, default=3000, help="outer iterations per run")
    p.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    p.add_argument("--steps", nargs="+", type=int, choices=STEPS, default=list(STEPS), help="values of k")
    p.add_argument("--eval-every", type=int, default=1000, help="iterations between learning-curve points")
    p.add_argument("--curve-tasks", type=int, default=50, help="held-out tasks per learning-curve point")
    p.add_argument("--final-tasks", type=int, default=500, help="held-out tasks for the final accuracy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("numpy", "numba"), default="numba")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--plot-only", action="store_true", help="draw the figure from the recorded results")
    a = p.parse_args(argv)
    if not a.plot_only:
        train_chars, test_chars = s6.load_data(a.data_dir)
        curve = s6.held_out(test_chars, 5, a.curve_tasks, seed=20_000 + a.seed)
        final = s6.held_out(test_chars, 5, a.final_tasks, seed=10_000 + a.seed)
        order = [run_name(v, k) for v in VARIANTS for k in STEPS]
        for k in a.steps:
            for variant in a.variants:
                run = s6.run_one(run_name(variant, k), settings(variant, k, a.iterations, a.seed, a.backend),
                                 train_chars, curve, final, shots=train_shots(variant, k),
                                 eval_every=a.eval_every)  # fmt: skip
                s6.record(RESULTS, "Reptile paper sec. 6.3 with the Omniglot MLP", run, sys.argv, order)
    figure(s6.read_results(RESULTS), FIGURE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
