"""The claim checks: pure functions of measured data that return a structured :class:`Verdict`.

Nothing here runs a simulation or reads a file. Each check receives what a run measured
(arrays or numbers) and the prediction of the theory (a closed form, a predicted rate or
drift), applies one explicit criterion and returns a record with fields, not phrases:

``id``, ``source`` (paper and section, or the derivation in the briefs), ``statement``,
``measured`` ({"value", "se", "unit"}), ``expected`` ({"value", "basis"}),
``criterion`` ({"kind", parameters..., "text"}), ``ok``, ``run`` (the run folder) and
``kind``: ``"check"`` for what the papers prove or the briefs derive (a failure means the code
or the derivation is wrong, and ``verify`` exits 1), ``"conjecture"`` for what a paper only
argues informally (the measurement is the finding: reported as holding or not, it does not
set the exit status).

The criteria (the kinds below) are the only places where a verdict is decided:

=============  ========================================================================
kind           ok when
=============  ========================================================================
``at_most``    value ≤ bound
``at_least``   value ≥ bound
``close``      |value − expected| ≤ atol + rtol·|expected|
``slope``      |value − expected| ≤ tol + n_se·se (a fitted log–log slope and its
               standard error; ``tol`` allows the pre-asymptotic bend of finite sizes)
``equal``      value == expected (integers: counts)
=============  ========================================================================
"""
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..theory.rates import fit_power_law

__all__ = ["Verdict", "make_verdict", "measurement", "fit_loglog", "at_most", "at_least", "close", "slope", "equal",
           "SLOPE_TOL", "SLOPE_N_SE", "N_SIGMA",
           "kernel_vs_monte_carlo", "velocity_vs_finite_differences", "euler_is_gradient_descent",
           "energy_identity_order", "paired_follows_moment_ode", "even_part_stays_zero",
           "risk_bounded_below", "risk_converges", "rate_in_width", "reduced_vs_radial",
           "masses_match_alpha", "predictor_flat_in_orthogonal", "drift_vs_prediction",
           "roundoff_zero", "parity_learned", "parity_not_learned", "error_rate_in_samples",
           "controls_fail", "count_equals_enumeration"]

#: a fitted slope may differ from the predicted rate by this much (finite sizes bend the
#: log–log line: corrections of relative order m^−½ at the smallest widths), plus N_SE
#: standard errors of the fit. A slope of −0.2 against a predicted −0.5 fails.
SLOPE_TOL = 0.2
SLOPE_N_SE = 2.0
#: Monte Carlo agreement, in standard errors (false alarm ≈ 6e-7 per value)
N_SIGMA = 5.0


@dataclass
class Verdict:
    """One checked claim (see the module docstring for the fields)."""

    id: str
    source: str
    statement: str
    measured: dict
    expected: dict
    criterion: dict
    ok: bool
    run: str = ""
    figure: str = ""
    extra: dict = field(default_factory=dict)
    kind: str = "check"

    def as_dict(self):
        return _plain(asdict(self))


def _plain(obj):
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def measurement(value, unit, se=None):
    return {"value": float(value) if not isinstance(value, (int, np.integer)) else int(value),
            "se": None if se is None else float(se), "unit": unit}


def _finite(x):
    return x is not None and np.isfinite(x)


# ------------------------------------------------------------------------------ criteria
def at_most(value, bound):
    """Criterion ``value ≤ bound`` (NaN fails)."""
    return ({"kind": "at_most", "bound": float(bound), "text": f"≤ {bound:.3g}"},
            bool(_finite(value) and value <= bound))


def at_least(value, bound):
    """Criterion ``value ≥ bound`` (NaN fails)."""
    return ({"kind": "at_least", "bound": float(bound), "text": f"≥ {bound:.3g}"},
            bool(_finite(value) and value >= bound))


def close(value, expected, atol=0.0, rtol=0.0):
    """Criterion ``|value − expected| ≤ atol + rtol·|expected|``."""
    tol = atol + rtol * abs(expected)
    return ({"kind": "close", "atol": float(atol), "rtol": float(rtol),
             "text": f"within {tol:.3g} of {expected:.6g}"},
            bool(_finite(value) and abs(value - expected) <= tol))


def slope(value, se, expected, tol=SLOPE_TOL, n_se=SLOPE_N_SE):
    """Criterion for a fitted slope: ``|value − expected| ≤ tol + n_se·se``."""
    se_ = se if _finite(se) else 0.0
    return ({"kind": "slope", "tol": float(tol), "n_se": float(n_se),
             "text": f"{expected:+.2f} ± ({tol:g} + {n_se:g}·se)"},
            bool(_finite(value) and abs(value - expected) <= tol + n_se * se_))


def equal(value, expected):
    """Criterion ``value == expected`` (exact integers)."""
    return {"kind": "equal", "text": f"= {expected}"}, bool(value == expected)


def fit_loglog(x, y):
    """Slope of log y on log x with its standard error (:func:`meanfield.theory.rates.fit_power_law`),
    with repetitions allowed.

    Parameters
    ----------
    x, y : (k,) arrays, or y of shape (k, s) for s repetitions (seeds) at each x, every
        repetition a point of the fit (so the error reflects the spread between seeds)

    Returns
    -------
    slope, se : float (se is NaN with fewer than 3 points; slope NaN with fewer than 2
        positive finite points or all x equal)
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2:
        x = np.repeat(x, y.shape[1])
        y = y.ravel()
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return float("nan"), float("nan")
    fit = fit_power_law(x, y)
    return fit.slope, fit.stderr


def make_verdict(id, source, statement, measured, expected, basis, crit, run, **extra):
    criterion, ok = crit
    return Verdict(id=id, source=source, statement=statement, measured=measured,
                   expected={"value": None if expected is None else _plain(expected),
                             "basis": basis},
                   criterion=criterion, ok=ok, run=str(run), **extra)


# ------------------------------------------------------------------------------ exactness
def kernel_vs_monte_carlo(exact, mc_mean, mc_se, run="", what="arc-cosine kernels",
                          n_sigma=N_SIGMA, id="exactness.kernel-monte-carlo"):
    """Exact expectations against Monte Carlo means: every |exact − mean| ≤ n_sigma · se.

    Parameters
    ----------
    exact, mc_mean, mc_se : (n,) arrays
        Exact values, Monte Carlo means of the same expectations and their standard errors.
    """
    exact, mc_mean, mc_se = (np.ravel(np.asarray(v, dtype=np.float64))
                             for v in (exact, mc_mean, mc_se))
    z = np.abs(exact - mc_mean) / mc_se
    zmax = float(np.max(z)) if z.size else float("nan")
    return make_verdict(id, "MATH §2 (arc-cosine kernels, Gauss–Jacobi quadrature)",
                    f"{what} equal their Monte Carlo estimates ({exact.size} values)",
                    measurement(zmax, "max |exact − MC| / se"), 0.0,
                    "exact expectation = mean of the samples", at_most(zmax, n_sigma), run,
                    extra={"n_values": int(exact.size)})


def velocity_vs_finite_differences(velocity, fd_gradient, weights, rtol, run=""):
    """The particle velocity is −(1/w_j)∇_{θ_j}F (−m∇F for weights 1/m).

    Parameters
    ----------
    velocity : (m, p) array
        The backend's velocity −∇V_μ(θ_j) per particle (p = 1 + d parameters).
    fd_gradient : (m, p) array
        Central finite differences of the exact risk F in each parameter.
    weights : (m,) array
    rtol : float
        Finite-difference error allowed, relative to max |v| (h² truncation + ε/h round-off).
    """
    velocity, fd = np.asarray(velocity, float), np.asarray(fd_gradient, float)
    pred = -fd / np.asarray(weights, float)[:, None]
    err = float(np.max(np.abs(velocity - pred)) / np.max(np.abs(velocity)))
    return make_verdict("exactness.velocity-gradient", "MATH §1 (Wasserstein gradient flow)",
                    "velocity = −m ∇_θ F (central finite differences of the exact risk)",
                    measurement(err, "max |v + ∇F/w| / max |v|"), 0.0,
                    "identity; FD error O(h²) + O(ε/h)", at_most(err, rtol), run)


def euler_is_gradient_descent(theta_euler, theta_gd, atol, run=""):
    """Euler steps of size dt = gradient descent on F(θ) at learning rate m·dt.

    ``theta_gd`` comes from a plain loop θ ← θ − m·dt·∇F with finite-difference gradients;
    ``atol`` is the finite-difference error accumulated over the steps.
    """
    err = float(np.max(np.abs(np.asarray(theta_euler) - np.asarray(theta_gd))))
    return make_verdict("exactness.euler-gd", "README (integrators: euler = GD at lr m·dt)",
                    "Euler at dt = gradient descent on the parameters at learning rate m·dt",
                    measurement(err, "max |θ_euler − θ_GD|"), 0.0,
                    "same iteration; FD-gradient error only", at_most(err, atol), run)


def energy_identity_order(integrator, slope_value, order, run="", se=None, note=""):
    """The energy identity dF/dt = −∫|v|² dμ: the residual of the discrete one falls like
    dt^order (fitted log–log slope against dt)."""
    return make_verdict(f"exactness.energy-identity.{integrator}",
                    "MATH §3 (energy identity); noether sweep",
                    f"{integrator}: residual of F(T) − F(0) + ∫∫|v|² dμ dt ∝ dt^{order:g}",
                    measurement(slope_value, "log–log slope in dt", se), float(order),
                    f"order of {integrator}", slope(slope_value, se, order), run,
                    extra={"note": note})


# ---------------------------------------------------------------------------- odd targets
def paired_follows_moment_ode(gap, bound, run=""):
    """Orbit-paired start: the particle flow is the moment ODE; gap = max_t ‖w(t) − w_ODE(t)‖."""
    return make_verdict("odd.paired-follows-ode", "seed paper §4 (odd targets); MATH §4",
                    "paired start: particle flow = moment ODE (adaptive pair)",
                    measurement(gap, "max_t ‖w − w_ODE‖"), 0.0,
                    "exact reduction; integrator tolerance", at_most(gap, bound), run)


def even_part_stays_zero(even, bound, run=""):
    """Paired start: the even part of the predictor, ½ E f_even², stays at round-off."""
    even = float(np.max(np.abs(even)))
    return make_verdict("odd.even-part-zero", "seed paper §4; MATH §4",
                    "paired start: the predictor's even part stays 0",
                    measurement(even, "max_t ½E f_even²"), 0.0, "orbit symmetry",
                    at_most(even, bound), run)


def risk_bounded_below(risk_min, F_star, rtol, run="", id="odd.risk-above-F-star"):
    """F(μ) ≥ F* for every network: F = F* + (v_ρ/2)‖w − w*‖² + ½E f_even²."""
    margin = float(risk_min - F_star)
    return make_verdict(id, "MATH §4 (risk decomposition)",
                    f"F ≥ F* = {F_star:.6g} at every recorded time of every run",
                    measurement(margin, "min_t F − F*"), 0.0, "F − F* is a sum of squares",
                    at_least(margin, -rtol * F_star), run)


def risk_converges(error_over_bound, run="", id="odd.risk-to-F-star"):
    """F → F*: ‖w(t) − w*‖ stays below the closed-form convergence bound of the moment ODE
    (so F − F* = (v_ρ/2)‖w − w*‖² → 0 at the predicted rate)."""
    r = float(np.max(error_over_bound))
    return make_verdict(id, "seed paper §4 (convergence of the linear predictor); MATH §4",
                    "F → F*: ‖w − w*‖ ≤ the closed-form bound at every time",
                    measurement(r, "max_t ‖w − w*‖ / bound(t)"), 1.0,
                    "closed-form bound of the moment ODE", at_most(r, 1.0 + 1e-9), run)


def rate_in_width(id, source, statement, widths, values, expected, run="", unit=None):
    """A discrepancy falls like m^expected: fitted log–log slope (over widths, every seed a
    point) within :func:`slope`'s criterion.

    Parameters
    ----------
    widths : (k,) array
    values : (k,) or (k, s) array (s seeds)
    """
    s, se = fit_loglog(widths, values)
    return make_verdict(id, source, statement,
                    measurement(s, unit or "log–log slope in m", se), float(expected),
                    f"m^{expected:g}", slope(s, se, expected), run,
                    extra={"widths": _plain(list(np.asarray(widths).tolist())),
                           "values": _plain(np.asarray(values).tolist())})


# ------------------------------------------------------------------- low-dimensional targets
def reduced_vs_radial(max_diff, bound, run=""):
    """Block-reduced (a, ‖b_H‖, ‖b⊥‖) and 1-D (ε, c, θ) velocities of the same state."""
    return make_verdict("lowdim.reduced-vs-1d", "MATH §5 (1-D model = norm-reduced model)",
                    "block-reduced and 1-D velocities and risk agree",
                    measurement(max_diff, "max |difference|"), 0.0,
                    "same formulas; both quadratures converged", at_most(max_diff, bound), run)


def masses_match_alpha(d_H, positive, negative, alpha, rtol, run="", id="lowdim.tau-alpha",
                       what="positive", risk=None, horizon=None):
    """1-D model at the end of the run: τ⁺ − τ⁻ = α(d_H) (``what="difference"``, a check) or
    τ⁺ = α (``"positive"``: the seed paper's limit α δ_0, argued informally there, hence a
    conjecture: at finite width the negative mass need not vanish).

    Parameters
    ----------
    d_H, positive, negative, alpha : (k,) arrays
        Subspace dimensions, final masses of τ⁺ and τ⁻, and α(d_H).
    rtol : float
    risk : (k,) array, optional
        Final risks (reported: the conjectured limit is that of a flow whose risk → 0).
    horizon : float, optional
        The final time T (reported in the statement).
    """
    positive, negative, alpha = (np.asarray(v, dtype=np.float64)
                                 for v in (positive, negative, alpha))
    value = positive if what == "positive" else positive - negative
    rel = float(np.max(np.abs(value - alpha) / alpha))
    label = "τ⁺" if what == "positive" else "τ⁺ − τ⁻"
    at = f"at T = {horizon:g}" if horizon is not None else "at the end"
    extra = {"d_H": _plain(list(d_H)), "value": _plain(value.tolist()),
             "alpha": _plain(alpha.tolist()), "negative_mass": _plain(negative.tolist())}
    if risk is not None:
        extra["risk_final"] = _plain(np.asarray(risk, dtype=np.float64).tolist())
    if what == "positive":
        source = ("seed paper §5 (limit α δ_0, argued informally: a conjecture); "
                  "MATH §5 / EXPERIMENTS E2")
        statement = (f"the negative mass vanishes and τ⁺ → α(d_H) = 2√π Γ((d_H+1)/2)/Γ(d_H/2): "
                     f"τ⁺ {at}, d_H ∈ {list(map(int, d_H))}")
    else:
        source = "seed paper (1-D model, limit α δ_0); MATH §5 / EXPERIMENTS E2"
        statement = (f"{label} = α(d_H) = 2√π Γ((d_H+1)/2)/Γ(d_H/2) {at}, "
                     f"d_H ∈ {list(map(int, d_H))}")
    return make_verdict(id, source, statement,
                        measurement(rel, f"max_dH |{label} − α| / α"), 0.0,
                        "closed form α(d_H)", at_most(rel, rtol), run, extra=extra,
                        kind="conjecture" if what == "positive" else "check")


def predictor_flat_in_orthogonal(spread, risk_final, factor, run=""):
    """The learned predictor at x = u_H + r e⊥ does not depend on r (f* = ‖x_H‖ = 1 there).

    A predictor close to f* in L² can still vary with r by its residual error; the check is
    that the spread over r, max_r f − min_r f, is at most ``factor`` × √(2F(T)) (the RMS
    error of the predictor at the end), i.e. no r-dependence beyond the residual error.
    """
    scale = math.sqrt(2.0 * risk_final)
    return make_verdict("lowdim.orthogonal-independence", "seed paper §5 (f* = ‖x_H‖); E3",
                    "the learned predictor does not depend on the orthogonal part "
                    "(x = u_H + r e⊥)",
                    measurement(spread, "max_r f − min_r f at T"), 0.0,
                    f"target constant in r; residual RMS error √(2F(T)) = {scale:.3g}",
                    at_most(spread, factor * scale), run,
                    extra={"rms_error": scale})


# ---------------------------------------------------------------------------- conservation
def drift_vs_prediction(id, statement, measured, predicted, rtol, atol=0.0, run="",
                        source="MATH §3 (Noether); noether table", unit="drift"):
    """A measured drift of a conserved quantity against its predicted value (a closed form
    of the integrator's per-step identity, summed): |measured − predicted| ≤ atol + rtol|p|."""
    return make_verdict(id, source, statement, measurement(measured, unit), float(predicted),
                    "predicted drift", close(measured, predicted, atol, rtol), run)


def roundoff_zero(id, statement, measured, bound, run="", source="MATH §3, §6; noether table",
                  unit="relative"):
    """A quantity the theory says is exactly 0 stays within round-off ``bound``."""
    return make_verdict(id, source, statement, measurement(measured, unit), 0.0,
                    "exactly conserved / symmetric", at_most(measured, bound), run)


# -------------------------------------------------------------------------- other papers
def parity_learned(test_accuracy, n_test, run="", n_sigma=N_SIGMA, least=0.9):
    """Invariant start: test accuracy on parity ≥ ``least`` (well above chance ½)."""
    acc = float(np.mean(test_accuracy))
    return make_verdict("boolean.invariant-learns-parity", "seed 000 (symmetric Boolean functions)",
                    "from the S_n-invariant start SGD learns parity (test accuracy)",
                    measurement(acc, "test accuracy"), 1.0, "the invariant subspace contains it",
                    at_least(acc, least), run)


def parity_not_learned(test_accuracy, n_test, run="", n_sigma=N_SIGMA):
    """Random start: test accuracy on parity stays at chance ½, within ``n_sigma`` binomial
    standard errors of the mean over the seeds' test sets."""
    acc = np.ravel(np.asarray(test_accuracy, dtype=np.float64))
    se = math.sqrt(0.25 / (n_test * acc.size))
    mean = float(acc.mean())
    return make_verdict("boolean.random-fails-parity", "seed 000 (symmetric Boolean functions)",
                    "from a random start SGD does not generalise on parity (chance on test)",
                    measurement(mean, "test accuracy", se), 0.5, "chance level",
                    close(mean, 0.5, atol=n_sigma * se), run)


def error_rate_in_samples(law, n_samples, errors, run=""):
    """Method of moments with a symmetric input law: parameter error ∝ N^−½."""
    return rate_in_width(f"moments.rate.{law}", "seed 004 (method of moments)",
                         f"{law} inputs: recovery error falls like N^−½", n_samples, errors,
                         -0.5, run, unit="log–log slope in N")


def controls_fail(law, errors, floor, run=""):
    """Method of moments with a non-symmetric input law: the error stays ≥ ``floor`` at every
    N (the identities it relies on need a symmetric law)."""
    e = float(np.min(errors))
    return make_verdict(f"moments.control-fails.{law}", "seed 004 (symmetry of the input law)",
                    f"{law} (non-symmetric) inputs: recovery fails at every N",
                    measurement(e, "min over N of the median error"), None,
                    "no symmetric-law identities", at_least(e, floor), run)


def count_equals_enumeration(widths, activation, counted, enumerated, run=""):
    """Equivalent minima: the closed-form count equals the distinct points of the orbit."""
    return make_verdict(f"equivalent.count.{activation}.k{'-'.join(map(str, widths))}",
                    "seed 002 (equivalent minima)",
                    f"{activation}, widths {list(widths)}: count = distinct networks of the "
                    "enumerated orbit", measurement(int(enumerated), "distinct points"),
                    int(counted), "closed-form count", equal(int(enumerated), int(counted)), run)
