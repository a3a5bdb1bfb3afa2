"""The balanced 1-D model (meanfield.models.radial1d): tables, time convention, invariants."""
from math import pi

import numpy as np
import pytest

import meanfield as mf
from conftest import (IDENTITY_TOL, N_SIGMA, RTOL_KERNEL, TABLE_TOL_DH2, TABLE_TOL_SMOOTH, TRAJECTORY_TOL)
from meanfield.models.lowdim import reduced_from_radial, sample_radial_init
from meanfield.models.radial1d import (RadialKernel, fold_angle, monte_carlo_field, simulate_radial)
from meanfield.models.reduced import BlockReduction, ReducedBackend, simulate_reduced


@pytest.fixture(scope="module")
def kernel_5_25():
    return RadialKernel(5, 25, n_terms=48, table_nodes=64)


def test_tables_match_direct_quadrature(kernel_5_25):
    acc = kernel_5_25.accuracy(n_points=16, reference_nodes=96)
    for key in ("K", "dK", "A", "dA"):
        assert acc[key] < TABLE_TOL_SMOOTH, acc


def test_tables_for_two_dimensional_H():
    acc = RadialKernel(2, 18, n_terms=64, table_nodes=64).accuracy(n_points=12,
                                                                   reference_nodes=96)
    for key in ("K", "dK", "A", "dA"):
        assert acc[key] < TABLE_TOL_DH2, acc


def test_velocities_equal_those_of_the_norm_reduced_model():
    # the time convention: c' = 2εcG, θ' = εG' are the (a, ‖b_H‖, ‖b⊥‖) velocities
    d, d_H, m = 12, 3, 24
    rng = np.random.default_rng(0)
    eps, _, theta = sample_radial_init(m, d, d_H, rng)
    c = rng.uniform(0.2, 2.0, m)
    w = rng.dirichlet(np.ones(m))
    kernel = RadialKernel(d_H, d - d_H, n_terms=64, table_nodes=64)
    g, dg, risk1 = kernel.field(eps, c, theta, w)
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)),
                             BlockReduction.subspace(d, d_H, reduce_H=True), n_nodes=48)
    a, z = reduced_from_radial(eps, c, theta)
    ga, gz, risk2 = backend.gradients(a, z, w)
    va, vz = -ga, -gz
    rho = np.linalg.norm(z, axis=1)
    vc = np.sign(a) * va * rho + np.abs(a) * np.einsum("ij,ij->i", z, vz) / rho
    vtheta = (z[:, 0] * vz[:, 1] - z[:, 1] * vz[:, 0]) / rho ** 2
    assert risk1 == pytest.approx(risk2, abs=IDENTITY_TOL)
    assert np.allclose(2 * eps * c * g, vc, atol=IDENTITY_TOL)
    assert np.allclose(eps * dg, vtheta, atol=IDENTITY_TOL)


def test_trajectory_equals_norm_reduced_trajectory():
    d, d_H, m = 10, 3, 8
    eps, c, theta = sample_radial_init(m, d, d_H, np.random.default_rng(1))
    kernel = RadialKernel(d_H, d - d_H, n_terms=64, table_nodes=64)
    one = simulate_radial(kernel, eps, c, theta, 0.01, 30, integrator="rk4")
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)),
                             BlockReduction.subspace(d, d_H, reduce_H=True), n_nodes=32)
    a, z = reduced_from_radial(eps, c, theta)
    red = simulate_reduced(backend, a, z, 0.01, 30, integrator="rk4")
    assert np.allclose(one.risk, red.risk, atol=TRAJECTORY_TOL)
    assert np.allclose(one.c, np.abs(red.a) * np.linalg.norm(red.z, axis=1), atol=TRAJECTORY_TOL)
    assert np.allclose(one.theta, np.arctan2(red.z[:, 1], red.z[:, 0]), atol=TRAJECTORY_TOL)


def test_angles_stay_in_range_masses_nonnegative_risk_decreasing(kernel_5_25):
    eps, c, theta = sample_radial_init(128, 30, 5, np.random.default_rng(2))
    res = simulate_radial(kernel_5_25, eps, c, theta, 5e-3, 400, n_snapshots=20)
    assert res.status == "ok"
    th = res.snapshots["theta"]
    assert np.all((th >= 0) & (th <= 0.5 * pi))
    assert np.all(res.snapshots["c"] >= 0)
    assert np.all(np.diff(res.risk) <= 1e-12)
    # F starts at ½E f*² + O(1/√m) from a zero-mean predictor
    assert res.risk[0] == pytest.approx(2.5, abs=0.5)


def test_theta_zero_and_right_angle_are_invariant(kernel_5_25):
    m = 8
    eps = np.array([1.0, -1.0] * 4)
    theta = np.linspace(0.0, 0.5 * pi, m)
    _, dg, _ = kernel_5_25.field(eps, np.ones(m), theta, np.full(m, 1.0 / m))
    assert abs(dg[0]) < 1e-12 and abs(dg[-1]) < 1e-12


def test_fold_angle_uses_the_symmetries():
    th = np.array([-0.3, 0.2, 1.9, pi + 0.1, 0.5 * pi])
    assert np.allclose(fold_angle(th), [0.3, 0.2, pi - 1.9, 0.1, 0.5 * pi])


def test_monte_carlo_estimator_is_unbiased(kernel_5_25):
    rng = np.random.default_rng(3)
    m = 6
    eps = np.array([1.0, -1.0, 1.0, 1.0, -1.0, 1.0])
    c = rng.uniform(0.5, 1.5, m)
    theta = rng.uniform(0.0, 0.5 * pi, m)
    w = np.full(m, 1.0 / m)
    g, dg, risk = kernel_5_25.field(eps, c, theta, w)
    draws = []
    for _ in range(100):
        g_hat, dg_hat, loss_hat = monte_carlo_field(kernel_5_25, eps, c, theta, w, rng, 2000)
        draws.append(np.concatenate([g_hat, dg_hat, [loss_hat]]))
    draws = np.array(draws)
    se = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(np.abs(draws.mean(axis=0) - np.concatenate([g, dg, [risk]])) < N_SIGMA * se)


def test_input_validation(kernel_5_25):
    with pytest.raises(ValueError, match="theta"):
        simulate_radial(kernel_5_25, np.ones(2), np.ones(2), np.array([0.1, 2.0]), 0.01, 1)
    with pytest.raises(ValueError, match="estimator"):
        simulate_radial(kernel_5_25, np.ones(2), np.ones(2), np.zeros(2), 0.01, 1,
                        estimator="magic")
    with pytest.raises(ValueError):
        RadialKernel(0, 3)


def test_cached_tables_are_bit_identical_and_keyed_by_their_parameters(tmp_path):
    from meanfield.models.radial1d import RadialKernel

    fresh = RadialKernel(3, 7, n_terms=8, table_nodes=12)
    first = RadialKernel(3, 7, n_terms=8, table_nodes=12, cache_dir=tmp_path)
    again = RadialKernel(3, 7, n_terms=8, table_nodes=12, cache_dir=tmp_path)
    assert not fresh.from_cache and not first.from_cache and again.from_cache
    for k in (first, again):
        assert np.array_equal(k.C, fresh.C) and np.array_equal(k.A, fresh.A)
    # another d_perp, P or node count is another table, not the cached one
    other = RadialKernel(3, 8, n_terms=8, table_nodes=12, cache_dir=tmp_path)
    assert not other.from_cache and not np.array_equal(other.C, fresh.C)
    assert not RadialKernel(3, 7, n_terms=8, table_nodes=10, cache_dir=tmp_path).from_cache
    assert len(list(tmp_path.glob("*.npz"))) == 3
    # a damaged file is rebuilt, not read
    for f in tmp_path.glob("*.npz"):
        f.write_bytes(b"not an npz")
    damaged = RadialKernel(3, 7, n_terms=8, table_nodes=12, cache_dir=tmp_path)
    assert not damaged.from_cache and np.array_equal(damaged.C, fresh.C)


@pytest.mark.parametrize("integrator", ["euler", "heun", "rk4", "dopri5"])
def test_risk_estimate_is_read_at_the_recorded_state(integrator):
    # With the exact estimator, risk_estimate is the risk the velocity reported at the recorded
    # state, hence equal to risk; both equal F evaluated afresh at the snapshot states. A risk
    # read from a later stage of the step (Heun's and RK4's last stage is at the step's end,
    # not at its start) would differ by O(dt) from the recorded state's risk.
    d, d_H, m = 12, 3, 16
    eps, c, theta = sample_radial_init(m, d, d_H, np.random.default_rng(4))
    kernel = RadialKernel(d_H, d - d_H, n_terms=32, table_nodes=48)
    kw = {"t_end": 0.5} if integrator == "dopri5" else {"n_steps": 20, "record_every": 1}
    res = simulate_radial(kernel, eps, c, theta, 0.05, integrator=integrator, n_snapshots=5,
                          **kw)
    assert res.status == "ok"
    np.testing.assert_array_equal(res.risk_estimate, res.risk)
    w = np.full(m, 1.0 / m)
    snap = res.snapshots
    at = np.searchsorted(res.t, snap["t"])
    assert np.array_equal(res.t[at], snap["t"])  # every snapshot time is a record time
    fresh = [kernel.risk(eps, cs, ths, w) for cs, ths in zip(snap["c"], snap["theta"])]
    np.testing.assert_allclose(res.risk[at], fresh, rtol=RTOL_KERNEL, atol=0)
