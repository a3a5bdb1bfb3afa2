"""The seed paper's experiments end to end (E1, E2 of shared/brief/EXPERIMENTS.md), timed
through the command line exactly as a user runs them, against the times the paper's own
code took: E1 (odd target, 4 widths, PyTorch) 10.4 minutes, E2 (1-D radial model, 20 000
steps, JAX) 13.5 minutes.

Each case runs ``python -m meanfield.simulate EXPERIMENT --quiet --out DIR [--set ...]`` in a
fresh process (so the time includes start-up and loading the compiled kernels) and reports
the wall time. Cases:

* ``odd-paper``: E1 as the paper ran it — widths 10, 50, 128, 1024, one seed, the sphere
  initialisation, T = 100 — with the exact population gradient, the experiment's default
  integrator (Dormand–Prince 5(4) at rtol 1e-8) and without the extra sampled (online SGD)
  runs. ``odd-paper-euler``: the same with 10⁴ Euler steps of size 0.01 (the paper's scheme).
* ``odd-paired``: the paired start at every width against its moment ODE at rtol 1e-10
  (reports ``gap_ode_paired_max``, the largest ‖w_particles(t) − w_ODE(t)‖ over [0, 100]).
* ``odd-default``: the experiment's default config (the figures: 2 initialisations ×
  3 seeds × 4 widths and the ∞-width ODE).
* ``lowdim-1d-paper``: E2 (T = 100) of the 1-D model (m = 1024) with exact quadrature, no
  Monte Carlo comparison, no sweep; ``lowdim-1d-paper-euler`` with the paper's 20 000 Euler
  steps.
* ``lowdim-1d-default``, ``lowdim-full-vs-reduced-default``,
  ``orthogonal-dependence-default``, ``noether-default``: the default configs.

Beside the wall time each case prints the summary numbers that say what the run showed.

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
SIZES = {"odd": (1024, 60), "lowdim-1d": (1024, 30), "lowdim-full-vs-reduced": (512, 30),
         "orthogonal-dependence": (1024, 20), "noether": (1024, 5)}
E1 = ["seeds=0", "inits=sphere", "include_sampled=false"]
#: case -> (experiment, --set values, summary keys printed beside the time)
CASES = {
    "odd-paper": ("odd", E1, ["final_risk_sphere_m10", "final_risk_sphere_m1024",
                              "wall_time_e1_core_s"]),
    "odd-paper-euler": ("odd", E1 + ["integrator=euler"],
                        ["final_risk_sphere_m10", "final_risk_sphere_m1024",
                         "wall_time_e1_core_s"]),
    "odd-paired": ("odd", ["seeds=0", "inits=paired", "include_sampled=false", "rtol=1e-10",
                           "atol=1e-12"], ["gap_ode_paired_max", "even_probe_paired_max"]),
    "odd-default": ("odd", [], ["gap_slope", "gap_slope_se", "gap_ode_paired_max",
                                "final_risk_sphere_m1024"]),
    "lowdim-1d-paper": ("lowdim-1d", ["monte_carlo=false", "sweep=false"],
                        ["risk_rescaled_step_600", "risk_rescaled_step_3000",
                         "risk_rescaled_step_20000", "exact_wall_time_s",
                         "exact_n_evaluations"]),
    "lowdim-1d-paper-euler": ("lowdim-1d", ["monte_carlo=false", "sweep=false",
                                            "integrator=euler"],
                              ["risk_rescaled_step_600", "risk_rescaled_step_3000",
                               "risk_rescaled_step_20000", "exact_wall_time_s"]),
    "lowdim-1d-default": ("lowdim-1d", [], ["risk_rescaled_step_20000", "final_positive_mass",
                                            "alpha", "sweep_max_rel_mass_gap"]),
    "lowdim-full-vs-reduced-default": ("lowdim-full-vs-reduced", [],
                                       ["slope_coupled_full_reduced",
                                        "slope_risk_full_reduced", "slope_w1_theta_full_1d"]),
    "orthogonal-dependence-default": ("orthogonal-dependence", [],
                                      ["full_predictor_mean_abs_error",
                                       "one_d_predictor_max_abs_error", "final_risk_1d"]),
    "noether-default": ("noether", [], ["n_laws", "n_fail", "Q_drift_dopri5"]),
}
DEFAULT_CASES = ("odd-paper,odd-paired,lowdim-1d-paper,odd-default,lowdim-1d-default,"
                 "lowdim-full-vs-reduced-default,orthogonal-dependence-default,noether-default")
SMOKE = {"odd": ["n_steps=20", "widths=10,50", "seeds=0", "inits=sphere",
                 "include_sampled=false", "integrator=euler"],
         "lowdim-1d": ["n_steps=20", "monte_carlo=false", "sweep=false",
                       "histogram_steps=0,10,20", "report_steps=10,20", "integrator=euler"]}


def run_case(experiment, sets, threads):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "meanfield.simulate", experiment, "--quiet",
               "--out", os.path.join(tmp, "run"), "--threads", str(threads)]
        for s in sets:
            cmd += ["--set", s]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        path = os.path.join(tmp, "run", "summary.json")
        summary = json.load(open(path)) if os.path.exists(path) else {}
    return cmd, seconds, done, summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases",
                        default=DEFAULT_CASES)
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
        experiment, sets, keys = CASES[case]
        if args.smoke:
            sets = SMOKE[experiment]
        load = load_average()
        cmd, seconds, done, summary = run_case(experiment, sets, args.threads)
        shown = " ".join(cmd[1:]).replace(cmd[cmd.index("--out") + 1], "DIR")
        if done.returncode != 0:
            print(f"{case}: FAILED (exit {done.returncode}) after {seconds:.1f} s: {shown}\n"
                  f"{done.stderr[-2000:]}", file=table)
            status = 1
            continue
        paper = PAPER_SECONDS.get(experiment)
        versus = ("smoke run, not comparable" if args.smoke else "" if paper is None else
                  f"; paper's code: {paper / 60:.1f} min, {paper / seconds:6.1f}x faster")
        numbers = ", ".join(f"{k} = {summary[k]:.6g}" if isinstance(summary.get(k), float)
                            else f"{k} = {summary.get(k)}" for k in keys)
        print(f"{case}: {seconds:8.1f} s wall{versus}; load {load:.2f} -> "
              f"{load_average():.2f}\n    {numbers}\n    python {shown}", file=table,
              flush=True)
        if args.json:
            m, d = SIZES[experiment]
            print(json.dumps({"implementation": f"meanfield-{case}", "m": m, "d": d,
                              "median_s": seconds, "pairs_per_s": None, "rel_err": None}),
                  flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
