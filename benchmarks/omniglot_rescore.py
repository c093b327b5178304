"""Score a finished ``tinymeta omniglot`` run again on held-out tasks with another number of query images.

With batch norm the query set is normalised with its own statistics (transductive), so the accuracy
depends on how many query images a task has: MAML's code tests Omniglot with K query images per class
(1-shot: one), tinymeta's default is 15. This script reads OUT/checkpoint.npz and its config and
evaluates phi on 1000 held-out tasks (the run's own test tasks when ``--query-shots`` is the run's)
with the run's test-time inner loop; it prints one JSON line.

    python benchmarks/omniglot_rescore.py runs/maml-bn-1 --query-shots 15
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tinymeta.backends import batch_functions
from tinymeta.evaluation import evaluate
from tinymeta.omniglot import OmniglotTasks, evaluation_tasks, load_split
from tinymeta.training import ALGORITHMS, load_checkpoint
from tinymeta.training.config import make_net


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="the output directory of a tinymeta omniglot run")
    p.add_argument("--query-shots", type=int, required=True, help="query images per class of the test tasks")
    p.add_argument("--test-tasks", type=int, default=1000)
    p.add_argument("--data-dir", default=None)
    a = p.parse_args(argv)
    run = Path(a.run)
    summary = json.loads((run / "summary.json").read_text())
    ckpt = load_checkpoint(run / "checkpoint.npz")
    c, job = ckpt.config, summary["config"]
    net = make_net(c.net)
    _, meta_test = load_split(job["split"], a.data_dir or summary["data_dir"])
    sampler = OmniglotTasks(meta_test, job["ways"], job["shots"], a.query_shots)
    tests = evaluation_tasks(sampler, a.test_tasks, seed=10_000 + c.seed)  # the job's test-task seed
    adapt = ALGORITHMS[c.algo].adapter(batch_functions(c.backend), net, c, ckpt.inner_state, c.seed)
    steps = sorted({0, job["test_steps"]})
    acc, ci = evaluate(net, ckpt.phi, tests, c.alpha, steps, "cross_entropy", adapt=adapt).accuracy_ci95()
    record = {"run": str(run), "algo": c.algo, "batch_norm": c.net["batch_norm"], "shots": job["shots"],
              "query_shots": a.query_shots, "test_tasks": a.test_tasks, "test_steps": steps[-1],
              "iterations": ckpt.iteration, "accuracy": float(acc[-1]), "ci95": float(ci[-1])}  # fmt: skip
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
