"""E1 of the seed paper: an odd cubic target, full particle flow against the reduced linear
predictor (MATH §4, EXPERIMENTS.md E1).

d = 60, x ∼ N(0, I/d), f* = C Σ z_k x_k³ (½E f*² = 1, ‖w*‖ = √(6d/5), F* = 0.4), widths
m ∈ {10, 50, 128, 1024}, T = 100 (= dt × n_steps = 0.01 × 10⁴), exact population gradients,
integrated through the one loop by Dormand–Prince 5(4) at rtol 1e-8 (``--set integrator=euler``
gives the paper's 10⁴ gradient-descent steps of size dt). Two starts:

* ``sphere`` — the seed paper's i.i.d. start a = ±1, b uniform on S^{d−1}. Its infinite-width
  limit is isotropic (V = 1 + 1/d) and has the closed-form solution; the finite-m run is not
  symmetric, and its gap to that solution should fall like m^{−½} (several seeds per m, slope
  fitted on the log–log means).
* ``paired`` — the same start made orbit-symmetric ((a, b) and (−a, −b)); then the finite-m flow
  *is* the moment ODE from its own initial moments, to integrator accuracy, and the predictor's
  even part stays at round-off.

Each run is compared with two references: the moment ODE in continuous time (``solve_ivp``,
tight tolerance; "gap to the ODE") and the same reduction advanced by the run's own integrator
and dt (:func:`meanfield.models.odd.discrete_reduced_flow`; "gap at the same dt"), which removes the
time-stepping error and leaves only what the reduction does not capture. With
``include_sampled`` the seed paper's own method (online SGD, fresh batches of ``batch_size``)
is run from the same initial particles for comparison, for the starts in ``sampled_inits``
(by default the random start, the paper's setting; add ``paired`` to see SGD break the pairing).

Every sub-run (init, m, seed, backend) is saved as a part when it finishes, so ``--resume``
skips it; long sub-runs also checkpoint. ``--workers N`` / ``--scheduler`` run the sub-runs on
Dask workers (same results). The analysis saves ``odd_curves.npz`` (every curve, gap and
fit); the figures are drawn from it (:func:`meanfield.plots.odd.plot`): ``odd_risk.png``
(risk vs t), ``odd_distance.png`` (‖w − w*‖ vs t with the bound), ``odd_gap.png`` (gap to
the reduced ODE vs m, log–log, fitted slope) and ``odd_symmetry.png`` (even part of the
predictor vs t).
"""
import numpy as np

from ..cli.config import require
from ..engine.integrators import ADAPTIVE
from ._common import (TIME_DEFAULTS, TIME_TYPES, check_horizon, horizon, horizon_options,
                      is_adaptive, map_sub_runs, run_solver)

NAME = "odd"
#: the module of meanfield.plots that draws this experiment's figures
FIGURES_MODULE = "odd"
SUMMARY = ("E1: odd cubic target, particle flow (m = 10..1024, random and paired starts, exact "
           "and SGD) against the reduced linear-predictor ODE")

DEFAULTS = {
    "d": 60,
    "widths": [10, 50, 128, 1024],
    "inits": ["sphere", "paired"],
    "seeds": [0, 1, 2],
    "target_seed": 0,
    "dt": 0.01,
    "n_steps": 10000,
    "integrator": "dopri5",
    "record_every": 10,
    "include_sampled": False,
    "sampled_inits": ["sphere"],
    "batch_size": 512,
    "n_probe": 256,
    "ode_rtol": 1e-12,
    **{**TIME_DEFAULTS, "rtol": 1e-8, "atol": 1e-10},
}

#: dt and n_steps: the fixed-step runs (and the SGD runs, always Euler: online SGD is
#: gradient descent at a learning rate) and the horizon T = dt × n_steps unless t_end is set;
#: records every ``record_every`` steps (fixed-step) or at N_RECORDS_DEFAULT equally spaced
#: times (adaptive, unless n_records is set)
N_RECORDS_DEFAULT = 201
TYPES = TIME_TYPES
#: the sub-runs (init, m, seed, backend) go through :func:`map_sub_runs` (``--workers``)
SUB_RUNS = True

#: the exact runs reduce to the moment ODE step for step (fixed-step) or to tolerance
CHOICES = {"integrator": ["euler", "heun", "rk4", *ADAPTIVE]}

INITS = ("sphere", "paired")
#: number of times per run at which the exact even part E f_e² (O(m² d)) is evaluated.
N_EVEN_CHECKS = 11


APPLIES = {
    "batch_size": (lambda c: c["include_sampled"], "include_sampled = false runs no SGD"),
    "sampled_inits": (lambda c: c["include_sampled"], "include_sampled = false runs no SGD"),
}


def estimate(config):
    """Memory (bytes) and work (pair evaluations × steps) before the run starts."""
    ms, d, n = config["widths"], config["d"], config["n_steps"]
    n_rec = n // config["record_every"] + 2
    jobs = plan(config) if ms else []
    memory = {"widths": 8 * 16 * max(ms) * (d + 1) if ms else 0,
              "n_steps": 8 * n_rec * (d + 12) * 2,
              "n_probe": 8 * config["n_probe"] * (d + max(ms or [1])),
              "batch_size": 8 * config["batch_size"] * (d + max(ms or [1]))
              if config["include_sampled"] else 0}
    stages = {"rk4": 4, "heun": 2}.get(config["integrator"], 1)
    work = sum(float(m) * (m if b == "exact" else config["batch_size"]) * d * n * stages
               for _, m, _, b in jobs)
    return {"memory": memory, "work": work}


def check(config):
    """Range checks before any work starts."""
    require(config["d"] >= 1, "d", f"must be >= 1, got {config['d']}")
    widths = config["widths"]
    require(len(widths) >= 1 and all(m >= 2 for m in widths), "widths",
            f"must be a non-empty list of widths >= 2, got {widths}")
    require(len(set(widths)) == len(widths), "widths", f"has duplicates: {widths}")
    inits = config["inits"]
    require(len(inits) >= 1 and all(i in INITS for i in inits) and len(set(inits)) == len(inits),
            "inits", f"must be a non-empty list of distinct values from {list(INITS)}, got {inits}")
    if "paired" in inits:
        require(all(m % 2 == 0 for m in widths), "widths",
                f"the paired start needs even widths, got {widths}")
    seeds = config["seeds"]
    require(len(seeds) >= 1 and all(s >= 0 for s in seeds) and len(set(seeds)) == len(seeds),
            "seeds", f"must be a non-empty list of distinct integers >= 0, got {seeds}")
    if config["include_sampled"]:  # else the key does nothing (APPLIES refuses it if set)
        require(all(i in inits for i in config["sampled_inits"]), "sampled_inits",
                f"must be a subset of inits = {inits}, got {config['sampled_inits']}")
    require(config["target_seed"] >= 0, "target_seed", "must be >= 0")
    check_horizon(config)
    require(config["record_every"] >= 1, "record_every", "must be >= 1")
    require(config["batch_size"] >= 1, "batch_size", "must be >= 1")
    require(config["n_probe"] >= 1, "n_probe", "must be >= 1")
    require(1e-14 <= config["ode_rtol"] <= 1e-6, "ode_rtol",
            f"must be in [1e-14, 1e-6] (the ODE is the reference; below 1e-14 the solver "
            f"cannot meet it in double precision), got {config['ode_rtol']}")


# ------------------------------------------------------------------------------ set-up
def build_problem(config):
    """E1's problem (target drawn from ``target_seed``) and a fixed probe set (n_probe, d)."""
    from ..models.problem import GaussianLaw, Problem, odd_cubic_target

    d = config["d"]
    target_seq, probe_seq = np.random.SeedSequence(config["target_seed"]).spawn(2)
    target = odd_cubic_target(d, np.random.default_rng(target_seq))
    problem = Problem(d, target, GaussianLaw(1.0 / np.sqrt(d)))
    probe = problem.sample_inputs(np.random.default_rng(probe_seq), config["n_probe"])
    return problem, probe


def initial_particles(init, m, d, seed):
    """The start of sub-run (init, m, seed): the paired start is the random start's first m/2
    particles with their images, so both inits of one seed share their particles."""
    from ..models.particles import init_paired, init_sphere_rademacher

    base = init_sphere_rademacher(m, d, np.random.default_rng([seed, m]))
    return init_paired(base) if init == "paired" else base


def plan(config):
    """Sub-runs (init, m, seed, backend), cheapest first. The random start runs every seed
    (for the m^{−½} fit); the paired start is deterministic up to round-off in its
    agreement with the ODE and runs the first seed; SGD runs the first seed."""
    jobs = []
    first = config["seeds"][0]
    for m in sorted(config["widths"]):
        for init in config["inits"]:
            seeds = config["seeds"] if init == "sphere" else [first]
            jobs += [(init, m, s, "exact") for s in seeds]
        jobs += [(init, m, first, "sampled") for init in config["inits"]
                 if _has_sampled(config, init)]
    return jobs


def _has_sampled(config, init):
    """Whether the SGD version of the ``init`` start is run."""
    return config["include_sampled"] and init in config["sampled_inits"]


def _part_name(job):
    init, m, seed, backend = job
    return f"{init}_m{m}_seed{seed}_{backend}"


def _time(config, backend="exact"):
    """(integrator, Solver time options) of a sub-run: the configured integrator for the
    exact runs, Euler at dt for SGD, the same horizon for both."""
    integ = "euler" if backend == "sampled" else config["integrator"]
    return integ, horizon_options(config, integrator=integ)


def _horizon(config):
    """T of every sub-run."""
    return horizon(config)


def _records(config, backend="exact"):
    """Record options, the same record times for every sub-run (they are compared
    pointwise): every ``record_every`` steps when every run is fixed-step, else
    ``n_records`` (default N_RECORDS_DEFAULT) equally spaced times."""
    if config.get("n_records") is None and not is_adaptive(config):
        return {"record_every": config["record_every"]}
    return {"n_records": config.get("n_records") or N_RECORDS_DEFAULT}


def _n_records(config):
    opts = _records(config)
    if "n_records" in opts:
        return opts["n_records"]
    n, k = horizon_options(config)["n_steps"], config["record_every"]
    return n // k + 1 + (1 if n % k else 0)


def _step_label(config):
    integ, opts = _time(config)
    if is_adaptive(config):
        return f"{integ}, rtol = {config['rtol']:g}"
    return f"{integ}, dt = {opts['dt']:g}"


def _cost(job, config):
    """Rough relative cost of one step (for the progress bar): O(m²d) exact, O(n m d) SGD."""
    _, m, _, backend = job
    return m * (m if backend == "exact" else config["batch_size"]) + 20_000


# ---------------------------------------------------------------------------- sub-runs
class Diagnostics:
    """Observer of a sub-run: at every record, the linear coefficient w, s = Σ w_j a_j², the
    even part of the predictor on the probes, the symmetry defect, and (at N_EVEN_CHECKS
    records) the exact E f_e²."""

    KEYS = ("w", "s", "even_probe", "even_probe_rms", "defect", "even_exact")

    def __init__(self, n_rec, d, red, probe, init):
        self.red, self.probe, self.init = red, probe, init
        self.even_at = np.unique(np.round(np.linspace(0, n_rec - 1, N_EVEN_CHECKS))
                                 .astype(np.int64))
        self.diag = {"w": np.full((n_rec, d), np.nan), "s": np.full(n_rec, np.nan),
                     "even_probe": np.full(n_rec, np.nan), "even_probe_rms": np.full(n_rec, np.nan),
                     "defect": np.full(n_rec, np.nan),
                     "even_exact": np.full(self.even_at.size, np.nan)}
        self.time_s = 0.0

    def on_record(self, solver, i, y, t):
        import time

        from ..models.odd import (even_part_norm_sq, even_part_on_probes, linear_coefficient,
                           pair_defect, sign_flip_defect)

        t0 = time.perf_counter()
        a, b = y
        wts = solver.weights
        diag = self.diag
        diag["w"][i] = linear_coefficient(a, b, wts)
        diag["s"][i] = wts @ (a * a)
        f_even, scale = even_part_on_probes(a, b, wts, self.probe)
        diag["even_probe"][i] = np.abs(f_even).max() / scale.max() if scale.max() > 0 else 0.0
        diag["even_probe_rms"][i] = np.sqrt(np.mean(f_even ** 2))
        diag["defect"][i] = (pair_defect(a, b) if self.init == "paired"
                             else sign_flip_defect(a, b, wts, self.red.w_star))
        slot = np.searchsorted(self.even_at, i)
        if slot < self.even_at.size and self.even_at[slot] == i:
            diag["even_exact"][slot] = even_part_norm_sq(a, b, wts, self.red.v_rho)
        self.time_s += time.perf_counter() - t0

    def on_step(self, solver, info):
        pass

    def state(self):
        out = {"diag_" + k: v for k, v in self.diag.items()}
        out["diag_time_s"] = np.float64(self.time_s)
        return out

    def restore(self, state):
        for k in self.diag:
            self.diag[k] = np.array(state["diag_" + k])
        self.time_s = float(state["diag_time_s"])


def run_one(job, config, problem, red, probe, ctx):
    """One particle run through the loop, diagnostics at every record (an observer);
    resumable from its checkpoint. Returns its arrays."""
    from ..models.backends import ExactBackend
    from ..models.flow import Simulation
    from ..models.odd import moments
    from ..cli.runctx import RunFailed

    init, m, seed, backend = job
    name = _part_name(job)
    done = ctx.load_part(name)
    if done is not None:
        return done
    d = config["d"]
    particles = initial_particles(init, m, d, seed)
    # SGD runs evaluate the exact risk (O(m² d)) at about 100 of their records
    exact_every = max(1, _n_records(config) // 100) if backend == "sampled" else None
    integrator, opts = _time(config, backend)
    sim = Simulation(problem, particles, integrator=integrator, backend=backend,
                     batch_size=config["batch_size"],
                     seed=int(np.random.SeedSequence([seed, m, 1]).generate_state(1)[0]),
                     exact_risk_every=exact_every, **opts, **_records(config, backend))
    diag = Diagnostics(sim.record_times.size, d, red, probe, init)
    sim.observers.append(diag)
    ckpt = f"checkpoints/{name}.npz"
    res = run_solver(sim, ctx, ckpt, desc=name, extra=diag.state, restore_extra=diag.restore)
    if res.status != "ok":
        raise RunFailed(f"{name}: {res.message}", sub_run=name)
    w0, S0, s0 = moments(particles.a, particles.b, particles.weights)
    exact_final = (res.risk[-1] if backend == "exact"
                   else ExactBackend(problem).risk(sim.a, sim.b, sim.weights))
    part = dict(t=res.t, risk=res.risk, risk_exact=res.risk_exact, even_at=diag.even_at,
                w0=w0, S0=S0, s0=np.float64(s0), a_final=sim.a, b_final=sim.b,
                risk_exact_final=np.float64(exact_final),
                max_abs_Q_drift=np.float64(res.max_abs_Q_drift),
                sim_wall_time_s=np.float64(res.wall_time_s - diag.time_s),
                wall_time_s=np.float64(res.wall_time_s), **res.stats(), **diag.diag)
    ctx.save_part(name, **part)
    if ctx.path(ckpt).exists():
        ctx.path(ckpt).unlink()
    ctx.log(f"{name}: final exact risk {exact_final:.6f}, {part['wall_time_s']:.1f} s, "
            f"{res.n_evaluations} evaluations")
    return part


# ---------------------------------------------------------------------------- analysis
def fit_slope(m, gaps):
    """Least-squares slope of log(gap) against log(m) and its standard error.

    Parameters
    ----------
    m : (k,) array
    gaps : (k,) array (positive)

    Returns
    -------
    slope, standard_error : float (the error is NaN with fewer than 3 points)
    """
    from ..theory.rates import fit_power_law

    fit = fit_power_law(m, gaps)
    return fit.slope, fit.stderr


def _references(config, red, t):
    """∞-width references of the random start: closed form, moment ODE, same-dt reduction."""
    from ..models.odd import isotropic_solution, moment_ode

    d = config["d"]
    V = 1.0 + 1.0 / d  # a = ±1: v_a = 1; b uniform on S^{d−1}: E[bbᵀ] = I/d
    closed = isotropic_solution(red, V, t)
    ode = moment_ode(red, np.zeros(d), np.eye(d) / d, 1.0, t, rtol=config["ode_rtol"],
                     atol=config["ode_rtol"])
    same_dt = _same_dt(config, red, np.zeros(d), np.eye(d) / d, 1.0)
    return V, closed, ode, same_dt


def _same_dt(config, red, w0, S0, s0, backend="exact"):
    """The moment reduction advanced by the sub-run's own integrator and step (adaptive: its
    own steps at the same tolerance), recorded at the same times."""
    from ..models.odd import discrete_reduced_flow

    integrator, opts = _time(config, backend)
    return discrete_reduced_flow(red, w0, S0, s0, integrator=integrator,
                                 **{k: v for k, v in opts.items() if k != "max_steps"},
                                 **_records(config, backend))


def _run_references(part, init, config, red, inf_closed, inf_same_dt, backend="exact"):
    """(continuous, same-dt) reference w(t) for one run: its own moment ODE for a paired start,
    the ∞-width isotropic flow for the random start."""
    from ..models.odd import moment_ode

    if init == "paired":
        cont = moment_ode(red, part["w0"], part["S0"], float(part["s0"]), part["t"],
                          rtol=config["ode_rtol"], atol=config["ode_rtol"])
        disc = _same_dt(config, red, part["w0"], part["S0"], float(part["s0"]), backend)
        return cont.w, cont.risk, disc.w
    if backend == "sampled" and is_adaptive(config):
        d = config["d"]
        return inf_closed["w"], inf_closed["risk"], _same_dt(config, red, np.zeros(d),
                                                             np.eye(d) / d, 1.0, backend).w
    return inf_closed["w"], inf_closed["risk"], inf_same_dt.w


def run(config, ctx):
    """Run E1 and return flat scalar results (see the module docstring). Saves
    ``odd_curves.npz`` (every curve, gap and fit the figures need) and draws the figures
    from it (:func:`meanfield.plots.odd.plot`)."""
    import time

    from ..models.odd import odd_reduction

    start = time.perf_counter()
    problem, probe = build_problem(config)
    red = odd_reduction(problem)
    jobs = plan(config)
    n_units = sum(_cost(j, config) * _n_records(config) for j in jobs)
    with ctx.progress(n_units, NAME) as bar:
        done = map_sub_runs(ctx, run_one, jobs, (config, problem, red, probe), bar=bar,
                            cost=lambda job: _cost(job, config) * _n_records(config), label=NAME)
    parts = dict(zip(jobs, done))

    res, curves, gaps = analyse(config, red, parts)
    _final_risks(res, config, parts, gaps)
    _paired_summary(res, config, parts, gaps)
    fit = _sphere_fit(res, config, gaps)
    _wall_times(res, config, parts)
    ctx.save_arrays("odd_curves.npz", **curves, **_plot_arrays(config, red, gaps, fit))
    res["wall_time_total_s"] = time.perf_counter() - start

    ctx.draw_figures(FIGURES_MODULE, config)
    ctx.log(f"final risk (∞ width) {res['final_risk_inf']:.6f}, F* = {red.F_star:.6f}")
    if "gap_slope" in res:
        ctx.log(f"random start: gap to the ODE ~ m^{res['gap_slope']:.3f} "
                f"(± {res['gap_slope_se']:.3f} regression, seed spread "
                f"{res['gap_slope_seed_std']:.3f})")
    if "gap_ode_paired_max" in res:
        ctx.log(f"paired start: max gap to the ODE {res['gap_ode_paired_max']:.3e}, at the "
                f"same dt {res['gap_same_dt_paired_max']:.3e}")
    return res


def analyse(config, red, parts):
    """The ∞-width references and every sub-run's gaps to them.

    Parameters
    ----------
    config : dict
    red : OddReduction
    parts : dict
        (init, m, seed, backend) -> the sub-run's saved arrays.

    Returns
    -------
    res : dict
        The reference scalars of the summary (F*, ‖w*‖, V, the ∞-width final risk and error,
        the bound ratio, the agreement of the three references).
    curves : dict of arrays
        t (n_rec,), the ∞-width risk, error and bound, and per sub-run ``<part>_risk``,
        ``_risk_batch``, ``_error``, ``_even_probe``, ``_defect`` (n_rec,).
    gaps : dict
        job -> {"ode", "same_dt", "risk", "identity", "bound_ratio"[, "decomposition"]}.
    """
    from ..models.odd import convergence_bound

    t = parts[next(iter(parts))]["t"]
    V, inf, inf_ode, inf_same_dt = _references(config, red, t)
    bound = convergence_bound(red, V, t)
    res = {"F_star": red.F_star, "w_star_norm": red.w_star_norm, "V": V,
           "final_risk_inf": float(inf["risk"][-1]),
           "final_error_inf": float(inf["error"][-1]),
           "bound_ratio_inf_max": float(np.max(inf["error"] / bound)),
           "inf_closed_form_vs_moment_ode": float(np.abs(inf_ode.w - inf["w"]).max()),
           "inf_same_dt_vs_ode": float(np.abs(inf_same_dt.w - inf["w"]).max())}
    curves = {"t": t, "inf_risk": inf["risk"], "inf_error": inf["error"], "bound": bound,
              "inf_same_dt_risk": inf_same_dt.risk}
    gaps = {}
    for job, part in parts.items():
        gaps[job], err = _gaps(job, part, config, red, inf, inf_same_dt, bound)
        key = _part_name(job)
        curves[key + "_risk"] = part["risk_exact"]
        curves[key + "_risk_batch"] = part["risk"]
        curves[key + "_error"] = err
        curves[key + "_even_probe"] = part["even_probe"]
        curves[key + "_defect"] = part["defect"]
    return res, curves, gaps


def _gaps(job, part, config, red, inf, inf_same_dt, bound):
    """One sub-run against its references: (gaps dict, ‖w − w*‖ (n_rec,))."""
    from ..models.odd import linear_risk

    init, m, seed, backend = job
    w_cont, risk_cont, w_disc = _run_references(part, init, config, red, inf, inf_same_dt,
                                                backend)
    err = np.linalg.norm(part["w"] - red.w_star, axis=1)
    ok = np.isfinite(part["risk_exact"])
    # risk identity F = F* + (v_ρ/2)‖w − w*‖² + ½E f_e² (the last term is 0 when symmetric)
    lin = linear_risk(red, part["w"])
    gaps = {"ode": float(np.linalg.norm(part["w"] - w_cont, axis=1).max()),
            "same_dt": float(np.linalg.norm(part["w"] - w_disc, axis=1).max()),
            "risk": float(np.abs(part["risk_exact"][ok] - risk_cont[ok]).max()),
            "identity": float(np.abs(part["risk_exact"][ok] - lin[ok]).max()),
            "bound_ratio": float(np.max(err / bound))}
    if backend == "exact":
        idx = part["even_at"]
        decomp = part["risk_exact"][idx] - lin[idx] - 0.5 * part["even_exact"]
        gaps["decomposition"] = float(np.abs(decomp).max())
    return gaps, err


def _final_risks(res, config, parts, gaps):
    """Final risks and bound ratios per (init, m) of the first seed; SGD against exact;
    the largest residual of the risk decomposition."""
    first = config["seeds"][0]
    for init in config["inits"]:
        for m in sorted(config["widths"]):
            job = (init, m, first, "exact")
            res[f"final_risk_{init}_m{m}"] = float(parts[job]["risk_exact_final"])
            res[f"bound_ratio_max_{init}_m{m}"] = gaps[job]["bound_ratio"]
            if _has_sampled(config, init):
                _sampled_vs_exact(res, init, m, parts[job], parts[(init, m, first, "sampled")],
                                  gaps[(init, m, first, "sampled")])
    res["risk_decomposition_residual_max"] = max(g["decomposition"] for j, g in gaps.items()
                                                 if j[3] == "exact")


def _sampled_vs_exact(res, init, m, exact, sampled, sampled_gaps):
    res[f"final_risk_{init}_m{m}_sampled"] = float(sampled["risk_exact_final"])
    ok = np.isfinite(sampled["risk_exact"])
    res[f"sampled_vs_exact_max_risk_diff_{init}_m{m}"] = float(
        np.abs(sampled["risk_exact"][ok] - exact["risk_exact"][ok]).max())
    res[f"sampled_gap_ode_{init}_m{m}"] = sampled_gaps["ode"]


def _paired_summary(res, config, parts, gaps):
    """The paired start: gaps to its own moment ODE, risk identity, even part, pair defect."""
    if "paired" not in config["inits"]:
        return
    pj = [j for j in parts if j[3] == "exact" and j[0] == "paired"]
    for j in pj:
        res[f"gap_ode_paired_m{j[1]}"] = gaps[j]["ode"]
    res["gap_ode_paired_max"] = max(gaps[j]["ode"] for j in pj)
    res["gap_same_dt_paired_max"] = max(gaps[j]["same_dt"] for j in pj)
    res["risk_identity_paired_max"] = max(gaps[j]["identity"] for j in pj)
    res["even_probe_paired_max"] = float(max(np.max(parts[j]["even_probe"]) for j in pj))
    res["even_exact_paired_max"] = float(max(np.max(np.abs(parts[j]["even_exact"])) for j in pj))
    res["pair_defect_paired_max"] = float(max(np.max(parts[j]["defect"]) for j in pj))
    if _has_sampled(config, "paired"):
        first = config["seeds"][0]
        res["pair_defect_paired_sampled_max"] = float(max(
            np.max(parts[("paired", m, first, "sampled")]["defect"])
            for m in sorted(config["widths"])))


def _sphere_fit(res, config, gaps):
    """The random start: mean gaps per width and the m-slope of the mean gap, to the ODE
    (``ode``) and to the reduction at the same dt (``same_dt``). Adds the summary keys and
    returns {kind: (slope, standard error, gaps (widths, seeds), means (widths,))}."""
    if "sphere" not in config["inits"]:
        return {}
    widths, seeds = sorted(config["widths"]), config["seeds"]
    fit = {}
    for kind in ("ode", "same_dt"):
        table = np.array([[gaps[("sphere", m, s, "exact")][kind] for s in seeds]
                          for m in widths])  # (widths, seeds)
        means = table.mean(axis=1)
        for m, g in zip(widths, means):
            res[f"gap_{kind}_sphere_m{m}_mean"] = float(g)
        if kind == "ode":
            for m in widths:
                res[f"gap_risk_sphere_m{m}_mean"] = float(np.mean(
                    [gaps[("sphere", m, s, "exact")]["risk"] for s in seeds]))
        if len(widths) < 2:
            continue
        slope, se = fit_slope(widths, means)
        per_seed = [fit_slope(widths, table[:, k])[0] for k in range(len(seeds))]
        label = "gap_slope" if kind == "ode" else "gap_same_dt_slope"
        res[label] = slope
        res[label + "_se"] = se
        res[label + "_seed_std"] = float(np.std(per_seed, ddof=1)) \
            if len(seeds) > 1 else float("nan")
        res[label + "_seed_min"] = float(min(per_seed))
        res[label + "_seed_max"] = float(max(per_seed))
        fit[kind] = (slope, se, table, means)
    return fit


def _wall_times(res, config, parts):
    """Wall times of the sub-runs (per width, per backend of the random start, in total)."""
    first = config["seeds"][0]
    widths = sorted(config["widths"])
    if "sphere" in config["inits"]:
        res["wall_time_e1_core_s"] = float(sum(parts[("sphere", m, first, "exact")]["wall_time_s"]
                                               for m in widths))
    for m in widths:
        res[f"wall_time_m{m}_s"] = float(sum(p["wall_time_s"] for j, p in parts.items()
                                             if j[1] == m))
        for backend in ("exact", "sampled"):
            job = ("sphere", m, first, backend)
            if job in parts:
                res[f"wall_time_sphere_m{m}_{backend}_s"] = float(parts[job]["wall_time_s"])
    if any(j[3] == "sampled" for j in parts):
        res["wall_time_sampled_s"] = float(sum(p["wall_time_s"] for j, p in parts.items()
                                               if j[3] == "sampled"))
    res["n_sub_runs"] = len(parts)
    # sum over sub-runs: unlike the total, it survives --resume
    res["wall_time_sub_runs_s"] = float(sum(p["wall_time_s"] for p in parts.values()))


def _plot_arrays(config, red, gaps, fit):
    """What the figures need besides the curves: F*, the widths, the integrator's label, the
    SGD step, each sub-run's gaps
    (``gap_ode_<part>``, ``gap_same_dt_<part>``) and the fits (``fit_<kind>_slope``, ``_se``,
    ``_table`` (widths, seeds), ``_means`` (widths,))."""
    out = {"F_star": np.float64(red.F_star), "widths": np.array(sorted(config["widths"])),
           "step_label": np.array(_step_label(config)),
           "sampled_dt": np.float64(_time(config, "sampled")[1]["dt"])}
    for job, g in gaps.items():
        out["gap_ode_" + _part_name(job)] = np.float64(g["ode"])
        out["gap_same_dt_" + _part_name(job)] = np.float64(g["same_dt"])
    for kind, (slope, se, table, means) in fit.items():
        out.update({f"fit_{kind}_slope": np.float64(slope), f"fit_{kind}_se": np.float64(se),
                    f"fit_{kind}_table": table, f"fit_{kind}_means": means})
    return out
