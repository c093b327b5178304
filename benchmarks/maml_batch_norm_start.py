"""MAML with batch norm on Omniglot from MAML's code's start: does the start explain the 1-shot gap?

``tinymeta omniglot --batch-norm`` starts from He-normal weights. MAML's code starts its MLP from
``tf.truncated_normal(..., stddev=0.01)`` weights and zero biases (``construct_fc_weights``), and
TensorFlow's batch-norm shift from 0. Batch norm makes a layer's output independent of the scale of its
weights, but not the steps: the gradient with respect to such weights scales as 1 / |w|, so an SGD
step of alpha changes them relatively by about alpha / |w|^2, 25 times more at |w| ~ 0.01 than at
He-normal's ~0.05. This script trains the same job from either start (``--start he`` or ``maml``) and
prints one JSON line: accuracy on 1000 held-out tasks after 1 and 10 test steps. (The same start is
``tinymeta omniglot --init truncnormal``.)

    python benchmarks/maml_batch_norm_start.py --start maml --shots 1 --query-shots 1 --time-budget 600
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from tinymeta.backends import batch_functions
from tinymeta.evaluation import evaluate
from tinymeta.jobs.omniglot import LOSS, omniglot_job
from tinymeta.omniglot import OmniglotTasks, evaluation_tasks, load_split
from tinymeta.training import ALGORITHMS, he_normal, train
from tinymeta.training.config import make_net
from tinymeta.training.init import truncated_normal


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--start", choices=("he", "maml"), required=True)
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--query-shots", type=int, default=1)
    p.add_argument("--alpha", type=float, default=0.4)
    p.add_argument("--time-budget", type=float, default=600.0, help="seconds of training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    a = p.parse_args(argv)
    job = omniglot_job("maml", shots=a.shots, query_shots=a.query_shots, alpha=a.alpha, batch_norm=True,
                       outer_lr_final=0.0, test_steps=10, time_budget=a.time_budget, seed=a.seed,
                       curve_every_s=a.time_budget / 4, backend="numba")  # fmt: skip
    config = dataclasses.replace(job.train, init="phi0")
    net = make_net(config.net)
    phi0 = truncated_normal(net, a.seed) if a.start == "maml" else he_normal(net, a.seed)
    meta_train, meta_test = load_split("maml", a.data_dir)
    tasks = OmniglotTasks(meta_train, 5, a.shots, a.query_shots)
    result = train(net, tasks, config, phi0=phi0, progress=False)
    tests = evaluation_tasks(OmniglotTasks(meta_test, 5, a.shots, a.query_shots), 1000, seed=10_000 + a.seed)
    adapt = ALGORITHMS["maml"].adapter(
        batch_functions(config.backend), net, config, result.inner_state, a.seed
    )
    acc, ci = evaluate(net, result.phi, tests, config.alpha, (0, 1, 10), LOSS, adapt=adapt).accuracy_ci95()
    print(json.dumps({"start": a.start, "shots": a.shots, "query_shots": a.query_shots, "alpha": a.alpha,
                      "iterations": result.iterations, "train_seconds": round(result.train_seconds, 1),
                      "accuracy_1": float(acc[1]), "ci95_1": float(ci[1]), "accuracy_10": float(acc[2]),
                      "ci95_10": float(ci[2]), "command": "python " + " ".join(sys.argv)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
