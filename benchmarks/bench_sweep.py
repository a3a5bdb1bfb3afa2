"""Sweeps on Dask (``python -m meanfield.sweep``): what the executor costs per point, what two
worker processes gain over one, and the seed paper's sweeps end to end.

Cases:

* ``overhead``: a warm LocalCluster of 2 worker processes runs ``--points`` tiny ``flow``
  points through :func:`meanfield.sweep.run_point` (the sweep's own task); the overhead per
  point is ``(wall × workers − Σ run_s) / points``, where ``run_s`` is the time each worker
  spent inside the run itself (``meanfield.cli.main``). Worker start-up and the first point
  of each worker (imports, loading compiled kernels) are excluded: a warm-up round runs first.
* ``speedup``: the whole command ``python -m meanfield.sweep flow --grid seed=0,...,7
  --threads 1`` with ``--workers 1`` (in-process, one after the other) and ``--workers 2``
  (LocalCluster), alternated, ``--repeat`` times each; wall time of the command, start-up
  included.
* ``e1``: E1 of the seed paper through the sweep: widths 10, 50, 128, 1024 × seeds 0, 1, 2,
  random start, exact gradients, ``dt = 0.01``, ``--e1-steps`` steps (default 2000, T = 20;
  the paper's T = 100 is 10⁴ steps).
* ``dh``: E2's d_H sweep at d = 40 through the sweep (d_H = 2 ... 35, ``--dh-steps`` steps
  (default the paper's 20 000) of the 1-D model, m = 1024, dt = 0.005, no Monte Carlo run).

Run (the machine is shared: the load is printed before and after each case)::

    python benchmarks/bench_sweep.py                       # overhead, speedup
    python benchmarks/bench_sweep.py --cases e1,dh         # the paper's sweeps (minutes)
    python benchmarks/bench_sweep.py --smoke --json        # CI: a 2-point sweep
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _common import load_average, machine_lines  # noqa: E402

TINY = ["d=4", "n_particles=16", "n_steps=20", "n_snapshots=0"]
SMALL = ["d=10", "n_particles=512", "n_steps=2000"]
E1 = ["inits=sphere", "include_sampled=false", "integrator=euler", "dt=0.01"]
DH = ["d=40", "n_particles=1024", "monte_carlo=false", "sweep=false", "integrator=euler",
      "dt=0.005"]


def dh_sets(n_steps):
    """E2's fixed keys at ``n_steps`` steps (histograms and reports within the run)."""
    marks = sorted({s for s in (0, 100, 600, 1000, 3000, 10000, 20000) if s < n_steps}
                   | {n_steps})
    return DH + [f"n_steps={n_steps}", "histogram_steps=" + ",".join(map(str, marks)),
                 "report_steps=" + ",".join(map(str, marks[1:]))]


def say(text, stream):
    print(text, file=stream, flush=True)


def sweep_command(experiment, grid, sets, out, extra=()):
    cmd = [sys.executable, "-m", "meanfield.sweep", experiment, "--out", str(out), "--quiet"]
    for g in grid:
        cmd += ["--grid", g]
    for s in sets:
        cmd += ["--set", s]
    return cmd + list(extra)


def timed(cmd):
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def shown(cmd):
    return "python " + " ".join(c if "/" not in c or c.startswith("meanfield") else "DIR"
                                for c in cmd[1:])


def case_overhead(args, table):
    from meanfield.cli.executor import Executor
    from meanfield.cli.sweep import plan, run_point

    workers = 2
    with tempfile.TemporaryDirectory() as tmp:
        seeds = ",".join(str(s) for s in range(workers * 2 + args.points))
        _, points = plan("flow", [f"seed={seeds}"], TINY)
        warm, timed_points = points[:workers * 2], points[workers * 2:]

        def tasks(pts):
            return [("flow", str(Path(tmp) / p.name), p.sets, p.config, 1) for p in pts]

        load0 = load_average()
        with Executor(workers=workers, env={"OMP_NUM_THREADS": "1"}) as ex:
            list(ex.map_unordered(run_point, tasks(warm)))
            t0 = time.perf_counter()
            results = [r for _, r, e in ex.map_unordered(run_point, tasks(timed_points))]
            wall = time.perf_counter() - t0
        run_s = [r["run_s"] for r in results]
        assert all(r["status"] == "ok" for r in results)
        overhead = (wall * workers - sum(run_s)) / len(results)
        say(f"overhead: {len(results)} points on a warm LocalCluster of {workers} workers: "
            f"{wall:.2f} s wall, run itself median {statistics.median(run_s):.3f} s "
            f"(sum {sum(run_s):.2f} s); overhead per point {overhead:.3f} s; "
            f"load {load0:.2f} -> {load_average():.2f}", table)
    return {"implementation": "meanfield-sweep-overhead", "m": 16, "d": 4,
            "median_s": overhead, "pairs_per_s": None, "rel_err": None}


#: ``--dask-defaults``: the sweep command with the LocalCluster under Dask's own worker
#: settings (only the profiler off), i.e. without meanfield.cli.executor.LOCAL_WORKER_CONFIG
DASK_DEFAULTS = ("import sys, meanfield.cli.executor as e; "
                 "e.LOCAL_WORKER_CONFIG = {'distributed.worker.profile.enabled': False}; "
                 "from meanfield.cli.sweep import main; sys.exit(main(sys.argv[1:]))")


def case_speedup(args, table):
    n = 2 if args.smoke else 8
    sets = TINY if args.smoke else SMALL
    grid = ["seed=" + ",".join(str(s) for s in range(n))]
    variants = [1, 2] + (["2 (Dask defaults)"] if args.dask_defaults else [])
    walls = {v: [] for v in variants}
    load0 = load_average()
    for rep in range(1 if args.smoke else args.repeat):
        for v in variants:
            workers = 2 if v != 1 else 1
            with tempfile.TemporaryDirectory() as tmp:
                cmd = sweep_command("flow", grid, sets, Path(tmp) / "s",
                                    ["--workers", str(workers), "--threads", "1"])
                if v not in (1, 2):
                    cmd = [cmd[0], "-c", DASK_DEFAULTS] + cmd[3:]
                walls[v].append(timed(cmd))
                say(f"  {shown(cmd) if v in (1, 2) else v}: {walls[v][-1]:.1f} s (load "
                    f"{load_average():.2f})", table)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    say(f"speedup: {n} points ({' '.join(sets)}), 1 Numba thread each: --workers 1 "
        f"{one:.1f} s, --workers 2 {two:.1f} s (medians of {len(walls[1])}): {one / two:.2f}x; "
        f"load {load0:.2f} -> {load_average():.2f}", table)
    if args.dask_defaults:
        old = statistics.median(walls[variants[-1]])
        say(f"  --workers 2 under Dask's default worker settings: {old:.1f} s, "
            f"{one / old:.2f}x", table)
    return {"implementation": "meanfield-sweep-workers2", "m": 512, "d": 10,
            "median_s": two, "pairs_per_s": None, "rel_err": None}


def case_sweep(name, experiment, grid, sets, table, out_root):
    out = Path(out_root) / name
    cmd = sweep_command(experiment, grid, sets, out)
    load0 = load_average()
    seconds = timed(cmd)
    log = (out / "sweep.log").read_text().split("\n")
    run_s = [float(line.split()[4]) for line in log if line.strip()]
    say(f"{name}: {len(run_s)} points in {seconds:.1f} s wall (sum of the runs "
        f"{sum(run_s):.1f} s); load {load0:.2f} -> {load_average():.2f}\n    {shown(cmd)}",
        table)
    return {"implementation": f"meanfield-sweep-{name}", "m": 1024, "d": 60 if name == "e1"
            else 40, "median_s": seconds, "pairs_per_s": None, "rel_err": None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="overhead,speedup")
    parser.add_argument("--points", type=int, default=16, help="overhead: timed points")
    parser.add_argument("--repeat", type=int, default=3, help="speedup: runs of each command")
    parser.add_argument("--e1-steps", type=int, default=2000)
    parser.add_argument("--dh-steps", type=int, default=20000)
    parser.add_argument("--keep", metavar="DIR", help="e1, dh: keep the sweep folders here")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a 2-point sweep for CI")
    parser.add_argument("--dask-defaults", action="store_true",
                        help="speedup: also --workers 2 under Dask's default worker settings")
    args = parser.parse_args(argv)
    table = sys.stderr if args.json else sys.stdout
    for line in machine_lines(1):
        say(line, table)
    cases = ["speedup"] if args.smoke else [c for c in args.cases.split(",") if c]
    out_root = args.keep or tempfile.mkdtemp()
    for case in cases:
        if case == "overhead":
            row = case_overhead(args, table)
        elif case == "speedup":
            row = case_speedup(args, table)
        elif case == "e1":
            row = case_sweep("e1", "odd", ["widths=10,50,128,1024", "seeds=0,1,2"],
                             E1 + [f"n_steps={args.e1_steps}"], table, out_root)
        elif case == "dh":
            row = case_sweep("dh", "lowdim-1d", ["d_H=2,5,10,15,18,20,25,30,33,35"],
                             dh_sets(args.dh_steps), table, out_root)
        else:
            parser.error(f"unknown case {case!r}; choose from overhead, speedup, e1, dh")
        if args.json:
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
