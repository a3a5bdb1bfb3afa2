"""Adaptive embedded pairs in the one loop: orders, dense output, save-at times, rejected
steps, failure statuses, agreement with fixed RK4, thread-count independence."""
import numpy as np
import pytest

from conftest import ADAPTIVE_ORDER_SLACK, RK4_AGREEMENT
import meanfield as mf
from meanfield.engine import Field, Solver, integrate
from meanfield.engine.integrators import ADAPTIVE, INTEGRATORS, get_integrator
from meanfield.theory.rates import fit_power_law


class Twist(Field):
    """y_j' = ω(r_j) J y_j with ω = 1 + r²: every particle turns at its own speed on its circle,
    exact solution y_j(t) = R(ω_j t) y_j(0). Smooth, non-linear, known in closed form."""

    names = ("y",)

    def velocity(self, y, t):
        (p,) = y
        om = 1.0 + np.sum(p * p, axis=1)
        return (om[:, None] * np.stack([-p[:, 1], p[:, 0]], axis=1),), float(np.sum(p * p))

    @staticmethod
    def exact(y0, t):
        om = 1.0 + np.sum(y0 * y0, axis=1)
        c, s = np.cos(om * t), np.sin(om * t)
        return np.stack([c * y0[:, 0] - s * y0[:, 1], s * y0[:, 0] + c * y0[:, 1]], axis=1)


@pytest.fixture
def twist(rng):
    y0 = rng.uniform(0.3, 1.0, size=(6, 2))
    return Twist(np.full(6, 1 / 6)), y0


@pytest.mark.parametrize("name", ADAPTIVE)
def test_local_order_with_controller_off(twist, name):
    """One step of size h from y0: error of the propagated solution ∝ h^(p+1), of the embedded
    estimate ∝ h^(q+1)."""
    field, y0 = twist
    integ = get_integrator(name)
    hs = np.array([0.2, 0.1, 0.05, 0.025])
    errs, ests = [], []
    k1, r1 = field.velocity((y0,), 0.0)
    for h in hs:
        y1, err, _ = integ.attempt(field.velocity, (y0,), k1, r1, h, 0.0)
        errs.append(np.abs(y1[0] - Twist.exact(y0, h)).max())
        ests.append(np.abs(err[0]).max())
    p_fit = fit_power_law(hs, errs).slope
    q_fit = fit_power_law(hs, ests).slope
    assert p_fit > integ.order + 1 - ADAPTIVE_ORDER_SLACK, (p_fit, errs)
    assert q_fit > integ.error_order + 1 - ADAPTIVE_ORDER_SLACK, (q_fit, ests)


@pytest.mark.parametrize("name", ADAPTIVE)
def test_global_error_scales_with_rtol(twist, name):
    """Error at t = 5 ∝ rtol^(p/(p+1)) or better (error-per-step control gives ∝ rtol)."""
    field, y0 = twist
    rtols = np.array([1e-4, 1e-5, 1e-6, 1e-7, 1e-8])
    errs = []
    for rtol in rtols:
        r = integrate(field, (y0,), name, t_end=5.0, rtol=rtol, atol=rtol * 1e-2)
        assert r.status == "ok", r.message
        errs.append(np.abs(r.state["y"] - Twist.exact(y0, 5.0)).max())
    slope = fit_power_law(rtols, errs).slope
    p = INTEGRATORS[name].order
    assert slope > p / (p + 1) - 0.05, (slope, errs)
    assert errs[-1] < 1e-5


@pytest.mark.parametrize("name", ADAPTIVE)
def test_dense_output_accurate_to_its_order(twist, name):
    """Between step ends the continuous extension errs like h^(p_dense + 1) (dopri5: order 4
    interpolant, bosh3: cubic Hermite, order 3)."""
    field, y0 = twist
    integ = get_integrator(name)
    dense_order = {"dopri5": 4, "bosh3": 3}[name]
    hs = np.array([0.2, 0.1, 0.05, 0.025])
    errs = []
    k1, r1 = field.velocity((y0,), 0.0)
    for h in hs:
        _, _, stages = integ.attempt(field.velocity, (y0,), k1, r1, h, 0.0)
        errs.append(max(np.abs(integ.dense((y0,), stages, h, x)[0] - Twist.exact(y0, x * h)).max()
                        for x in (0.2, 0.5, 0.7)))
        # the extension passes through both ends
        np.testing.assert_allclose(integ.dense((y0,), stages, h, 0.0)[0], y0, rtol=0, atol=1e-15)
        np.testing.assert_allclose(integ.dense((y0,), stages, h, 1.0)[0], stages[-1][0][0],
                                   rtol=0, atol=1e-14)
    slope = fit_power_law(hs, errs).slope
    assert slope > dense_order + 1 - ADAPTIVE_ORDER_SLACK, (slope, errs)


def test_records_and_snapshots_fall_at_requested_times(twist):
    field, y0 = twist
    solver = Solver(field, (y0,), "dopri5", t_end=3.0, rtol=1e-10, atol=1e-12, n_records=7,
                    snapshot_times=[0.0, 0.31, 1.7, 3.0])
    r = solver.run()
    np.testing.assert_array_equal(r.t, np.linspace(0.0, 3.0, 7))
    np.testing.assert_array_equal(r.snapshots["t"], [0.0, 0.31, 1.7, 3.0])
    for tau, snap in zip(r.snapshots["t"], r.snapshots["y"]):
        np.testing.assert_allclose(snap, Twist.exact(y0, tau), rtol=0, atol=1e-8)
    # outputs do not shorten steps: the same run without them takes the same steps
    bare = Solver(field, (y0,), "dopri5", t_end=3.0, rtol=1e-10, atol=1e-12, n_records=2).run()
    assert bare.n_steps_accepted == r.n_steps_accepted
    np.testing.assert_array_equal(bare.state["y"], r.state["y"])
    assert np.all(np.diff(r.records["n_evaluations"]) >= 0)


def test_rejected_steps_are_retried(rng):
    """A first trial step far too large is rejected and retried; the answer is unchanged."""
    d = 4
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(12, d, rng)
    big = mf.simulate_flow(problem, p, dt=20.0, integrator="dopri5", t_end=2.0, rtol=1e-9, atol=1e-11)
    auto = mf.simulate_flow(problem, p, integrator="dopri5", t_end=2.0, rtol=1e-9, atol=1e-11)
    assert big.status == "ok" and auto.status == "ok"
    assert big.n_steps_rejected >= 1
    assert big.n_evaluations == 1 + 6 * (big.n_steps_accepted + big.n_steps_rejected) \
        + big.t.size - 2  # start, 6 per attempt, one per record between step ends
    np.testing.assert_allclose(big.particles.b, auto.particles.b, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", ADAPTIVE)
def test_adaptive_agrees_with_rk4_at_tiny_dt(rng, name):
    d = 4
    problem = mf.Problem(d, mf.Teacher(np.ones(2), rng.standard_normal((2, d))))
    p = mf.init_gaussian(8, d, rng, scale_b=1.0)
    fine = mf.simulate_flow(problem, p, 2.5e-3, 400, integrator="rk4", record_every=40)
    ada = mf.simulate_flow(problem, p, integrator=name, t_end=1.0, rtol=1e-11, atol=1e-13,
                      n_records=11)
    assert ada.status == "ok"
    np.testing.assert_allclose(ada.t, fine.t, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ada.particles.b, fine.particles.b, rtol=0, atol=RK4_AGREEMENT)
    np.testing.assert_allclose(ada.risk, fine.risk, rtol=0, atol=RK4_AGREEMENT)
    np.testing.assert_allclose(ada.dissipation, fine.dissipation, rtol=0, atol=1e-6)


class Blowup(Field):
    """y' = y², y(0) = 1: y = 1/(1 − t), singular at t = 1."""

    names = ("y",)

    def velocity(self, y, t):
        return (y[0] ** 2,), float(y[0].max())


def test_divergence_is_reported_with_last_good_state():
    r = integrate(Blowup(np.ones(1)), (np.ones((1, 1)),), "dopri5", t_end=2.0)
    assert r.status in ("diverged", "max_steps")
    assert r.t_final < 1.0 + 1e-6 and np.all(np.isfinite(r.state["y"]))
    assert r.message


def test_max_steps_guard(twist):
    field, y0 = twist
    r = integrate(field, (y0,), "dopri5", t_end=100.0, rtol=1e-12, max_steps=5)
    assert r.status == "max_steps" and "max_steps" in r.message
    assert r.n_steps_accepted + r.n_steps_rejected == 5


def test_bad_settings_are_refused(twist, rng):
    field, y0 = twist
    with pytest.raises(ValueError, match="n_steps"):
        Solver(field, (y0,), "dopri5", n_steps=10, t_end=1.0)
    with pytest.raises(ValueError, match="t_end"):
        Solver(field, (y0,), "dopri5", dt=0.1)
    with pytest.raises(ValueError, match="record_every"):
        Solver(field, (y0,), "bosh3", t_end=1.0, record_every=2)
    with pytest.raises(ValueError, match="disagree"):
        Solver(field, (y0,), "rk4", dt=0.1, n_steps=5, t_end=1.0)
    problem = mf.Problem(3, mf.NormTarget(1))
    with pytest.raises(ValueError, match="random"):
        mf.simulate_flow(problem, mf.init_gaussian(4, 3, rng), integrator="dopri5", t_end=1.0,
                    backend="sampled")


def test_fixed_step_n_records_and_t_end(twist):
    field, y0 = twist
    r = Solver(field, (y0,), "rk4", dt=0.01, t_end=1.0, n_records=11).run()
    assert r.n_steps_accepted == 100
    np.testing.assert_allclose(r.t, np.linspace(0, 1, 11), rtol=0, atol=1e-15)


def test_thread_count_does_not_change_an_adaptive_run(rng):
    import numba

    d = 6
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(64, d, rng)
    runs = []
    before = numba.get_num_threads()
    try:
        for n in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(n)
            runs.append(mf.simulate_flow(problem, p, integrator="dopri5", t_end=2.0, rtol=1e-8))
    finally:
        numba.set_num_threads(before)
    for r in runs[1:]:
        np.testing.assert_array_equal(r.particles.b, runs[0].particles.b)
        np.testing.assert_array_equal(r.risk, runs[0].risk)
        assert r.n_evaluations == runs[0].n_evaluations


def test_checkpoint_round_trip_of_an_adaptive_run_is_bit_identical(rng):
    d = 5
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(16, d, rng)
    kw = dict(integrator="dopri5", t_end=3.0, rtol=1e-8, n_records=13, n_snapshots=4)
    full = mf.Simulation(problem, p, **kw)
    full.advance()
    part = mf.Simulation(problem, p, **kw)
    part.advance(7)
    state = {k: np.array(v, copy=True) for k, v in part.state_dict().items()}
    resumed = mf.Simulation(problem, p, **kw)
    resumed.load_state(state)
    resumed.advance()
    a, b = full.result(), resumed.result()
    np.testing.assert_array_equal(a.particles.b, b.particles.b)
    np.testing.assert_array_equal(a.risk, b.risk)
    np.testing.assert_array_equal(a.snapshots["b"], b.snapshots["b"])
    assert (a.n_evaluations, a.n_steps_rejected) == (b.n_evaluations, b.n_steps_rejected)
