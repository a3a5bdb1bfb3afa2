"""Conservation laws (MATH §6): exact per-step identities, fixed-horizon orders, round-off laws,
broken laws, angular momentum, energy identity."""
import numpy as np
import pytest

from conftest import (ANGMOM_ROUNDOFF, ANGMOM_SAMPLED_MIN, ENERGY_HALVING_MAX, ENERGY_LEADING_RTOL, EPS, ORDER_SLACK, PROJECTED_RTOL, RK4_ENERGY_RTOL, STEP_ULPS)
import meanfield as mf
from meanfield.theory import conservation as C
from meanfield.kernels.threads import get_threads, set_threads


# -- tolerances ---------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These problems are tiny (m ≤ 64): one thread avoids parallel start-up costs, which on
    a shared machine dominate; the results do not depend on the thread count."""
    old = get_threads()
    set_threads(1)
    yield
    set_threads(old)


#: weight decay together with unequal per-layer rates: the case the decoupled decay makes lawful.
WD_RATES = {"weight_decay": 0.4, "rate_a": 2.0, "rate_b": 0.5}


def _unbalanced(m, d, rng):
    """|a| ∈ [¼, ¾], ‖b‖ = 1: Q_j < 0, so no b_j reaches 0 (where the ReLU field is not
    Lipschitz and every integrator's drift is O(dt))."""
    b = rng.standard_normal((m, d))
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return mf.Particles(rng.choice([-1.0, 1.0], m) * rng.uniform(0.25, 0.75, m), b)


def _norm_problem(d=5, d_H=2):
    return mf.Problem(d=d, target=mf.NormTarget(d_H=d_H))


def _teacher_problem(rng, d=5, activation="relu"):
    b = rng.standard_normal((3, d))
    return mf.Problem(d=d, target=mf.Teacher(np.array([1.0, -0.5, 0.8]), b,
                                             beta=rng.standard_normal(d)),
                      activation=activation)


def _drift(problem, p0, dt, T, integrator="euler", **options):
    r = mf.simulate_flow(problem, p0, dt=dt, n_steps=int(round(T / dt)), integrator=integrator,
                    **options)
    assert r.status == "ok", r.message
    scale = np.max(C.charge_scale(p0.a, p0.b))
    return np.max(np.abs(r.particles.Q() - p0.Q())) / scale


# ---------------------------------------------------------------------- Euler identity
@pytest.mark.parametrize("problem_kind", ["norm", "teacher"])
def test_euler_step_identity_to_a_few_ulp(rng, problem_kind):
    """One Euler step changes Q_j by exactly dt²(g_a² − ‖g_b‖²) (MATH §6)."""
    problem = _norm_problem() if problem_kind == "norm" else _teacher_problem(rng)
    p = mf.init_gaussian(24, 5, rng)
    backend = mf.ExactBackend(problem)
    a, b = p.a, p.b
    for dt in (0.3, 0.05, 0.001):
        ga, gb, _ = backend.gradients(a, b, p.weights)
        a1, b1 = a - dt * ga, b - dt * gb
        dq = C.rescaling_charge(a1, b1) - C.rescaling_charge(a, b)
        predicted = dt ** 2 * (ga ** 2 - np.einsum("ij,ij->i", gb, gb))
        scale = np.maximum(C.charge_scale(a, b), C.charge_scale(a1, b1))
        ulps = np.max(np.abs(dq - predicted) / (EPS * scale))
        assert ulps <= STEP_ULPS, f"dt = {dt}: {ulps:.2f} ulps"
        # the O(dt) term is absent: the increment really is second order
        assert np.max(np.abs(dq)) < 10 * dt ** 2 * np.max(np.abs(ga) ** 2 + np.sum(gb ** 2, 1))


@pytest.mark.parametrize("lam,ra,rb", [(0.4, 1.0, 1.0), (0.0, 2.0, 0.5), (0.4, 2.0, 0.5)])
def test_euler_step_closed_form_with_decay_and_rates(rng, lam, ra, rb):
    """v = −η ∘ g − λθ: one Euler step gives Q⁺ = (1 − λdt)² Q + dt²(η_a g_a² − η_b‖g_b‖²) with
    Q = a²/η_a − ‖b‖²/η_b (MATH §6 with rates), computed here from the backend's gradients and
    compared with the engine's own step."""
    problem = _norm_problem()
    p = _unbalanced(24, 5, rng)
    backend = mf.ExactBackend(problem)
    for dt in (0.3, 0.05, 0.001):
        sim = mf.Simulation(problem, p, dt, 1, weight_decay=lam, rate_a=ra, rate_b=rb)
        sim.step()
        ga, gb, _ = backend.gradients(p.a, p.b, p.weights)
        q = C.rescaling_charge(p.a, p.b, ra, rb)
        predicted = (1 - lam * dt) ** 2 * q + dt ** 2 * (ra * ga ** 2
                                                          - rb * np.einsum("ij,ij->i", gb, gb))
        q1 = C.rescaling_charge(sim.a, sim.b, ra, rb)
        scale = np.maximum(C.charge_scale(p.a, p.b, ra, rb), C.charge_scale(sim.a, sim.b, ra, rb))
        ulps = np.max(np.abs(q1 - predicted) / (EPS * scale))
        assert ulps <= STEP_ULPS, f"dt = {dt}: {ulps:.2f} ulps"
        # and the library's stage formula gives the same increment
        k = sim.velocity(p.a, p.b)[:2]
        dq = C.predicted_charge_increment([(p.a, p.b, k[0], k[1])], dt, "euler", lam, ra, rb)
        assert np.max(np.abs(q1 - q - dq) / (EPS * scale)) <= STEP_ULPS


@pytest.mark.parametrize("integrator,options", [
    ("euler", {}),
    ("euler", {"weight_decay": 0.4}),
    ("euler", {"rate_a": 2.0, "rate_b": 0.5}),
    ("euler", WD_RATES),
    ("heun", {}),
    ("heun", WD_RATES),
    ("rk4", {"weight_decay": 0.4}),
    ("rk4", WD_RATES),
    ("momentum", {"momentum": 0.8, "weight_decay": 0.2}),
    ("momentum", {"momentum": 0.8, **WD_RATES}),
])
def test_monitor_step_identities(rng, integrator, options):
    """Every integrator's measured ΔQ_j equals its exact discrete identity (Cooper's matrix for
    Runge–Kutta, 2μ⟨θ,u⟩_S + ... for momentum) to a few ulp, at every step."""
    sim = mf.Simulation(_norm_problem(), _unbalanced(16, 5, rng), 0.05, 20, integrator=integrator,
                        **options)
    h = C.LawMonitor(sim, blocks={}).run()
    assert sim.status == "ok"
    assert h["step_ulps"].size == 20
    assert np.max(h["step_ulps"]) <= STEP_ULPS


def test_monitor_can_continue_in_chunks():
    """run(5) twice records the same history as run(10) once."""
    histories = []
    for chunks in ((10,), (5, 5)):
        sim = mf.Simulation(_norm_problem(), _unbalanced(6, 5, np.random.default_rng(3)), 0.05, 10)
        mon = C.LawMonitor(sim)
        for n in chunks:
            h = mon.run(n)
        histories.append(h)
    assert set(histories[0]) == set(histories[1])
    for key in histories[0]:
        assert np.array_equal(histories[0][key], histories[1][key]), key
    assert histories[0]["t"].size == 11 and histories[0]["step_ulps"].size == 10


def test_cooper_matrices():
    """c = ββᵀ − βα − (βα)ᵀ: Euler [1], Heun ¼[[1, −1], [−1, 1]], and Σ c = 0 for order ≥ 2."""
    assert np.array_equal(C.cooper_matrix("euler"), [[1.0]])
    assert np.allclose(C.cooper_matrix("heun"), 0.25 * np.array([[1, -1], [-1, 1]]), atol=0)
    c4 = C.cooper_matrix("rk4")
    assert np.allclose(c4, c4.T) and abs(c4.sum()) < 1e-15
    with pytest.raises(ValueError, match="no tableau"):
        C.cooper_matrix("momentum")


def test_monitor_detects_a_tableau_that_does_not_match(rng, monkeypatch):
    alpha, beta = C.RK_TABLEAUS["heun"]
    monkeypatch.setitem(C.RK_TABLEAUS, "heun", (0.5 * alpha, beta))
    sim = mf.Simulation(_norm_problem(), _unbalanced(4, 5, rng), 0.05, 2, integrator="heun")
    with pytest.raises(RuntimeError, match="does not match"):
        C.LawMonitor(sim, blocks={}).run()


# --------------------------------------------------------------------- fixed horizon
def test_fixed_horizon_orders(rng):
    """Euler's drift over a fixed horizon is O(dt) (slope 1); Heun's is O(dt³) because its
    per-step drift is dt²/4 ⟨k₁ − k₂, k₁ − k₂⟩_S = O(dt⁴)."""
    problem = _norm_problem()
    p0 = _unbalanced(8, 5, rng)
    dts = np.array([0.1, 0.05, 0.025, 0.0125])
    for integrator, slope in (("euler", 1.0), ("heun", 3.0)):
        drift = [_drift(problem, p0, dt, 1.0, integrator) for dt in dts]
        fitted = C.loglog_slope(dts, drift)
        assert abs(fitted - slope) <= ORDER_SLACK, f"{integrator}: slope {fitted:.3f}"


@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.05, "rate_a": 2.0, "rate_b": 0.5}])
def test_projected_steps_at_roundoff_over_1e4_steps(rng, options):
    """Projected Euler puts a²/η_a − ‖b‖²/η_b on e^{−2λt} × initial after every step: the
    drift after 10⁴ steps (T = 100) is round-off, relative to max M_j(0)."""
    problem = _norm_problem(d=3, d_H=1)
    p0 = mf.init_gaussian(4, 3, rng)
    lam, ra, rb = (options.get(k, v) for k, v in (("weight_decay", 0.0), ("rate_a", 1.0),
                                                   ("rate_b", 1.0)))
    T = 100.0
    r = mf.simulate_flow(problem, p0, dt=0.01, n_steps=10_000, integrator="euler_projected",
                    record_every=10_000, **options)
    assert r.status == "ok"
    q0 = C.rescaling_charge(p0.a, p0.b, ra, rb)
    q = C.rescaling_charge(r.particles.a, r.particles.b, ra, rb)
    scale = np.max(C.charge_scale(p0.a, p0.b, ra, rb))
    assert np.max(np.abs(C.charge_drift(q0, q, T, 2 * lam))) / scale <= PROJECTED_RTOL
    assert r.risk[-1] < 0.5 * r.risk[0]  # it did move


def test_momentum_drift_does_not_vanish_at_fixed_friction(rng):
    """Heavy ball as the ODE θ'' + γθ' = v with step h (μ = 1 − γh, dt = h²): the drift of
    Q_j over a fixed ODE time converges to a non-zero limit as h → 0."""
    problem = _norm_problem()
    p0 = _unbalanced(8, 5, rng)
    drifts = []
    for h in (0.1, 0.05, 0.025):
        drifts.append(_drift(problem, p0, h * h, 1.0 * h, "momentum", momentum=1.0 - h))
    assert min(drifts) > 5e-3  # ≫ round-off; Euler's drift here is O(dt) = O(h²)
    assert drifts[-1] > 0.7 * drifts[0], drifts  # O(h) decay would give 0.25, O(h²) 0.0625


def test_momentum_at_fixed_mu_is_first_order(rng):
    """At fixed μ the heavy-ball iteration is a consistent (time-rescaled) discretisation of
    the gradient flow: the per-step law is broken, but the fixed-horizon drift is O(dt),
    with a constant much larger than Euler's."""
    problem = _norm_problem()
    p0 = _unbalanced(8, 5, rng)
    dts = np.array([0.01, 0.005, 0.0025])
    drift = [_drift(problem, p0, dt, 0.5, "momentum", momentum=0.5) for dt in dts]
    assert abs(C.loglog_slope(dts, drift) - 1.0) <= 2 * ORDER_SLACK
    # Euler over the same flow time (the buffer rescales time by 1/(1 − μ) = 2)
    assert drift[-1] > 3 * _drift(problem, p0, dts[-1], 1.0, "euler")


# ---------------------------------------------------------------- weight decay / rates
def test_charge_law_cases():
    """Decoupled decay: Q decays at 2λ whatever the rates (the rates only define Q)."""
    assert C.charge_law().decay_rate == 0.0
    assert C.charge_law(0.0, 2.0, 0.5).decay_rate == 0.0
    for ra, rb in ((1.0, 1.0), (2.0, 2.0), (2.0, 0.5)):
        law = C.charge_law(0.3, ra, rb)
        assert law.decay_rate == 2 * 0.3 and "e^(−2λt)" in law.statement
    with pytest.raises(ValueError, match="weight_decay"):
        C.charge_law(-1.0)
    with pytest.raises(ValueError, match="positive"):
        C.charge_law(0.3, 2.0, 0.0)


@pytest.mark.parametrize("ra,rb", [(2.0, 2.0), (2.0, 0.5)])
def test_weight_decay_law_decays_at_2_lambda_for_any_rates(rng, ra, rb):
    """The engine's velocity −η ∘ g − λθ gives a²/η_a − ‖b‖²/η_b = e^{−2λt} × initial, also
    for η_a = η_b = η ≠ 1 (not e^{−2ηλt}) and for η_a ≠ η_b: the Euler drift from that law is
    O(dt), while the law with the rate inside (e^{−2η_aλt}) stays O(1) away."""
    problem = _norm_problem()
    p0 = _unbalanced(8, 5, rng)
    lam, T = 0.5, 1.0
    dts = (0.02, 0.01, 0.005)
    q0 = C.rescaling_charge(p0.a, p0.b, ra, rb)
    scale = np.max(C.charge_scale(p0.a, p0.b, ra, rb))
    drift, wrong = [], []
    for dt in dts:
        r = mf.simulate_flow(problem, p0, dt=dt, n_steps=int(round(T / dt)), weight_decay=lam,
                        rate_a=ra, rate_b=rb)
        q = C.rescaling_charge(r.particles.a, r.particles.b, ra, rb)
        law = C.charge_law(lam, ra, rb)
        drift.append(np.max(np.abs(C.charge_drift(q0, q, T, law.decay_rate))) / scale)
        wrong.append(np.max(np.abs(C.charge_drift(q0, q, T, 2 * ra * lam))) / scale)
        assert r.q_drift[-1] == pytest.approx(drift[-1] * scale, rel=1e-12)  # engine agrees
    assert abs(C.loglog_slope(dts, drift) - 1.0) <= ORDER_SLACK
    assert min(wrong) > 100 * drift[-1]


def test_charge_law_distance_is_label_free(rng):
    from scipy.stats import wasserstein_distance

    q0 = rng.standard_normal(50)
    w = rng.uniform(size=50)
    w /= w.sum()
    perm = rng.permutation(50)
    assert C.charge_law_distance(q0, q0, w) == 0.0
    q = q0 + 0.1 * rng.standard_normal(50)
    assert C.charge_law_distance(q0, q, w) == pytest.approx(wasserstein_distance(q, q0, w, w),
                                                           rel=1e-12)
    # permuting particles together with their weights does not change the law
    assert C.charge_law_distance(q0[perm], q[perm], w[perm]) == pytest.approx(
        C.charge_law_distance(q0, q, w), rel=1e-12)


# ------------------------------------------------------------------- linear network
def test_linear_balance_matrix(rng):
    """σ(z) = z: every entry of B Bᵀ − a aᵀ changes per Euler step by exactly
    dt²(K_b K_bᵀ − k_a k_aᵀ) and over a fixed horizon by O(dt^p) (RK4: p = 4)."""
    problem = _teacher_problem(rng, activation="linear")
    p0 = mf.init_gaussian(6, 5, rng)
    sim = mf.Simulation(problem, p0, 0.05, 20)
    mon = C.LawMonitor(sim, blocks={})
    h = mon.run()
    assert mon.balance
    assert np.max(h["balance_ulps"]) <= STEP_ULPS
    scale = np.max(C.charge_scale(p0.a, p0.b))
    drift = []
    for dt in (0.1, 0.05, 0.025):
        r = mf.simulate_flow(problem, p0, dt=dt, n_steps=int(round(1.0 / dt)), integrator="rk4")
        M = C.balance_matrix(r.particles.a, r.particles.b)
        drift.append(np.max(np.abs(M - C.balance_matrix(p0.a, p0.b))) / scale)
    assert drift[-1] < 1e-6
    assert abs(C.loglog_slope([0.1, 0.05, 0.025], drift) - 4.0) <= 2 * ORDER_SLACK


@pytest.mark.parametrize("integrator", ["euler", "rk4", "momentum"])
def test_linear_balance_identity_with_decay_and_rates(rng, integrator):
    """σ(z) = z with λ > 0 and η_a ≠ η_b: M = B Bᵀ/η_b − a aᵀ/η_a changes per step exactly as
    −2λdtΣβM(Y) + dt²Σc(K_b K_bᵀ/η_b − k_a k_aᵀ/η_a) (momentum: its own identity), and the
    Runge–Kutta flow follows M(t) = e^{−2λt} M(0)."""
    problem = _teacher_problem(rng, activation="linear")
    p0 = mf.init_gaussian(6, 5, rng)
    sim = mf.Simulation(problem, p0, 0.05, 20, integrator=integrator, momentum=0.8, **WD_RATES)
    h = C.LawMonitor(sim, blocks={}).run()
    assert np.max(h["balance_ulps"]) <= STEP_ULPS
    assert np.max(h["step_ulps"]) <= STEP_ULPS
    if integrator == "rk4":  # O(dt⁴) away from the law at dt = 0.05, T = 1
        assert h["balance_drift"][-1] / C.charge_scale(p0.a, p0.b, 2.0, 0.5).max() < 1e-5


def test_balance_matrix_is_only_for_linear(rng):
    sim = mf.Simulation(_norm_problem(), _unbalanced(4, 5, rng), 0.05, 2)
    with pytest.raises(ValueError, match="linear activation"):
        C.LawMonitor(sim, balance=True)
    assert not C.LawMonitor(sim).balance


# ----------------------------------------------------------------- angular momentum
def test_rotation_blocks():
    blocks = C.rotation_blocks(_norm_problem(d=6, d_H=2))
    assert np.array_equal(blocks["H"], [0, 1]) and np.array_equal(blocks["H_perp"], [2, 3, 4, 5])
    b = np.zeros((2, 5))
    b[0, 0], b[1, 1] = 1.0, 1.0
    blocks = C.rotation_blocks(mf.Problem(d=5, target=mf.Teacher(np.ones(2), b)))
    assert set(blocks) == {"H_perp"} and np.array_equal(blocks["H_perp"], [2, 3, 4])
    assert C.rotation_blocks(mf.Problem(d=5, target=mf.NormTarget(2),
                                        law=mf.rademacher_law())) == {}
    assert C.rotation_blocks(mf.Problem(d=5, target=mf.CallableTarget(lambda x: x[:, 0]))) == {}


def test_angular_momentum_exact_zero_sampled_not(rng):
    """Exact Gaussian risk with f* = ‖x_H‖: L restricted to H⊥ (and to H) is zero to round-off
    at every step; with fresh batches it is not; the H×H⊥ block is no law (control)."""
    problem = _norm_problem(d=5, d_H=2)
    p0 = mf.init_sphere_rademacher(16, 5, rng)
    blocks = C.rotation_blocks(problem)
    blocks["control"] = (blocks["H"], blocks["H_perp"])
    res = {}
    for backend in ("exact", "sampled"):
        sim = mf.Simulation(problem, p0, 0.05, 30, backend=backend, batch_size=128, seed=1)
        res[backend] = C.LawMonitor(sim, blocks=blocks).run()
    assert np.max(res["exact"]["angmom_H_perp"]) <= ANGMOM_ROUNDOFF
    assert np.max(res["exact"]["angmom_H"]) <= ANGMOM_ROUNDOFF
    assert np.median(res["exact"]["angmom_control"]) > ANGMOM_SAMPLED_MIN
    assert np.median(res["sampled"]["angmom_H_perp"]) > ANGMOM_SAMPLED_MIN


def test_angular_momentum_shapes_and_validation(rng):
    b, v = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    w = np.full(6, 1 / 6)
    L = C.angular_momentum(b, v, w, np.array([1, 2, 3]))
    assert L.shape == (3, 3) and np.allclose(L, -L.T, atol=0)
    basis = np.linalg.qr(rng.standard_normal((4, 2)))[0]
    assert C.angular_momentum(b, v, w, basis).shape == (2, 2)
    assert 0.0 <= C.angular_momentum_residual(b, v, w, np.arange(4)) <= 1.0
    with pytest.raises(ValueError, match="distinct indices"):
        C.angular_momentum(b, v, w, np.array([0, 0]))
    with pytest.raises(ValueError, match="orthonormal"):
        C.angular_momentum(b, v, w, 2 * basis)


# ------------------------------------------------------------------------- energy
@pytest.mark.parametrize("options", [{}, WD_RATES])
def test_euler_energy_identity_leading_order(rng, options):
    """E_N − E_0 + dtΣD_n ≈ (dt/4)(D_0 − D_N), with relative error O(dt); with decay and rates
    E = F + (λ/2)Σw(a²/η_a + ‖b‖²/η_b) (any other regulariser leaves an O(1) residual)."""
    problem = _teacher_problem(rng)
    p0 = _unbalanced(16, 5, rng)
    errs = []
    for dt in (0.02, 0.01):
        sim = mf.Simulation(problem, p0, dt, int(round(1.0 / dt)), **options)
        h = C.LawMonitor(sim, blocks={}).run()
        res = C.energy_residual(h["energy"], h["dissipation"], dt, "euler")[-1]
        pred = C.predicted_energy_residual(h["dissipation"], dt, "euler")
        errs.append(abs(res / pred - 1.0))
    assert errs[-1] <= ENERGY_LEADING_RTOL
    assert errs[-1] < ENERGY_HALVING_MAX * errs[0]


def test_rk4_energy_identity_with_decay_and_rates(rng):
    """RK4 with Simpson's rule: E(T) − E(0) + ∫D is O(dt⁴), so E = F + (λ/2)Σw(a²/η_a + ‖b‖²/η_b)
    and D = Σw(v_a²/η_a + ‖v_b‖²/η_b) are the right pair for v = −η ∘ g − λθ; the regulariser
    of the old convention, (λ/2)Σw‖θ‖², leaves a residual orders of magnitude larger."""
    problem = _teacher_problem(rng)
    p0 = _unbalanced(16, 5, rng)
    lam, ra, rb = WD_RATES["weight_decay"], WD_RATES["rate_a"], WD_RATES["rate_b"]
    sim = mf.Simulation(problem, p0, 0.02, 50, integrator="rk4", **WD_RATES)
    h = C.LawMonitor(sim, blocks={}).run()
    res = C.energy_residual(h["energy"], h["dissipation"], 0.02, "rk4")
    assert abs(res[-1]) / h["energy"][0] <= RK4_ENERGY_RTOL
    w = p0.weights

    def reg(a, b, ra_, rb_):
        return C.lyapunov_energy(0.0, a, b, w, lam, ra_, rb_)

    assert reg(p0.a, p0.b, ra, rb) == pytest.approx(
        0.5 * lam * np.sum(w * (p0.a ** 2 / ra + np.sum(p0.b ** 2, axis=1) / rb)), rel=1e-14)
    wrong = (res[-1] + (reg(sim.a, sim.b, 1, 1) - reg(sim.a, sim.b, ra, rb))
             - (reg(p0.a, p0.b, 1, 1) - reg(p0.a, p0.b, ra, rb)))
    assert abs(wrong) / h["energy"][0] > 1e3 * RK4_ENERGY_RTOL


def test_energy_residual_quadratures_are_exact_for_linear_decay():
    """E(t) = 1 − ct with D = c: every quadrature integrates a constant exactly."""
    t = np.linspace(0, 1, 11)
    for integrator in ("euler", "heun", "rk4", "momentum"):
        res = C.energy_residual(1 - 0.3 * t, np.full(11, 0.3), 0.1, integrator)
        assert np.max(np.abs(res)) < 1e-15


def test_input_validation():
    with pytest.raises(ValueError, match="shape"):
        C.rescaling_charge(np.ones(3), np.ones((2, 2)))
    with pytest.raises(ValueError, match="positive"):
        C.rescaling_charge(np.ones(2), np.ones((2, 2)), rate_a=0.0)
    with pytest.raises(ValueError, match="finite number"):
        C.charge_drift(np.ones(2), np.ones(2), 1.0, float("nan"))
    with pytest.raises(ValueError, match="unknown integrator"):
        C.energy_residual(np.ones(3), np.ones(3), 0.1, "leapfrog")
    with pytest.raises(ValueError, match="Simulation"):
        C.LawMonitor(object())


def test_trajectory_laws_from_snapshots(rng):
    problem = _teacher_problem(rng, activation="linear")
    p0 = mf.init_gaussian(6, 5, rng)
    r = mf.simulate_flow(problem, p0, dt=0.05, n_steps=20, n_snapshots=3, integrator="rk4")
    rows = C.trajectory_laws(r.snapshots["t"], r.snapshots["a"], r.snapshots["b"], p0.weights,
                             activation="linear")
    assert [row.law for row in rows] == ["Q_j", "law of Q under μ_t (W₁)",
                                         "balance matrix B Bᵀ − a aᵀ"]
    assert all(0 <= row.measured < 1e-5 for row in rows)
    # λ > 0 with η_a ≠ η_b: the e^{−2λt} law, every entry of the rate-weighted matrix
    r = mf.simulate_flow(problem, p0, dt=0.05, n_steps=20, n_snapshots=3, integrator="rk4",
                    **WD_RATES)
    rows = C.trajectory_laws(r.snapshots["t"], r.snapshots["a"], r.snapshots["b"], p0.weights,
                             activation="linear", **WD_RATES)
    assert len(rows) == 3 and all(0 <= row.measured < 1e-5 for row in rows)
    assert "e^(−2λt)" in rows[0].basis
