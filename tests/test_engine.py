"""The simulation driver: results, snapshots, failure status, checkpoints, bad input."""
import numpy as np
import pytest

import meanfield as mf
import reference as ref
from conftest import RTOL_QUAD
from meanfield.engine import snapshot_steps


@pytest.fixture
def small(rng):
    d = 5
    return mf.Problem(d, mf.NormTarget(2)), mf.init_sphere_rademacher(16, d, rng)


def test_result_has_history_snapshots_and_status(small):
    problem, p = small
    r = mf.simulate_flow(problem, p, 0.05, 40, n_snapshots=5, snapshot_spacing="linear")
    assert r.status == "ok" and "completed" in r.message
    assert r.t.shape == r.risk.shape == (41,)
    np.testing.assert_allclose(r.t, 0.05 * np.arange(41))
    assert list(r.snapshots["step"]) == [0, 10, 20, 30, 40]
    np.testing.assert_array_equal(r.snapshots["a"][0], p.a)
    np.testing.assert_array_equal(r.snapshots["a"][-1], r.particles.a)
    assert r.snapshots["b"].shape == (5, 16, 5)


def test_snapshot_spacing_log():
    s = snapshot_steps(1000, 5, "log")
    assert s[0] == 0 and s[-1] == 1000 and np.all(np.diff(s) > 0)
    assert s[1] == 1


def test_divergence_is_reported_and_last_finite_state_kept(small):
    problem, p = small
    r = mf.simulate_flow(problem, p, 50.0, 100)
    assert r.status == "diverged"
    assert "reduce dt" in r.message
    assert np.all(np.isfinite(r.particles.a)) and np.all(np.isfinite(r.particles.b))
    assert r.steps_done < 100


def test_checkpoint_state_round_trip_is_bit_identical(small):
    problem, p = small
    full = mf.Simulation(problem, p, 0.05, 30, backend="sampled", batch_size=64, seed=3)
    full.advance()
    part = mf.Simulation(problem, p, 0.05, 30, backend="sampled", batch_size=64, seed=3)
    part.advance(11)
    state = {k: np.array(v, copy=True) for k, v in part.state_dict().items()}
    resumed = mf.Simulation(problem, p, 0.05, 30, backend="sampled", batch_size=64, seed=99)
    resumed.load_state(state)
    resumed.advance()
    a, b = full.result(), resumed.result()
    np.testing.assert_array_equal(a.particles.a, b.particles.a)
    np.testing.assert_array_equal(a.particles.b, b.particles.b)
    np.testing.assert_array_equal(a.risk, b.risk)


def test_sampled_backend_reports_exact_risk_too(small):
    problem, p = small
    r = mf.simulate_flow(problem, p, 0.05, 20, backend="sampled", batch_size=256, exact_risk_every=5)
    assert np.isfinite(r.risk_exact[0]) and np.isfinite(r.risk_exact[5])
    # against the reference formula (direct κ sums and adaptive quadrature of T), not the
    # backend that produced it
    exact0 = ref.norm_target_risk(p.a, p.b, p.weights, 2)
    assert r.risk_exact[0] == pytest.approx(exact0, rel=RTOL_QUAD)
    assert r.risk_exact[5] != r.risk_exact[0]  # re-evaluated at step 5, not copied


def test_init_step_loop_equals_simulate(small):
    problem, p = small
    r = mf.simulate_flow(problem, p, 0.05, 10, integrator="heun")
    sim = mf.init(problem, p, 0.05, integrator="heun")
    for _ in range(10):
        sim.step()
    np.testing.assert_array_equal(sim.a, r.particles.a)


def test_predict_matches_definition(rng):
    p = mf.init_gaussian(7, 3, rng)
    x = rng.standard_normal((11, 3))
    np.testing.assert_allclose(mf.predict(p, x), np.maximum(x @ p.b.T, 0) @ p.a / 7, rtol=1e-13)


@pytest.mark.parametrize("kwargs,match", [
    ({"dt": 0.0}, "dt"),
    ({"dt": -1.0}, "dt"),
    ({"dt": float("nan")}, "dt"),
    ({"n_steps": -3}, "n_steps"),
    ({"integrator": "leapfrog"}, "integrator"),
    ({"backend": "gpu"}, "backend"),
    ({"weight_decay": -1.0}, "weight_decay"),
])
def test_bad_simulation_arguments(small, kwargs, match):
    problem, p = small
    args = {"dt": 0.1, "n_steps": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        mf.simulate_flow(problem, p, **args)


def test_bad_particles_and_problems(rng):
    with pytest.raises(ValueError, match="shape"):
        mf.Particles(np.ones(3), np.ones((4, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        mf.Particles(np.array([1.0, np.nan]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        mf.Particles(np.ones(2), np.array([[1.0, np.inf], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="sum to 1"):
        mf.Particles(np.ones(2), np.ones((2, 2)), weights=np.ones(2))
    with pytest.raises(ValueError, match="d_H"):
        mf.Problem(3, mf.NormTarget(4))
    with pytest.raises(ValueError, match="activation"):
        mf.Problem(3, mf.NormTarget(1), activation="swish")
    with pytest.raises(ValueError, match="target"):
        mf.Problem(3, "parity")
    with pytest.raises(ValueError, match="d = 3"):
        mf.simulate_flow(mf.Problem(3, mf.NormTarget(1)), mf.init_gaussian(4, 5, rng), 0.1, 1)


def test_load_particles_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        mf.load_particles(tmp_path / "missing.npz")
    np.savez(tmp_path / "no_b.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="lacks"):
        mf.load_particles(tmp_path / "no_b.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable"):
        mf.load_particles(tmp_path / "junk.npz")
    np.savez(tmp_path / "ok.npz", a=np.ones(3), b=np.ones((3, 2)))
    assert mf.load_particles(tmp_path / "ok.npz").m == 3


@pytest.mark.parametrize("integrator,extra", [
    ("momentum", {"momentum": 0.8, "weight_decay": 0.1}),
    ("euler_projected", {"weight_decay": 0.3, "rate_a": 2.0, "rate_b": 0.5}),
])
def test_stop_and_resume_keeps_integrator_buffers(small, tmp_path, integrator, extra):
    # the heavy-ball velocity buffers and the projection's Q_j(0) live in the checkpoint; a
    # resume that dropped them (fresh u = 0, or Q re-read from the resumed state) would
    # change the trajectory after the stop
    problem, p = small
    kw = dict(integrator=integrator, backend="sampled", batch_size=64, seed=3, **extra)
    full = mf.Simulation(problem, p, 0.05, 30, **kw)
    full.advance()
    part = mf.Simulation(problem, p, 0.05, 30, **kw)
    part.advance(11)
    np.savez(tmp_path / "state.npz", **part.state_dict())
    with np.load(tmp_path / "state.npz") as saved:
        state = dict(saved)
    if integrator == "momentum":
        assert any(np.any(v != 0) for k, v in state.items() if k.startswith("buf_u")), \
            sorted(state)
    resumed = mf.Simulation(problem, p, 0.05, 30, **{**kw, "seed": 99})
    resumed.load_state(state)
    resumed.advance()
    a, b = full.result(), resumed.result()
    np.testing.assert_array_equal(a.particles.a, b.particles.a)
    np.testing.assert_array_equal(a.particles.b, b.particles.b)
    np.testing.assert_array_equal(a.risk, b.risk)
    np.testing.assert_array_equal(a.records["q_drift"], b.records["q_drift"])
