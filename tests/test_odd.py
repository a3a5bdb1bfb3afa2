"""The odd-target reduction (MATH §4) against the full particle flow, and the `odd` experiment."""
import numpy as np
import pytest

from conftest import GAP_RATIO_MAX, N_SIGMA, ODD_RATE_SLACK, ORDER_SLACK, RTOL_ODE, RTOL_ROUNDOFF
import meanfield as mf
from meanfield.models import odd
from meanfield.cli.config import ConfigError, resolve_config
from meanfield.cli.runctx import Interrupted, RunContext
from meanfield.theory.rates import fit_power_law

# -- tolerances ---------------------------------------------------------------------------


def e1_problem(d, seed=0):
    """E1's problem at dimension d: x ∼ N(0, I/d), cubic target with ½E f*² = 1, F* = 0.4."""
    rng = np.random.default_rng(seed)
    return mf.Problem(d, mf.odd_cubic_target(d, rng), mf.GaussianLaw(1.0 / np.sqrt(d)))


def paired(m, d, seed):
    return mf.init_paired(mf.init_sphere_rademacher(m, d, np.random.default_rng(seed)))


# ----------------------------------------------------------------------------- constants
def test_e1_constants():
    d = 60
    red = odd.odd_reduction(e1_problem(d))
    assert red.w_star_norm == pytest.approx(np.sqrt(6 * d / 5), rel=RTOL_ROUNDOFF)
    assert red.F_star == pytest.approx(0.4, rel=RTOL_ROUNDOFF)
    assert red.energy == pytest.approx(1.0, rel=RTOL_ROUNDOFF)
    assert red.v_rho == pytest.approx(1 / d, rel=RTOL_ROUNDOFF)


def test_xbar_by_monte_carlo(rng):
    """X̄ = E[f* x] and ½E f*² of the backend agree with sampling (independent computation)."""
    prob = e1_problem(5)
    red = odd.odd_reduction(prob)
    x = prob.sample_inputs(rng, 400_000)
    y = prob.target_values(x)
    prod = y[:, None] * x
    se = prod.std(axis=0) / np.sqrt(x.shape[0])
    assert np.all(np.abs(prod.mean(axis=0) - red.xbar) < N_SIGMA * se)
    se_e = (0.5 * y * y).std() / np.sqrt(y.size)
    assert abs(0.5 * np.mean(y * y) - red.energy) < N_SIGMA * se_e


def test_reduction_rejects_non_odd_problems():
    d = 4
    with pytest.raises(ValueError, match="not odd"):
        odd.odd_reduction(mf.Problem(d, mf.NormTarget(2)))
    with pytest.raises(ValueError, match="relu"):
        odd.odd_reduction(mf.Problem(d, mf.Teacher(np.zeros(0), np.zeros((0, d)), np.ones(d)),
                                     activation="linear"))
    teacher = mf.Teacher(np.ones(1), np.ones((1, d)))
    with pytest.raises(ValueError, match="not odd"):
        odd.odd_reduction(mf.Problem(d, teacher))


def test_linear_teacher_reduction():
    """f* = ⟨β, x⟩: w* = β, F* = 0 (a linear target is learned exactly)."""
    beta = np.array([1.0, -2.0, 0.5])
    red = odd.odd_reduction(mf.Problem(3, mf.Teacher(np.zeros(0), np.zeros((0, 3)), beta),
                                       mf.GaussianLaw(0.7)))
    assert np.allclose(red.w_star, beta, rtol=RTOL_ROUNDOFF)
    assert abs(red.F_star) < RTOL_ROUNDOFF


# ------------------------------------------------------------ ODE, closed form and bound
def test_isotropic_closed_form_matches_odes():
    """Three independent computations of the ∞-width E1 flow: the (w, S, s) ODE in
    R^{d+d²+1}, the Λ ODE, and the closed form."""
    d = 60
    red = odd.odd_reduction(e1_problem(d))
    t = np.linspace(0.0, 100.0, 201)
    V = 1.0 + 1.0 / d
    closed = odd.isotropic_solution(red, V, t)
    lam = odd.isotropic_solution(red, V, t, method="ode")
    full = odd.moment_ode(red, np.zeros(d), np.eye(d) / d, 1.0, t)
    scale = red.w_star_norm
    assert np.abs(full.w - closed["w"]).max() < RTOL_ODE * scale
    assert np.abs(lam["w"] - closed["w"]).max() < RTOL_ODE * scale
    assert np.abs(full.error - closed["error"]).max() < RTOL_ODE * scale
    # the expected shape of E1: risk 1 → 0.4, most of the drop between t ≈ 10 and t ≈ 50
    risk = closed["risk"]
    assert risk[0] == pytest.approx(1.0, rel=RTOL_ROUNDOFF)
    assert risk[-1] == pytest.approx(0.4, abs=1e-6)
    r10, r50 = np.interp([10.0, 50.0], t, risk)
    assert r10 > 0.9 and r50 < 0.41


def test_bound_holds_and_is_tight_at_zero():
    d = 60
    red = odd.odd_reduction(e1_problem(d))
    V = 1.0 + 1.0 / d
    t = np.linspace(0.0, 200.0, 2001)
    err = odd.isotropic_solution(red, V, t)["error"]
    bound = odd.convergence_bound(red, V, t)
    assert err[0] == pytest.approx(bound[0], rel=RTOL_ROUNDOFF)
    assert np.all(err[1:] < bound[1:])
    # early on the rate is the bound's (cosh 2Λ ≈ 1): the ratio leaves 1 slowly
    assert err[1] / bound[1] > 0.999


def test_moment_ode_preserves_symmetry_of_S(rng):
    d = 5
    red = odd.odd_reduction(e1_problem(d))
    a, b, w = odd.moment_particles(rng.standard_normal(d) * 0.1, np.eye(d), 1.0)
    w0, S0, s0 = odd.moments(a, b, w)
    out = odd.moment_ode(red, w0, S0, s0, [0.0, 5.0, 20.0], return_S=True)
    assert np.abs(out.S - np.swapaxes(out.S, 1, 2)).max() < RTOL_ROUNDOFF
    with pytest.raises(ValueError, match="symmetric"):
        odd.moment_ode(red, w0, S0 + np.triu(np.ones((d, d)), 1), s0, [1.0])


def test_moment_particles_reproduce_moments(rng):
    d = 6
    theta = rng.standard_normal((40, d + 1))
    w0, S0, s0 = odd.moments(theta[:, 0], theta[:, 1:])
    a, b, wts = odd.moment_particles(w0, S0, s0)
    w1, S1, s1 = odd.moments(a, b, wts)
    assert np.allclose(w1, w0, rtol=0, atol=RTOL_ROUNDOFF * np.abs(S0).max())
    assert np.allclose(S1, S0, rtol=0, atol=RTOL_ROUNDOFF * np.abs(S0).max())
    assert s1 == pytest.approx(s0, rel=RTOL_ROUNDOFF)
    assert odd.pair_defect(a, b) == 0.0
    with pytest.raises(ValueError, match="not those of a measure"):
        odd.moment_particles(np.ones(d), np.eye(d), 1.0)  # |E ab| > √(E a² E b²)


# ---------------------------------------------------------- particle flow vs reduction
@pytest.mark.parametrize("integrator", odd.REDUCIBLE_INTEGRATORS)
@pytest.mark.parametrize("m", [4, 16, 64])
def test_paired_flow_is_the_reduction_to_roundoff(m, integrator):
    """A paired start run with exact gradients has, step for step, the moments of the
    reduced flow advanced by the same integrator; the predictor stays linear."""
    d, dt, n = 6, 0.1, 60
    prob = e1_problem(d)
    red = odd.odd_reduction(prob)
    p0 = paired(m, d, seed=m)
    sim = mf.Simulation(prob, p0, dt, n, integrator=integrator, record_every=n)
    sim.advance()
    w0, S0, s0 = odd.moments(p0.a, p0.b)
    ref = odd.discrete_reduced_flow(red, w0, S0, s0, dt, n, integrator, record_every=n)
    w, S, s = odd.moments(sim.a, sim.b)
    scale = red.w_star_norm
    assert np.abs(w - ref.w[-1]).max() < RTOL_ROUNDOFF * scale
    assert s == pytest.approx(ref.s[-1], rel=RTOL_ROUNDOFF)
    res = sim.result()
    # risk identity F = F* + (v_ρ/2)‖w − w*‖² on the recorded risks (exact backend)
    assert np.abs(res.risk - ref.risk).max() < RTOL_ROUNDOFF
    # even part: on probes, exactly, and the pairing itself
    x = prob.sample_inputs(np.random.default_rng(1), 64)
    f_even, tau = odd.even_part_on_probes(sim.a, sim.b, sim.weights, x)
    assert np.abs(f_even).max() < RTOL_ROUNDOFF * tau.max()
    f2 = mf.ExactBackend(prob).risk(sim.a, sim.b, sim.weights)  # O(1)
    assert abs(odd.even_part_norm_sq(sim.a, sim.b, sim.weights, red.v_rho)) < \
        RTOL_ROUNDOFF * f2
    assert odd.pair_defect(sim.a, sim.b) < RTOL_ROUNDOFF


@pytest.mark.parametrize("integrator, order", [("euler", 1), ("heun", 2)])
def test_paired_flow_vs_ode_at_integrator_order(integrator, order):
    """max_t ‖w_particles(t) − w_ODE(t)‖ falls like dt^order, for every m."""
    d, T = 6, 8.0
    prob = e1_problem(d)
    red = odd.odd_reduction(prob)
    dts = np.array([0.2, 0.1, 0.05])
    for m in (4, 32):
        p0 = paired(m, d, seed=10 + m)
        w0, S0, s0 = odd.moments(p0.a, p0.b)
        errors = []
        for dt in dts:
            n = int(round(T / dt))
            every = int(round(0.4 / dt))
            sim = mf.Simulation(prob, p0, dt, n, integrator=integrator, record_every=every)
            ws = [odd.linear_coefficient(sim.a, sim.b)]
            while sim.step_index < n:
                sim.advance(every)
                ws.append(odd.linear_coefficient(sim.a, sim.b))
            t = np.arange(len(ws)) * every * dt
            ode = odd.moment_ode(red, w0, S0, s0, t)
            errors.append(np.linalg.norm(np.array(ws) - ode.w, axis=1).max())
        slope = fit_power_law(dts, errors).slope
        assert abs(slope - order) < ORDER_SLACK, (m, errors, slope)
        # the error is a time-step error, far above the ODE's own tolerance
        assert errors[-1] > 1e3 * RTOL_ODE * red.w_star_norm


def test_risk_decomposition_for_any_measure(rng):
    """F(μ) = F* + (v_ρ/2)‖w − w*‖² + ½E f_e² for a non-symmetric μ, with E f_e² by the
    closed-form |z| kernel (independent of the ReLU kernel the backend uses)."""
    d, m = 5, 7
    prob = e1_problem(d)
    red = odd.odd_reduction(prob)
    a, b = rng.standard_normal(m), rng.standard_normal((m, d))
    wts = rng.random(m)
    wts /= wts.sum()
    F = mf.ExactBackend(prob).risk(a, b, wts)
    even = odd.even_part_norm_sq(a, b, wts, red.v_rho, block=3)
    lin = odd.linear_risk(red, odd.linear_coefficient(a, b, wts))
    assert even > 1e-3  # a random measure has an even part
    assert F == pytest.approx(lin + 0.5 * even, rel=RTOL_ROUNDOFF)
    # and E f_e² against Monte Carlo on the even part evaluated through predictions
    x = prob.sample_inputs(rng, 200_000)
    f_even, _ = odd.even_part_on_probes(a, b, wts, x)
    sq = f_even ** 2
    assert abs(sq.mean() - even) < N_SIGMA * sq.std() / np.sqrt(sq.size)


def test_sign_flip_defect():
    d = 4
    p = paired(8, d, 3)
    u = np.ones(d)
    assert odd.sign_flip_defect(p.a, p.b, p.weights, u) < RTOL_ROUNDOFF
    q = mf.init_sphere_rademacher(8, d, np.random.default_rng(3))
    q.a[:] = 1.0  # all output weights positive: far from symmetric
    assert odd.sign_flip_defect(q.a, q.b, q.weights, u) > 0.5


def test_discrete_reduction_refuses_nonlinear_steps():
    red = odd.odd_reduction(e1_problem(4))
    with pytest.raises(ValueError, match="does not reduce"):
        odd.discrete_reduced_flow(red, np.zeros(4), np.eye(4), 1.0, 0.1, 3, "euler_projected")


def _random_start_gaps(d, widths, seeds, dt, n):
    prob = e1_problem(d)
    red = odd.odd_reduction(prob)
    t = np.arange(n + 1) * dt
    ref = odd.isotropic_solution(red, 1.0 + 1.0 / d, t)["w"]
    gaps = np.empty((len(widths), len(seeds)))
    for i, m in enumerate(widths):
        for j, s in enumerate(seeds):
            p0 = mf.init_sphere_rademacher(m, d, np.random.default_rng([s, m]))
            sim = mf.Simulation(prob, p0, dt, n)
            ws = [odd.linear_coefficient(sim.a, sim.b)]
            for _ in range(n):
                sim.step()
                ws.append(odd.linear_coefficient(sim.a, sim.b))
            gaps[i, j] = np.linalg.norm(np.array(ws) - ref, axis=1).max()
    return gaps


def test_random_start_gap_decreases_with_m():
    gaps = _random_start_gaps(d=8, widths=[8, 128], seeds=[0, 1, 2], dt=0.25, n=40)
    means = gaps.mean(axis=1)
    assert means[1] / means[0] < GAP_RATIO_MAX, gaps


@pytest.mark.slow
def test_random_start_gap_slope():
    widths = [8, 32, 128, 512]
    gaps = _random_start_gaps(d=8, widths=widths, seeds=list(range(8)), dt=0.25, n=60)
    slope = fit_power_law(widths, gaps.mean(axis=1)).slope
    assert abs(slope + 0.5) < ODD_RATE_SLACK, (gaps, slope)


# ------------------------------------------------------------------------ the experiment
def tiny_config(**over):
    from meanfield.experiments import odd as E

    # Euler: the experiment's default is an adaptive pair; these checks are of the step-for-step
    # reduction of a fixed-step run
    base = {"d": 6, "widths": [4, 8], "seeds": [0, 1], "n_steps": 30, "dt": 0.2,
            "integrator": "euler", "include_sampled": True,
            "record_every": 5, "n_probe": 16, "batch_size": 64,
            "sampled_inits": ["sphere", "paired"]}
    base.update(over)
    cfg = resolve_config(E.DEFAULTS, E.CHOICES, base, types=E.TYPES)
    E.check(cfg)
    return E, cfg


def test_experiment_config_checks():
    from meanfield.experiments import odd as E

    for bad in ({"widths": [5, 8]}, {"inits": ["gaussian"]}, {"seeds": []},
                {"n_steps": 0}, {"ode_rtol": 1e-3},
                {"inits": ["sphere"], "sampled_inits": ["paired"], "include_sampled": True}):
        cfg = resolve_config(E.DEFAULTS, E.CHOICES, bad)
        with pytest.raises(ConfigError):
            E.check(cfg)
    # without sampled runs, sampled_inits does nothing: its default must not refuse inits
    E.check(resolve_config(E.DEFAULTS, E.CHOICES, {"inits": ["paired"]}))
    with pytest.raises(ConfigError):
        resolve_config(E.DEFAULTS, E.CHOICES, {"integrator": "momentum"})
    assert E.NAME == "odd" and E.DEFAULTS["widths"] == [10, 50, 128, 1024]


def test_fit_slope_recovers_power_law():
    from meanfield.experiments.odd import fit_slope

    m = np.array([10.0, 50.0, 128.0, 1024.0])
    slope, se = fit_slope(m, 3.0 * m ** -0.5)
    assert slope == pytest.approx(-0.5, abs=RTOL_ROUNDOFF) and se < RTOL_ROUNDOFF


class _StopAfter(RunContext):
    """A context whose Ctrl-C arrives after ``n`` polls."""

    def __init__(self, out_dir, n):
        super().__init__(out_dir, quiet=True)
        self.calls, self.n = 0, n

    def stop_requested(self):
        self.calls += 1
        return self.calls > self.n


def test_experiment_runs_interrupts_and_resumes(tmp_path):
    E, cfg = tiny_config()
    full = E.run(cfg, RunContext(tmp_path / "full", quiet=True))
    for name in ("odd_risk.png", "odd_distance.png", "odd_gap.png", "odd_symmetry.png",
                 "odd_curves.npz"):
        assert (tmp_path / "full" / name).exists()
    assert full["gap_same_dt_paired_max"] < RTOL_ROUNDOFF * full["w_star_norm"]
    assert full["risk_identity_paired_max"] < RTOL_ROUNDOFF
    assert full["risk_decomposition_residual_max"] < RTOL_ROUNDOFF
    assert full["even_probe_paired_max"] < RTOL_ROUNDOFF
    assert full["pair_defect_paired_max"] < RTOL_ROUNDOFF
    assert full["pair_defect_paired_sampled_max"] > 1e-6  # SGD batches are not symmetric
    assert full["bound_ratio_inf_max"] <= 1.0 + RTOL_ROUNDOFF
    assert np.isfinite(full["gap_slope"]) and full["n_sub_runs"] == 10

    # Ctrl-C in the middle of a sub-run, then --resume: the same numbers, bit for bit
    out = tmp_path / "cut"
    with pytest.raises(Interrupted):
        E.run(cfg, _StopAfter(out, 40))
    assert any((out / "parts").glob("*.npz")) and any((out / "checkpoints").glob("*.npz"))
    resumed = E.run(cfg, RunContext(out, quiet=True, resuming=True))
    for key, value in full.items():
        if not key.startswith("wall_time"):
            assert resumed[key] == value or (np.isnan(value) and np.isnan(resumed[key])), key
    assert not any((out / "checkpoints").glob("*.npz"))


def test_experiment_with_dopri5_follows_the_moment_ode(tmp_path):
    """The default integrator: the paired run agrees with its moment ODE to the tolerance,
    and an interrupted adaptive sub-run resumes bit for bit."""
    E, cfg = tiny_config(integrator="dopri5", rtol=1e-10, atol=1e-12, include_sampled=False,
                         n_records=7)
    full = E.run(cfg, RunContext(tmp_path / "full", quiet=True))
    assert full["gap_ode_paired_max"] < 1e-8 * full["w_star_norm"]
    out = tmp_path / "cut"
    with pytest.raises(Interrupted):
        E.run(cfg, _StopAfter(out, 25))
    resumed = E.run(cfg, RunContext(out, quiet=True, resuming=True))
    for key, value in full.items():
        if not key.startswith("wall_time"):
            assert resumed[key] == value or (np.isnan(value) and np.isnan(resumed[key])), key
