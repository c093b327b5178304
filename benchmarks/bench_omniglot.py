"""Meta-iterations per second on Omniglot 5-way, one thread: tinymeta's backends and dtypes, and JAX's.

    python benchmarks/bench_omniglot.py                                   # a table, float64
    python benchmarks/bench_omniglot.py --dtype float64 float32 --json    # one JSON object per line
    python benchmarks/bench_omniglot.py --runs maml-1 reptile-5 --backends numba --dtype float32 \\
        --anchor VENV/bin/python --json       # side by side with JAX (VENV: numpy, jax, jaxlib)

Network 784-256-128-64-64-5 (ReLU, cross-entropy; ``--batch-norm`` for the MAML paper's network), the
settings of ``tinymeta omniglot``: MAML / FOMAML: meta-batch 32, 1 inner SGD step (alpha 0.4), 15 query
images per class, outer Adam; Reptile: meta-batch 5 tasks of 10 images per class, 5 inner Adam steps
(beta1 = 0, state kept across tasks) on mini-batches of 10, phi + eps mean(phi~ - phi). A meta-iteration
is one step of the training loop: sampling and building the tasks, the inner loops, the meta-gradient
and the outer update (phi and the optimizers stay float64 with ``--dtype float32``). Timing: a warm-up
run (it pays any Numba compilation), then ``--repeats`` runs of ``--iterations`` iterations; each
reports the loop's own iterations per second (wall clock, compilation excluded) and the process CPU
seconds per iteration (the difference between a run of ``--iterations`` and one of 1: robust to other
load); the median over the repeats, and the 1-minute load average before each. BLAS and Numba are
pinned to one thread.

``--anchor PYTHON``: before each tinymeta measurement, run the JAX float32 reference
(``../shared/anchors/omniglot/omniglot_meta.py``, or ``--anchor-script``) on the same configuration for
``--anchor-seconds`` of training, with that interpreter, and report its steady meta-iterations per second
(``backend: "jax"``) and the ratio tinymeta / JAX per round. Prefix the command with ``taskset -c N`` to
pin both to one core.

FLOPs (matmul only, as in bench_sine.py: a forward pass on n rows is F(n) = sum_l 2 n d_{l-1} d_l,
x(n) = 2 n d_0 d_1; gradient 3F - x, HVP 6F - 4x) per iteration: MAML 1-shot 2.97 GFLOP, 5-shot 4.52,
FOMAML 1-shot 2.75, Reptile 0.27 (not counted: its loss at phi on each 50-image support set, 0.12).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

RUNS = {  # name: (algo, shots)
    "maml-1": ("maml", 1),
    "maml-5": ("maml", 5),
    "fomaml-1": ("fomaml", 1),
    "reptile-5": ("reptile", 5),
}
SIZES = [784, 256, 128, 64, 64, 5]
ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "omniglot" / "omniglot_meta.py"
ROW = "{:10} {:6} {:8} {:8.4f} {:9.4f} {:7.2f} {:8.1f} {:6.2f}"


def flops(algo, shots, job):
    """Matmul FLOPs of one meta-iteration (see the module docstring)."""

    def F(n):
        return sum(2 * n * a * b for a, b in zip(SIZES[:-1], SIZES[1:], strict=True))

    def x(n):
        return 2 * n * SIZES[0] * SIZES[1]

    c = job.train
    if algo == "reptile":
        return c.meta_batch * c.k * (3 * F(c.inner_batch_size) - x(c.inner_batch_size))
    n_s, n_q = 5 * shots, 5 * job.query_shots
    grad_s, grad_q, hvp_s = 3 * F(n_s) - x(n_s), 3 * F(n_q) - x(n_q), 6 * F(n_s) - 4 * x(n_s)
    return c.meta_batch * (c.k * (grad_s + (hvp_s if algo == "maml" else 0)) + grad_q)


def setup(name, backend, dtype, batch_norm, data_dir):
    """(net, task sampler, config, job) of a run, as ``tinymeta omniglot`` builds them."""
    from tinymeta.jobs.omniglot import omniglot_job
    from tinymeta.omniglot import OmniglotTasks, find_data_dir, load_split
    from tinymeta.training.config import make_net

    algo, shots = RUNS[name]
    job = omniglot_job(algo, shots=shots, backend=backend, dtype=dtype, data_dir=data_dir)
    config = job.train
    if batch_norm:  # the job layer picks its own backend for batch norm; time the one asked for
        config = dataclasses.replace(config, net={**config.net, "batch_norm": True})
    train_chars, _ = load_split("maml", find_data_dir(data_dir))
    query = 1 if algo == "reptile" else job.query_shots
    tasks = OmniglotTasks(train_chars, 5, job.train_shots, query, dtype=dtype)
    return make_net(config.net), tasks, config, job


def measure(name, backend, dtype, iterations, repeats, data_dir, batch_norm=False):
    """The median over ``repeats`` timed runs of ``iterations`` iterations (module docstring)."""
    from tinymeta.training import train

    net, tasks, config, job = setup(name, backend, dtype, batch_norm, data_dir)

    def run(n):
        cpu = time.process_time()
        result = train(net, tasks, dataclasses.replace(config, iterations=n), progress=False)
        return result.iterations_per_second, time.process_time() - cpu

    run(2)  # warm-up: compilation, workspaces
    loads, rates, cpus = [], [], []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])
        rate, cpu_n = run(iterations)
        rates.append(rate)
        cpus.append((cpu_n - run(1)[1]) / (iterations - 1))
    gflop, cpu, rate = flops(*RUNS[name], job) / 1e9, statistics.median(cpus), statistics.median(rates)
    return {"run": name, "backend": backend, "dtype": dtype, "batch_norm": batch_norm,
            "iterations": iterations, "repeats": repeats, "iterations_per_second": round(rate, 2),
            "seconds_per_iteration": round(1 / rate, 4), "cpu_seconds_per_iteration": round(cpu, 4),
            "gflop_per_iteration": round(gflop, 3), "gflop_per_cpu_second": round(gflop / cpu, 1),
            "load_average_1min": round(statistics.median(loads), 2),
            "iterations_per_second_each": [round(r, 2) for r in rates]}  # fmt: skip


def measure_anchor(name, python, script, seconds, data_dir):
    """The JAX reference's steady meta-iterations per second on the same configuration."""
    algo, shots = RUNS[name]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [python, str(script), "--algo", algo, "--shots", str(shots), "--budget-s", str(seconds),
           "--ckpt-s", "", "--ckpt-tasks", "20", "--test-tasks", "20", "--eval-chunk", "20", "--threads", "1",
           "--extra-test-steps", ""]  # fmt: skip
    load = os.getloadavg()[0]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(re.search(r"^RESULT (.*)$", out, re.MULTILINE).group(1))
    return {"run": name, "backend": "jax", "dtype": "float32",
            "iterations_per_second": round(result["it_per_s"], 2), "iterations": result["iters"],
            "load_average_1min": round(load, 2), "jax": result.get("jax")}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", choices=tuple(RUNS), default=list(RUNS))
    p.add_argument("--backends", nargs="+", choices=("numpy", "numba"), default=["numba", "numpy"])
    p.add_argument("--dtype", nargs="+", choices=("float64", "float32"), default=["float64"],
                   help="float32: the Numba kernels in single precision (numba backend only)")  # fmt: skip
    p.add_argument("--batch-norm", action="store_true", help="the MAML paper's network (batch norm)")
    p.add_argument("--iterations", type=int, default=40, help="timed iterations per repeat (numpy: 1/4)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--anchor", metavar="PYTHON", default=None, help="also time the JAX reference with it")
    p.add_argument("--anchor-script", default=str(ANCHOR))
    p.add_argument("--anchor-seconds", type=float, default=40.0, help="training seconds of a reference run")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if not a.json:
        head = ("run", "dtype", "backend", "s/it", "CPU s/it", "it/s", "GFLOP/s", "load")
        print("{:10} {:6} {:8} {:>8} {:>9} {:>7} {:>8} {:>6}".format(*head))
    for name in a.runs:
        anchor = None
        if a.anchor:
            anchor = measure_anchor(name, a.anchor, a.anchor_script, a.anchor_seconds, a.data_dir)
            rate, load = anchor["iterations_per_second"], anchor["load_average_1min"]
            line = f"{name:10} {'32':6} {'jax':8} {'':>8} {'':>9} {rate:7.2f} {'':>8} {load:6.2f}"
            print(json.dumps(anchor) if a.json else line, flush=True)
        for backend in a.backends:
            for dtype in a.dtype:
                if dtype == "float32" and backend != "numba":
                    continue  # the NumPy reference is float64 only
                n = a.iterations if backend == "numba" else max(a.iterations // 4, 2)
                r = measure(name, backend, dtype, n, a.repeats, a.data_dir, a.batch_norm)
                if anchor:
                    r["ratio_to_jax"] = round(r["iterations_per_second"] / anchor["iterations_per_second"], 3)
                if a.json:
                    print(json.dumps(r), flush=True)
                else:
                    cols = ("seconds_per_iteration", "cpu_seconds_per_iteration", "iterations_per_second",
                            "gflop_per_cpu_second", "load_average_1min")  # fmt: skip
                    print(ROW.format(name, dtype[-2:], backend, *map(r.get, cols)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
