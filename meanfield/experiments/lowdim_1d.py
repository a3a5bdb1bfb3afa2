"""E2 of the seed paper: the balanced 1-D model (ε, c, θ) for f* = ‖x_H‖ with exact G, G'.

Runs (i) the 1-D model with exact (tabulated, spectrally interpolated) G and G' from the
seed code's start (Dormand–Prince 5(4) by default; T = dt × n_steps), (ii) the same start driven by the seed code's Monte Carlo estimator
(``mc_samples`` fresh samples per step), and (iii) the sweep of d_H at d = ``sweep_d``.
Figures: re-scaled risk F/d of both runs (the seed code's loss readout, whose Monte Carlo noise
floor is what its published curve levelled off at, the exact risk of the particles it drove,
and the exact descent),
mass-weighted angle histograms of τ⁺ and τ⁻, masses and distances to the limit α δ_0, and
final masses against α(d_H) for the sweep.
"""
import numpy as np

from ..cli.config import require
from ..engine.integrators import ADAPTIVE
from ._common import (TIME_DEFAULTS, TIME_TYPES, check_horizon, horizon, horizon_options,
                      is_adaptive, run_solver, trajectory_arrays)

NAME = "lowdim-1d"
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


def _diagnostics(run, alpha):
    from ..models.lowdim import distances_to_limit

    w = run["weights"]
    rows = [distances_to_limit(run["eps"], c, th, w, alpha)
            for c, th in zip(run["snap_c"], run["snap_theta"])]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def _value_at(run, step, dt):
    i = int(np.argmin(np.abs(run["t"] - step * dt)))
    return float(run["risk"][i])


def run(config, ctx):
    import time

    from ..models.lowdim import angle_law, sample_radial_init, signed_masses
    from ..models.problem import norm_target_alpha
    from ..models.radial1d import RadialKernel

    start = time.perf_counter()
    d, d_H, m, dt = config["d"], config["d_H"], config["n_particles"], config["dt"]
    n_steps = int(round(horizon(config) / dt))
    alpha = norm_target_alpha(d_H)
    t0 = time.perf_counter()
    kernel = RadialKernel(d_H, d - d_H, n_terms=config["n_terms"])
    table_s = time.perf_counter() - t0
    eps, c, theta = sample_radial_init(m, d, d_H, np.random.default_rng(config["seed"]))
    snap_at = sorted(set(range(0, n_steps + 1, config["snapshot_every"]))
                     | set(config["histogram_steps"]) | {n_steps})
    exact = _run_part(ctx, "exact", kernel, eps, c, theta, config, n_steps, "exact", snap_at,
                      config["seed"])
    mc = None
    if config["monte_carlo"]:
        mc = _run_part(ctx, "monte_carlo", kernel, eps, c, theta, config, n_steps, "monte_carlo",
                       snap_at, config["seed"] + 1)

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
        d2 = config["sweep_d"]
        for k in config["sweep_d_H"]:
            ker = RadialKernel(k, d2 - k, n_terms=config["n_terms"])
            e2, c2, th2 = sample_radial_init(m, d2, k, np.random.default_rng(config["seed"]))
            res = _run_part(ctx, f"sweep_dH{k}", ker, e2, c2, th2, config, config["sweep_steps"],
                            "exact", [0, config["sweep_steps"]], config["seed"])
            p2, n2 = signed_masses(res["eps"], res["c"], res["weights"])
            a2 = norm_target_alpha(k)
            sweep_rows.append((k, a2, p2, n2, float(res["risk"][-1])))
            summary[f"sweep_dH{k}_positive_mass"] = p2
            summary[f"sweep_dH{k}_alpha"] = a2
            summary[f"sweep_dH{k}_negative_mass"] = n2
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
    _plot(ctx, config, exact, mc, diag, alpha, sweep_rows, angle_law)
    summary["wall_time_s"] = time.perf_counter() - start
    for s in config["report_steps"]:
        ctx.log(f"step {s:6d}: F = {summary[f'risk_exact_step_{s}']:.4e}   "
                f"F/d = {summary[f'risk_rescaled_step_{s}']:.4e}")
    ctx.log(f"positive mass {pos:.5f} (alpha = {alpha:.5f}), negative mass {neg:.3e}")
    return summary


def _plot(ctx, config, exact, mc, diag, alpha, sweep_rows, angle_law):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d, dt = config["d"], config["dt"]
    steps = exact["t"] / dt
    # 1. risk
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.semilogy(steps, exact["risk"] / d, color="C0", lw=2, label="exact G, G' (this package)")
    if mc is not None:
        ax.semilogy(mc["t"] / dt, np.abs(mc["risk_estimate"]) / d, color="C1", lw=0.5,
                    alpha=0.6, label=f"seed code's loss readout |L| (Monte Carlo, "
                                     f"{config['mc_samples']} samples/step)")
        ax.semilogy(mc["t"] / dt, mc["risk"] / d, color="C3", lw=1.5,
                    label="same Monte Carlo-driven particles: exact risk")
    ax.axhline(SEED_PLATEAU, color="gray", ls=":", label="seed paper's plotted level 0.012")
    for s in config["report_steps"]:
        i = int(np.argmin(np.abs(steps - s)))
        ax.plot(steps[i], exact["risk"][i] / d, "ko", ms=4)
        ax.annotate(f"{exact['risk'][i] / d:.2e}", (steps[i], exact["risk"][i] / d),
                    textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("re-scaled risk F / d")
    ax.set_title(f"1-D model, f* = ||x_H||, d = {d}, d_H = {config['d_H']}, "
                 f"m = {config['n_particles']}, dt = {dt:g}")
    ax.legend(fontsize=8)
    ctx.savefig(fig, "lowdim_1d_risk.png")

    # 2. angle histograms
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    snap_steps = list(exact["snap_step"])
    for s in config["histogram_steps"]:
        if s not in snap_steps:
            continue
        j = snap_steps.index(s)
        edges, hp, hn = angle_law(exact["eps"], exact["snap_c"][j], exact["snap_theta"][j],
                                  np.full(exact["eps"].size, 1.0 / exact["eps"].size),
                                  config["bins"])
        width = edges[1] - edges[0]
        axes[0].stairs(hp / width, edges, label=f"step {s}")
        axes[1].stairs(hn / width, edges, label=f"step {s}")
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[0].set_title("tau+ (eps = +1): mass density in theta")
    axes[1].set_title("tau- (eps = -1): mass density in theta")
    for ax in axes:
        ax.set_xlabel("angle to H, theta")
        ax.legend(fontsize=8)
    ctx.savefig(fig, "lowdim_1d_angles.png")

    # 3. masses and distances to the limit
    t_snap = exact["snap_step"]
    w = 1.0 / exact["eps"].size
    pos = np.array([w * c[exact["eps"] > 0].sum() for c in exact["snap_c"]])
    neg = np.array([w * c[exact["eps"] < 0].sum() for c in exact["snap_c"]])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(t_snap, pos, label="tau+ mass")
    axes[0].plot(t_snap, neg, label="tau- mass")
    axes[0].axhline(alpha, color="k", ls="--", label=f"alpha(d_H) = {alpha:.4f}")
    axes[0].set_xlabel("step")
    axes[0].legend(fontsize=8)
    axes[0].set_title("total masses")
    for key, lab in (("w2_pos", "W2(tau+/|tau+|, delta_0)"), ("mass_gap", "|alpha - |tau+||"),
                     ("w2_neg", "W2(tau-/|tau-|, delta_pi/2)"), ("mass_neg", "|tau-|")):
        axes[1].semilogy(t_snap, np.maximum(diag[key], 1e-300), label=lab)
    axes[1].set_xlabel("step")
    axes[1].set_title("distances to the limit alpha delta_0")
    axes[1].legend(fontsize=8)
    ctx.savefig(fig, "lowdim_1d_masses.png")

    # 4. sweep
    if sweep_rows:
        rows = np.array(sweep_rows)
        grid = np.arange(1, config["sweep_d"])
        from ..models.problem import norm_target_alpha

        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        ax.plot(grid, [norm_target_alpha(k) for k in grid], "k-", lw=1, label="alpha(d_H)")
        ax.plot(rows[:, 0], rows[:, 2], "o", color="C0", label="final tau+ mass")
        ax.plot(rows[:, 0], rows[:, 3], "s", color="C3", label="final tau- mass")
        ax.set_xlabel("d_H")
        ax.set_ylabel("mass")
        ax.set_title(f"final masses, d = {config['sweep_d']}, {config['sweep_steps']} steps")
        ax.legend(fontsize=8)
        ctx.savefig(fig, "lowdim_1d_sweep.png")
