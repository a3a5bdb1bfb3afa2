"""The claim families: which runs each needs (per profile) and how its claims are read from
the run folders (the verdicts themselves are decided in :mod:`meanfield.verify.claims`).

Each family declares the ids of its claims (``ids``; a table of many laws declares the id of
the table, its rows get ``<that id>.<n>-<law>``), its runs per profile, and ``collect(dirs,
runs)`` returning verdicts. ``quick`` keeps every claim at sizes that run in minutes; ``paper``
uses each experiment's own defaults (the seed papers' scales), with the tolerances the claims
need (the paired odd start at rtol 1e-10).
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import claims as C
from .measure import Run

__all__ = ["Family", "FAMILIES", "PROFILES"]

PROFILES = ("quick", "paper")

#: "zero to round-off" for relative quantities (a few hundred ulp of O(1) numbers)
ROUNDOFF = 1e-12


@dataclass
class Family:
    name: str
    ids: list
    runs: dict                      # profile -> list of Run
    collect: object                 # (dirs: {run name: Path}, runs: {name: Run}) -> [Verdict]
    figures: list = field(default_factory=list)   # (run name, file) embedded in verify.md


def _json(path):
    return json.loads(Path(path).read_text())


def _summary(d):
    return _json(Path(d) / "summary.json")


def _npz(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ------------------------------------------------------------------------------ exactness
EXACTNESS = {"quick": {"mc_batches": 100, "mc_batch_size": 4000},
             "paper": {"mc_batches": 400, "mc_batch_size": 25000, "m": 12, "d": 8,
                       "gd_steps": 50}}
#: relative FD error of the velocity: h² F''' ≈ 1e-10 plus ε F / h ≈ 1e-11 at h = 1e-5
FD_RTOL = 1e-6
#: GD with FD gradients against Euler: the FD error above times lr·steps, with room
GD_ATOL = 1e-7


def _collect_exactness(dirs, runs):
    d = dirs["exactness"]
    z = _npz(d / "measurements.npz")
    return [C.kernel_vs_monte_carlo(z["exact"], z["mc_mean"], z["mc_se"], run=d,
                                    what=f"exact potential gradients and risk "
                                         f"({int(z['n_samples'])} samples)"),
            C.velocity_vs_finite_differences(z["velocity"], z["fd_gradient"], z["weights"],
                                             FD_RTOL, run=d),
            C.euler_is_gradient_descent(z["theta_euler"], z["theta_gd"], GD_ATOL, run=d)]


# ---------------------------------------------------------------------------- conservation
NOETHER = {"quick": {"angmom_steps": 60, "time_steps": 250,
                     "defect_ms": [32, 64, 128, 256, 512]},
           "paper": {}}
#: the energy identity's residual order per integrator (MATH §3): Euler and projected Euler
#: O(dt), Heun O(dt²), RK4 O(dt⁴)
ENERGY_ORDER = {"euler": 1.0, "heun": 2.0, "rk4": 4.0, "euler_projected": 1.0}


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def noether_row_verdict(i, row, run):
    """A verdict for one row of the noether table, judged by the table's own rule: its
    structured ``criterion`` through :func:`meanfield.theory.conservation.law_verdict` (one
    rule for the table and this report). Rows the table does not judge (criterion ``info``,
    no finite prediction) are skipped.

    Parameters
    ----------
    i : int
        The row's index in ``laws.json`` (part of the claim id).
    row : dict
        A row of ``laws.json``: law, setting, measured, predicted, unit, basis, criterion.
    run : str or Path
        The noether run folder.
    """
    from ..theory.conservation import law_verdict

    if "criterion" not in row:
        raise ValueError(f"{run}: laws.json rows carry no criterion (a run made before verdicts "
                         "were structured): rerun noether into a new --out folder")
    judged = law_verdict(row)
    if judged["ok"] is None:
        return None
    m, p, tol, kind = judged["measured"], judged["predicted"], judged["tolerance"], judged["criterion"]
    text = {"slope": f"|slope − ({p:+.2f})| ≤ {tol:g}",
            "ulps": f"≤ {tol:g} ulp",
            "relative": f"|measured − predicted| ≤ {tol:g}·|predicted|",
            "roundoff": f"≤ {tol:g}",
            "sum_of_steps": f"|measured − predicted| ≤ {tol:g} + 1e-6·|predicted|"}[kind]
    return C.make_verdict(f"conservation.table.{i:02d}-{_slug(row['law'])}", "MATH §3; noether table",
                          f"{row['law']} ({row['setting']})", C.measurement(m, row["unit"]), p,
                          row["basis"], ({"kind": kind, "tol": float(tol), "text": text},
                                         judged["ok"]), run)


def _collect_noether(dirs, runs):
    d = dirs["noether"]
    config = _json(d / "config.json")["config"]
    out = []
    sw = _npz(d / "parts" / "sweep.npz")
    k = config["fit_points"]
    dts = sw["dts"][-k:]
    for name, order in ENERGY_ORDER.items():
        y = np.abs(sw[f"energy_{name}"][-k:])
        s, se = C.fit_loglog(dts, y)
        out.append(C.energy_identity_order(name, s, order, run=d, se=se,
                                           note=f"residual at dt = {dts[-1]:g}: {y[-1]:.3g}"))
    rows = _json(d / "laws.json")
    for i, row in enumerate(rows):
        if row["law"].startswith("energy identity residual vs dt"):
            continue  # the same data as the energy-identity claims above, with their errors
        v = noether_row_verdict(i, row, d)
        if v is not None:
            out.append(v)
    de = _npz(d / "parts" / "defect.npz")
    for key, when in (("d0", "t = 0"), ("dT", f"t = {float(de['T']):g}")):
        out.append(C.rate_in_width(f"conservation.defect-rate.{key}",
                                   "MATH §6 (law of large numbers); noether defect",
                                   f"symmetry defect of i.i.d. starts at {when} ∝ m^−½",
                                   de["ms"], de[key], -0.5, run=d))
    out.append(C.roundoff_zero("conservation.orbit-starts-symmetric",
                               "orbit starts (sliced W₁ defect / ‖θ‖) stay symmetric",
                               float(np.max(de["orbit_d"])), ROUNDOFF, run=d))
    return out


# ------------------------------------------------------------------------------ odd targets
ODD = {"quick": {"widths": [16, 64, 256], "seeds": [0, 1], "rtol": 1e-10, "atol": 1e-12},
       "paper": {"rtol": 1e-10, "atol": 1e-12}}
#: max_t ‖w − w_ODE‖ of the paired start with an adaptive pair (issue: ≤ 1e-8)
PAIRED_GAP = 1e-8
#: F(T) − F* must have fallen below this fraction of F(0) − F* (T = 100)
CONVERGED_FRACTION = 1e-3


def _collect_odd(dirs, runs):
    d = dirs["odd"]
    s = _summary(d)
    curves = _npz(d / "odd_curves.npz")
    F_star = s["F_star"]
    out = [C.paired_follows_moment_ode(s["gap_ode_paired_max"], PAIRED_GAP, run=d),
           C.even_part_stays_zero(s["even_exact_paired_max"], ROUNDOFF, run=d)]
    risks = {k[:-len("_risk")]: v for k, v in curves.items()
             if k.endswith("_risk") and not k.startswith("inf")}
    risk_min = min(float(np.nanmin(v)) for v in risks.values())
    out.append(C.risk_bounded_below(risk_min, F_star, ROUNDOFF, run=d))
    fraction = max(float((v[-1] - F_star) / (v[0] - F_star)) for v in risks.values())
    out.append(C.make_verdict("odd.risk-to-F-star", "seed paper §4; MATH §4",
                          "F → F*: (F(T) − F*) / (F(0) − F*) for every run",
                          C.measurement(fraction, "max over runs"), 0.0,
                          "F* is the infimum; the flow converges",
                          C.at_most(fraction, CONVERGED_FRACTION), d))
    widths = sorted(_json(d / "config.json")["config"]["widths"])
    gaps = [s[f"gap_ode_sphere_m{m}_mean"] for m in widths]
    out.append(C.rate_in_width("odd.random-gap-rate", "seed paper §4 (E1); MATH §4",
                               "random start: gap to the ∞-width ODE ∝ m^−½ "
                               "(mean over seeds)", widths, gaps, -0.5, run=d))
    return out


# --------------------------------------------------------------------- low-dimensional targets
FVR = {"quick": {"widths": [32, 64, 128], "seeds": [0, 1]}, "paper": {}}
#: quick: the d_H sweep to T = 1000 (200 000 steps of dt = 0.005; dopri5 takes ~500 of them),
#: ten times the paper's horizon, so that the conjectured limit is measured where the risk
#: has fallen to ~1e-5
LOWDIM_1D = {"quick": {"monte_carlo": False, "sweep_d_H": [2, 5, 10], "sweep_steps": 200000,
                       "histogram_steps": [0, 20000]},
             "paper": {}}
ORTHO = {"quick": {"n_particles": 256, "n_steps": 2000, "profile_steps": [0, 2000]},
         "paper": {}}
REDUCTION = {"quick": {}, "paper": {"m": 64, "d": 30, "d_H": 5}}
#: 1-D vs block-reduced velocities: same formulas, both quadratures converged (measured 1e-11)
REDUCTION_TOL = 1e-8
#: τ⁺ − τ⁻ = α(d_H) and τ⁺ = α at T = 100, relative (τ⁺ − τ⁻ is within 0.1 %; τ⁺ itself
#: is not, while the negative mass lingers near θ = π/2: the slow transient of E2)
MASS_RTOL = 1e-2
#: the predictor's spread in r at T, in units of its RMS error √(2F(T)) (pointwise values
#: of a function with that L² error reach a few times it)
FLAT_FACTOR = 4.0
RATES = {"risk_full_reduced": -1.0, "risk_full_1d": -1.0, "w2_full_reduced": -0.5,
         "coupled_full_reduced": -0.5, "w1_theta_full_1d": -0.5}


def _collect_fvr(dirs, runs):
    d = dirs["lowdim-full-vs-reduced"]
    z = _npz(d / "discrepancies.npz")
    out = []
    for key, rate in RATES.items():
        what = "risk gap" if key.startswith("risk") else "law distance"
        out.append(C.rate_in_width(f"lowdim.rate.{key}", "MATH §5 (second-order risk gap); E3",
                                   f"{what} {key} ∝ m^{rate:g}", z["widths"], z[key], rate,
                                   run=d))
    return out


def _collect_lowdim_1d(dirs, runs):
    from .. import norm_target_alpha

    d = dirs["lowdim-1d"]
    s = _summary(d)
    config = _json(d / "config.json")["config"]
    out = []
    d_H = config["sweep_d_H"]
    pos = [s[f"sweep_dH{k}_positive_mass"] for k in d_H]
    neg = [s[f"sweep_dH{k}_negative_mass"] for k in d_H]
    alpha = [norm_target_alpha(k) for k in d_H]
    # runs made before the summary had the sweep's final risks have none
    risk = [s.get(f"sweep_dH{k}_risk_final") for k in d_H]
    risk = None if None in risk else risk
    horizon = config["sweep_steps"] * config["dt"]
    out.append(C.masses_match_alpha(d_H, pos, neg, alpha, MASS_RTOL, run=d, risk=risk,
                                    horizon=horizon, id="lowdim.tau-difference",
                                    what="difference"))
    out.append(C.masses_match_alpha(d_H, pos, neg, alpha, MASS_RTOL, run=d, risk=risk,
                                    horizon=horizon, id="lowdim.tau-plus-alpha",
                                    what="positive"))
    return out


def _collect_orthogonal(dirs, runs):
    d = dirs["orthogonal-dependence"]
    z = _npz(d / "profiles.npz")
    # full flow: the widest spread over the sampled directions; 1-D model: its own risk
    full = float(np.ptp(z["full"][-1], axis=-1).max())
    one = float(np.ptp(z["one_d"][-1]))
    return [C.predictor_flat_in_orthogonal(full, float(z["risk_full"][-1]), FLAT_FACTOR, run=d),
            _renamed(C.predictor_flat_in_orthogonal(one, float(z["risk_1d"][-1]), FLAT_FACTOR,
                                                    run=d), ".1d",
                     "the 1-D model's predictor does not depend on the orthogonal part")]


def _renamed(v, suffix, statement):
    v.id += suffix
    v.statement = statement
    return v


def _collect_reduction(dirs, runs):
    d = dirs["reduction"]
    z = _npz(d / "measurements.npz")
    return [C.reduced_vs_radial(float(z["diff"]), REDUCTION_TOL, run=d)]


# ---------------------------------------------------------------------------- other papers
BOOLEAN = {"quick": {"targets": ["parity"], "inits": ["invariant", "random"], "n_train": [1000],
                     "n_seeds": 2, "lr_sweep": [0.001]},
           "paper": {}}
MOMENTS = {"quick": {"n_samples": [1000, 3000, 10000, 30000], "trials": 3,
                     "noise_levels": [0.0, 0.1], "gd_trials": 1, "gd_steps": 200},
           "paper": {}}
EQUIVALENT = {"quick": {},
              "paper": {"cases": [["tanh", 5, True, 2], ["relu", 5, True, 2],
                                  ["tanh", 5, False, 0], ["relu", 5, False, 0],
                                  ["tanh", 6, True, 1], ["relu", 6, True, 1]]}}
#: exact population moments: recovery at round-off
EXACT_MOMENTS_TOL = 1e-10
#: a non-symmetric control "fails": median error at every N above this (symmetric laws reach
#: 1e-2 and below at N ≥ 1e4)
CONTROL_FLOOR = 0.1
#: the invariant start learns parity
PARITY_LEARNED = 0.9


def _collect_boolean(dirs, runs):
    d = dirs["symmetric-boolean"]
    config = _json(d / "config.json")["config"]
    # test accuracy of every seed at the largest N, after the last epoch
    inv = _npz(d / "parts" / "parity-invariant.npz")["test"][-1, :, -1]
    rnd = _npz(d / "parts" / "parity-random.npz")["test"][-1, :, -1]
    return [C.parity_learned(inv, config["n_test"], run=d, least=PARITY_LEARNED),
            C.parity_not_learned(rnd, config["n_test"], run=d)]


def _collect_moments(dirs, runs):
    d = dirs["moments"]
    s = _summary(d)
    config = _json(d / "config.json")["config"]
    z = _npz(d / "results.npz")
    n = z["n_samples"]
    out = [C.roundoff_zero("moments.exact", "recovery from exact Gaussian moments",
                           s["exact_gaussian_error"], EXACT_MOMENTS_TOL, run=d,
                           source="seed 004 (method of moments)",
                           unit="relative parameter error")]
    for law in config["laws"]:
        med = np.median(z[f"error_{law}"], axis=-1)
        out.append(C.error_rate_in_samples(law, n, med, run=d))
    for law in config["controls"]:
        med = np.median(z[f"error_{law}"], axis=-1)
        out.append(C.controls_fail(law, med, CONTROL_FLOOR, run=d))
    return out


def _collect_equivalent(dirs, runs):
    d = dirs["equivalent"]
    z = _npz(d / "measurements.npz")
    cases = json.loads(str(z["cases"]))
    out = []
    for (act, k, bias, p), cnt, enum in zip(cases, z["counted"], z["enumerated"]):
        v = C.count_equals_enumeration([k], act, int(cnt), int(enum), run=d)
        v.id += f".{'bias' if bias else 'nobias'}-p{p}"
        out.append(v)
    return out


def _runs(kind, target, table, name=None):
    return {p: [Run(name or target, kind, target, table[p])] for p in PROFILES}


FAMILIES = [
    Family("exactness", ["exactness.kernel-monte-carlo", "exactness.velocity-gradient",
                         "exactness.euler-gd"],
           _runs("task", "exactness", EXACTNESS), _collect_exactness),
    Family("noether", ["exactness.energy-identity", "conservation.table",
                       "conservation.defect-rate", "conservation.orbit-starts-symmetric"],
           _runs("experiment", "noether", NOETHER), _collect_noether,
           [("noether", "noether_drift_vs_dt.png"), ("noether", "noether_symmetry_defect.png")]),
    Family("odd", ["odd.paired-follows-ode", "odd.even-part-zero", "odd.risk-above-F-star",
                   "odd.risk-to-F-star", "odd.random-gap-rate"],
           _runs("experiment", "odd", ODD), _collect_odd,
           [("odd", "odd_gap.png"), ("odd", "odd_risk.png")]),
    Family("reduction", ["lowdim.reduced-vs-1d"], _runs("task", "reduction", REDUCTION),
           _collect_reduction),
    Family("lowdim-full-vs-reduced", ["lowdim.rate"],
           _runs("experiment", "lowdim-full-vs-reduced", FVR), _collect_fvr,
           [("lowdim-full-vs-reduced", "lowdim_full_vs_reduced.png")]),
    Family("lowdim-1d", ["lowdim.tau-difference", "lowdim.tau-plus-alpha"],
           _runs("experiment", "lowdim-1d", LOWDIM_1D), _collect_lowdim_1d,
           [("lowdim-1d", "lowdim_1d_sweep.png")]),
    Family("orthogonal-dependence", ["lowdim.orthogonal-independence"],
           _runs("experiment", "orthogonal-dependence", ORTHO), _collect_orthogonal,
           [("orthogonal-dependence", "orthogonal_dependence.png")]),
    Family("symmetric-boolean", ["boolean.invariant-learns-parity", "boolean.random-fails-parity"],
           _runs("experiment", "symmetric-boolean", BOOLEAN), _collect_boolean,
           [("symmetric-boolean", "symmetric_boolean_vs_epochs.png")]),
    Family("moments", ["moments.exact", "moments.rate", "moments.control-fails"],
           _runs("experiment", "moments", MOMENTS), _collect_moments,
           [("moments", "moments_error_vs_n.png")]),
    Family("equivalent", ["equivalent.count"], _runs("task", "equivalent", EQUIVALENT),
           _collect_equivalent),
]
