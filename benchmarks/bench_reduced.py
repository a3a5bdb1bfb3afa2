"""One evaluation of the (d_H + 2)-variable reduced flow (``ReducedBackend.gradients``: the
block-reduced kernel plus the target terms), this tree against an older checkout, and the
full exact model at the same m for scale.

Problem: the E3 setting — f* = ‖x_H‖, d_H = 5, H kept explicitly and H⊥ reduced to its
norm (particles (a, b_H, ‖b_⊥‖)), ``n_nodes`` Gauss–Jacobi nodes (8, E3's default), b
uniform on the sphere (‖b_H‖² ∼ Beta(d_H/2, d_⊥/2)), a = ±1, weights 1/m. The reduced cost
does not depend on d; the full model's does.

Rows:

* ``reduced``: this tree; ``rel_err`` of the ``before`` row is ‖g_before − g‖/‖g‖ over
  (g_a, g_z).
* ``reduced-before``: the same call with ``meanfield`` imported from ``--before PATH`` (a
  checkout of the code before the tiled kernel, e.g. the main branch), in a separate
  process with its own Numba cache directory (nothing is written into PATH).
* ``full-exact``: ``ExactBackend.gradients`` on lifted particles (d in ``--full-d``,
  skipped when m²d > 2·10¹⁰).

Every time is a median over ``--repeat`` runs after two warm-up calls; the first call
(compile or cache load) is reported apart, with the median CPU time of the timed runs
(all threads) and the 1-minute load average.

Run (about 2 minutes on 2 cores, most of it the old kernel at m = 4096)::

    python benchmarks/bench_reduced.py --before /path/to/old/checkout
    python benchmarks/bench_reduced.py --smoke --json        # CI: seconds
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if "--worker" not in sys.argv:  # a worker imports meanfield from its PYTHONPATH only
    sys.path.insert(0, os.path.dirname(HERE))

from _common import Output, load_average, machine_lines, median_time, parse_list  # noqa: E402

# before Numba's threads start: meanfield.kernels.threads sets the OpenMP wait policy (passive)
import meanfield.kernels.threads  # noqa: E402,F401

D_H = 5


def timed(fn, repeat):
    """:func:`_common.median_time` plus the median CPU time of the same runs (all threads of
    this process; less sensitive than wall time to other processes on a shared machine)."""
    cpu = []

    def run():
        c0 = time.process_time()
        out = fn()
        cpu.append(time.process_time() - c0)
        return out

    t, first, result = median_time(run, repeat)
    return t, first, float(np.median(cpu[2:])), result


def reduced_inputs(m, d, seed=0):
    """(a, z, w) of m particles with b uniform on S^{d−1}, reduced to (b_H, ‖b_⊥‖)."""
    rng = np.random.default_rng([seed, m, d])
    h2 = rng.beta(D_H / 2, (d - D_H) / 2, m)
    u = rng.standard_normal((m, D_H))
    u *= (np.sqrt(h2) / np.linalg.norm(u, axis=1))[:, None]
    z = np.column_stack([u, np.sqrt(1.0 - h2)])
    a = rng.choice([-1.0, 1.0], m)
    return a, z, np.full(m, 1.0 / m)


def reduced_call(m, d, n_nodes):
    import meanfield as mf
    from meanfield.models.reduced import BlockReduction, ReducedBackend
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(D_H)), BlockReduction.subspace(d, D_H),
                             n_nodes=n_nodes)
    a, z, w = reduced_inputs(m, d)
    return lambda: backend.gradients(a, z, w)


def full_call(m, d):
    import meanfield as mf
    from meanfield.models.backends import ExactBackend
    from meanfield.models.reduced import BlockReduction
    a, z, w = reduced_inputs(m, d)
    b = BlockReduction.subspace(d, D_H).lift(z, np.random.default_rng(1))
    backend = ExactBackend(mf.Problem(d, mf.NormTarget(D_H)))
    return lambda: backend.gradients(a, b, w)


def worker(args):
    """Time the reduced call with whatever ``meanfield`` is importable; JSON lines out,
    gradients into ``args.save``."""
    import numba
    numba.set_num_threads(args.threads)
    saved = {}
    for m in parse_list(args.m):
        if m > args.before_max_m:
            continue
        for d in parse_list(args.d):
            t, first, cpu, (ga, gz, _) = timed(reduced_call(m, d, args.n_nodes), args.repeat)
            saved[f"{m}_{d}"] = np.concatenate([ga, gz.ravel()])
            print(json.dumps({"m": m, "d": d, "median_s": t, "first_s": first, "cpu_s": cpu,
                              "load": load_average()}), flush=True)
    np.savez(args.save, **saved)


def run_before(args, path):
    """Run :func:`worker` on the checkout at ``path`` in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        save = os.path.join(tmp, "before.npz")
        env = dict(os.environ, PYTHONPATH=os.path.abspath(path), PYTHONDONTWRITEBYTECODE="1",
                   NUMBA_CACHE_DIR=os.path.join(tmp, "numba"))
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--save", save,
               "--m", args.m, "--d", args.d, "--n-nodes", str(args.n_nodes),
               "--repeat", str(args.before_repeat), "--threads", str(args.threads),
               "--before-max-m", str(args.before_max_m)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"the '--before' run failed:\n{proc.stderr[-2000:]}")
        rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        with np.load(save) as data:
            grads = {k: data[k] for k in data.files}
    return {(r["m"], r["d"]): r for r in rows}, grads


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--m", default="256,1024,4096")
    parser.add_argument("--d", default="10,10000", help="dimensions of the reduced rows")
    parser.add_argument("--full-d", default="10,10000", help="dimensions of the full-model "
                        "rows ('' for none)")
    parser.add_argument("--n-nodes", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", default=None, help="checkout whose meanfield gives the "
                        "'reduced-before' rows")
    parser.add_argument("--before-repeat", type=int, default=3)
    parser.add_argument("--before-max-m", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import numba
    args.threads = min(args.threads, numba.config.NUMBA_NUM_THREADS)
    if args.smoke:
        args.m, args.d, args.full_d, args.repeat, args.before_repeat = "200", "30", "30", 1, 1
    if args.worker:
        worker(args)
        return 0
    numba.set_num_threads(args.threads)
    out = Output(args.json)
    for line in machine_lines(args.threads):
        out.say(line)
    before, before_g = run_before(args, args.before) if args.before else ({}, {})
    out.say(f"one ReducedBackend.gradients call, d_H = {D_H}, {args.n_nodes} nodes; note: "
            "first call (compile or cache load) and load average")
    out.header()
    for m in parse_list(args.m):
        for d in parse_list(args.d):
            t, first, cpu, (ga, gz, _) = timed(reduced_call(m, d, args.n_nodes), args.repeat)
            out.row("reduced", m, d, t, m * m, None,
                    f"first {first:.3f} s, cpu {cpu:.4f} s, load {load_average():.2f}")
            if (m, d) in before:
                g = np.concatenate([ga, gz.ravel()])
                g_old = before_g[f"{m}_{d}"]
                rel = float(np.linalg.norm(g_old - g) / np.linalg.norm(g))
                r = before[(m, d)]
                out.row("reduced-before", m, d, r["median_s"], m * m, rel,
                        f"first {r['first_s']:.3f} s, cpu {r['cpu_s']:.4f} s, "
                        f"load {r['load']:.2f}; {r['median_s'] / t:.1f}x the wall time, "
                        f"{r['cpu_s'] / cpu:.1f}x the cpu time")
        for d in parse_list(args.full_d):
            if m * m * d > 2e10:
                continue
            t, first, cpu, _ = timed(full_call(m, d), args.repeat)
            out.row("full-exact", m, d, t, m * m, None,
                    f"first {first:.3f} s, cpu {cpu:.4f} s, load {load_average():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
