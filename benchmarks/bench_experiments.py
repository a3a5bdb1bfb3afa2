"""The seed paper's experiments end to end (E1, E2 of shared/brief/EXPERIMENTS.md), timed
through the command line exactly as a user runs them, against the times the paper's own
code took: E1 (odd target, 4 widths, PyTorch) 10.4 minutes, E2 (1-D radial model, 20 000
steps, JAX) 13.5 minutes.

Each case runs ``python -m meanfield.simulate EXPERIMENT --quiet --out DIR [--set ...]`` in a
fresh process (so the time includes start-up and loading the compiled kernels) and reports
the wall time. Cases:

* ``odd-paper``: E1 as the paper ran it — widths 10, 50, 128, 1024, one seed, the sphere
  initialisation, 10⁴ steps of size 0.01 — but with the exact population gradient and
  without the extra sampled (online SGD) runs.
* ``odd-default``: the experiment's default config (the figures: 2 initialisations ×
  3 seeds × 4 widths, plus the sampled runs and the ∞-width ODE).
* ``lowdim-1d-paper``: E2's 20 000 steps of the 1-D model (m = 1024) with exact quadrature,
  no Monte Carlo comparison, no sweep.
* ``lowdim-1d-default``: the default config (adds the Monte Carlo run and the d_H sweep).

Run (a few minutes; the machine is shared, so the load is printed)::

    python benchmarks/bench_experiments.py
    python benchmarks/bench_experiments.py --cases odd-paper,lowdim-1d-paper
    python benchmarks/bench_experiments.py --smoke --json     # CI: a 20-step run of each
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _common import load_average, machine_lines  # noqa: E402

PAPER_SECONDS = {"odd": 10.4 * 60, "lowdim-1d": 13.5 * 60}
SIZES = {"odd": (1024, 60), "lowdim-1d": (1024, 30)}  # largest m, and d (JSON rows)
CASES = {
    "odd-paper": ("odd", ["seeds=0", "inits=sphere", "include_sampled=false"]),
    "odd-default": ("odd", []),
    "lowdim-1d-paper": ("lowdim-1d", ["monte_carlo=false", "sweep=false"]),
    "lowdim-1d-default": ("lowdim-1d", []),
}
SMOKE = {"odd": ["n_steps=20", "widths=10,50", "seeds=0", "inits=sphere",
                 "include_sampled=false"],
         "lowdim-1d": ["n_steps=20", "monte_carlo=false", "sweep=false",
                       "histogram_steps=0,10,20", "report_steps=10,20"]}


def run_case(experiment, sets, threads):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "meanfield.simulate", experiment, "--quiet",
               "--out", os.path.join(tmp, "run"), "--threads", str(threads)]
        for s in sets:
            cmd += ["--set", s]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    return cmd, seconds, done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases",
                        default="odd-paper,lowdim-1d-paper,odd-default,lowdim-1d-default")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="20-step runs for CI")
    args = parser.parse_args(argv)
    table = sys.stderr if args.json else sys.stdout
    for line in machine_lines(args.threads):
        print(line, file=table)
    cases = [c for c in args.cases.split(",") if c]
    if args.smoke:
        cases = ["odd-paper", "lowdim-1d-paper"]
    status = 0
    for case in cases:
        if case not in CASES:
            parser.error(f"unknown case {case!r}; choose from {', '.join(CASES)}")
        experiment, sets = CASES[case]
        if args.smoke:
            sets = SMOKE[experiment]
        load = load_average()
        cmd, seconds, done = run_case(experiment, sets, args.threads)
        shown = " ".join(cmd[1:]).replace(cmd[cmd.index("--out") + 1], "DIR")
        if done.returncode != 0:
            print(f"{case}: FAILED (exit {done.returncode}) after {seconds:.1f} s: {shown}\n"
                  f"{done.stderr[-2000:]}", file=table)
            status = 1
            continue
        paper = PAPER_SECONDS[experiment]
        versus = ("smoke run, not comparable" if args.smoke else
                  f"paper's code: {paper / 60:.1f} min; {paper / seconds:6.1f}x faster")
        print(f"{case}: {seconds:8.1f} s wall ({versus}); load {load:.2f} -> "
              f"{load_average():.2f}\n    python {shown}", file=table, flush=True)
        if args.json:
            m, d = SIZES[experiment]
            print(json.dumps({"implementation": f"meanfield-{case}", "m": m, "d": d,
                              "median_s": seconds, "pairs_per_s": None, "rel_err": None}),
                  flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
