"""E3's function-level check ("orthogonal dependence"): the learned predictor at
x = u_H + r e_⊥ as r grows, for f* = ‖x_H‖ (target value 1 at every such x).

The full particle flow (exact Gaussian expectations) from the seed paper's start is compared
with the 1-D model started from the push-forward of the same particles. The full predictor
is evaluated along ``n_directions`` random pairs (u_H, e_⊥) (it depends on them at finite m;
the band shows min–max), the 1-D predictor is the orientation-averaged one (exact quadrature).
The prediction should become flat in r and close to 1.

Both flows run through the one loop (default: Dormand–Prince 5(4)) as resumable sub-runs;
``profile_steps`` are times / dt (dt × n_steps is the horizon unless t_end is set).
The profiles are saved in ``profiles.npz``; the figure ``orthogonal_dependence.png`` is drawn
from it (:func:`meanfield.plots.orthogonal_dependence.plot`).
"""
import numpy as np

from ..cli.config import require
from ..engine.integrators import INTEGRATORS
from ._common import (TIME_DEFAULTS, TIME_TYPES, check_horizon, horizon, horizon_options,
                      is_adaptive, run_solver, trajectory_arrays)

NAME = "orthogonal-dependence"
#: the module of meanfield.plots that draws this experiment's figures
FIGURES_MODULE = "orthogonal_dependence"
SUMMARY = "E3: predictor at x = u_H + r e_perp vs r (full flow and 1-D model), f* = ||x_H||"

DEFAULTS = {
    "d": 20,
    "d_H": 5,
    "n_particles": 1024,
    "dt": 0.05,
    "n_steps": 5000,
    "seed": 0,
    "integrator": "dopri5",
    "r_max": 4.0,
    "n_r": 41,
    "n_directions": 8,
    "profile_steps": [0, 500, 5000],
    "record_every": 10,
    **TIME_DEFAULTS,
}
TYPES = TIME_TYPES

CHOICES = {"integrator": [n for n in INTEGRATORS if n != "momentum"]}


def estimate(config):
    """Memory (bytes) and work (pair evaluations × steps) before the run starts."""
    m, d, n = config["n_particles"], config["d"], config["n_steps"]
    k = len(config["profile_steps"])
    stages = {"rk4": 4, "heun": 2}.get(config["integrator"], 1)
    memory = {"n_particles": 8 * m * (d + 1) * (k + 12),
              "n_steps": 8 * 6 * (n // config["record_every"] + 2),
              "n_r": 8 * config["n_r"] * config["n_directions"] * (d + k + 2),
              "n_directions": 8 * config["n_directions"] * d}
    work = float(m) * m * d * n * stages + float(m) * m * n
    return {"memory": memory, "work": work}


def check(config):
    require(1 <= config["d_H"] < config["d"], "d_H", f"must be in [1, d) = [1, {config['d']})")
    require(config["n_particles"] >= 1, "n_particles", "must be >= 1")
    check_horizon(config)
    require(config["r_max"] > 0 and config["n_r"] >= 2, "r_max", "need r_max > 0 and n_r >= 2")
    require(config["n_directions"] >= 1, "n_directions", "must be >= 1")
    n_total = int(round(horizon(config) / config["dt"]))
    require(len(config["profile_steps"]) >= 1 and all(
        0 <= s <= n_total for s in config["profile_steps"]), "profile_steps",
        f"give at least one step, each in [0, T / dt = {n_total}]")
    require(config["record_every"] >= 1, "record_every", "must be >= 1")


def run(config, ctx):
    import time

    from ..models.flow import Simulation, predict
    from ..models.lowdim import profile_inputs, radial_from_particles
    from ..models.particles import Particles, init_sphere_rademacher
    from ..models.problem import NormTarget, Problem
    from ..models.radial1d import RadialKernel, radial_solver
    from ..cli.runctx import RunFailed

    start = time.perf_counter()
    d, d_H, m, dt = config["d"], config["d_H"], config["n_particles"], config["dt"]
    problem = Problem(d, NormTarget(d_H))
    p0 = init_sphere_rademacher(m, d, np.random.default_rng(config["seed"]))
    steps = sorted(set(config["profile_steps"]))
    r_values = np.linspace(0.0, config["r_max"], config["n_r"])
    x = profile_inputs(d, d_H, r_values, np.random.default_rng(config["seed"] + 1),
                       config["n_directions"])

    opts = horizon_options(config)
    snap_times = np.array(steps, dtype=np.float64) * dt
    rec = ({"n_records": config["n_records"] or int(round(horizon(config) / dt))
            // config["record_every"] + 1} if is_adaptive(config) or config["n_records"]
           else {"record_every": config["record_every"]})
    # full flow: snapshots at the profile times (a finished run is a part)
    full_part = ctx.load_part("full")
    if full_part is None:
        sim = Simulation(problem, p0, integrator=config["integrator"],
                         snapshot_times=snap_times, **opts, **rec)
        res = run_solver(sim, ctx, "checkpoints/full.npz", desc="full flow")
        if res.status != "ok":
            raise RunFailed(f"full flow: {res.message}")
        ctx.save_arrays("runs/full/trajectory.npz", **trajectory_arrays(res, "full"))
        full_part = {"t": res.t, "risk": res.risk, "snap_a": res.snapshots["a"],
                     "snap_b": res.snapshots["b"], "wall_time_s": np.float64(res.wall_time_s),
                     "n_evaluations": np.int64(res.n_evaluations)}
        ctx.save_part("full", **full_part)
    eps0, c0, th0 = radial_from_particles(p0, d_H)
    kernel = RadialKernel(d_H, d - d_H)
    integ_1d = config["integrator"] if config["integrator"] != "euler_projected" else "euler"
    solver = radial_solver(kernel, eps0, c0, th0, integrator=integ_1d,
                           snapshot_times=snap_times, **horizon_options(config, integrator=integ_1d),
                           **rec)
    one = run_solver(solver, ctx, "checkpoints/one_d.npz", desc="1-D model")
    if one.status != "ok":
        raise RunFailed(f"1-D model: {one.message}")
    ctx.save_arrays("runs/one_d/trajectory.npz",
                    **trajectory_arrays(one, "radial1d", eps=one.eps))

    prof_full = np.zeros((len(steps), config["n_directions"], r_values.size))
    prof_one = np.zeros((len(steps), r_values.size))
    for j in range(len(steps)):
        particles = Particles(full_part["snap_a"][j], full_part["snap_b"][j])
        for k in range(config["n_directions"]):
            prof_full[j, k] = predict(particles, x[k])
        prof_one[j] = kernel.predict(one.eps, one.snapshots["c"][j], one.snapshots["theta"][j],
                                     one.weights, np.ones_like(r_values), r_values)
    ctx.save_arrays("profiles.npz", r=r_values, steps=np.array(steps), full=prof_full,
                    one_d=prof_one, t=full_part["t"], risk_full=full_part["risk"],
                    risk_1d=one.risk)
    last_full = prof_full[-1].mean(axis=0)
    summary = {
        "final_risk_full": float(full_part["risk"][-1]),
        "final_risk_1d": float(one.risk[-1]),
        "full_predictor_mean_abs_error": float(np.mean(np.abs(prof_full[-1] - 1.0))),
        "full_predictor_max_abs_error": float(np.max(np.abs(prof_full[-1] - 1.0))),
        "full_predictor_spread_in_r": float(last_full.max() - last_full.min()),
        "one_d_predictor_max_abs_error": float(np.max(np.abs(prof_one[-1] - 1.0))),
        "one_d_predictor_spread_in_r": float(prof_one[-1].max() - prof_one[-1].min()),
        "max_full_minus_1d": float(np.max(np.abs(prof_full[-1] - prof_one[-1][None, :]))),
        "full_wall_time_s": float(full_part["wall_time_s"]),
        "one_d_wall_time_s": one.wall_time_s,
        "full_n_evaluations": int(full_part["n_evaluations"]),
        "one_d_n_evaluations": one.n_evaluations,
    }
    summary["wall_time_s"] = time.perf_counter() - start
    ctx.draw_figures(FIGURES_MODULE, config)
    return summary
