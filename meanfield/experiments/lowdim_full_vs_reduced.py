"""E3: full d-dimensional particles against the reduced flows, as the width m grows.

For f* = ‖x_H‖ and every width m and seed, one draw of the seed paper's start (a = ±1,
b uniform on S^{d−1}) is run three ways from the same particles: (i) the full flow in
R^{1+d} (exact Gaussian expectations, :mod:`meanfield.engine`), (ii) the (d_H + 2)-variable
reduced flow of its push-forward (a, b_H, ‖b_⊥‖) (:mod:`meanfield.models.reduced`), (iii) the 1-D
model of its push-forward (ε, c, θ) (:mod:`meanfield.models.radial1d`). The i.i.d. start is
symmetric only in law, so the models differ at finite m by a symmetry defect that should
shrink like m^{−½}; the experiment fits that rate from log–log slopes. The risks differ
only at second order in the defect (the first variation of F at a symmetric measure is a
symmetric function, which the defect integrates to zero), so risk gaps should fall like
m^{−1} while the particle laws approach each other like m^{−½}.

The default integrator is Dormand–Prince 5(4) at rtol 1e-8: the time-stepping error must stay
below the model gaps (with Euler, the O(dt) difference between Euler steps in (a, b) and in
(c, θ), ≈ 5e-3 in risk at dt = 0.02, hides the 1-D-vs-reduced gap). All three flows are
recorded at the same times; each is a resumable sub-run written under ``runs/``.
``--workers N`` / ``--scheduler`` run the (m, seed) sub-runs on Dask workers (same results).

The figure is drawn by :mod:`meanfield.plots.lowdim_full_vs_reduced` from ``data.npz``.

Discrepancies (largest over the recorded times for risks, at the final time for laws):
``risk_full_reduced`` = max_t |F_full − F_red|, ``risk_reduced_1d``, ``risk_full_1d``;
``w2_full_reduced`` = W₂ between the laws of (a, ‖b_H‖, ‖b_⊥‖) (exact assignment);
``coupled_full_reduced`` = the same with the particles' own labels (an upper bound);
``w1_theta_full_1d`` and ``w1_theta_reduced_1d`` = W₁ between the mass-weighted laws of θ
of the positive particles.
"""
import numpy as np

from ..cli.config import require
from ..engine.integrators import ADAPTIVE
from ._common import (TIME_DEFAULTS, TIME_TYPES, check_horizon, horizon_options, is_adaptive,
                      map_sub_runs, run_solver, trajectory_arrays)

NAME = "lowdim-full-vs-reduced"
#: the module of meanfield.plots that draws this experiment's figures
FIGURES_MODULE = "lowdim_full_vs_reduced"
SUMMARY = "E3: full particle flow vs (d_H+2)-reduced vs 1-D model for f* = ||x_H||, m-rate fit"

DEFAULTS = {
    "d": 30,
    "d_H": 5,
    "widths": [32, 64, 128, 256, 512],
    "seeds": [0, 1],
    "dt": 0.02,
    "n_steps": 500,
    "integrator": "dopri5",
    "n_nodes": 8,
    "n_terms": 64,
    "record_every": 5,
    "n_snapshots": 11,          # per sub-run (runs/NAME/trajectory.npz, for films)
    **{**TIME_DEFAULTS, "rtol": 1e-8, "atol": 1e-10},
}
TYPES = TIME_TYPES
#: the sub-runs (m, seed) go through :func:`map_sub_runs` (``--workers``)
SUB_RUNS = True

#: dt × n_steps is the horizon (unless t_end is set) and the step of fixed-step runs;
#: adaptive runs record at n_records times (default: as many as record_every gives)
CHOICES = {"integrator": ["euler", "heun", "rk4", *ADAPTIVE]}

METRICS = ("risk_full_reduced", "risk_reduced_1d", "risk_full_1d", "w2_full_reduced",
           "coupled_full_reduced", "w1_theta_full_1d", "w1_theta_reduced_1d")


def estimate(config):
    """Memory (bytes) and work (pair evaluations × steps) before the run starts."""
    ms, n, d = config["widths"], config["n_steps"], config["d"]
    runs = len(config["seeds"])
    stages = {"rk4": 4, "heun": 2}.get(config["integrator"], 1)
    records = n // config["record_every"] + 2
    memory = {"widths": 8 * 16 * max(ms) * (d + 2) + 8 * max(ms) ** 2 if ms else 0,
              "n_steps": 8 * 6 * records * len(ms) * runs,
              "n_terms": 8 * 4 * 96 * config["n_terms"]}
    work = float(sum(m * m for m in ms)) * runs * n * stages * (d + 2 + config["n_nodes"])
    return {"memory": memory, "work": work}


def check(config):
    require(1 <= config["d_H"] < config["d"], "d_H", f"must be in [1, d) = [1, {config['d']})")
    require(len(config["widths"]) >= 2 and all(m >= 2 for m in config["widths"]), "widths",
            "need at least two widths, each >= 2 (the rate is a fit)")
    require(len(config["seeds"]) >= 1, "seeds", "need at least one seed")
    check_horizon(config)
    require(config["n_nodes"] >= 1, "n_nodes", "must be >= 1")
    require(config["n_terms"] >= 4, "n_terms", "must be >= 4")
    require(all(s >= 0 for s in config["seeds"]), "seeds", "seeds must be >= 0")
    require(config["record_every"] >= 1, "record_every", "must be >= 1")
    require(config["n_snapshots"] >= 0, "n_snapshots", "must be >= 0")


def _theta_law(a, h, r):
    """Angles θ = atan2(r, h) of the positive particles and their masses c = |a|‖b‖."""
    pos = a > 0
    return np.arctan2(r[pos], h[pos]), np.abs(a[pos]) * np.hypot(h[pos], r[pos])


def _w1_theta(law1, law2, wasserstein_1d):
    """W₁ between two mass-weighted angle laws given as (angles, masses)."""
    return wasserstein_1d(law1[0], law2[0], law1[1], law2[1])


def _one(config, m, seed, ctx, problem, backend, kernel):
    from ..models.lowdim import (coupled_distance, radial_from_particles, wasserstein_1d,
                          wasserstein_matched)
    from ..models.particles import init_sphere_rademacher
    from ..cli.runctx import RunFailed

    from ..models.flow import Simulation
    from ..models.radial1d import radial_solver
    from ..models.reduced import reduced_solver

    d, d_H = config["d"], config["d_H"]
    p0 = init_sphere_rademacher(m, d, np.random.default_rng([seed, m]))
    z0 = backend.blocks.project(p0.b)
    eps0, c0, th0 = radial_from_particles(p0, d_H)
    opts = horizon_options(config)
    if is_adaptive(config) or config["n_records"] is not None:
        n = config["n_steps"]
        rec = {"n_records": config["n_records"] or n // config["record_every"] + 1}
    else:
        rec = {"record_every": config["record_every"]}
    rec["n_snapshots"] = config["n_snapshots"]
    solvers = {"full": Simulation(problem, p0, integrator=config["integrator"], **opts, **rec),
               "reduced": reduced_solver(backend, p0.a, z0, integrator=config["integrator"],
                                         **opts, **rec),
               "1-D": radial_solver(kernel, eps0, c0, th0, integrator=config["integrator"],
                                    **opts, **rec)}
    models = {"full": "full", "reduced": "block_reduced", "1-D": "radial1d"}
    results = {}
    for kind, solver in solvers.items():
        label = f"m{m}_seed{seed}_{kind.replace('-', '')}"
        res = run_solver(solver, ctx, f"checkpoints/{label}.npz", desc=label)
        if res.status != "ok":
            raise RunFailed(f"{kind} flow, m = {m}, seed = {seed}: {res.message}")
        extra = {"n_explicit": np.int64(backend.n_explicit)} if kind == "reduced" else \
            {"eps": res.eps} if kind == "1-D" else {}
        ctx.save_arrays(f"runs/{label}/trajectory.npz",
                        **trajectory_arrays(res, models[kind], **extra))
        results[kind] = res
    full, red, one = results["full"], results["reduced"], results["1-D"]

    b = full.particles.b
    x_full = np.stack([full.particles.a, np.linalg.norm(b[:, :d_H], axis=1),
                       np.linalg.norm(b[:, d_H:], axis=1)], axis=1)
    x_red = np.stack([red.a, np.linalg.norm(red.z[:, :d_H], axis=1), red.z[:, d_H]], axis=1)
    pos = one.eps > 0
    th_1 = (one.theta[pos], one.c[pos])
    out = {
        "t": full.t, "risk_full": full.risk, "risk_reduced": red.risk, "risk_1d": one.risk,
        "risk_full_reduced": np.max(np.abs(full.risk - red.risk)),
        "risk_reduced_1d": np.max(np.abs(red.risk - one.risk)),
        "risk_full_1d": np.max(np.abs(full.risk - one.risk)),
        "w2_full_reduced": wasserstein_matched(x_full, x_red, 2),
        "coupled_full_reduced": coupled_distance(x_full, x_red),
        "w1_theta_full_1d": _w1_theta(_theta_law(*x_full.T), th_1, wasserstein_1d),
        "w1_theta_reduced_1d": _w1_theta(_theta_law(*x_red.T), th_1, wasserstein_1d),
        "wall_full_s": full.wall_time_s, "wall_reduced_s": red.wall_time_s,
        "wall_1d_s": one.wall_time_s, "n_reflections": red.n_reflections,
        "max_balance_drift": full.max_abs_Q_drift,
        "n_evaluations_full": full.n_evaluations, "n_evaluations_reduced": red.n_evaluations,
        "n_evaluations_1d": one.n_evaluations,
    }
    return {k: np.asarray(v) for k, v in out.items()}


def _sub_run(job, config, problem, backend, kernel, ctx):
    """Sub-run ``job`` = (m, seed): its part when finished, else the three flows, saved."""
    m, seed = job
    name = f"m{m}_seed{seed}"
    part = ctx.load_part(name)
    if part is None:
        ctx.log(f"{name}: full, reduced and 1-D flows, {config['integrator']}")
        part = _one(config, m, seed, ctx, problem, backend, kernel)
        ctx.save_part(name, **part)
    return part


def fit_rate(widths, values):
    """Least-squares slope and prefactor of log(value) against log(m)."""
    from ..theory.rates import fit_power_law

    fit = fit_power_law(widths, values)
    return fit.slope, float(np.exp(fit.intercept))


def figure_data(config, widths, results, means, summary):
    """What the figure needs (saved as ``data.npz``): ``widths`` (w,), the discrepancies
    ``mean_<metric>`` (w,) averaged over seeds, their fitted ``slope_<metric>`` (), and the
    risk curves of the first seed per width m: ``t_m<m>``, ``risk_full_m<m>``,
    ``risk_reduced_m<m>``, ``risk_1d_m<m>`` (records,)."""
    seed = config["seeds"][0]
    out = {"widths": np.array(widths), "seed": np.int64(seed)}
    for key in METRICS:
        out[f"mean_{key}"] = means[key]
        out[f"slope_{key}"] = np.float64(summary[f"slope_{key}"])
    for m in widths:
        r = results[(m, seed)]
        for key in ("t", "risk_full", "risk_reduced", "risk_1d"):
            out[f"{key}_m{m}"] = r[key]
    return out


def run(config, ctx):
    import time

    from ..models.problem import NormTarget, Problem
    from ..models.radial1d import RadialKernel, default_cache_dir
    from ..models.reduced import BlockReduction, ReducedBackend

    start = time.perf_counter()
    d, d_H = config["d"], config["d_H"]
    problem = Problem(d, NormTarget(d_H))
    backend = ReducedBackend(problem, BlockReduction.subspace(d, d_H), n_nodes=config["n_nodes"])
    kernel = RadialKernel(d_H, d - d_H, n_terms=config["n_terms"],
                          cache_dir=default_cache_dir())  # bit-identical when cached
    widths = sorted(config["widths"])
    jobs = [(m, seed) for m in widths for seed in config["seeds"]]
    results = dict(zip(jobs, map_sub_runs(ctx, _sub_run, jobs, (config, problem, backend, kernel),
                                          label=NAME)))
    summary = {}
    means = {}
    for key in METRICS:
        means[key] = np.array([np.mean([float(results[(m, s)][key]) for s in config["seeds"]])
                               for m in widths])
        slope, pref = fit_rate(widths, means[key])
        summary[f"slope_{key}"] = slope
        for m, v in zip(widths, means[key]):
            summary[f"{key}_m{m}"] = float(v)
    summary["reflections_total"] = int(sum(int(p["n_reflections"]) for p in results.values()))
    m_max = widths[-1]
    for kind in ("full", "reduced", "1d"):
        summary[f"wall_{kind}_s_m{m_max}"] = float(np.mean(
            [float(results[(m_max, s)][f"wall_{kind}_s"]) for s in config["seeds"]]))
    ctx.save_arrays("discrepancies.npz", widths=np.array(widths),
                    **{k: v for k, v in means.items()})
    ctx.save_arrays("data.npz", **figure_data(config, widths, results, means, summary))
    ctx.draw_figures(FIGURES_MODULE, config)
    summary["wall_time_s"] = time.perf_counter() - start
    for key in METRICS:
        ctx.log(f"{key:24s} slope {summary['slope_' + key]:+.3f}")
    return summary
