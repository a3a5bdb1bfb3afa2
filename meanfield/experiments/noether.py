"""Conservation laws and symmetry defects, measured against their predictions (E4; MATH §3, §6).

Sub-runs (each saved as a part, so ``--resume`` skips finished ones; ``--workers N`` /
``--scheduler`` run them on Dask workers, same results):

* ``sweep``: the norm target ‖x_H‖ (d = 5, d_H = 2, Gaussian inputs, exact risk), m particles
  from an unbalanced start (|a_j| ∈ [¼, ¾], b_j on the unit sphere, so Q_j < 0 and no b_j
  can reach the origin, where the ReLU velocity field is not Lipschitz), horizon T, for every
  dt and integrator: fixed-horizon drift of Q_j and the energy-identity residual, each
  step checked against its exact discrete identity by :class:`~meanfield.theory.conservation.LawMonitor`;
  heavy-ball momentum both at fixed μ and at fixed friction γ (μ = 1 − γ√dt, step √dt of
  the ODE θ'' + γθ' = v);
* ``time``: the same problem over a longer horizon at one dt, every integrator, plus the
  weight-decay law (Q_j(t) = e^{−2λt} Q_j(0)), the per-layer-rates law (a²/η_a − ‖b‖²/η_b)
  and both together (λ > 0 with η_a ≠ η_b: the engine's decay −λθ is outside the rates, so
  a²/η_a − ‖b‖²/η_b = e^{−2λt} × initial still holds), each with euler (measured drift =
  summed exact per-step increments) and euler_projected (round-off);
* ``linear``: a linear network (σ(z) = z) learning a teacher: every entry of B Bᵀ − a aᵀ;
* ``angmom``: zero angular momentum in H and H⊥ for the exact risk, the H×H⊥ block as a
  control, and the sampled backend (fresh batches) for contrast;
* ``orbits``: orbit-symmetric starts for three finite groups (sign flip with an odd target;
  rotations/reflection of H with a cyclic shift of H⊥; permutations of a teacher's
  coordinates with a rotation of H⊥), defect by exact matching along the flow;
* ``defect``: i.i.d. starts of growing m: sliced-Wasserstein defect at t = 0 and t = T
  (slope ≈ −½) against orbit starts of similar size (round-off).

Writes ``laws.csv`` and ``laws.json`` (every law: measured and predicted drift, verdict),
``verdicts.json`` (one structured verdict per law: law, integrator, measured, predicted,
criterion, tolerance, ok; see :func:`meanfield.theory.conservation.law_verdict`), the
figures ``noether_drift_vs_dt.png``, ``noether_drift_vs_time.png``, ``noether_balance.png``,
``noether_angular_momentum.png``, ``noether_symmetry_defect.png`` (drawn from the saved parts
by :func:`meanfield.plots.noether.plot`), and returns flat summary scalars.
"""
import json

import numpy as np

from ..cli.config import require
from ..engine.integrators import ADAPTIVE, FIXED_STEP
from ..theory.conservation import VERDICT_TOLERANCES

NAME = "noether"
#: the module of meanfield.plots that draws this experiment's figures
FIGURES_MODULE = "noether"
SUMMARY = ("conservation laws (Q_j, weight decay, rates, balance matrix, angular momentum, "
           "energy) and symmetry defects: measured vs predicted drift, slopes")

DEFAULTS = {
    "seed": 0,
    "d": 5,
    "d_H": 2,
    "m": 32,
    "horizon": 2.0,
    "dts": [0.2, 0.1, 0.05, 0.025, 0.0125, 0.00625],
    "fit_points": 4,            # slopes are fitted on this many smallest dt
    "momentum": 0.9,
    "friction": 1.0,            # γ of the heavy-ball ODE
    "time_dt": 0.02,
    "time_steps": 500,
    "weight_decay": 0.5,
    "rate_a": 2.0,
    "rate_b": 0.5,
    "linear_m": 12,
    "linear_dts": [0.1, 0.05, 0.025, 0.0125, 0.00625],
    "angmom_d": 6,
    "angmom_m": 64,
    "angmom_dt": 0.05,
    "angmom_steps": 200,
    "batch_size": 256,
    "orbit_base": 8,
    "orbit_dt": 0.05,
    "orbit_steps": 200,
    "defect_ms": [32, 64, 128, 256, 512, 1024],
    "defect_seeds": 3,
    "defect_dt": 0.05,
    "defect_steps": 20,
    "n_projections": 64,
    "rtol": 1e-6,               # tolerances of the adaptive pairs' rows (part "time")
    "atol": 1e-9,
}

CHOICES = {}
#: the parts below are independent sub-runs, run through :func:`map_sub_runs` (``--workers``)
SUB_RUNS = True

#: the fixed-step integrators of the registry (swept in dt); the adaptive pairs run over the
#: "time" horizon at rtol/atol, their drift measured against their own stage identities
_INTEGRATORS = FIXED_STEP

#: verdict thresholds of the law table, kept under their old names; the table itself is
#: :data:`meanfield.theory.conservation.VERDICT_TOLERANCES`, applied by ``law_verdict``.
SLOPE_TOL = VERDICT_TOLERANCES["slope"]
IDENTITY_ULPS = VERDICT_TOLERANCES["ulps"]
ROUNDOFF = VERDICT_TOLERANCES["roundoff"]
LEADING_ORDER_RTOL = VERDICT_TOLERANCES["relative"]
SUM_OF_STEPS_ATOL = VERDICT_TOLERANCES["sum_of_steps"]


def estimate(config):
    """Memory (bytes) and work (pair evaluations × steps) before the run starts."""
    d, m = config["d"], config["m"]
    n_sweep = sum(config["horizon"] / dt for dt in config["dts"]) * (len(_INTEGRATORS) + 1)
    ms = config["defect_ms"]
    memory = {"m": 8 * 64 * m * (d + 1),
              "dts": 8 * 40 * max(config["horizon"] / dt for dt in config["dts"]),
              "time_steps": 8 * 40 * (config["time_steps"] + 2) * 11,
              "defect_ms": 8 * 16 * max(ms or [1]) * (d + 1) * config["n_projections"],
              "angmom_m": 8 * 64 * config["angmom_m"] * (config["angmom_d"] + 1)}
    work = (float(m) * m * d * (n_sweep + 11 * config["time_steps"])
            + float(sum(x * x for x in ms)) * d * config["defect_seeds"] * config["defect_steps"]
            + float(config["angmom_m"]) * (config["angmom_m"] + config["batch_size"])
            * config["angmom_d"] * config["angmom_steps"])
    return {"memory": memory, "work": work}


def check(config):
    """Ranges the type checks cannot see."""
    require(config["d"] >= 3, "d", "must be >= 3 (H and a rotatable H⊥)")
    require(2 <= config["d_H"] <= config["d"] - 2, "d_H",
            f"must be in [2, d − 2 = {config['d'] - 2}] (angular momentum in H needs a plane)")
    require(config["angmom_d"] >= config["d_H"] + 2, "angmom_d", "must be >= d_H + 2")
    for key in ("m", "linear_m", "angmom_m", "orbit_base", "time_steps", "angmom_steps",
                "orbit_steps", "defect_steps", "defect_seeds", "n_projections", "batch_size"):
        require(config[key] >= 1, key, f"must be >= 1, got {config[key]}")
    for key in ("horizon", "time_dt", "angmom_dt", "orbit_dt", "defect_dt", "friction"):
        require(config[key] > 0, key, f"must be > 0, got {config[key]}")
    require(0 < config["momentum"] < 1, "momentum", "must be in (0, 1)")
    require(config["weight_decay"] > 0, "weight_decay", "must be > 0 (the law under test)")
    require(config["rate_a"] > 0 and config["rate_b"] > 0, "rate_a", "rates must be > 0")
    require(config["rate_a"] != config["rate_b"], "rate_b",
            "choose rate_b ≠ rate_a (the per-layer-rates law is the point)")
    for key in ("dts", "linear_dts", "defect_ms"):
        require(len(config[key]) >= 2, key, "give at least two values to fit a slope")
        require(all(v > 0 for v in config[key]), key, "values must be > 0")
    require(2 <= config["fit_points"] <= len(config["dts"]), "fit_points",
            "must be between 2 and len(dts)")
    require(all(v > 0 for v in config["linear_dts"]), "linear_dts", "values must be > 0")
    for dt in config["dts"]:
        n = config["horizon"] / dt
        require(abs(n - round(n)) < 1e-9 and round(n) >= 1, "dts",
                f"horizon / dt must be an integer >= 1 (dt = {dt})")
    require(all(m >= 8 for m in config["defect_ms"]), "defect_ms", "every m must be >= 8")


# ----------------------------------------------------------------------------- problems
def _norm_problem(d, d_H):
    from ..models.problem import NormTarget, Problem

    return Problem(d=d, target=NormTarget(d_H=d_H))


def _unbalanced_start(m, d, rng):
    """|a_j| ∈ [¼, ¾] with random sign, b_j uniform on the sphere: Q_j ∈ [−15/16, −7/16]."""
    from ..models.particles import Particles

    b = rng.standard_normal((m, d))
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    a = rng.choice([-1.0, 1.0], size=m) * rng.uniform(0.25, 0.75, size=m)
    return Particles(a, b)


def _rows_json(rows):
    return np.array(json.dumps([r.as_dict() if hasattr(r, "as_dict") else r for r in rows]))


def _monitored(problem, particles, dt, n_steps, integrator, label=None, blocks="auto",
               rtol=None, atol=None, **options):
    from ..theory.conservation import LawMonitor
    from ..models.flow import Simulation
    from ..engine.integrators import INTEGRATORS
    from ..cli.runctx import RunFailed

    if INTEGRATORS[integrator].adaptive:  # same horizon, steps chosen at rtol / atol
        options.pop("momentum", None)
        sim = Simulation(problem, particles, integrator=integrator, t_end=dt * n_steps,
                         rtol=rtol, atol=atol, **options)
    else:
        sim = Simulation(problem, particles, dt, n_steps, integrator=integrator, **options)
    mon = LawMonitor(sim, blocks=blocks)
    hist = mon.run()
    if sim.status != "ok":
        raise RunFailed(f"{integrator} at dt = {dt:g}: {sim.message}")
    return sim, mon, hist


# ------------------------------------------------------------------------------- parts
def _part_sweep(config, ctx):
    from ..theory.conservation import energy_residual, predicted_energy_residual

    rng = np.random.default_rng([config["seed"], 1])
    problem = _norm_problem(config["d"], config["d_H"])
    p0 = _unbalanced_start(config["m"], config["d"], rng)
    T = config["horizon"]
    dts = np.array(config["dts"], dtype=float)
    out = {"dts": dts}
    bar = ctx.progress(len(_INTEGRATORS) * dts.size + dts.size, "noether: dt sweep")
    for name in _INTEGRATORS:
        q, qp, ulps, en, enp = [], [], [], [], []
        for dt in dts:
            n = int(round(T / dt))
            sim, mon, h = _monitored(problem, p0, dt, n, name, blocks={},
                                     momentum=config["momentum"])
            s = mon.scale0
            q.append(h["q_drift"][-1] / s)
            qp.append(h["q_pred_drift"][-1] / s if name != "euler_projected" else 0.0)
            ulps.append(np.nanmax(h["step_ulps"]))
            res = energy_residual(h["energy"], h["dissipation"], dt, name)
            en.append(res[-1] / h["energy"][0])
            pred = predicted_energy_residual(h["dissipation"], dt, name, config["momentum"])
            enp.append(np.nan if pred is None else pred / h["energy"][0])
            bar.update(1)
            if ctx.stop_requested():
                from ..cli.runctx import Interrupted

                raise Interrupted("stopped during the dt sweep (no part saved)")
        out[f"q_{name}"] = np.array(q)
        out[f"qpred_{name}"] = np.array(qp)
        out[f"ulps_{name}"] = np.array(ulps)
        out[f"energy_{name}"] = np.array(en)
        out[f"energypred_{name}"] = np.array(enp)
    # heavy-ball ODE θ'' + γθ' = v: step h = √dt, μ = 1 − γh, horizon T in ODE time
    hb = []
    for dt in dts:
        h_ode = np.sqrt(dt)
        n = int(round(T / h_ode))
        sim, mon, h = _monitored(problem, p0, dt, n, "momentum", blocks={},
                                 momentum=1.0 - config["friction"] * h_ode)
        hb.append(h["q_drift"][-1] / mon.scale0)
        bar.update(1)
    bar.close()
    out["q_heavy_ball"] = np.array(hb)
    return out


def _part_time(config, ctx):
    rng = np.random.default_rng([config["seed"], 1])
    problem = _norm_problem(config["d"], config["d_H"])
    p0 = _unbalanced_start(config["m"], config["d"], rng)
    dt, n = config["time_dt"], config["time_steps"]
    lam, ra, rb = config["weight_decay"], config["rate_a"], config["rate_b"]
    runs = [(name, name, {}) for name in _INTEGRATORS]
    both = {"weight_decay": lam, "rate_a": ra, "rate_b": rb}
    runs += [("wd_euler", "euler", {"weight_decay": lam}),
             ("wd_projected", "euler_projected", {"weight_decay": lam}),
             ("rates_euler", "euler", {"rate_a": ra, "rate_b": rb}),
             ("rates_projected", "euler_projected", {"rate_a": ra, "rate_b": rb}),
             ("wd_rates_euler", "euler", both),
             ("wd_rates_projected", "euler_projected", both)]
    runs += [(name, name, {"rtol": config["rtol"], "atol": config["atol"]}) for name in ADAPTIVE]
    out, rows = {}, []
    bar = ctx.progress(len(runs), "noether: drift vs time")
    for key, integ, opts in runs:
        sim, mon, h = _monitored(problem, p0, dt, n, integ, blocks={},
                                 momentum=config["momentum"], **opts)
        out[f"t_{key}"] = h["t"]
        out[f"q_{key}"] = h["q_drift"] / mon.scale0
        out[f"w1_{key}"] = h["q_law_w1"] / mon.scale0
        rows += [r for r in mon.report() if not r.law.startswith("angular")]
        bar.update(1)
    bar.close()
    out["rows_json"] = _rows_json(rows)
    return out


def _linear_problem(d, rng):
    from ..models.problem import Problem, Teacher

    b_star = rng.standard_normal((2, d))
    b_star /= np.linalg.norm(b_star, axis=1, keepdims=True)
    beta = rng.standard_normal(d)
    return Problem(d=d, target=Teacher(np.ones(2), b_star, beta=beta / np.linalg.norm(beta)),
                   activation="linear")


def _part_linear(config, ctx):
    from ..theory.conservation import balance_matrix
    from ..models.particles import charge_scale, init_gaussian

    rng = np.random.default_rng([config["seed"], 2])
    d = config["d"]
    problem = _linear_problem(d, rng)
    p0 = init_gaussian(config["linear_m"], d, rng)
    T = config["horizon"]
    dts = np.array(config["linear_dts"], dtype=float)
    out, rows = {"dts": dts}, []
    M0 = balance_matrix(p0.a, p0.b)
    scale = float(np.max(charge_scale(p0.a, p0.b)))
    out["M0"] = M0
    bar = ctx.progress(3 * dts.size, "noether: linear network")
    for name in ("euler", "rk4", "momentum"):
        drift, ulps = [], []
        for dt in dts:
            n = int(round(T / dt))
            sim, mon, h = _monitored(problem, p0, dt, n, name, blocks={},
                                     momentum=config["momentum"])
            drift.append(h["balance_drift"][-1] / scale)
            ulps.append(np.nanmax(h["balance_ulps"]))
            if dt == dts[dts.size // 2]:
                out[f"dM_{name}"] = balance_matrix(sim.a, sim.b) - M0
                rows += [r for r in mon.report() if "balance" in r.law]
            bar.update(1)
        out[f"drift_{name}"] = np.array(drift)
        out[f"ulps_{name}"] = np.array(ulps)
    bar.close()
    out["dt_shown"] = np.array(dts[dts.size // 2])
    out["rows_json"] = _rows_json(rows)
    return out


def _part_angmom(config, ctx):
    from ..theory.conservation import rotation_blocks
    from ..models.particles import init_sphere_rademacher

    rng = np.random.default_rng([config["seed"], 3])
    d = config["angmom_d"]
    problem = _norm_problem(d, config["d_H"])
    blocks = rotation_blocks(problem)
    blocks["H×H_perp (control)"] = (blocks.get("H", np.arange(config["d_H"])),
                                    blocks["H_perp"])
    p0 = init_sphere_rademacher(config["angmom_m"], d, rng)
    out, rows = {}, []
    for backend in ("exact", "sampled"):
        sim, mon, h = _monitored(problem, p0, config["angmom_dt"], config["angmom_steps"], "euler",
                                 blocks=blocks, backend=backend, batch_size=config["batch_size"],
                                 seed=config["seed"])
        out[f"t_{backend}"] = h["t"]
        for i, name in enumerate(blocks):
            out[f"L_{backend}_{i}"] = h["angmom_" + name]
        rows += [r for r in mon.report() if r.law.startswith("angular")]
    out["block_names"] = np.array(json.dumps(list(blocks)))
    out["rows_json"] = _rows_json(rows)
    return out


def _groups(config, rng):
    """(name, problem, generators, base particles) for the orbit-start checks."""
    from ..models.particles import init_sphere_rademacher
    from ..models.problem import GaussianLaw, Problem, Teacher, odd_cubic_target
    from ..theory.symmetry import block_rotation, coordinate_permutation, coordinate_reflection, sign_flip

    d, d_H = config["d"], config["d_H"]
    nb = config["orbit_base"]
    groups = []
    odd = Problem(d=d, target=odd_cubic_target(d, rng), law=GaussianLaw(1.0 / np.sqrt(d)))
    groups.append(("sign flip, odd cubic target", odd, [sign_flip(d)],
                   init_sphere_rademacher(4 * nb, d, rng)))
    norm = _norm_problem(d, d_H)
    shift = np.concatenate([np.arange(d_H), np.roll(np.arange(d_H, d), -1)])
    gens = [coordinate_reflection(d, [0]), coordinate_permutation(shift, name="shift H⊥")]
    if d_H >= 2:
        gens.insert(0, block_rotation(d, [0, 1], angle=2 * np.pi / 3, name="rot H 2π/3"))
    groups.append(("rotation+reflection of H, shift of H⊥; norm target", norm, gens,
                   init_sphere_rademacher(nb, d, rng)))
    k = max(d - 2, 2)
    b_star = np.zeros((k, d))
    b_star[np.arange(k), np.arange(k)] = 1.0
    teacher = Problem(d=d, target=Teacher(np.ones(k), b_star))
    cyc = np.concatenate([np.roll(np.arange(k), 1), np.arange(k, d)])
    swap = np.arange(d)
    swap[[0, 1]] = [1, 0]
    tgens = [coordinate_permutation(cyc, name="cycle teacher coords"),
             coordinate_permutation(swap, name="swap e0,e1")]
    if d - k >= 2:
        tgens.append(block_rotation(d, [k, k + 1], angle=np.pi / 2, name="rot H⊥ π/2"))
    groups.append(("permutations of teacher coordinates, rotation of H⊥", teacher, tgens,
                   init_sphere_rademacher(nb, d, rng)))
    return groups


def _part_orbits(config, ctx):
    from ..theory.conservation import LawRow
    from ..models.flow import Simulation
    from ..models.particles import Particles
    from ..theory.symmetry import orbit_init, symmetry_defect, target_equivariance_error

    rng = np.random.default_rng([config["seed"], 4])
    out, rows = {}, []
    groups = _groups(config, rng)
    n_snap = 11
    for gi, (gname, problem, gens, base) in enumerate(groups):
        start = orbit_init(base, gens)
        eq = max(target_equivariance_error(problem, g, rng) for g in gens)
        sim = Simulation(problem, start.particles, config["orbit_dt"], config["orbit_steps"],
                         n_snapshots=n_snap)
        sim.advance()
        res = sim.result()
        snaps = res.snapshots
        defect = np.zeros((len(gens), snaps["t"].size))
        for si in range(snaps["t"].size):
            p = Particles(snaps["a"][si], snaps["b"][si], start.particles.weights)
            for k, g in enumerate(gens):
                defect[k, si] = symmetry_defect(p, g, pairing=start.pairing(g), relative=True)
        final = Particles(sim.a, sim.b, start.particles.weights)
        hung = max(symmetry_defect(final, g, relative=True) for g in gens)
        out[f"t_{gi}"] = snaps["t"]
        out[f"defect_{gi}"] = defect
        rows.append(LawRow(f"orbit start stays symmetric: {gname}",
                           f"|G|={len(start.group)}, m={start.particles.m}, euler dt="
                           f"{config['orbit_dt']:g}, T={sim.t:g}",
                           float(defect.max()), 0.0, "max over time & generators of W₂(μ,g#μ)/‖θ‖",
                           "0 to round-off (MATH §3)", criterion="roundoff", integrator="euler",
                           note=f"Hungarian at T: {hung:.2g}; target equivariance error {eq:.1e}; "
                                f"risk {res.risk[0]:.3g}→{res.risk[-1]:.3g}"))
        ctx.log(f"  orbit group {gi}: |G| = {len(start.group)}, m = {start.particles.m}, "
                f"max defect {defect.max():.2e}")
    out["group_names"] = np.array(json.dumps([g[0] for g in groups]))
    out["rows_json"] = _rows_json(rows)
    return out


def _part_defect(config, ctx):
    from ..models.flow import Simulation
    from ..models.particles import Particles, init_sphere_rademacher
    from ..theory.symmetry import orbit_init, symmetry_defect

    rng = np.random.default_rng([config["seed"], 5])
    gname, problem, gens, _ = _groups(config, rng)[1]
    ms = np.array(config["defect_ms"], dtype=int)
    seeds = config["defect_seeds"]
    n_group = len(orbit_init(init_sphere_rademacher(1, config["d"], rng), gens).group)
    kw = dict(method="sliced", n_projections=config["n_projections"], relative=True)

    def defect(p):
        return float(np.mean([symmetry_defect(p, g, **kw) for g in gens]))

    d0 = np.zeros((ms.size, seeds))
    dT = np.zeros((ms.size, seeds))
    orbit_m = np.zeros(ms.size, dtype=int)
    orbit_d = np.zeros(ms.size)
    bar = ctx.progress(ms.size * (seeds + 1), "noether: defect vs m")
    for i, m in enumerate(ms):
        for s in range(seeds):
            p0 = init_sphere_rademacher(int(m), config["d"],
                                        np.random.default_rng([config["seed"], 6, s, m]))
            sim = Simulation(problem, p0, config["defect_dt"], config["defect_steps"])
            sim.advance()
            d0[i, s] = defect(p0)
            dT[i, s] = defect(Particles(sim.a, sim.b, p0.weights))
            bar.update(1)
        n_base = max(1, int(round(m / n_group)))
        start = orbit_init(init_sphere_rademacher(n_base, config["d"], np.random.default_rng(
            [config["seed"], 7, m])), gens)
        sim = Simulation(problem, start.particles, config["defect_dt"], config["defect_steps"])
        sim.advance()
        orbit_m[i] = start.particles.m
        orbit_d[i] = defect(Particles(sim.a, sim.b, start.particles.weights))
        bar.update(1)
    bar.close()
    return {"ms": ms, "d0": d0, "dT": dT, "orbit_m": orbit_m, "orbit_d": orbit_d,
            "T": np.array(config["defect_dt"] * config["defect_steps"]),
            "group": np.array(gname)}


def _part_equivalent(config, ctx):
    """Permuting and positively rescaling the particles of a trained network changes neither
    the predictor nor its canonical form (seed 002): the particle measure is the quotient."""
    try:
        from ..systems.equivalent import canonical_distance
    except ImportError:  # the module is optional here
        return {"available": np.array(False)}
    from ..models.flow import predict, simulate_flow as simulate
    from ..models.particles import Particles, init_sphere_rademacher

    rng = np.random.default_rng([config["seed"], 8])
    problem = _norm_problem(config["d"], config["d_H"])
    res = simulate(problem, init_sphere_rademacher(config["m"], config["d"], rng), 0.05, 100)
    p = res.particles
    perm = rng.permutation(p.m)
    s = np.exp(rng.uniform(-1, 1, p.m))
    q = Particles(p.a[perm] / s, p.b[perm] * s[:, None])
    x = problem.sample_inputs(rng, 256)
    f_p, f_q = predict(p, x), predict(q, x)
    dist = canonical_distance(p.a, p.b, q.a, q.b, activation="relu", relative=True)
    raw = float(np.linalg.norm(np.concatenate([p.a - q.a, (p.b - q.b).ravel()])))
    return {"available": np.array(True), "canonical": np.array(dist),
            "predictor": np.array(float(np.max(np.abs(f_p - f_q)) / np.max(np.abs(f_p)))),
            "raw": np.array(raw)}


# ------------------------------------------------------------------------------- table
def _fmt(x):
    if isinstance(x, float) and not np.isfinite(x):
        return "—"
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def _slope_rows(parts, config):
    from ..theory.conservation import PREDICTED_CHARGE_SLOPE, PREDICTED_ENERGY_SLOPE, LawRow, loglog_slope

    sw = parts["sweep"]
    dts = sw["dts"]
    k = config["fit_points"]
    rows = []
    fit = f"dt ∈ [{dts[-k]:g}, {dts[-1]:g}], T={config['horizon']:g}, m={config['m']}"
    for name in _INTEGRATORS + ("heavy_ball",):
        y = sw[f"q_{name}"][-k:]
        if name == "euler_projected":
            rows.append(LawRow("Q_j drift vs dt", f"{name}, {fit}", float(np.max(y)), 0.0,
                               "max over dt of drift / max M_j(0)",
                               "zero (projection onto the law)", criterion="roundoff",
                               integrator=name))
            continue
        sel = y > 1e-13
        slope = loglog_slope(dts[-k:][sel], y[sel])
        basis = {"euler": "per-step dt²⟨k,k⟩_S ⇒ O(dt)",
                 "heun": "per-step dt²/4⟨k₁−k₂,k₁−k₂⟩_S = O(dt⁴) ⇒ O(dt³)",
                 "rk4": "order of the method",
                 "momentum": "broken per step (2μ⟨θ,u⟩_S), yet O(dt) at fixed "
                             f"μ={config['momentum']:g}",
                 "heavy_ball": f"broken: ODE θ''+γθ'=v, γ={config['friction']:g}: O(1) limit"}[name]
        rows.append(LawRow("Q_j drift vs dt: slope", f"{name}, {fit}", slope,
                           PREDICTED_CHARGE_SLOPE[name], "log–log slope", basis,
                           note=f"drift at smallest dt {y[-1]:.3g}", criterion="slope",
                           integrator="momentum" if name == "heavy_ball" else name))
    for name in _INTEGRATORS:
        y = np.abs(sw[f"energy_{name}"][-k:])
        pred = PREDICTED_ENERGY_SLOPE[name]
        slope = loglog_slope(dts[-k:], y)
        note = f"residual at smallest dt {sw[f'energy_{name}'][-1]:.3g}"
        if np.isfinite(sw[f"energypred_{name}"][-1]):
            note += f", predicted {sw[f'energypred_{name}'][-1]:.3g}"
        rows.append(LawRow("energy identity residual vs dt: slope", f"{name}, {fit}", slope,
                           np.nan if pred is None else pred, "log–log slope",
                           "broken (rescaled time)" if pred is None else f"O(dt^{pred:g})",
                           note=note, criterion="slope", integrator=name))
    li = parts["linear"]
    for name in ("euler", "rk4"):
        y = li[f"drift_{name}"]
        sel = y > 1e-13
        rows.append(LawRow("balance matrix drift vs dt: slope",
                           f"{name}, linear σ, m={config['linear_m']}",
                           loglog_slope(li["dts"][sel], y[sel]),
                           PREDICTED_CHARGE_SLOPE[name], "log–log slope", "order of the identity",
                           note="max per-step identity error "
                                f"{np.nanmax(li[f'ulps_{name}']):.2f} ulps",
                           criterion="slope", integrator=name))
    de = parts["defect"]
    ms = de["ms"].astype(float)
    for key, when in (("d0", "t = 0"), ("dT", f"t = {float(de['T']):g}")):
        rows.append(LawRow("symmetry defect of i.i.d. starts vs m: slope",
                           f"{when}, {de['d0'].shape[1]} seeds, m ∈ [{int(ms[0])}, {int(ms[-1])}]",
                           loglog_slope(ms, de[key].mean(axis=1)), -0.5, "log–log slope",
                           "m^(−1/2) (law of large numbers)",
                           note=f"defect at largest m {de[key].mean(axis=1)[-1]:.3g}",
                           criterion="slope", integrator="euler"))
    rows.append(LawRow("symmetry defect of orbit starts", f"m ∈ [{int(de['orbit_m'][0])}, "
                       f"{int(de['orbit_m'][-1])}], t = {float(de['T']):g}",
                       float(np.max(de["orbit_d"])), 0.0, "sliced W₁ / ‖θ‖", "0 to round-off",
                       criterion="roundoff", integrator="euler"))
    return rows


def _verdict(row):
    """ok / FAIL / info for one row (its criterion and the thresholds of
    :data:`meanfield.theory.conservation.VERDICT_TOLERANCES`)."""
    from ..theory.conservation import law_verdict

    return law_verdict(row)["verdict"]


def _write_table(rows, ctx):
    """Judge every row, write laws.csv / laws.json (the table, with its verdict) and
    verdicts.json (the structured verdicts), log the table; returns the verdicts."""
    import csv
    import io

    from ..io import atomic_write_bytes, atomic_write_json
    from ..theory.conservation import law_verdict

    verdicts = [law_verdict(r) for r in rows]
    for r, v in zip(rows, verdicts):
        r["verdict"] = v["verdict"]
        r["ok"] = v["ok"]
    keys = ["law", "setting", "measured", "predicted", "unit", "basis", "verdict", "note"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k, "") for k in keys})
    atomic_write_bytes(ctx.path("laws.csv"), buf.getvalue().encode())
    atomic_write_json(ctx.path("laws.json"), rows)
    atomic_write_json(ctx.path("verdicts.json"), verdicts)
    ctx.log("")
    ctx.log(f"{'law':52s} {'measured':>10s} {'predicted':>10s}  {'verdict':7s} setting")
    for r in rows:
        ctx.log(f"{r['law'][:52]:52s} {_fmt(r['measured']):>10s} {_fmt(r['predicted']):>10s}  "
                f"{r['verdict']:7s} {r['setting']}")
    return verdicts


def _structured(data):
    """Whether a saved part's law rows carry their criterion (parts saved before the rows
    were structured lack it and are recomputed)."""
    if "rows_json" not in data:
        return True
    return all("criterion" in r for r in json.loads(str(data["rows_json"])))


# --------------------------------------------------------------------------------- run
_PARTS = (("sweep", _part_sweep), ("time", _part_time), ("linear", _part_linear),
          ("angmom", _part_angmom), ("orbits", _part_orbits), ("defect", _part_defect),
          ("equivalent", _part_equivalent))


def _sub_run(name, config, ctx):
    """Part ``name``: (its arrays, seconds spent or None when taken from the saved part)."""
    import time

    from ..cli.runctx import Interrupted

    if ctx.stop_requested():
        raise Interrupted(f"stopped before part {name!r}; finished parts are saved")
    data = ctx.load_part(name)
    if data is not None and not _structured(data):
        ctx.log(f"part {name}: saved without verdict criteria; recomputing it")
        data = None
    if data is not None:
        return data, None
    start = time.perf_counter()
    data = dict(_PARTS)[name](config, ctx)
    seconds = time.perf_counter() - start
    ctx.save_part(name, **data)
    ctx.log(f"part {name}: {seconds:.1f} s")
    return data, seconds


def run(config, ctx):
    from ._common import map_sub_runs

    names = [name for name, _ in _PARTS]
    done = map_sub_runs(ctx, _sub_run, names, (config,), label=NAME)
    parts = {name: data for name, (data, _) in zip(names, done)}
    times = {name: s for name, (_, s) in zip(names, done) if s is not None}
    rows = []
    for name in ("time", "linear", "angmom", "orbits"):
        rows += json.loads(str(parts[name]["rows_json"]))
    rows += [r.as_dict() for r in _slope_rows(parts, config)]
    eq = parts["equivalent"]
    if bool(eq["available"]):
        rows.append({"law": "permutation + rescaling of a trained network",
                     "setting": f"norm target, m={config['m']}, canonical form (equivalent.py)",
                     "measured": float(eq["canonical"]), "predicted": 0.0,
                     "unit": "canonical distance (relative)", "basis": "same particle measure",
                     "criterion": "roundoff", "integrator": "euler",
                     "note": f"predictor change {float(eq['predictor']):.1e}, raw parameter "
                             f"distance {float(eq['raw']):.3g}"})
    verdicts = _write_table(rows, ctx)

    from ..theory.conservation import loglog_slope

    sw, de, am, li = parts["sweep"], parts["defect"], parts["angmom"], parts["linear"]
    k = config["fit_points"]
    dts = sw["dts"]

    def q_slope(name):
        y = sw[f"q_{name}"][-k:]
        sel = y > 1e-13
        return loglog_slope(dts[-k:][sel], y[sel])

    names = json.loads(str(am["block_names"]))
    summary = {
        "slope_Q_euler": q_slope("euler"),
        "slope_Q_heun": q_slope("heun"),
        "slope_Q_rk4": q_slope("rk4"),
        "slope_Q_momentum_fixed_mu": q_slope("momentum"),
        "slope_Q_heavy_ball": q_slope("heavy_ball"),
        "Q_heavy_ball_smallest_dt": float(sw["q_heavy_ball"][-1]),
        "Q_projected_max": float(np.max(sw["q_euler_projected"])),
        "euler_step_identity_max_ulps": float(np.max(sw["ulps_euler"])),
        "all_step_identities_max_ulps": float(max(np.max(sw[f"ulps_{n}"]) for n in _INTEGRATORS)),
        "slope_energy_euler": loglog_slope(dts[-k:], np.abs(sw["energy_euler"][-k:])),
        "slope_energy_heun": loglog_slope(dts[-k:], np.abs(sw["energy_heun"][-k:])),
        "slope_energy_rk4": loglog_slope(dts[-k:], np.abs(sw["energy_rk4"][-k:])),
        "energy_euler_measured_over_predicted": float(sw["energy_euler"][-1]
                                                      / sw["energypred_euler"][-1]),
        "energy_momentum_smallest_dt": float(sw["energy_momentum"][-1]),
        "slope_balance_euler": loglog_slope(li["dts"], li["drift_euler"]),
        "slope_balance_rk4": loglog_slope(li["dts"], li["drift_rk4"]),
        "balance_identity_max_ulps": float(max(np.nanmax(li["ulps_euler"]),
                                               np.nanmax(li["ulps_rk4"]))),
        "angmom_exact_Hperp_max": float(np.max(am[f"L_exact_{names.index('H_perp')}"])),
        "angmom_exact_H_max": float(np.max(am[f"L_exact_{names.index('H')}"])),
        "angmom_sampled_Hperp_median": float(np.median(am[f"L_sampled_{names.index('H_perp')}"])),
        "angmom_exact_control_median": float(np.median(am[f"L_exact_{len(names) - 1}"])),
        "orbit_defect_max": float(max(np.max(parts["orbits"][f"defect_{i}"]) for i in range(3))),
        "slope_defect_t0": loglog_slope(de["ms"], de["d0"].mean(axis=1)),
        "slope_defect_T": loglog_slope(de["ms"], de["dT"].mean(axis=1)),
        "orbit_defect_sliced_max": float(np.max(de["orbit_d"])),
        "wd_rates_euler_drift": float(parts["time"]["q_wd_rates_euler"][-1]),
        "wd_rates_projected_drift": float(np.max(parts["time"]["q_wd_rates_projected"])),
        **{f"Q_drift_{n}": float(parts["time"][f"q_{n}"][-1]) for n in ADAPTIVE
           if f"q_{n}" in parts["time"]},
        "n_laws": len(rows),
        "n_fail": sum(v["ok"] is False for v in verdicts),
    }
    for name, t in times.items():
        summary[f"time_{name}_s"] = float(t)
    ctx.draw_figures(FIGURES_MODULE, config)
    return summary
