"""The block-symmetric reduced flow (meanfield.reduced) against the full model."""
import numpy as np
import pytest

import meanfield as mf
from meanfield.backends import ExactBackend
from meanfield.gaussian import interaction, norm_target_terms
from meanfield.lowdim import sample_reduced_init
from meanfield.reduced import (BlockReduction, ReducedBackend, reduced_interaction,
                               simulate_reduced)

#: Monte Carlo agreement, in standard errors (a 5σ event fails 1 run in ~1.7 million)
MC_SIGMAS = 5.0
#: target terms depend on b only through block norms: lifting changes nothing but round-off
EXACT_TOL = 1e-12
#: central differences with step 1e-6 on O(1) quantities
FD_TOL = 1e-6
#: 8 vs 48 Gauss–Jacobi nodes for γ_{d⊥}, d⊥ = 25 (measured 1e-12; a margin for other points)
QUADRATURE_TOL = 1e-10
#: the m-rate of the full-vs-reduced discrepancy: theory −½, fitted from 3 widths × 6 seeds
RATE_WINDOW = (-0.8, -0.3)


def _random_reduced(blocks, m, rng):
    z = rng.standard_normal((m, blocks.n_coords))
    z[:, blocks.n_explicit:] = np.abs(z[:, blocks.n_explicit:])
    return z


@pytest.mark.parametrize("reduce_H", [False, True])
def test_reduced_kernel_matches_monte_carlo_over_orthogonal_directions(reduce_H):
    rng = np.random.default_rng(0)
    blocks = BlockReduction.subspace(9, 3, reduce_H)
    nodes, weights = blocks.quadrature(24)
    z = _random_reduced(blocks, 4, rng)
    z2 = _random_reduced(blocks, 3, rng)
    c = rng.standard_normal(3)
    s_red, g_red = reduced_interaction(z, z2, c, blocks.n_explicit, nodes, weights)
    draws = []
    for _ in range(3000):
        s, _ = interaction(blocks.lift(z, rng), blocks.lift(z2, rng), c)
        draws.append(s)
    draws = np.array(draws)
    err = np.abs(draws.mean(axis=0) - s_red)
    se = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(err < MC_SIGMAS * se + 1e-15), (err, se)


def test_reduced_gradient_matches_monte_carlo_of_projected_full_gradient():
    # d/dr of the averaged kernel = average of the full gradient along b_⊥/r
    rng = np.random.default_rng(1)
    blocks = BlockReduction.subspace(7, 2)
    nodes, weights = blocks.quadrature(24)
    z = _random_reduced(blocks, 3, rng)
    z2 = _random_reduced(blocks, 5, rng)
    c = rng.standard_normal(5)
    _, g_red = reduced_interaction(z, z2, c, blocks.n_explicit, nodes, weights)
    draws = []
    for _ in range(3000):
        b = blocks.lift(z, rng)
        _, g = interaction(b, blocks.lift(z2, rng), c)
        radial = np.einsum("ij,ij->i", g[:, 2:], b[:, 2:]) / np.linalg.norm(b[:, 2:], axis=1)
        draws.append(np.hstack([g[:, :2], radial[:, None]]))
    draws = np.array(draws)
    err = np.abs(draws.mean(axis=0) - g_red)
    se = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(err < MC_SIGMAS * se + 1e-15)


def test_norm_target_terms_equal_full_ones_on_any_lift():
    rng = np.random.default_rng(2)
    d, d_H = 11, 4
    for reduce_H in (False, True):
        blocks = BlockReduction.subspace(d, d_H, reduce_H)
        backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H, coef=1.7)), blocks)
        z = _random_reduced(blocks, 6, rng)
        t_red, g_red = backend.target_terms(z)
        b = blocks.lift(z, rng)
        t_full, g_full = norm_target_terms(b, d_H)
        assert np.allclose(t_red, 1.7 * t_full, rtol=0, atol=EXACT_TOL)
        # radial derivative in each block = projection of the full gradient
        h = np.linalg.norm(b[:, :d_H], axis=1)
        gh = np.einsum("ij,ij->i", g_full[:, :d_H], b[:, :d_H]) / h
        r = np.linalg.norm(b[:, d_H:], axis=1)
        gr = np.einsum("ij,ij->i", g_full[:, d_H:], b[:, d_H:]) / r
        assert np.allclose(g_red[:, -1], 1.7 * gr, atol=EXACT_TOL)
        if reduce_H:
            assert np.allclose(g_red[:, 0], 1.7 * gh, atol=EXACT_TOL)
        else:
            assert np.allclose(g_red[:, :d_H], 1.7 * g_full[:, :d_H], atol=EXACT_TOL)


def test_teacher_inside_explicit_block_is_exact():
    rng = np.random.default_rng(3)
    d, d_H = 8, 3
    tb = np.zeros((2, d))
    tb[:, :d_H] = rng.standard_normal((2, d_H))
    problem = mf.Problem(d, mf.Teacher(a=np.array([1.0, -0.5]), b=tb))
    blocks = BlockReduction.subspace(d, d_H)
    backend = ReducedBackend(problem, blocks)
    z = _random_reduced(blocks, 5, rng)
    t_red, _ = backend.target_terms(z)
    t_full, _ = ExactBackend(problem).target_terms(blocks.lift(z, rng))
    assert np.allclose(t_red, t_full, atol=EXACT_TOL)
    assert backend.energy == pytest.approx(ExactBackend(problem).energy, abs=EXACT_TOL)


def test_teacher_outside_explicit_blocks_is_refused():
    b = np.zeros((1, 6))
    b[0, 5] = 1.0
    problem = mf.Problem(6, mf.Teacher(a=np.ones(1), b=b))
    with pytest.raises(ValueError, match="vanish on the reduced blocks"):
        ReducedBackend(problem, BlockReduction.subspace(6, 2))


def test_norm_target_must_be_a_union_of_leading_blocks():
    with pytest.raises(ValueError, match="block boundary"):
        ReducedBackend(mf.Problem(8, mf.NormTarget(3)), BlockReduction.subspace(8, 2))


def test_velocity_is_minus_gradient_of_reduced_risk():
    rng = np.random.default_rng(4)
    d, d_H = 10, 3
    for reduce_H in (False, True):
        blocks = BlockReduction.subspace(d, d_H, reduce_H)
        backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)), blocks)
        m = 5
        a = rng.standard_normal(m)
        z = _random_reduced(blocks, m, rng)
        w = rng.dirichlet(np.ones(m))
        ga, gz, _ = backend.gradients(a, z, w)
        h = 1e-6
        i = 1
        for col in range(blocks.n_coords):
            zp, zm = z.copy(), z.copy()
            zp[i, col] += h
            zm[i, col] -= h
            fd = (backend.risk(a, zp, w) - backend.risk(a, zm, w)) / (2 * h * w[i])
            assert fd == pytest.approx(gz[i, col], abs=FD_TOL)
        ap, am = a.copy(), a.copy()
        ap[i] += h
        am[i] -= h
        fd = (backend.risk(ap, z, w) - backend.risk(am, z, w)) / (2 * h * w[i])
        assert fd == pytest.approx(ga[i], abs=FD_TOL)


def test_quadrature_converges_fast():
    rng = np.random.default_rng(5)
    d, d_H, m = 30, 5, 64
    problem = mf.Problem(d, mf.NormTarget(d_H))
    blocks = BlockReduction.subspace(d, d_H)
    a, z = sample_reduced_init(m, d, d_H, rng)
    w = np.full(m, 1.0 / m)
    coarse = ReducedBackend(problem, blocks, n_nodes=8).gradients(a, z, w)
    fine = ReducedBackend(problem, blocks, n_nodes=48).gradients(a, z, w)
    for x, y in zip(coarse, fine):
        assert np.max(np.abs(np.asarray(x) - np.asarray(y))) < QUADRATURE_TOL


def test_zero_norm_is_invariant_and_norms_stay_nonnegative():
    rng = np.random.default_rng(6)
    d, d_H, m = 12, 3, 32
    blocks = BlockReduction.subspace(d, d_H)
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)), blocks)
    a, z = sample_reduced_init(m, d, d_H, rng)
    z[0, -1] = 0.0
    _, gz, _ = backend.gradients(a, z, np.full(m, 1.0 / m))
    assert gz[0, -1] == 0.0
    res = simulate_reduced(backend, a, z, 0.05, 100, n_snapshots=5)
    assert res.status == "ok"
    assert np.all(res.snapshots["z"][:, :, -1] >= 0)
    assert res.z[0, -1] == 0.0
    assert np.all(np.diff(res.risk) <= 1e-12)  # small dt: the risk never increases


def test_integrators_from_the_registry_run_on_reduced_state():
    rng = np.random.default_rng(7)
    d, d_H, m = 9, 2, 16
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)), BlockReduction.subspace(d, d_H))
    a, z = sample_reduced_init(m, d, d_H, rng)
    ends = {name: simulate_reduced(backend, a, z, 0.01, 40, integrator=name).risk[-1]
            for name in ("euler", "heun", "rk4", "euler_projected")}
    assert max(ends.values()) - min(ends.values()) < 1e-3
    proj = simulate_reduced(backend, a, z, 0.01, 40, integrator="euler_projected")
    q = proj.a ** 2 - np.einsum("ij,ij->i", proj.z, proj.z)
    assert np.allclose(q, a ** 2 - np.einsum("ij,ij->i", z, z), atol=1e-12)


def test_predictor_matches_average_of_lifted_predictors():
    rng = np.random.default_rng(8)
    d, d_H, m = 7, 2, 5
    blocks = BlockReduction.subspace(d, d_H)
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)), blocks, n_nodes=32)
    a = rng.standard_normal(m)
    z = _random_reduced(blocks, m, rng)
    w = np.full(m, 1.0 / m)
    x = rng.standard_normal((3, d))
    f_red = backend.predict(a, z, w, x)
    draws = np.array([mf.predict(mf.Particles(a, blocks.lift(z, rng)), x) for _ in range(4000)])
    se = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(np.abs(draws.mean(axis=0) - f_red) < MC_SIGMAS * se + 1e-15)


@pytest.mark.slow
def test_full_flow_approaches_reduced_flow_like_inverse_sqrt_m():
    d, d_H, dt, n = 12, 3, 0.02, 100
    problem = mf.Problem(d, mf.NormTarget(d_H))
    blocks = BlockReduction.subspace(d, d_H)
    backend = ReducedBackend(problem, blocks, n_nodes=12)
    widths = [16, 64, 256]
    gaps = []
    for m in widths:
        per_seed = []
        for seed in range(6):
            p0 = mf.init_sphere_rademacher(m, d, np.random.default_rng([seed, m]))
            full = mf.simulate(problem, p0, dt, n)
            red = simulate_reduced(backend, p0.a, blocks.project(p0.b), dt, n)
            per_seed.append(np.max(np.abs(full.risk - red.risk)))
        gaps.append(np.mean(per_seed))
    slope = np.polyfit(np.log(widths), np.log(gaps), 1)[0]
    assert RATE_WINDOW[0] < slope < RATE_WINDOW[1], (slope, gaps)
