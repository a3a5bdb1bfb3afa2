"""Every model through the one loop reproduces, on the fixed-step path, what its own stepping
loop gave before the loops were unified (arrays in data/pre_engine_reference.npz, written by
data/make_pre_engine_reference.py against the code before the change)."""
from pathlib import Path

import numpy as np
import pytest

from conftest import KERNEL_ROUNDOFF
import meanfield as mf

REF = Path(__file__).parent / "data" / "pre_engine_reference.npz"


def _close(actual, desired, err_msg=""):
    np.testing.assert_allclose(actual, desired, rtol=0, atol=KERNEL_ROUNDOFF, err_msg=err_msg)


@pytest.fixture(scope="module")
def ref():
    with np.load(REF) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("name", ["euler", "heun", "rk4", "euler_projected", "momentum"])
def test_full_model_reproduces_pre_change_values(ref, name):
    # Bit-identical until the symmetric kernel's diagonal tiles computed each pair once
    # (issue 17): that reorders the radial sums within a tile, so the values now agree to
    # round-off; the times and the step and record schedule still agree exactly.
    d = 5
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(16, d, np.random.default_rng(11))
    r = mf.simulate_flow(problem, p, 0.05, 40, integrator=name, record_every=3, n_snapshots=4)
    np.testing.assert_array_equal(r.t, ref[f"full_{name}_t"])
    for k in ("risk", "dissipation", "q_drift"):
        _close(getattr(r, k), ref[f"full_{name}_{k}"], err_msg=k)
    _close(r.particles.a, ref[f"full_{name}_a"])
    _close(r.particles.b, ref[f"full_{name}_b"])
    _close(r.snapshots["b"], ref[f"full_{name}_snap_b"])


def test_sampled_backend_bit_identical(ref):
    d = 5
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(16, d, np.random.default_rng(11))
    r = mf.simulate_flow(problem, p, 0.05, 20, backend="sampled", batch_size=64, seed=5,
                    exact_risk_every=2)
    np.testing.assert_array_equal(r.risk, ref["sampled_risk"])
    np.testing.assert_array_equal(r.risk_exact, ref["sampled_risk_exact"])
    np.testing.assert_array_equal(r.particles.b, ref["sampled_b"])


@pytest.mark.parametrize("name", ["euler", "heun", "rk4", "euler_projected"])
def test_reduced_model_reproduces_pre_change_values(ref, name):
    from meanfield.models.lowdim import sample_reduced_init
    from meanfield.models.reduced import BlockReduction, ReducedBackend, simulate_reduced

    d, d_H, m = 9, 2, 16
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)), BlockReduction.subspace(d, d_H),
                             n_nodes=8)
    a, z = sample_reduced_init(m, d, d_H, np.random.default_rng(7))
    r = simulate_reduced(backend, a, z, 0.05, 30, integrator=name, record_every=4, n_snapshots=3)
    np.testing.assert_array_equal(r.t, ref[f"reduced_{name}_t"])
    _close(r.risk, ref[f"reduced_{name}_risk"])
    _close(r.a, ref[f"reduced_{name}_a"])
    _close(r.z, ref[f"reduced_{name}_z"])
    _close(r.snapshots["z"], ref[f"reduced_{name}_snap_z"])
    assert r.n_reflections == int(ref[f"reduced_{name}_n_reflections"])


@pytest.fixture(scope="module")
def radial_setup():
    from meanfield.models.lowdim import sample_radial_init
    from meanfield.models.radial1d import RadialKernel

    kernel = RadialKernel(5, 25, n_terms=32, table_nodes=48)
    return kernel, sample_radial_init(64, 30, 5, np.random.default_rng(2))


@pytest.mark.parametrize("name", ["euler", "heun", "rk4"])
def test_radial_model_reproduces_pre_change_values(ref, radial_setup, name):
    from meanfield.models.radial1d import simulate_radial

    kernel, (eps, c, theta) = radial_setup
    r = simulate_radial(kernel, eps, c, theta, 0.01, 50, integrator=name, record_every=5,
                        n_snapshots=3)
    np.testing.assert_array_equal(r.t, ref[f"radial_{name}_t"])
    _close(r.risk, ref[f"radial_{name}_risk"])
    _close(r.c, ref[f"radial_{name}_c"])
    _close(r.theta, ref[f"radial_{name}_theta"])
    _close(r.snapshots["theta"], ref[f"radial_{name}_snap_theta"])
    # the estimate is read at the recorded state (the first stage), so with the exact
    # estimator it is the risk itself for every integrator (it used to be the last stage's)
    np.testing.assert_array_equal(r.risk_estimate, r.risk)


def test_radial_monte_carlo_reproduces_pre_change_values(ref, radial_setup):
    from meanfield.models.radial1d import simulate_radial

    kernel, (eps, c, theta) = radial_setup
    r = simulate_radial(kernel, eps, c, theta, 0.01, 20, estimator="monte_carlo", n_samples=200,
                        seed=3, record_every=2)
    _close(r.risk, ref["radial_mc_risk"])
    _close(r.risk_estimate, ref["radial_mc_risk_estimate"])
    _close(r.c, ref["radial_mc_c"])
    _close(r.theta, ref["radial_mc_theta"])


@pytest.mark.parametrize("name", ["euler", "heun", "rk4", "momentum"])
def test_odd_moment_flow_bit_identical(ref, name):
    from meanfield.models.odd import discrete_reduced_flow, odd_reduction

    dd = 6
    red = odd_reduction(mf.Problem(dd, mf.odd_cubic_target(dd, np.random.default_rng(0)),
                                   mf.GaussianLaw(dd ** -0.5)))
    pp = mf.init_paired(mf.init_sphere_rademacher(10, dd, np.random.default_rng(4)))
    w0, S0, s0 = mf.odd.moments(pp.a, pp.b, pp.weights)
    tr = discrete_reduced_flow(red, w0, S0, s0, 0.05, 40, name, record_every=7)
    np.testing.assert_array_equal(tr.t, ref[f"odd_{name}_t"])
    np.testing.assert_array_equal(tr.w, ref[f"odd_{name}_w"])
    np.testing.assert_array_equal(tr.s, ref[f"odd_{name}_s"])


def _resume_matches(make):
    full = make()
    full.advance()
    part = make()
    part.advance(6)
    state = {k: np.array(v, copy=True) for k, v in part.state_dict().items()}
    resumed = make()
    resumed.load_state(state)
    resumed.advance()
    a, b = full.result(), resumed.result()
    assert a.status == b.status == "ok"
    for name in a.state:
        np.testing.assert_array_equal(a.state[name], b.state[name])
        np.testing.assert_array_equal(a.snapshots[name], b.snapshots[name])
    for k in a.records:
        np.testing.assert_array_equal(a.records[k], b.records[k])
    return a, b


@pytest.mark.parametrize("integrator", ["heun", "dopri5"])
def test_reduced_and_radial_runs_resume_bit_for_bit(radial_setup, integrator):
    """Reduced and 1-D runs are solvers of the one loop: their checkpoints (reflection count,
    controller state) continue bit for bit."""
    from meanfield.models.lowdim import sample_reduced_init
    from meanfield.models.radial1d import radial_solver
    from meanfield.models.reduced import BlockReduction, ReducedBackend, reduced_solver

    time_kw = ({"dt": 0.05, "n_steps": 30} if integrator == "heun"
               else {"t_end": 1.5, "rtol": 1e-8, "n_records": 9})
    d, d_H, m = 9, 2, 16
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)), BlockReduction.subspace(d, d_H),
                             n_nodes=8)
    a, z = sample_reduced_init(m, d, d_H, np.random.default_rng(7))
    ra, rb = _resume_matches(lambda: reduced_solver(backend, a, z, integrator=integrator,
                                                    n_snapshots=3, **time_kw))
    assert ra.n_reflections == rb.n_reflections
    kernel, (eps, c, theta) = radial_setup
    _resume_matches(lambda: radial_solver(kernel, eps, c, theta, integrator=integrator,
                                          n_snapshots=3, **time_kw))
