"""Integrators: convergence orders by fitted slope, conservation identities, monotone risk."""
import numpy as np
import pytest

from conftest import EPS, STEP_ULPS
import meanfield as mf
from meanfield.engine.integrators import INTEGRATORS, orbit_rescale
from meanfield.models.particles import charge_scale
from meanfield.theory.rates import fit_power_law


def _problem(rng, d=4):
    return mf.Problem(d, mf.Teacher(rng.standard_normal(2), rng.standard_normal((2, d))))


def _final_state(problem, p, integrator, dt, horizon):
    r = mf.simulate_flow(problem, p, dt, int(round(horizon / dt)), integrator=integrator)
    assert r.status == "ok", r.message
    return np.concatenate([r.particles.a, r.particles.b.ravel()])


@pytest.mark.parametrize("name,dts,expected", [
    ("euler", [0.08, 0.04, 0.02, 0.01], 1.0),
    ("euler_projected", [0.08, 0.04, 0.02, 0.01], 1.0),
    ("heun", [0.08, 0.04, 0.02, 0.01], 2.0),
    ("rk4", [0.4, 0.2, 0.1, 0.05], 4.0),
])
def test_order_from_log_log_slope(rng, name, dts, expected):
    """Global error at a fixed horizon against a fine RK4 solution, slope fitted over dt."""
    problem = _problem(rng)
    p = mf.init_gaussian(5, 4, rng, scale_b=1.0)
    horizon = 1.6
    exact = _final_state(problem, p, "rk4", 0.0025, horizon)
    errs = [np.abs(_final_state(problem, p, name, dt, horizon) - exact).max() for dt in dts]
    slope = fit_power_law(dts, errs).slope
    assert abs(slope - expected) < 0.25, (slope, errs)


def test_euler_step_changes_q_by_exactly_dt2_times_gradient_norms(rng):
    """Q⁺ − Q = η²(g_a² − ‖g_b‖²) per particle (the O(η) term a g_a − ⟨b, g_b⟩ is zero)."""
    d, m, dt = 6, 40, 0.3
    problem = mf.Problem(d, mf.NormTarget(3))
    p = mf.init_gaussian(m, d, rng, scale_b=1.0)
    sim = mf.init(problem, p, dt, integrator="euler")
    ga, gb, _ = sim.backend.gradients(sim.a, sim.b, sim.weights)
    a0, b0 = sim.a.copy(), sim.b.copy()
    q_before = a0 ** 2 - (b0 ** 2).sum(1)
    sim.step()
    q_after = sim.a ** 2 - (sim.b ** 2).sum(1)
    predicted = dt ** 2 * (ga ** 2 - (gb ** 2).sum(1))
    # in units of EPS·M_j, M_j = a_j² + ‖b_j‖² before or after the step (the one unit of the
    # ΔQ identity, see STEP_ULPS; max(a², ‖b‖²) ≥ M_j/2 was the unit of the old 64-ulp bound)
    magnitude = np.maximum(charge_scale(a0, b0), charge_scale(sim.a, sim.b))
    assert np.all(np.abs((q_after - q_before) - predicted) <= STEP_ULPS * EPS * magnitude)
    assert np.abs(predicted).max() > 1e3 * STEP_ULPS * EPS * magnitude.max()  # it has teeth


def test_projected_euler_conserves_q_to_round_off(rng):
    d, m = 5, 12
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_gaussian(m, d, rng, scale_b=1.0)
    r = mf.simulate_flow(problem, p, 0.05, 1000, integrator="euler_projected")
    scale = np.abs(p.Q()).max()
    assert r.max_abs_Q_drift <= 1e-12 * scale
    # and the flow really moved
    assert np.abs(r.particles.a - p.a).max() > 1e-2


def test_projected_euler_keeps_weight_decay_law(rng):
    d, m, lam, dt, n = 4, 6, 0.3, 0.02, 300
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_gaussian(m, d, rng, scale_b=1.0)
    r = mf.simulate_flow(problem, p, dt, n, integrator="euler_projected", weight_decay=lam)
    q = r.particles.Q()
    np.testing.assert_allclose(q, p.Q() * np.exp(-2 * lam * dt * n), rtol=1e-12, atol=1e-14)


def test_orbit_rescale_keeps_predictor_and_hits_target(rng):
    a = rng.standard_normal(8)
    b = rng.standard_normal((8, 3))
    q = rng.standard_normal(8)
    a2, b2 = orbit_rescale(a, b, q, rate_a=0.5, rate_b=2.0)
    np.testing.assert_allclose(a2 ** 2 / 0.5 - (b2 ** 2).sum(1) / 2.0, q, rtol=0, atol=1e-13)
    x = rng.standard_normal((20, 3))
    np.testing.assert_allclose(np.maximum(x @ b2.T, 0) * a2, np.maximum(x @ b.T, 0) * a,
                               rtol=1e-13, atol=1e-14)


def test_momentum_visibly_breaks_conservation(rng):
    """At the same effective step dt/(1 − μ) and horizon, heavy ball drifts far more than Euler."""
    problem = _problem(rng)
    p = mf.init_gaussian(6, 4, rng, scale_b=1.0)
    mu, dt, n = 0.9, 0.002, 500
    euler = mf.simulate_flow(problem, p, dt / (1 - mu), n, integrator="euler")
    heavy = mf.simulate_flow(problem, p, dt, n, integrator="momentum", momentum=mu)
    assert heavy.max_abs_Q_drift > 5 * euler.max_abs_Q_drift


def test_euler_risk_never_increases_for_small_dt(rng):
    d = 6
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(64, d, rng)
    r = mf.simulate_flow(problem, p, 0.01, 400)
    assert np.all(np.diff(r.risk) <= 1e-15)
    assert r.risk[-1] < 0.9 * r.risk[0]


def test_energy_identity_for_euler(rng):
    """dF/dt = −∫|v|² dμ: F(t_n) − F(0) ≈ −Σ dt ∫|v|² dμ with O(dt) error per unit time."""
    d = 5
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(32, d, rng)
    gaps = []
    for dt in (0.02, 0.01, 0.005):
        r = mf.simulate_flow(problem, p, dt, int(round(1.0 / dt)))
        predicted = -dt * r.dissipation[:-1].sum()
        gaps.append(abs((r.risk[-1] - r.risk[0]) - predicted))
    slope = fit_power_law([0.02, 0.01, 0.005], gaps).slope
    assert abs(slope - 1.0) < 0.2


def test_registry_lists_every_integrator():
    assert {"euler", "heun", "rk4", "euler_projected", "momentum", "bosh3", "dopri5"} <= set(INTEGRATORS)
    for cls in INTEGRATORS.values():
        assert cls.order >= 1 and cls.name
