"""E2 of the seed paper: the balanced 1-D model (ε, c, θ) for f* = ‖x_H‖ with exact G, G'.

Runs (i) the 1-D model with exact (tabulated, spectrally interpolated) G and G' from the
seed code's start (Dormand–Prince 5(4) by default; T = dt × n_steps), (ii) the same start driven by the seed code's Monte Carlo estimator
(``mc_samples`` fresh samples per step), and (iii) the sweep of d_H at d = ``sweep_d``.
The G, G' tables depend only on (d_H, d − d_H, n_terms) and are cached (bit-identical) in
:func:`meanfield.models.radial1d.default_cache_dir` (``MEANFIELD_CACHE_DIR=off`` turns the
cache off), so only the first run with given dimensions pays for their quadrature.
Figures (drawn by :mod:`meanfield.plots.lowdim_1d` from trajectory.npz and data.npz):
re-scaled risk F/d of both runs (the seed code's loss readout, whose Monte Carlo noise
floor is what its published curve levelled off at, the exact risk of the particles it drove,
and the exact descent),
mass-weighted angle histograms of τ⁺ and τ⁻, masses and distances to the limit α δ_0, and
final masses against α(d_H) for the sweep.
"""
import numpy as np

from ..cli.config import require
from ..engine.integrators import ADAPTIVE
from ._common import (TIME_DEFAULTS, TIME_TYPES, check_horizon, horizon, horizon_options,
                      is_adaptive, map_sub_runs, run_solver, trajectory_arrays)

NAME = "lowdim-1d"
#: the module of meanfield.plots that draws this experiment's figures
FIGURES_MODULE = "lowdim_1d"
SUMMARY = ("E2: 1-D (eps, c, theta) model for f* = ||x_H|| with exact G; Monte Carlo beside it; "
           "d_H sweep")

DEFAULTS = {
    "d": 30,
    "d_H": 5,
    "n_particles": 1024,
    "dt": 5e-3,
    "n_steps": 20000,
    "seed": 42,
    "integrator": "dopri5",
    "n_terms": 64,
    "record_every": 10,
    "snapshot_every": 100,
    "histogram_steps": [0, 100, 1000, 10000, 20000],
    "report_steps": [600, 3000, 20000],
    "monte_carlo": True,
    "mc_samples": 1000,
    "sweep": True,
    "sweep_d": 40,
    "sweep_d_H": [2, 5, 10, 15, 18, 20, 25, 30, 33, 35],
    "sweep_steps": 20000,
    "bins": 30,
    **TIME_DEFAULTS,
}
TYPES = TIME_TYPES
#: the exact run, the Monte Carlo run and the sweep's runs go through :func:`map_sub_runs`
#: (``--workers``)
SUB_RUNS = True

#: the exact runs use ``integrator``; the Monte Carlo run is the seed code's Euler at dt
#: (a noisy velocity has no error estimate). dt × n_steps is the horizon unless t_end is set;
#: steps named by other keys (report, histogram, snapshot) are times / dt.
CHOICES = {"integrator": ["euler", "heun", "rk4", *ADAPTIVE]}
#: records of adaptive runs (fixed-step runs record every ``record_every`` steps)
N_RECORDS_DEFAULT = 501

#: the seed paper's plotted plateau of the re-scaled loss (EXPERIMENTS.md E2)
SEED_PLATEAU = 0.012


APPLIES = {
    "mc_samples": (lambda c: c["monte_carlo"], "monte_carlo = false runs no Monte Carlo"),
    "sweep_d": (lambda c: c["sweep"], "sweep = false runs no d_H sweep"),
    "sweep_d_H": (lambda c: c["sweep"], "sweep = false runs no d_H sweep"),
    "sweep_steps": (lambda c: c["sweep"], "sweep = false runs no d_H sweep"),
}


def estimate(config):
    """Memory (bytes) and work (pair evaluations × steps) before the run starts."""
    m, n = config["n_particles"], config["n_steps"]
    runs = 2 if config["monte_carlo"] else 1
    snaps = n // config["snapshot_every"] + len(config["histogram_steps"]) + 2
    memory = {"n_particles": 8 * 3 * m * (snaps * runs + 16),
              "n_steps": 8 * 3 * runs * (n // config["record_every"] + 2),
              "n_terms": 8 * 4 * 96 * config["n_terms"],
              "mc_samples": 8 * config["mc_samples"] * (m + 8) if config["monte_carlo"] else 0}
    work = float(m) * m * n * runs
    if config["sweep"]:
        work += float(m) * m * config["sweep_steps"] * len(config["sweep_d_H"])
    return {"memory": memory, "work": work}


def check(config):
    require(config["d"] >= 2, "d", "must be >= 2")
    require(1 <= config["d_H"] < config["d"], "d_H", f"must be in [1, d) = [1, {config['d']})")
    require(config["n_particles"] >= 1, "n_particles", "must be >= 1")
    check_horizon(config)
    require(config["n_terms"] >= 4, "n_terms", "must be >= 4")
    require(config["record_every"] >= 1, "record_every", "must be >= 1")
    require(config["snapshot_every"] >= 1, "snapshot_every", "must be >= 1")
    require(config["mc_samples"] >= 1, "mc_samples", "must be >= 1")
    require(config["bins"] >= 1, "bins", "must be >= 1")
    require(config["sweep_d"] >= 2, "sweep_d", "must be >= 2")
    n_total = int(round(horizon(config) / config["dt"]))
    for key in ("histogram_steps", "report_steps"):
        require(all(0 <= s <= n_total for s in config[key]), key,
                f"steps must lie in [0, T / dt = {n_total}]")
    require(config["sweep_steps"] >= 1, "sweep_steps", "must be >= 1")
    require(all(1 <= k < config["sweep_d"] for k in config["sweep_d_H"]), "sweep_d_H",
            f"every d_H must be in [1, sweep_d) = [1, {config['sweep_d']})")


def _run_part(ctx, name, kernel, eps, c, theta, config, n_steps, estimator, snapshot_at, seed):
    """One 1-D run through the loop, resumable from its checkpoint and stored as a part so
    that --resume skips it. ``n_steps`` × dt is its horizon; ``snapshot_at`` are steps
    (times / dt)."""
    from ..models.radial1d import radial_solver
    from ..cli.runctx import RunFailed

    part = ctx.load_part(name)
    if part is not None:
        ctx.log(f"{name}: taken from the finished part")
        return part
    dt = config["dt"]
    integ = config["integrator"] if estimator == "exact" else "euler"
    opts = horizon_options({**config, "n_steps": n_steps, "t_end": None}, integrator=integ)
    T = opts.get("t_end", dt * opts.get("n_steps", 0))
    snap_times = np.asarray(snapshot_at, dtype=np.float64) * dt
    if is_adaptive({"integrator": integ}):
        n_rec = config["n_records"] or N_RECORDS_DEFAULT
        report = np.asarray(config["report_steps"], dtype=np.float64) * dt
        rec = {"record_times": np.union1d(np.linspace(0.0, T, n_rec), report[report <= T])}
    else:
        rec = ({"n_records": config["n_records"]} if config["n_records"] else
               {"record_every": config["record_every"]})
    ctx.log(f"{name}: t = 0 … {T:g}, {integ}, estimator {estimator}")
    solver = radial_solver(kernel, eps, c, theta, integrator=integ, estimator=estimator,
                           n_samples=config["mc_samples"], seed=seed,
                           snapshot_times=snap_times[snap_times <= T * (1 + 1e-12)], **opts,
                           **rec)
    res = run_solver(solver, ctx, f"checkpoints/{name}.npz", desc=name)
    if res.status != "ok":
        raise RunFailed(f"{name}: {res.message}")
    out = {"t": res.t, "risk": res.risk, "risk_estimate": res.risk_estimate,
           "snap_step": np.round(res.snapshots["t"] / dt).astype(np.int64),
           "snap_c": res.snapshots["c"], "snap_theta": res.snapshots["theta"], "eps": res.eps,
           "c": res.c, "theta": res.theta, "weights": res.weights,
           "wall_time_s": np.float64(res.wall_time_s), **res.stats()}
    ctx.save_part(name, **out)
    ctx.save_arrays(f"runs/{name}/trajectory.npz", **trajectory_arrays(
        res, "radial1d", eps=res.eps, risk_exact=res.risk, risk_estimate=res.risk_estimate))
    ckpt = ctx.path(f"checkpoints/{name}.npz")
    if ckpt.exists():
        ckpt.unlink()
    return out


def _sub_run(job, config, main, ctx):
    """Sub-run ``job``: ``("exact",)`` or ``("monte_carlo",)`` from the start ``main`` =
    (kernel, eps, c, theta, n_steps, snapshot steps), or ``("sweep", d_H)`` at d = sweep_d
    (its kernel and start made here, from the config's seed)."""
    from ..models.lowdim import sample_radial_init
    from ..models.radial1d import RadialKernel, default_cache_dir

    kernel, eps, c, theta, n_steps, snap_at = main
    if job[0] == "exact":
        return _run_part(ctx, "exact", kernel, eps, c, theta, config, n_steps, "exact", snap_at,
                         config["seed"])
    if job[0] == "monte_carlo":
        return _run_part(ctx, "monte_carlo", kernel, eps, c, theta, config, n_steps,
                         "monte_carlo", snap_at, config["seed"] + 1)
    k, d2 = job[1], config["sweep_d"]
    name = f"sweep_dH{k}"
    part = ctx.load_part(name)
    if part is not None:  # the kernel table is not needed
        ctx.log(f"{name}: taken from the finished part")
        return part
    ker = RadialKernel(k, d2 - k, n_terms=config["n_terms"], cache_dir=default_cache_dir())
    e2, c2, th2 = sample_radial_init(config["n_particles"], d2, k,
                                     np.random.default_rng(config["seed"]))
    return _run_part(ctx, name, ker, e2, c2, th2, config, config["sweep_steps"], "exact",
                     [0, config["sweep_steps"]], config["seed"])


def _diagnostics(run, alpha):
    from ..models.lowdim import distances_to_limit

    w = run["weights"]
    rows = [distances_to_limit(run["eps"], c, th, w, alpha)
            for c, th in zip(run["snap_c"], run["snap_theta"])]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def _value_at(run, step, dt):
    i = int(np.argmin(np.abs(run["t"] - step * dt)))
    return float(run["risk"][i])


def figure_data(config, exact, diag, alpha, sweep_rows):
    """What the figures need beyond trajectory.npz (saved as ``data.npz``): the angle
    histograms of τ⁺ and τ⁻ at ``histogram_steps`` (uniform weights 1/m; steps that were not
    snapshotted are left out), the masses of τ± and the distances to the limit α δ_0 at every
    snapshot, α(d_H), and α on the grid 1 … sweep_d − 1 of the sweep figure.

    Returns
    -------
    dict of arrays: ``alpha`` (), ``hist_steps`` (h,), ``hist_edges`` (bins + 1,),
    ``hist_pos``, ``hist_neg`` (h, bins), ``mass_pos``, ``mass_neg`` (s,) and ``diag_<key>``
    (s,) for the keys of :func:`meanfield.models.lowdim.distances_to_limit`; with a sweep,
    ``sweep_grid`` and ``sweep_alpha_grid`` (sweep_d − 1,).
    """
    from ..models.lowdim import angle_law
    from ..models.problem import norm_target_alpha

    eps = exact["eps"]
    uniform = np.full(eps.size, 1.0 / eps.size)
    snap_steps = list(exact["snap_step"])
    steps, hp, hn = [], [], []
    edges = np.linspace(0.0, 0.5 * np.pi, config["bins"] + 1)
    for s in config["histogram_steps"]:
        if s not in snap_steps:
            continue
        j = snap_steps.index(s)
        edges, p, n = angle_law(eps, exact["snap_c"][j], exact["snap_theta"][j], uniform,
                                config["bins"])
        steps.append(s)
        hp.append(p)
        hn.append(n)
    w = 1.0 / eps.size
    out = {"alpha": np.float64(alpha), "hist_steps": np.array(steps, dtype=np.int64),
           "hist_edges": np.asarray(edges, dtype=np.float64),
           "hist_pos": np.array(hp, dtype=np.float64).reshape(len(steps), config["bins"]),
           "hist_neg": np.array(hn, dtype=np.float64).reshape(len(steps), config["bins"]),
           "mass_pos": np.array([w * c[eps > 0].sum() for c in exact["snap_c"]]),
           "mass_neg": np.array([w * c[eps < 0].sum() for c in exact["snap_c"]]),
           **{f"diag_{k}": v for k, v in diag.items()}}
    if sweep_rows:
        grid = np.arange(1, config["sweep_d"])
        out["sweep_grid"] = grid
        out["sweep_alpha_grid"] = np.array([norm_target_alpha(k) for k in grid])
    return out


def run(config, ctx):
    import time

    from ..models.lowdim import sample_radial_init, signed_masses
    from ..models.problem import norm_target_alpha
    from ..models.radial1d import RadialKernel, default_cache_dir

    start = time.perf_counter()
    d, d_H, m, dt = config["d"], config["d_H"], config["n_particles"], config["dt"]
    n_steps = int(round(horizon(config) / dt))
    alpha = norm_target_alpha(d_H)
    t0 = time.perf_counter()
    kernel = RadialKernel(d_H, d - d_H, n_terms=config["n_terms"],
                          cache_dir=default_cache_dir())
    table_s = time.perf_counter() - t0
    ctx.log(f"G, G' tables: {'read from the cache' if kernel.from_cache else 'built'} "
            f"({table_s:.2f} s)")
    eps, c, theta = sample_radial_init(m, d, d_H, np.random.default_rng(config["seed"]))
    snap_at = sorted(set(range(0, n_steps + 1, config["snapshot_every"]))
                     | set(config["histogram_steps"]) | {n_steps})
    jobs = [("exact",)] + ([("monte_carlo",)] if config["monte_carlo"] else []) + (
        [("sweep", k) for k in config["sweep_d_H"]] if config["sweep"] else [])
    runs = dict(zip(jobs, map_sub_runs(ctx, _sub_run, jobs,
                                       (config, (kernel, eps, c, theta, n_steps, snap_at)),
                                       label=NAME)))
    exact, mc = runs[("exact",)], runs.get(("monte_carlo",))

    summary = {"alpha": alpha, "table_build_s": table_s,
               "exact_wall_time_s": float(exact["wall_time_s"]),
               "exact_n_evaluations": int(exact["n_evaluations"]),
               "exact_n_steps_accepted": int(exact["n_steps_accepted"]),
               "exact_n_steps_rejected": int(exact["n_steps_rejected"])}
    for s in config["report_steps"]:
        summary[f"risk_exact_step_{s}"] = _value_at(exact, s, dt)
        summary[f"risk_rescaled_step_{s}"] = _value_at(exact, s, dt) / d
        if mc is not None:
            summary[f"mc_risk_rescaled_step_{s}"] = _value_at(mc, s, dt) / d
    pos, neg = signed_masses(exact["eps"], exact["c"], exact["weights"])
    diag = _diagnostics(exact, alpha)
    summary.update({"final_positive_mass": pos, "final_negative_mass": neg,
                    "final_w2_pos_to_delta0": float(diag["w2_pos"][-1]),
                    "final_w2_neg_to_delta_pi2": float(diag["w2_neg"][-1]),
                    "risk_monotone": bool(np.all(np.diff(exact["risk"]) <= 1e-12))})
    if mc is not None:
        late = mc["t"] >= 0.5 * mc["t"][-1]
        estimate = mc["risk_estimate"][late] / d
        summary.update({"mc_wall_time_s": float(mc["wall_time_s"]),
                        "mc_rescaled_risk_late_median": float(np.median(mc["risk"][late]) / d),
                        "mc_rescaled_estimate_late_abs_median": float(np.median(np.abs(estimate))),
                        "mc_rescaled_estimate_late_std": float(np.std(estimate))})

    # the d_H sweep
    sweep_rows = []
    if config["sweep"]:
        for k in config["sweep_d_H"]:
            res = runs[("sweep", k)]
            p2, n2 = signed_masses(res["eps"], res["c"], res["weights"])
            a2 = norm_target_alpha(k)
            sweep_rows.append((k, a2, p2, n2, float(res["risk"][-1])))
            summary[f"sweep_dH{k}_positive_mass"] = p2
            summary[f"sweep_dH{k}_alpha"] = a2
            summary[f"sweep_dH{k}_negative_mass"] = n2
            summary[f"sweep_dH{k}_risk_final"] = float(res["risk"][-1])
        summary["sweep_max_rel_mass_gap"] = max(abs(p - a) / a for _, a, p, _, _ in sweep_rows)

    arrays = {"t": exact["t"], "risk": exact["risk"], "snap_step": exact["snap_step"],
              "snap_c": exact["snap_c"], "snap_theta": exact["snap_theta"], "eps": exact["eps"],
              # the run-folder snapshot layout (model, snapshot_<name>) of the exact run
              "model": np.array("radial1d"), "weights": exact["weights"],
              "snapshot_t": exact["snap_step"] * dt, "snapshot_step": exact["snap_step"],
              "snapshot_c": exact["snap_c"], "snapshot_theta": exact["snap_theta"]}
    if mc is not None:
        arrays.update({"mc_t": mc["t"], "mc_risk": mc["risk"],
                       "mc_risk_estimate": mc["risk_estimate"]})
    if sweep_rows:
        arrays["sweep"] = np.array(sweep_rows)
    ctx.save_arrays("trajectory.npz", **arrays)
    ctx.save_arrays("data.npz", **figure_data(config, exact, diag, alpha, sweep_rows))
    ctx.draw_figures(FIGURES_MODULE, config)
    summary["wall_time_s"] = time.perf_counter() - start
    for s in config["report_steps"]:
        ctx.log(f"step {s:6d}: F = {summary[f'risk_exact_step_{s}']:.4e}   "
                f"F/d = {summary[f'risk_rescaled_step_{s}']:.4e}")
    ctx.log(f"positive mass {pos:.5f} (alpha = {alpha:.5f}), negative mass {neg:.3e}")
    return summary
