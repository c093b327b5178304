"""Record the sine-wave results that the site's figures show, from trained parameter vectors.

Scores MAML, first-order MAML, Reptile and the joint-training baseline the way
``benchmarks/reproduce_sine.py`` does (the 500 held-out tasks of ``tinymeta sine``:
``Sine(K=10).evaluation_tasks(500, seed=20170309, K_query=100)``; K = 10 support points, or the
first 5; query MSE after 0..10 SGD steps of alpha = 0.01), and records one held-out task's
predictions before and after adaptation, as in Figure 2 of Finn et al. (2017). Writes
``docs/_data/sine_fig2.json``, which ``docs/_tools/make_figures.py`` draws.

The parameter vectors come from the recorded runs (seed 0, 70,000 iterations, numba backend)::

    python benchmarks/reproduce_sine.py --configs maml-1 fomaml-1 reptile-5 joint --seeds 0 --backend numba \
        --out runs/sine-phi
    python docs/_tools/record_sine.py --phi-dir runs/sine-phi
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import tinymeta as tm

DATA = Path(__file__).resolve().parents[1] / "_data"
EVAL_SEED, EVAL_TASKS, ALPHA, STEPS = 20170309, 500, 0.01, tuple(range(11))
RUNS = {"maml": "maml-1", "fomaml": "fomaml-1", "reptile": "reptile-5", "joint": "joint"}  # name: config
EXAMPLE_TASK = 3  # the held-out task drawn in the figure (index into the 500)
GRID = np.linspace(-5.0, 5.0, 201)


def with_support(task: tm.Task, K: int) -> tm.Task:
    return tm.Task(task.x_support[:K], task.y_support[:K], task.x_query, task.y_query)


def curve(net, phi, tasks) -> dict:
    """Mean and standard error of the query MSE over tasks after each number of steps."""
    per_task = tm.evaluate(net, phi, tasks, ALPHA, STEPS).per_task
    n = len(per_task)
    return {
        "steps": list(STEPS),
        "mse": [round(float(v), 5) for v in per_task.mean(axis=0)],
        "stderr": [round(float(v), 5) for v in per_task.std(axis=0, ddof=1) / np.sqrt(n)],
        "tasks": n,
    }


def predictions(net, phi, task: tm.Task) -> dict:
    """The network on GRID at phi, and after 1 and 10 SGD steps on the task's support set."""
    out = {}
    for k in (0, 1, 10):
        phi_k = tm.adapt(net, phi, task.x_support, task.y_support, ALPHA, k)
        out[str(k)] = [round(float(v), 4) for v in net.forward(phi_k, GRID[:, None])[:, 0]]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phi-dir", type=Path, required=True, help="reproduce_sine.py's --out folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DATA / "sine_fig2.json")
    args = parser.parse_args(argv)

    net = tm.MLP([1, 40, 40, 1], "relu")
    tasks, amplitudes, phases = tm.Sine(K=10).evaluation_tasks(EVAL_TASKS, seed=EVAL_SEED, K_query=100)
    example = tasks[EXAMPLE_TASK]
    record = {
        "what": "Sine-wave regression (Finn et al. 2017, Sec. 5.1), 1-40-40-1 ReLU, 70,000 iterations, "
        "meta-batch 25, inner SGD alpha 0.01, outer Adam 1e-3 (Reptile: epsilon 0.1 -> 0); MAML k = 1, "
        "first-order MAML k = 1, Reptile k = 5 and the joint-training (pretrained) baseline. Scored on the "
        "500 held-out tasks of tinymeta sine (seed 20170309, 100 query points each) with K = 10 support "
        "points or the first 5, after 0..10 SGD steps of alpha 0.01.",
        "seed": args.seed,
        "source": f"python benchmarks/reproduce_sine.py --configs {' '.join(RUNS.values())} "
        f"--seeds {args.seed} --backend numba --out runs/sine-phi; "
        "python docs/_tools/record_sine.py --phi-dir runs/sine-phi",
        "example": {
            "task": EXAMPLE_TASK,
            "amplitude": round(float(amplitudes[EXAMPLE_TASK]), 6),
            "phase": round(float(phases[EXAMPLE_TASK]), 6),
            "x": [round(float(v), 4) for v in GRID],
            "x_support": [round(float(v), 6) for v in example.x_support[:, 0]],
            "y_support": [round(float(v), 6) for v in example.y_support[:, 0]],
        },
        "curves": {},
        "predictions": {},
    }
    for name, config in RUNS.items():
        phi = np.load(args.phi_dir / f"{config}-seed{args.seed}.npz")["phi"]
        for K in (5, 10):
            record["curves"][f"{name}_K{K}"] = curve(net, phi, [with_support(t, K) for t in tasks])
            record["predictions"][f"{name}_K{K}"] = predictions(net, phi, with_support(example, K))
        print(name, {K: [record["curves"][f"{name}_K{K}"]["mse"][s] for s in (1, 5, 10)] for K in (5, 10)})
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
