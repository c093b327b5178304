"""Reproduce 5-way 1-shot and 5-shot Omniglot with MAML, first-order MAML and Reptile under a time budget.

Each run is ``tinymeta omniglot`` in its own process (one BLAS thread, one run at a time) with a wall-clock
training budget; one JSON line per run is printed with the held-out accuracy, its 95 % interval, the
iterations done and the time taken. Runs go in the order given by --runs (most informative first).

    python benchmarks/reproduce_omniglot.py --budget-s 540 --out runs/omniglot-repro > results.jsonl

Settings (MLP 784-256-128-64-64-5, ReLU, no batch norm; alpha on the plain mean cross-entropy):

* maml-1: alpha 0.4, 1 inner step, meta-batch 32, outer Adam 1e-3, 3 test steps (MAML's code);
* maml-5: the same, tested with the 1 step it was trained for (3 steps overshoot without batch norm);
* fomaml-1: alpha 0.1, 3 inner steps, 3 test steps (MAML's alpha = 0.4 is unstable first-order);
* reptile-1, reptile-5: inner Adam (lr 1e-3, beta1 = 0, state kept across tasks), 5 steps on mini-batches
  of 10 of 10-shot training tasks (one pass), meta-batch 5, epsilon 1 -> 0 over the budget, 50 test steps
  on mini-batches of 5 (the Reptile paper's Omniglot setup).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

RUNS = {
    "maml-1": ["--algo", "maml", "--shots", "1", "--test-steps", "3"],
    "reptile-5": ["--algo", "reptile", "--shots", "5"],
    "reptile-1": ["--algo", "reptile", "--shots", "1"],
    "maml-5": ["--algo", "maml", "--shots", "5", "--test-steps", "1"],
    "fomaml-1": ["--algo", "fomaml", "--shots", "1", "--alpha", "0.1", "--k", "3", "--test-steps", "3"],
    "fomaml-5": ["--algo", "fomaml", "--shots", "5", "--alpha", "0.1", "--k", "3", "--test-steps", "3"],
}


def run_one(name, args, out_root, extra):
    """Run one configuration in a subprocess with a single BLAS thread; returns its summary dict."""
    out = Path(out_root) / name
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tinymeta.omniglot.cli", *args, "--ways", "5", *extra, "--out", str(out)]
    with open(out / "train.log", "w") as log:
        rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        return {"run": name, "error": f"exit status {rc}; see {out / 'train.log'}"}
    s = json.loads((out / "summary.json").read_text())
    return {
        "run": name, "algo": s["algo"], "shots": s["shots"], "accuracy_pct": round(100 * s["accuracy"], 2),
        "ci95_pct": round(100 * s["ci95"], 2), "test_tasks": s["test_tasks"], "test_steps": s["test_steps"],
        "iterations": s["iterations"], "train_seconds": round(s["train_seconds"], 1),
        "wall_seconds": round(s["wall_seconds"], 1),
        "iterations_per_second": round(s["iterations_per_second"], 2),
        "accuracy_by_test_steps": s["accuracy_by_test_steps"],
        "ci95_by_test_steps": s.get("ci95_by_test_steps"), "command": " ".join(cmd[1:]),
    }  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", choices=tuple(RUNS), default=list(RUNS)[:5])
    p.add_argument("--budget-s", type=float, default=540.0, help="training wall-clock per run (seconds)")
    p.add_argument("--test-tasks", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("numpy", "numba"), default="numba")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="runs/omniglot-repro")
    a = p.parse_args(argv)
    extra = ["--budget-s", str(a.budget_s), "--test-tasks", str(a.test_tasks), "--seed", str(a.seed),
             "--backend", a.backend] + (["--data-dir", a.data_dir] if a.data_dir else [])  # fmt: skip
    for name in a.runs:
        print(json.dumps(run_one(name, RUNS[name], a.out, extra)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
