"""What the two scripts of the Reptile paper's section 6 share: the data, one recorded run, the figure style.

Used by ``reptile_gradient_combinations.py`` (sec. 6.2) and ``reptile_tail_overlap.py`` (sec. 6.3); not a
module of tinymeta. Every run is one :class:`tinymeta.TrainConfig` on the one training loop, scored on
held-out tasks during training (the learning curve) and on more of them at the end (95 % intervals).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from tinymeta.backends import batch_functions
from tinymeta.evaluation import evaluate
from tinymeta.omniglot import OmniglotTasks, evaluation_tasks, load_split
from tinymeta.tasks import TaskBatch
from tinymeta.training import ALGORITHMS, TrainConfig, train
from tinymeta.training.config import make_net

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURES = ROOT / "docs" / "_static" / "figures"
HIDDEN = (256, 128, 64, 64)
"""The Omniglot MLP of docs/reproductions.md (784-256-128-64-64-5, ReLU, He-normal start, no batch norm)."""
STYLE = {"figure.dpi": 100, "savefig.dpi": 150, "font.size": 10.5, "axes.titlesize": 11,
         "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
         "legend.frameon": False}  # fmt: skip
"""The style of the site's other figures (docs/_tools/make_figures.py)."""


class AllDrawings:
    """N-way tasks whose training set holds ``shots`` drawings per class, up to all 20 of a character.

    The Reptile code draws a task's training examples from all 20 drawings (20 shots make 100 examples:
    four disjoint mini-batches of 25); :class:`~tinymeta.omniglot.OmniglotTasks` keeps at least one drawing
    for a query set, so this draws ``shots - 1`` support and one query drawing per class and trains on
    both (only support sets are used by Reptile and fomaml-tail)."""

    def __init__(self, characters, ways, shots):
        self.tasks, self.shots = OmniglotTasks(characters, ways, shots - 1, 1), shots

    def __repr__(self):
        return f"AllDrawings({self.tasks!r}, shots={self.shots})"

    def sample_batch(self, rng, meta_batch):
        b = self.tasks.sample_batch(rng, meta_batch)
        return TaskBatch(
            np.concatenate([b.xs, b.xq], axis=1), np.concatenate([b.ys, b.yq], axis=1), b.xq, b.yq
        )


def load_data(data_dir=None):
    """The MAML split of the full Omniglot data: (meta-train characters, held-out characters)."""
    return load_split("maml", data_dir)


def held_out(test_chars, shots, count, seed):
    """``count`` fixed 5-way ``shots``-shot held-out tasks with 15 query images per class."""
    return evaluation_tasks(OmniglotTasks(test_chars, 5, shots, 15), count, seed=seed)


def run_one(name, settings, train_chars, curve_tasks, final_tasks, *, shots, eval_every, log=print):
    """Meta-train one configuration and score it; returns the record kept in the results file.

    ``settings``: TrainConfig fields (algo, iterations, alpha, k, ...); ``shots``: drawings per class of
    the training tasks; the learning curve on ``curve_tasks`` every ``eval_every`` iterations, the final
    accuracy on ``final_tasks`` after ``settings["eval_steps"][-1]`` test steps."""
    family = AllDrawings(train_chars, 5, shots)
    config = TrainConfig(**settings, loss="cross_entropy", init="he", eval_every=eval_every,
                         net={"sizes": [784, *HIDDEN, 5], "activation": "relu", "batch_norm": False},
                         family=repr(family))  # fmt: skip
    net = make_net(config.net)
    t0 = time.perf_counter()
    result = train(net, family, config, eval_tasks=curve_tasks, progress=False)
    adapt = ALGORITHMS[config.algo].adapter(batch_functions(config.backend), net, config, result.inner_state,
                                            config.seed)  # fmt: skip
    scores = evaluate(
        net, result.phi, final_tasks, config.alpha, config.eval_steps, "cross_entropy", adapt=adapt
    )
    acc, ci = scores.accuracy_ci95()
    record = {
        "name": name, "settings": settings, "train_shots": shots, "iterations": result.iterations,
        "train_seconds": round(result.train_seconds, 1), "wall_seconds": round(time.perf_counter() - t0, 1),
        "curve": [{"iteration": e["iteration"], "accuracy": e["accuracy"][-1]}
                  for e in result.history["evaluations"]],
        "final_accuracy": float(acc[-1]), "final_ci95": float(ci[-1]), "final_tasks": len(final_tasks),
        "test_steps": config.eval_steps[-1],
    }  # fmt: skip
    log(f"{name}: {acc[-1]:.2%} ± {ci[-1]:.2%} after {result.iterations} iterations "
        f"({result.train_seconds:.0f} s of training)")  # fmt: skip
    return record


def record(path, what, run, argv, order):
    """Add ``run`` to the results file (replacing an earlier run of the same name), runs sorted as
    ``order`` lists their names; the command and machine are kept with each run."""
    doc = read_results(path) if Path(path).exists() else {"what": what, "runs": []}
    run = {**run, "command": "python " + " ".join(argv), "machine": platform.machine(),
           "threads": os.environ.get("OMP_NUM_THREADS")}  # fmt: skip
    runs = {r["name"]: r for r in doc["runs"]} | {run["name"]: run}
    doc = {"what": what, "runs": sorted(runs.values(), key=lambda r: order.index(r["name"]))}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


def read_results(path):
    return json.loads(Path(path).read_text())
