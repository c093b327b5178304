"""Seconds per meta-iteration on Omniglot 5-way, NumPy and Numba backends, one thread.

    python benchmarks/bench_omniglot.py --data-dir DIR            # a table
    python benchmarks/bench_omniglot.py --data-dir DIR --json     # one JSON object per line

Network 784-256-128-64-64-5 (ReLU, cross-entropy), the settings of ``tinymeta omniglot``:
MAML / FOMAML: meta-batch 32, 1 inner SGD step (alpha 0.4), 15 query images per class, outer Adam;
Reptile: meta-batch 5 tasks of 10 images per class, 5 inner Adam steps (beta1 = 0, state kept
across tasks) on mini-batches of 10, phi + eps mean(phi~ - phi). A meta-iteration is the whole
step of :func:`tinymeta.omniglot.job.train`: sampling and building the tasks, the inner loops,
the meta-gradient and the outer update. Timing: two warm-up iterations (they pay any Numba
compilation), then ``--iterations`` iterations; wall-clock and process CPU seconds per
iteration. BLAS and Numba are pinned to one thread.

FLOPs (matmul only, as in bench_sine.py: a forward pass on n rows is F(n) = sum_l 2 n d_{l-1} d_l,
x(n) = 2 n d_0 d_1; gradient 3F - x, HVP 6F - 4x) per iteration: MAML 1-shot 2.97 GFLOP, 5-shot 4.52,
FOMAML 1-shot 2.75, Reptile 0.27 (not counted: its loss at phi on each 50-image support set, 0.12).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

RUNS = {  # name: (algo, shots, k)
    "maml-1": ("maml", 1, 1),
    "maml-5": ("maml", 5, 1),
    "fomaml-1": ("fomaml", 1, 1),
    "reptile-5": ("reptile", 5, 5),
}
SIZES = [784, 256, 128, 64, 64, 5]
ROW = "{:10} {:8} {:8.4f} {:9.4f} {:7.2f} {:9.3f} {:8.1f}"


def flops(algo, shots, k, cfg):
    """Matmul FLOPs of one meta-iteration (see the module docstring)."""

    def F(n):
        return sum(2 * n * a * b for a, b in zip(SIZES[:-1], SIZES[1:], strict=True))

    def x(n):
        return 2 * n * SIZES[0] * SIZES[1]

    if algo == "reptile":
        return cfg.meta_batch * k * (3 * F(cfg.inner_batch) - x(cfg.inner_batch))
    n_s, n_q = 5 * shots, 5 * cfg.query_shots
    grad_s, grad_q, hvp_s = 3 * F(n_s) - x(n_s), 3 * F(n_q) - x(n_q), 6 * F(n_s) - 4 * x(n_s)
    return cfg.meta_batch * (k * (grad_s + (hvp_s if algo == "maml" else 0)) + grad_q)


def measure(name, backend, iterations, data_dir):
    from tinymeta.omniglot import OmniglotTasks, find_data_dir, load_split
    from tinymeta.omniglot.job import JobConfig, make_net, train

    algo, shots, k = RUNS[name]
    cfg = JobConfig(algo=algo, shots=shots, k=k, backend=backend, iterations=2, data_dir=data_dir).resolved()
    train_chars, _ = load_split("maml", find_data_dir(data_dir))
    tasks = OmniglotTasks(train_chars, 5, cfg.train_shots, 1 if algo == "reptile" else cfg.query_shots)
    net = make_net(cfg)
    train(net, cfg, tasks, progress=False)  # warm-up: compilation, workspaces
    cfg = cfg.__class__(**{**cfg.__dict__, "iterations": iterations})
    wall, cpu = time.perf_counter(), time.process_time()
    train(net, cfg, tasks, progress=False)
    wall, cpu = (time.perf_counter() - wall) / iterations, (time.process_time() - cpu) / iterations
    gflop = flops(algo, shots, k, cfg) / 1e9
    return {"run": name, "backend": backend, "iterations": iterations,
            "seconds_per_iteration": round(wall, 4), "cpu_seconds_per_iteration": round(cpu, 4),
            "iterations_per_second": round(1 / wall, 2),
            "gflop_per_iteration": round(gflop, 3), "gflop_per_second": round(gflop / cpu, 1)}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", choices=tuple(RUNS), default=list(RUNS))
    p.add_argument("--backends", nargs="+", choices=("numpy", "numba"), default=["numba", "numpy"])
    p.add_argument("--iterations", type=int, default=40, help="timed iterations (numba; numpy a quarter)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if not a.json:
        head = ("run", "backend", "s/it", "CPU s/it", "it/s", "GFLOP/it", "GFLOP/s")
        print("{:10} {:8} {:>8} {:>9} {:>7} {:>9} {:>8}".format(*head))
    for name in a.runs:
        for backend in a.backends:
            n = a.iterations if backend == "numba" else max(a.iterations // 4, 2)
            r = measure(name, backend, n, a.data_dir)
            if a.json:
                print(json.dumps(r), flush=True)
            else:
                cols = ("seconds_per_iteration", "cpu_seconds_per_iteration", "iterations_per_second",
                        "gflop_per_iteration", "gflop_per_second")  # fmt: skip
                print(ROW.format(name, backend, *map(r.get, cols)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
