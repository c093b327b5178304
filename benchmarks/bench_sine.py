"""Meta-iterations per second on the sine benchmark, NumPy and Numba backends, 1 and 2 threads.

    python benchmarks/bench_sine.py                 # a table
    python benchmarks/bench_sine.py --json          # one JSON object per line
    python benchmarks/bench_sine.py --algos maml-1 --backends numba --threads 1 --json

Reference configuration (Finn et al. 2017, Sec. 5.1; as the anchors in ../shared/anchors):
1-40-40-1 ReLU, K = 10 support + 10 query points, meta-batch 25, inner SGD alpha = 0.01.
A meta-iteration is the whole outer step: sampling the tasks (``Sine().sample_arrays``),
the inner loops and the meta-gradient (or Reptile's phi~ - phi), and the outer update
(``tinymeta.optim.Adam(1e-3)``; Reptile: phi + eps_t * mean(phi~ - phi), eps 0.1 -> 0).
Columns: MAML k = 1, MAML k = 5, FOMAML k = 1, Reptile k = 5.

Timing: warm-up, then ``--reps`` repetitions of about ``--rep-seconds`` each; the median
seconds per iteration (wall clock, and process CPU time, which is robust to other load on a
shared machine). BLAS is pinned to one thread (OPENBLAS/OMP/MKL_NUM_THREADS=1, set before
NumPy is imported); Numba's threads are set with ``numba.set_num_threads``. Compile time:
the first call of each kernel in a fresh NUMBA_CACHE_DIR, and again with that cache filled
(both in subprocesses).

FLOP count (matmul only, 2 per multiply-add; elementwise work, the loss, SGD and Adam are
not counted). Widths d_0..d_L, n rows: a forward pass is F(n) = sum_l 2 n d_{l-1} d_l, and
x(n) = 2 n d_0 d_1 is the first layer's share. A gradient is F (forward) + F (weight grads)
+ F - x (input grads; none needed at layer 1) = 3F - x. A Hessian-vector product by the
R-operator reusing the stored forward/backward: R-forward 2F - x (R{a_0} = 0), R-weight-grads
2F - x, R-input-grads 2(F - x): 6F - 4x. Per task, support n_s and query n_q rows:
MAML k (9F_s - 5x_s) + 3F_q - x_q; FOMAML k (3F_s - x_s) + 3F_q - x_q; Reptile k (3F_s - x_s).
Sine, 25 tasks: 9.96 / 39.8 / 5.00 / 12.5 MFLOP per meta-iteration (anchors' count, which also
counts layer 1's input gradient: 10.1 / 40.3 / 5.0 / 12.6).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # BLAS single-threaded: parallelism, if any, is over tasks (numba threads)

import numpy as np  # noqa: E402

ALGOS = {"maml-1": ("maml", 1), "maml-5": ("maml", 5), "fomaml-1": ("fomaml", 1), "reptile-5": ("reptile", 5)}
SIZES, B, K, KQ, ALPHA = [1, 40, 40, 1], 25, 10, 10, 0.01


def flops_per_iteration(algo, k, sizes=SIZES, B=B, n_s=K, n_q=KQ):
    """Matmul FLOPs of one meta-iteration (derivation in the module docstring)."""

    def F(n):
        return sum(2 * n * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    def x(n):
        return 2 * n * sizes[0] * sizes[1]

    grad_s, grad_q, hvp_s = 3 * F(n_s) - x(n_s), 3 * F(n_q) - x(n_q), 6 * F(n_s) - 4 * x(n_s)
    per_task = {"maml": k * (grad_s + hvp_s) + grad_q, "fomaml": k * grad_s + grad_q, "reptile": k * grad_s}
    return B * per_task[algo]


def matmul_peak(n=2000, reps=3):
    """GFLOP/s of one n x n float64 matrix product on one BLAS thread (best of ``reps``)."""
    a, b = np.random.default_rng(0).standard_normal((2, n, n))
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _time(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def make_step(algo, k, backend, seed=0):
    """(step(it) -> None, state): one whole meta-iteration per call, as in the module docstring."""
    from tinymeta import MLP, Sine
    from tinymeta.backends import batch_functions
    from tinymeta.optim import Adam, linear_schedule
    from tinymeta.tasks import TaskBatch

    net, family, rng = MLP(SIZES, "relu"), Sine(K, KQ), np.random.default_rng(seed + 1)
    fn, adam = batch_functions(backend)[algo], Adam(1e-3)
    state = {"phi": net.init(seed), "opt": adam.init(net.num_params)}

    def step(it, total=10**6):
        batch = TaskBatch(*family.sample_arrays(rng, B)[2:])
        _, g = fn(net, state["phi"], batch, ALPHA, k)
        if algo == "reptile":
            state["phi"] = state["phi"] + linear_schedule(0.1, 0.0, it, total) * g
        else:
            state["phi"], state["opt"] = adam.update(state["phi"], g, state["opt"])

    return step, state


def measure(algo, k, backend, threads, reps, rep_seconds):
    """Median seconds (wall and CPU) per meta-iteration over ``reps`` repetitions."""
    if backend == "numba":
        import numba

        numba.set_num_threads(threads)
    step, _ = make_step(algo, k, backend)
    t0 = time.perf_counter()
    step(0)  # first call: compiles or loads the kernel
    first = time.perf_counter() - t0
    n = 1
    while True:  # warm-up, and size the repetitions to about rep_seconds
        t = _time(lambda n=n: [step(i) for i in range(n)])
        if t > rep_seconds / 4:
            break
        n *= 2
    n = max(1, int(n * rep_seconds / t))
    walls, cpus = [], []
    for _ in range(reps):
        c, w = time.process_time(), time.perf_counter()
        for i in range(n):
            step(i)
        walls.append((time.perf_counter() - w) / n)
        cpus.append((time.process_time() - c) / n)
    return float(np.median(walls)), float(np.median(cpus)), n, first


_COMPILE_PROBE = """
import json, time
t0 = time.perf_counter()
import numpy as np
from tinymeta import MLP, Sine
from tinymeta.tasks import TaskBatch
t1 = time.perf_counter()
import tinymeta.kernels as K
t2 = time.perf_counter()
net = MLP([1, 40, 40, 1], "relu")
b = TaskBatch(*Sine().sample_arrays(0, 25)[2:])
out = {"import_s": t2 - t1}
for name in ("maml_batch", "reptile_batch"):
    t = time.perf_counter()
    getattr(K, name)(net, net.init(0), b, 0.01, 1)
    out[name] = time.perf_counter() - t
print(json.dumps(out))
"""


def compile_times():
    """First-call seconds of each kernel with an empty NUMBA_CACHE_DIR ("cold") and a filled one."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cmd = [sys.executable, "-c", _COMPILE_PROBE]
        runs = [json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
                for _ in range(2)]  # fmt: skip
    return {"cold": runs[0], "cached": runs[1]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", nargs="+", choices=list(ALGOS), default=list(ALGOS))
    p.add_argument("--backends", nargs="+", choices=["numpy", "numba"], default=["numpy", "numba"])
    p.add_argument(
        "--threads",
        nargs="+",
        type=int,
        default=None,
        help="numba threads (numpy: 1 only); default 1 and 2, as far as NUMBA_NUM_THREADS allows",
    )
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--rep-seconds", type=float, default=1.0)
    p.add_argument("--no-compile", action="store_true", help="skip the compile-time subprocesses")
    p.add_argument("--no-peak", action="store_true", help="skip the large-matmul peak")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    args = p.parse_args(argv)
    if "numba" in args.backends:  # respect the thread limit the user set (numba refuses more)
        import numba

        limit = numba.config.NUMBA_NUM_THREADS
        if args.threads is None:
            args.threads = [t for t in (1, 2) if t <= limit]
        elif max(args.threads) > limit or min(args.threads) < 1:
            p.error(f"--threads {args.threads}: numba allows 1..{limit} here (NUMBA_NUM_THREADS)")
    args.threads = args.threads or [1]

    load0 = os.getloadavg()
    compiled = None if args.no_compile or "numba" not in args.backends else compile_times()
    peak = None if args.no_peak else matmul_peak()
    rows = []
    for name in args.algos:
        algo, k = ALGOS[name]
        for backend in args.backends:
            for threads in [1] if backend == "numpy" else args.threads:
                wall, cpu, n, first = measure(algo, k, backend, threads, args.reps, args.rep_seconds)
                flops = flops_per_iteration(algo, k)
                kernel = "maml_batch" if algo != "reptile" else "reptile_batch"
                row = dict(algo=algo, k=k, backend=backend, threads=threads, meta_iters_per_s=1.0 / wall,
                           median_s=wall, meta_iters_per_cpu_s=1.0 / cpu, median_cpu_s=cpu,
                           flops_per_iter=flops, gflops=flops / wall / 1e9, gflops_cpu=flops / cpu / 1e9,
                           compile_s=(compiled["cold"][kernel] if compiled and backend == "numba" else 0.0),
                           cached_first_call_s=(compiled["cached"][kernel] if compiled and backend == "numba"
                                                else None),
                           first_call_s=first, iters_per_rep=n, reps=args.reps, peak_gflops_1thread=peak,
                           pct_of_peak=(100 * flops / wall / 1e9 / peak if peak else None),
                           loadavg=[round(v, 2) for v in os.getloadavg()],
                           omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "default"))  # fmt: skip
                rows.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
    if not args.json:
        print(f"load average at start {load0[0]:.2f}, end {os.getloadavg()[0]:.2f}; "
              f"one core's 2000x2000 float64 matmul: {peak or float('nan'):.1f} GFLOP/s")  # fmt: skip
        if compiled:
            print(
                f"compile (first call, empty cache): {compiled['cold']}; with the cache: {compiled['cached']}"
            )
        head = ("algo", "k", "backend", "thr", "it/s", "it/cpu-s", "GFLOP/s", "%peak")
        print("{:8} {:>2} {:7} {:>3} {:>9} {:>9} {:>8} {:>6}".format(*head))
        for r in rows:
            pct = f"{r['pct_of_peak']:6.1f}" if r["pct_of_peak"] is not None else "     -"
            rate, cpu_rate = r["meta_iters_per_s"], r["meta_iters_per_cpu_s"]
            print(f"{r['algo']:8} {r['k']:>2} {r['backend']:7} {r['threads']:>3} {rate:9.1f} {cpu_rate:9.1f} "
                  f"{r['gflops']:8.2f} {pct}")  # fmt: skip


if __name__ == "__main__":
    main()
