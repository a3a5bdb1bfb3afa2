"""Scaling of one exact velocity evaluation with m and d, of the reduced models with m, and
peak memory against m (it must stay O(m d): no m × m array anywhere).

* time per step (one ``gradients`` call = one Euler step) against m at fixed d, with the
  fitted exponent of the last three sizes (expect 2 for the full model);
* against d at fixed m (the O(m²) elementwise work makes small d cost more than ∝ d);
* the reduced models: the (d_H + 2)-variable flow (``ReducedBackend``, O(m² Q)) and the
  balanced 1-D model (``RadialKernel.field``, O(m P) after tabulation);
* peak resident memory of one exact velocity evaluation at m up to 10⁵ (d = 100), each
  in a fresh subprocess (Linux: the peak VmHWM is reset through /proc/self/clear_refs
  just before the evaluation), minus the resident size just before it.

Run (about 8 minutes on 2 cores, most of it the m = 10⁵ evaluation)::

    python benchmarks/bench_scaling.py
    python benchmarks/bench_scaling.py --memory-m 10000,30000      # skip the slow 10⁵
    python benchmarks/bench_scaling.py --smoke --json               # CI: seconds
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import Output, load_average, machine_lines, median_time, parse_list  # noqa: E402
from meanfield.theory.rates import fit_power_law  # noqa: E402


def fit_exponent(sizes, times):
    """Least-squares slope of log(time) against log(size)."""
    return float(fit_power_law(sizes, times).slope)


def exact_step(m, d, seed=0):
    from bench_velocity import make_problem
    from meanfield.models.backends import ExactBackend
    problem, _, particles = make_problem(m, d, seed)
    backend = ExactBackend(problem)
    a, b, w = particles.a, particles.b, particles.weights
    return lambda: backend.gradients(a, b, w)


def reduced_step(m, d=30, d_h=5, seed=0):
    import meanfield as mf
    from meanfield.models.reduced import BlockReduction, ReducedBackend
    rng = np.random.default_rng(seed)
    problem = mf.Problem(d=d, target=mf.NormTarget(d_H=d_h))
    blocks = BlockReduction.subspace(d, d_h)
    backend = ReducedBackend(problem, blocks)
    particles = mf.init_sphere_rademacher(m, d, rng)
    z = blocks.project(particles.b)
    a, w = particles.a, particles.weights
    return lambda: backend.gradients(a, z, w)


def radial_step(m, d=30, d_h=5, seed=0):
    from meanfield.models.radial1d import RadialKernel
    rng = np.random.default_rng(seed)
    kernel = RadialKernel(d_h, d - d_h)
    eps = rng.choice([-1.0, 1.0], m)
    c = np.ones(m)
    theta = rng.uniform(0, np.pi / 2, m)
    w = np.full(m, 1.0 / m)
    return lambda: kernel.field(eps, c, theta, w)


MEMORY_CHILD = r"""
import sys, time, numpy as np
sys.path.insert(0, {here!r}); sys.path.insert(0, {root!r})
import numba
numba.set_num_threads({threads})
from bench_velocity import make_problem
from meanfield.models.backends import ExactBackend

def status_kib(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])

problem, _, particles = make_problem(300, {d})
ExactBackend(problem).gradients(particles.a, particles.b, particles.weights)  # load kernels
problem, _, particles = make_problem({m}, {d})
backend = ExactBackend(problem)
before = status_kib("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
    fh.write("5")
t = time.perf_counter()
backend.gradients(particles.a, particles.b, particles.weights)
t = time.perf_counter() - t
print({{"before_kib": before, "after_kib": status_kib("VmHWM"), "seconds": t}})
"""


def peak_memory(m, d, threads):
    code = MEMORY_CHILD.format(here=HERE, root=os.path.dirname(HERE), m=m, d=d, threads=threads)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return eval(done.stdout.strip().splitlines()[-1])  # a dict literal printed by the child


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--m", default="1024,2048,4096,8192,16384",
                        help="m sweep of the exact model")
    parser.add_argument("--reduced-m", default="512,1024,2048,4096",
                        help="m sweep of the reduced model")
    parser.add_argument("--d", default="10", help="d of the m sweep")
    parser.add_argument("--d-sweep", default="10,30,100,300,1000", help="d sweep")
    parser.add_argument("--d-sweep-m", type=int, default=2048, help="m of the d sweep")
    parser.add_argument("--radial-m", default="1024,10000,100000", help="m sweep of the 1-D model")
    parser.add_argument("--memory-m", default="10000,30000,100000", help="m of the memory runs")
    parser.add_argument("--memory-d", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.m, args.d, args.d_sweep, args.d_sweep_m = "128,256", "10", "10,20", 128
        args.reduced_m = "128,256"
        args.radial_m, args.memory_m, args.memory_d, args.repeat = "256", "1000", 10, 1
    import numba
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    threads = numba.get_num_threads()
    out = Output(args.json)
    for line in machine_lines(threads):
        out.say(line)

    ms = parse_list(args.m)
    for d in parse_list(args.d):
        out.say(f"exact full model, time per step against m (d = {d}, load {load_average():.2f})")
        out.header()
        times = []
        for m in ms:
            t, _, _ = median_time(exact_step(m, d), args.repeat)
            times.append(t)
            out.row("meanfield-exact", m, d, t, m * m, None)
        k = min(3, len(ms))
        slope = fit_exponent(ms[-k:], times[-k:])
        out.say(f"  fitted exponent (last {k} sizes): time ∝ m^{slope:.2f}")

    m = args.d_sweep_m
    ds = parse_list(args.d_sweep)
    out.say(f"exact full model, time per step against d (m = {m}, load {load_average():.2f})")
    out.header()
    times = []
    for d in ds:
        t, _, _ = median_time(exact_step(m, d), args.repeat)
        times.append(t)
        out.row("meanfield-exact", m, d, t, m * m, None)
    k = min(3, len(ds))
    slope = fit_exponent(ds[-k:], times[-k:])
    out.say(f"  fitted exponent (last {k} sizes): time ∝ d^{slope:.2f}")

    out.say(f"reduced (d_H + 2)-variable flow, d = 30, d_H = 5, 16 nodes "
            f"(load {load_average():.2f})")
    out.header()
    times = []
    rms = parse_list(args.reduced_m)
    for m in rms:
        t, _, _ = median_time(reduced_step(m), args.repeat)
        times.append(t)
        out.row("meanfield-reduced", m, 30, t, m * m, None)
    k = min(3, len(rms))
    out.say(f"  fitted exponent: time ∝ m^{fit_exponent(rms[-k:], times[-k:]):.2f}")

    rms = parse_list(args.radial_m)
    out.say(f"balanced 1-D model, d = 30, d_H = 5, 64 terms (load {load_average():.2f})")
    out.header()
    times = []
    for m in rms:
        t, _, _ = median_time(radial_step(m), args.repeat)
        times.append(t)
        out.row("meanfield-radial1d", m, 30, t, m * m, None)
    if len(rms) > 1:
        out.say(f"  fitted exponent: time ∝ m^{fit_exponent(rms, times):.2f}")

    d = args.memory_d
    out.say(f"peak memory of one exact velocity evaluation, d = {d} (fresh process each; "
            f"load {load_average():.2f})")
    out.say(f"  {'m':>7} {'m·d·8 B (MiB)':>14} {'extra peak (MiB)':>17} "
            f"{'process peak (MiB)':>19} {'seconds':>8}")
    for m in parse_list(args.memory_m):
        r = peak_memory(m, d, threads)
        extra = (r["after_kib"] - r["before_kib"]) / 1024
        out.say(f"  {m:>7} {m * d * 8 / 2 ** 20:>14.1f} {extra:>17.1f} "
                f"{r['after_kib'] / 1024:>19.1f} {r['seconds']:>8.2f}")
        if args.json:
            print(json.dumps({"implementation": "meanfield-exact-memory", "m": m, "d": d,
                              "median_s": r["seconds"], "pairs_per_s": m * m / r["seconds"],
                              "rel_err": None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
