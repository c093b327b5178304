"""Meta-iterations per second of iMAML, Meta-SGD and ANIL beside MAML, NumPy and Numba, one thread.

    python benchmarks/bench_beyond.py                # a table
    python benchmarks/bench_beyond.py --json         # one JSON object per line
    python benchmarks/bench_beyond.py --profile      # and where exact iMAML's time goes

Configuration: the sine benchmark of bench_sine.py (Finn et al. 2017, Sec. 5.1): 1-40-40-1 ReLU,
K = 10 support + 10 query points, meta-batch 25, alpha = 0.01, outer Adam(1e-3). One meta-iteration
is the whole outer step: sampling the tasks, the algorithm's direction, the Adam update (for Meta-SGD
on [phi; alphas], 2P entries). Rows:

* ``maml-1``: MAML, k = 1 (the reference row of bench_sine.py);
* ``metasgd-1``: Meta-SGD, k = 1, every step size starting at 0.01;
* ``anil-1``: ANIL, k = 1 (the head only);
* ``imaml-practical``: iMAML's practical variant, k = 5 proximal steps, lam = 2, 5 CG iterations (ReLU);
* ``imaml-exact``: exact iMAML, tol = 1e-8, lam = 2, on the same net with tanh (ReLU's inner solve
  cannot converge); NumPy only: it has no kernel (``--profile`` shows why).

Timing as bench_sine.py: a warm-up (which also compiles or loads the kernels), then ``--reps``
repetitions of about ``--rep-seconds`` each; the median wall-clock and process CPU seconds per
iteration. BLAS and Numba run on one thread. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

SIZES, B, K, KQ, ALPHA = [1, 40, 40, 1], 25, 10, 10, 0.01
ROWS = {  # name: (algo, activation, settings)
    "maml-1": ("maml", "relu", dict(k=1)),
    "metasgd-1": ("metasgd", "relu", dict(k=1)),
    "anil-1": ("anil", "relu", dict(k=1)),
    "imaml-practical": ("imaml", "relu", dict(k=5, lam=2.0, cg_iterations=5)),
    "imaml-exact": ("imaml", "tanh", dict(k=0, lam=2.0, tol=1e-8)),
}


def make_step(name, backend, seed=0):
    """``step() -> None``: one whole meta-iteration, the loop's own plug-in step and Adam update."""
    from tinymeta import MLP, Sine, TrainConfig
    from tinymeta.backends import batch_functions
    from tinymeta.optim import Adam
    from tinymeta.tasks import TaskBatch
    from tinymeta.training import ALGORITHMS

    algo, activation, settings = ROWS[name]
    net, family, rng = MLP(SIZES, activation), Sine(K, KQ), np.random.default_rng(seed + 1)
    config = TrainConfig(algo=algo, iterations=1, alpha=ALPHA, backend=backend, meta_batch=B,
                         net={"sizes": SIZES, "activation": activation}, **settings)  # fmt: skip
    plug, functions, adam = ALGORITHMS[algo], batch_functions(backend), Adam(1e-3)
    params = plug.initial(net, net.init(seed), config)
    state = {"params": params, "opt": adam.init(params.size)}

    def step():
        batch = TaskBatch(*family.sample_arrays(rng, B)[2:])
        _, g, _ = plug.step(functions, net, config, state["params"], batch, {}, rng)
        state["params"], state["opt"] = adam.update(state["params"], g, state["opt"])

    return step


def measure(name, backend, reps, rep_seconds):
    """Median (wall, CPU) seconds per meta-iteration over ``reps`` repetitions."""
    step = make_step(name, backend)
    step()  # compiles or loads the kernels
    n, t = 1, 0.0
    while t < rep_seconds / 4:  # warm-up, and size the repetitions
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        t = time.perf_counter() - t0
        n *= 2
    n = max(1, int(n / 2 * rep_seconds / t))
    walls, cpus = [], []
    for _ in range(reps):
        c, w = time.process_time(), time.perf_counter()
        for _ in range(n):
            step()
        walls.append((time.perf_counter() - w) / n)
        cpus.append((time.process_time() - c) / n)
    return float(np.median(walls)), float(np.median(cpus)), n


def profile_exact_imaml(iterations=3):
    """Shares of exact iMAML's time: the HVPs and gradients, and everything else (SciPy's loops)."""
    step = make_step("imaml-exact", "numpy")
    step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(iterations):
        step()
    prof.disable()
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (calls, ncalls, tottime, cumtime, callers)

    def cumulative(name, file="mlp.py"):
        keys = [key for key in stats if key[2] == name and key[0].endswith(file)]
        return sum(stats[key][3] for key in keys), sum(stats[key][1] for key in keys)

    total = max(stats[key][3] for key in stats if key[2] == "step")
    (hvp, hvps), (grad, grads) = cumulative("hvp"), cumulative("loss_and_grad")
    per_task = iterations * B
    return {"seconds_per_iteration": total / iterations, "hvp_share": hvp / total, "grad_share": grad / total,
            "hvps_per_task": hvps / per_task, "grads_per_task": grads / per_task,
            "other_share": 1.0 - (hvp + grad) / total}  # fmt: skip


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    p.add_argument("--backends", nargs="+", choices=["numpy", "numba"], default=["numpy", "numba"])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--rep-seconds", type=float, default=1.0)
    p.add_argument("--profile", action="store_true", help="also profile exact iMAML (NumPy)")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    args = p.parse_args(argv)
    rows = []
    for name in args.rows:
        for backend in args.backends:
            if name == "imaml-exact" and backend == "numba":
                continue  # no kernel: the numba backend runs the same NumPy reference
            wall, cpu, n = measure(name, backend, args.reps, args.rep_seconds)
            row = dict(row=name, backend=backend, meta_iters_per_s=1.0 / wall, meta_iters_per_cpu_s=1.0 / cpu,
                       median_s=wall, iters_per_rep=n, loadavg=round(os.getloadavg()[0], 2))  # fmt: skip
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
    if args.profile:
        prof = profile_exact_imaml()
        if args.json:
            print(json.dumps({"profile": "imaml-exact", **prof}))
    if not args.json:
        print(f"{'row':16} {'backend':7} {'it/s':>9} {'it/cpu-s':>9}")
        for r in rows:
            rate, cpu_rate = r["meta_iters_per_s"], r["meta_iters_per_cpu_s"]
            print(f"{r['row']:16} {r['backend']:7} {rate:9.1f} {cpu_rate:9.1f}")
        if args.profile:
            print("exact iMAML (NumPy), per iteration: {seconds_per_iteration:.3f} s; HVPs {hvp_share:.0%} "
                  "({hvps_per_task:.0f} per task), gradients {grad_share:.0%} ({grads_per_task:.0f} per "
                  "task), SciPy's loops and the rest {other_share:.0%}".format(**prof))  # fmt: skip


if __name__ == "__main__":
    main()
