"""Reproduce sine-wave regression: MAML, first-order MAML, Reptile, joint training; one JSON line per run.

    python benchmarks/reproduce_sine.py --configs maml-1 --backend numba --markdown sine.md > sine.jsonl
    python benchmarks/reproduce_sine.py --from-jsonl a.jsonl b.jsonl --markdown sine.md   # table only

Configurations (--configs; all by default, in this order):

* ``maml-1``, ``fomaml-1``, ``fomaml-5``, ``reptile-5``, ``joint``: the MAML paper's setting
  (Finn et al. 2017, Sec. 5.1): 1-40-40-1 ReLU, K = 10 support and 10 query points, inner SGD
  alpha = 0.01, meta-batch 25, outer Adam 1e-3, 70,000 iterations. Reptile: k = 5 SGD steps on the
  support set, epsilon 0.1 annealed linearly to 0 (no outer Adam). ``joint`` is the pretrained
  baseline (training at phi itself, k = 0). Scored on two sets of 500 held-out tasks with 100 query
  points each, after 0..10 SGD steps of alpha = 0.01: ``heldout`` (``Sine().evaluation_tasks(500,
  seed=20170309, K_query=100)``, as ``tinymeta sine``) and ``anchor`` (the reference implementations'
  ``test_tasks_500.npz``, read as float64; --anchor-tasks); each with all K = 10 support points and
  with the first 5 (``_K5``).
* ``reptile-demo``: the Reptile sine demo (Nichol et al. 2018): 1-64-64-1 tanh, phase U[0, 2 pi], x on a
  50-point grid; 5 inner SGD steps (lr 0.02) on mini-batches of 10 of the 50 grid points, epsilon 0.1
  annealed to 0, one task per iteration, 30,000 iterations. Scored as the demo plots: 10 grid points as
  support, all 50 grid points as query, after 0/1/5/10/32 SGD steps of lr 0.02 (500 tasks, seed 20170309).

The MSE is the mean over query points of the squared error (no 1/2), averaged over tasks, with the
standard error over tasks (and, in the JSON, the median over tasks: with K = 5 an occasional task's
SGD diverges, which dominates the mean). Training uses one Numba/BLAS thread by default (--threads).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
DEFAULT_ANCHORS = CHECKOUT.parent / "shared" / "anchors" / "test_tasks_500.npz"
EVAL_SEED, EVAL_TASKS = 20170309, 500
BLOWUP = 1000.0  # a query MSE above this means the task's inner SGD diverged (predicting 0 scores <= 12.5)
PAPER = dict(sizes=[1, 40, 40, 1], activation="relu", alpha=0.01, meta_batch=25, iterations=70_000)
DEMO = dict(sizes=[1, 64, 64, 1], activation="tanh", alpha=0.02, meta_batch=1, iterations=30_000)
CONFIGS = {
    "maml-1": {**PAPER, "algo": "maml", "k": 1},
    "fomaml-1": {**PAPER, "algo": "fomaml", "k": 1},
    "fomaml-5": {**PAPER, "algo": "fomaml", "k": 5},
    "reptile-5": {**PAPER, "algo": "reptile", "k": 5, "epsilon": (0.1, 0.0)},
    "joint": {**PAPER, "algo": "joint", "k": 0},
    "reptile-demo": {**DEMO, "algo": "reptile", "k": 5, "epsilon": (0.1, 0.0), "inner_batch_size": 10},
}
# Query MSE after 1 / 5 / 10 steps, K = 10, 500 tasks, 70k iterations: independent PyTorch/JAX implementations
# (float32) on the same test tasks, one seed each. Between seeds they spread much more than the standard
# error: e.g. first-order MAML k=1 after 1 step, JAX seeds 0, 1, 2: 0.71, 0.38, 0.38. Compare seed spreads.
REFERENCE = {"maml-1": (0.33, 0.13, 0.10), "fomaml-1": (0.49, 0.14, 0.11), "fomaml-5": (0.96, 0.13, 0.08),
             "reptile-5": (0.98, 0.48, 0.37)}  # fmt: skip
# Finn et al. (2017), appendix: MAML vs the pretrained baseline after 1 / 5 / 10 steps (they match the
# K = 5 scores far better than the K = 10 ones).
PAPER_MSE = {"maml-1": (0.67, 0.38, 0.35), "joint": (2.41, 2.23, 2.19)}
REPORT_STEPS = {"paper": (1, 5, 10), "demo": (1, 5, 10, 32)}


def eval_sets(name, anchor_path):
    """``{label: (tasks, alpha, steps)}``: the held-out sets a configuration is scored on."""
    import numpy as np

    from tinymeta import Sine, Task

    if name == "reptile-demo":
        tasks = Sine.reptile_demo(K=10).evaluation_tasks(EVAL_TASKS, seed=EVAL_SEED, K_query=50)[0]
        return {"demo_grid_K10": (tasks, DEMO["alpha"], (0, 1, 5, 10, 32))}
    sets = {"heldout": Sine(K=10).evaluation_tasks(EVAL_TASKS, seed=EVAL_SEED, K_query=100)[0]}
    if anchor_path is not None and Path(anchor_path).exists():
        d = np.load(anchor_path)
        arrays = [np.asarray(d[key], dtype=np.float64) for key in ("xs", "ys", "xq", "yq")]
        sets["anchor"] = [Task(*(a[i] for a in arrays)) for i in range(len(arrays[0]))]
    out = {}
    for label, tasks in sets.items():
        out[f"{label}_K10"] = (tasks, PAPER["alpha"], tuple(range(11)))
        first5 = [Task(t[0][:5], t[1][:5], t[2], t[3]) for t in tasks]
        out[f"{label}_K5"] = (first5, PAPER["alpha"], (0, 1, 5, 10))
    return out


def score(net, phi, tasks, alpha, steps):
    """Mean, standard error and median query MSE over tasks after each number of steps, plus how many
    tasks blew up (MSE > BLOWUP or not finite). A task whose inner SGD overflows is scored step by step
    (inf from the step it fails at) instead of stopping the whole evaluation."""
    import numpy as np

    from tinymeta import DivergenceError, evaluate

    with np.errstate(over="ignore", invalid="ignore"):  # a diverging task overflows; it is counted below
        try:
            per_task = evaluate(net, phi, tasks, alpha, steps).per_task
        except DivergenceError:
            rows = []
            for t in tasks:
                try:
                    rows.append(evaluate(net, phi, [t], alpha, steps).per_task[0])
                except DivergenceError:
                    rows.append([_score_or_inf(evaluate, net, phi, t, alpha, s) for s in steps])
            per_task = np.array(rows)
        n = len(per_task)
        mean, stderr = per_task.mean(axis=0), per_task.std(axis=0, ddof=1) / np.sqrt(n)
    as_dict = lambda v: {str(s): float(x) for s, x in zip(steps, v, strict=True)}
    blown = ~(per_task <= BLOWUP)
    return {
        "mse": as_dict(mean),
        "stderr": as_dict(stderr),
        "median": as_dict(np.median(per_task, axis=0)),
        "blown_up": {str(s): int(b) for s, b in zip(steps, blown.sum(axis=0), strict=True)},
        "tasks": n,
    }


def _score_or_inf(evaluate, net, phi, task, alpha, s):
    from tinymeta import DivergenceError

    try:
        return float(evaluate(net, phi, [task], alpha, [s]).mean[0])
    except DivergenceError:
        return float("inf")


def run_one(name, seed, iterations, backend, anchor_path, out_dir, progress):
    """Train one configuration, score it on its held-out sets; returns the JSON-ready row."""
    import numpy as np

    from tinymeta import MLP, Adam, Sine, meta_train

    c = CONFIGS[name]
    t0 = time.perf_counter()
    net = MLP(c["sizes"], c["activation"])
    family = Sine.reptile_demo() if name == "reptile-demo" else Sine(K=10)
    extra = {key: c[key] for key in ("epsilon", "inner_batch_size") if key in c}
    if c["algo"] != "reptile":
        extra["outer_optimizer"] = Adam(1e-3)
    iters = c["iterations"] if iterations is None else iterations
    kw = dict(alpha=c["alpha"], k=c["k"], meta_batch=c["meta_batch"], backend=backend, **extra)
    t_compile = time.perf_counter()  # a 2-iteration warm-up: Numba compiles outside the timed run
    meta_train(net, family, c["algo"], 2, seed=seed, progress=False, **kw)
    compile_s = time.perf_counter() - t_compile
    result = meta_train(net, family, c["algo"], iters, seed=seed, progress=progress, **kw)
    if out_dir is not None:  # saved before scoring, so a run is never lost to a failing evaluation
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        np.savez(Path(out_dir) / f"{name}-seed{seed}.npz", phi=result.phi, config=result.config.to_json())
    t_eval = time.perf_counter()
    sets = eval_sets(name, anchor_path)
    scores = {label: score(net, result.phi, *spec) for label, spec in sets.items()}
    command = ["python", "benchmarks/reproduce_sine.py", "--configs", name, "--seeds", str(seed),
               "--backend", result.config.backend]  # fmt: skip
    command += [] if iterations is None else ["--iterations", str(iterations)]
    return {
        "config": name, "seed": seed, "algo": c["algo"], "k": c["k"], "iterations": iters,
        "backend": result.config.backend, "threads": os.environ.get("NUMBA_NUM_THREADS"),
        "compile_seconds": round(compile_s, 2), "train_seconds": round(result.train_seconds, 2),
        "iterations_per_second": round(result.iterations_per_second, 1),
        "eval_seconds": round(time.perf_counter() - t_eval, 2),
        "wall_seconds": round(time.perf_counter() - t0, 2), "scores": scores,
        "reference_mse_1_5_10": REFERENCE.get(name), "paper_mse_1_5_10": PAPER_MSE.get(name),
        "final_meta_loss_mean_last_1000": float(np.mean(result.history["meta_loss"][-1000:])),
        "command": " ".join(command),
    }  # fmt: skip


def _cell(score, steps):
    """``mean ± se`` per step; the median and the count when some tasks blew up."""
    if score is None:
        return "—"
    out = []
    for s in map(str, steps):
        n = score.get("blown_up", {}).get(s, 0)
        if n:
            out.append(f"median {score['median'][s]:.3f} ({n} blew up)")
        else:
            out.append(f"{score['mse'][s]:.3f} ± {score['stderr'][s]:.3f}")
    return " / ".join(out)


def markdown(rows):
    """A markdown table: one row per (configuration, seed)."""
    fmt = lambda v: "—" if v is None else " / ".join(f"{x:.2f}" for x in v)
    lines = [
        "| config | seed | iters | it/s | train s | held-out, K = 10 | anchor tasks, K = 10 "
        "| anchor tasks, K = 5 | reference, K = 10 | paper |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['config']} | {r.get('seed', '')} | error: {r['error']} ||||||||")
            continue
        s = r["scores"]
        cells = [r["config"], str(r["seed"]), str(r["iterations"]), f"{r['iterations_per_second']:.0f}",
                 f"{r['train_seconds']:.0f}"]  # fmt: skip
        if r["config"] == "reptile-demo":
            demo = _cell(s["demo_grid_K10"], REPORT_STEPS["demo"]) + " (1/5/10/32 steps)"
            cells += [demo, "—", "—", "—", "—"]
        else:
            steps = REPORT_STEPS["paper"]
            cells += [_cell(s.get(key), steps) for key in ("heldout_K10", "anchor_K10", "anchor_K5")]
            cells += [fmt(r["reference_mse_1_5_10"]), fmt(r["paper_mse_1_5_10"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Cells: query MSE ± standard error over 500 tasks after 1 / 5 / 10 SGD steps")
    lines.append("(demo: 1 / 5 / 10 / 32); it/s and train s exclude the one-off Numba compilation.")
    lines.append(f"Where some tasks' inner SGD diverged (query MSE > {BLOWUP:g}), the median is shown.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", choices=tuple(CONFIGS), default=list(CONFIGS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--iterations", type=int, default=None, help="override every configuration's iterations")
    p.add_argument("--backend", choices=("numpy", "numba"), default="numba")
    p.add_argument("--threads", type=int, default=1, help="Numba and BLAS threads")
    p.add_argument("--anchor-tasks", default=str(DEFAULT_ANCHORS), help="the references' test tasks")
    p.add_argument("--out", default=None, help="directory for the trained phi of each run (.npz)")
    p.add_argument("--markdown", default=None, help="write the results as a markdown table to this path")
    p.add_argument("--from-jsonl", nargs="+", default=None, help="no training: tabulate these JSON lines")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    a = p.parse_args(argv)
    if a.iterations is not None and a.iterations < 1:
        p.error(f"argument --iterations: expected an integer >= 1; got {a.iterations}")
    if a.from_jsonl:
        lines = [line for f in a.from_jsonl for line in Path(f).read_text().splitlines() if line.strip()]
        rows = [json.loads(line) for line in lines]
    else:
        for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(a.threads)
        if not Path(a.anchor_tasks).exists():
            print(f"reproduce_sine: {a.anchor_tasks} not found; held-out set only", file=sys.stderr)
        rows = []
        for name in a.configs:
            for seed in a.seeds:
                try:
                    row = run_one(name, seed, a.iterations, a.backend, a.anchor_tasks, a.out, a.progress)
                except FloatingPointError as e:  # DivergenceError: report it and go on with the next run
                    row = {"config": name, "seed": seed, "error": str(e)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if a.markdown:
        Path(a.markdown).write_text(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
