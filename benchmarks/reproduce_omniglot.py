"""Reproduce Omniglot N-way K-shot with MAML, first-order MAML and Reptile under wall-clock budgets.

Each run is ``tinymeta omniglot`` in its own process (one BLAS / Numba thread) with a wall-clock training
budget (learning-curve evaluations excluded); one JSON line per run is printed with the held-out accuracy,
its 95 % interval, the iterations done and the time taken. Runs go in the order given by --runs.

    python benchmarks/reproduce_omniglot.py --data-dir DIR --out runs/omniglot-repro > results.jsonl
    python benchmarks/reproduce_omniglot.py --runs maml-1 --time-budget 300 --data-dir DIR   # shorter

Settings (MLP 784-256-128-64-64-N, ReLU, He init, no batch norm; alpha on the plain mean cross-entropy, so
MAML's code's step is alpha = 2.0 here) and the budgets of the figures in docs/reproductions.md:

* maml-1: alpha 0.4, 1 inner step, meta-batch 32, outer Adam 1e-3, tested with 1 step (25 min);
* maml-5: the same with alpha 2.0 and the outer learning rate annealed to 0 (40 min; 95.8 %; with a
  constant outer learning rate 95.5 %, with alpha 0.4 95.0 %);
* fomaml-1, fomaml-5: first-order MAML, alpha 0.05, 10 inner steps, tested with 10 (12 / 10 min);
* reptile-5, reptile-1: inner Adam (lr 1e-3, beta1 = 0, state kept across tasks), 5 steps on mini-batches
  of 10 of 10-shot training tasks (one pass), meta-batch 5, epsilon 1 -> 0 over the budget, 50 test steps
  on mini-batches of 5, the Reptile paper's Omniglot setup (30 / 12 min);
* maml-20-1: 20-way 1-shot, alpha 2.0, meta-batch 16, 5 query images per class (15 min);
* reptile-20-1, reptile-20-5: 20-way, the Reptile paper's 20-way settings (10 steps on mini-batches of 20,
  lr 5e-4, test mini-batches of 10), 5 query images per class (15 / 10 min).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

FOMAML = ["--alpha", "0.05", "--k", "10"]  # best of a 150-second sweep (alpha 0.05-0.4, k 1-10), 1-shot
MAML_5 = ["--algo", "maml", "--shots", "5", "--alpha", "2.0"]
MAML_20 = ["--algo", "maml", "--ways", "20", "--alpha", "2.0", "--meta-batch", "16", "--query-shots", "5",
           "--test-steps", "1"]  # fmt: skip
REPTILE_20 = ["--algo", "reptile", "--ways", "20", "--k", "10", "--inner-batch", "20", "--alpha", "0.0005",
              "--test-batch", "10", "--query-shots", "5"]  # fmt: skip
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
ONE_THREAD = dict.fromkeys(THREAD_VARS, "1")
RUNS = {  # name: (arguments, training budget in seconds)
    "maml-1": (["--algo", "maml", "--shots", "1", "--test-steps", "1"], 1500),
    "maml-5": ([*MAML_5, "--test-steps", "1", "--outer-lr-final", "0"], 2400),
    "fomaml-1": (["--algo", "fomaml", "--shots", "1", *FOMAML], 720),
    "fomaml-5": (["--algo", "fomaml", "--shots", "5", *FOMAML], 600),
    "reptile-5": (["--algo", "reptile", "--shots", "5"], 1800),
    "reptile-1": (["--algo", "reptile", "--shots", "1"], 720),
    "maml-20-1": ([*MAML_20, "--shots", "1"], 900),
    "reptile-20-1": ([*REPTILE_20, "--shots", "1"], 900),
    "reptile-20-5": ([*REPTILE_20, "--shots", "5"], 600),
}


def run_one(name, args, out_root, extra):
    """Run one configuration in a subprocess with a single BLAS thread; returns its summary dict."""
    out = Path(out_root) / name
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **ONE_THREAD}
    cmd = [sys.executable, "-m", "tinymeta", "omniglot", *args, *extra, "--out", str(out)]
    with open(Path(out_root) / f"{name}.log", "w") as log:  # beside the run: its directory must hold no file
        rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        return {"run": name, "error": f"exit status {rc}; see {Path(out_root) / f'{name}.log'}"}
    s = json.loads((out / "summary.json").read_text())
    return {
        "run": name, "algo": s["algo"], "ways": s["ways"], "shots": s["shots"],
        "accuracy_pct": round(100 * s["accuracy"], 2),
        "ci95_pct": round(100 * s["ci95"], 2), "test_tasks": s["test_tasks"], "test_steps": s["test_steps"],
        "iterations": s["iterations"], "train_seconds": round(s["train_seconds"], 1),
        "wall_seconds": round(s["wall_seconds"], 1),
        "iterations_per_second": round(s["iterations_per_second"], 2),
        "accuracy_by_test_steps": s["accuracy_by_test_steps"],
        "ci95_by_test_steps": s.get("ci95_by_test_steps"), "command": " ".join(cmd[1:]),
    }  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", choices=tuple(RUNS), default=list(RUNS))
    p.add_argument("--time-budget", type=float, default=None, help="training seconds per run (default: own)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier runs in --out")
    p.add_argument("--test-tasks", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("numpy", "numba"), default="numba")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="runs/omniglot-repro")
    a = p.parse_args(argv)
    extra = ["--test-tasks", str(a.test_tasks), "--seed", str(a.seed), "--backend", a.backend,
             "--no-progress", *(["--data-dir", a.data_dir] if a.data_dir else []),
             *(["--overwrite"] if a.overwrite else [])]  # fmt: skip
    for name in a.runs:
        args, budget = RUNS[name]
        budget = ["--time-budget", str(a.time_budget or budget)]
        print(json.dumps(run_one(name, args, a.out, [*budget, *extra])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
