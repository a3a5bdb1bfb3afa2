"""The block-symmetric reduced flow (meanfield.models.reduced) against the full model."""
import numba
import numpy as np
import pytest

import meanfield as mf
import reference as ref
from conftest import (EXACT_TOL, LAW_RATE_WINDOW, N_SIGMA, QUADRATURE_TOL, RISK_RATE_WINDOW, RTOL_FD, RTOL_KERNEL)
from meanfield.models import reduced
from meanfield.models.backends import ExactBackend
from meanfield.models.targets import NormTarget
from meanfield.models.lowdim import sample_reduced_init
from meanfield.models.reduced import (BlockReduction, ReducedBackend, reduced_interaction,
                               simulate_reduced)
from meanfield.theory.rates import fit_power_law


def _kappa_np(u, v):
    """Slow NumPy reference (MATH §2): κ(u, v) and ∇_u κ for arrays (..., d) broadcast."""
    uv = np.sum(u * v, axis=-1)
    nu2 = np.sum(u * u, axis=-1)
    cross = np.sqrt(np.maximum(nu2 * np.sum(v * v, axis=-1) - uv ** 2, 0.0))
    gamma = np.arctan2(cross, uv)
    kappa = (cross + (np.pi - gamma) * uv) / (2 * np.pi)
    grad = ((np.pi - gamma)[..., None] * v + (cross / nu2)[..., None] * u) / (2 * np.pi)
    return kappa, grad


def _lifts(blocks, z, rng, n):
    """n independent lifts of z: array (n, m, d)."""
    return blocks.lift(np.tile(z, (n, 1)), rng).reshape(n, z.shape[0], blocks.d)


def _random_reduced(blocks, m, rng):
    z = rng.standard_normal((m, blocks.n_coords))
    z[:, blocks.n_explicit:] = np.abs(z[:, blocks.n_explicit:])
    return z


#: block layouts of the kernel checks: explicit H, both blocks reduced, d_H = 1 both ways
#: (a reduced block of size 1 has the two nodes t = ±1), four and five mixed blocks
LAYOUTS = {
    "H explicit": BlockReduction.subspace(9, 3),
    "H reduced": BlockReduction.subspace(9, 3, reduce_H=True),
    "d_H = 1": BlockReduction.subspace(7, 1),
    "d_H = 1 reduced": BlockReduction.subspace(7, 1, reduce_H=True),
    "mixed": BlockReduction((2, 3, 1, 4), (False, True, False, True)),
    "three reduced": BlockReduction((1, 2, 3, 4, 1), (True, False, True, True, False)),
}


def _with_zero_norms(blocks, z):
    """Rows 0–9 on the reflection-invariant sets: every block norm 0 (one kept if there is
    no explicit coordinate, so that z ≠ 0), rows 10–19 the first block norm only."""
    p = blocks.n_explicit
    z[:10, p:] = 0.0
    if p == 0:
        z[:10, -1] = 1.3
    z[10:20, p] = 0.0
    return z


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_reduced_kernel_matches_numpy_reference(layout):
    # m = 140 > one 128-tile: the symmetric kernel visits diagonal and off-diagonal tiles
    blocks = LAYOUTS[layout]
    nodes, weights = blocks.quadrature(8)
    p = blocks.n_explicit
    rng = np.random.default_rng(list(LAYOUTS).index(layout))
    z = _with_zero_norms(blocks, _random_reduced(blocks, 140, rng))
    c = rng.standard_normal(140) * rng.random(140)  # non-uniform, some exactly 0
    c[::13] = 0.0
    z_src = _with_zero_norms(blocks, _random_reduced(blocks, 37, rng))
    c_src = rng.standard_normal(37)
    for src, c_k in ((z, c), (z_src, c_src)):  # symmetric and general kernels
        s, g = reduced_interaction(z, src, c_k, p, nodes, weights)
        s_ref, g_ref = ref.reduced_interaction(z, src, c_k, p, nodes, weights)
        np.testing.assert_allclose(s, s_ref, rtol=RTOL_KERNEL,
                                   atol=RTOL_KERNEL * np.max(np.abs(s_ref)))
        np.testing.assert_allclose(g, g_ref, rtol=RTOL_KERNEL,
                                   atol=RTOL_KERNEL * np.max(np.abs(g_ref)))
        # κ̃ is even in every block norm: the derivative at r_l = 0 is exactly 0
        assert np.all(g[:, p:][z[:, p:] == 0.0] == 0.0)


def test_reduced_interaction_uses_non_uniform_weights():
    rng = np.random.default_rng(11)
    d, d_H, m = 10, 2, 150
    blocks = BlockReduction.subspace(d, d_H)
    law = mf.GaussianLaw(scale=1.5)
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H), law=law), blocks, n_nodes=8)
    a = rng.standard_normal(m)
    z = _with_zero_norms(blocks, _random_reduced(blocks, m, rng))
    w = rng.dirichlet(0.3 * np.ones(m))  # far from uniform
    s, g = backend.interaction_terms(a, z, w)
    s_ref, g_ref = ref.reduced_interaction(z, z, w * a, d_H, *blocks.quadrature(8))
    np.testing.assert_allclose(s, 1.5 ** 2 * s_ref, rtol=RTOL_KERNEL,
                               atol=RTOL_KERNEL * np.max(np.abs(s)))
    np.testing.assert_allclose(g, 1.5 ** 2 * g_ref, rtol=RTOL_KERNEL,
                               atol=RTOL_KERNEL * np.max(np.abs(g)))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 threads")
def test_reduced_kernel_identical_for_any_thread_count(monkeypatch):
    blocks = LAYOUTS["mixed"]
    nodes, weights = blocks.quadrature(8)
    p, n_red, q = blocks.n_explicit, blocks.n_reduced, weights.size
    rng = np.random.default_rng(12)
    m, m_src = 601, 299  # several tiles, not multiples of any tile or thread count
    z = _with_zero_norms(blocks, _random_reduced(blocks, m, rng))
    z_src = _random_reduced(blocks, m_src, rng)
    c, c_src = rng.standard_normal(m), rng.standard_normal(m_src)
    # both sizes reach the parallel branch (no serial fallback) of the intended kernel
    assert not reduced._run_serially(m, m, p, n_red, q)
    assert not reduced._run_serially(m, m_src, p, n_red, q)
    serial_flags = []
    for name in ("_reduced_pair_sums", "_reduced_pair_sums_symmetric"):
        kernel = getattr(reduced, name)
        monkeypatch.setattr(reduced, name, lambda *args, _k=kernel, _n=name:
                            serial_flags.append((_n, args[-1])) or _k(*args))
    before = numba.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            outs.append(reduced_interaction(z, z, c, p, nodes, weights)
                        + reduced_interaction(z, z_src, c_src, p, nodes, weights))
    finally:
        numba.set_num_threads(before)
    assert serial_flags == 2 * [("_reduced_pair_sums_symmetric", False),
                                ("_reduced_pair_sums", False)]
    for first, other in zip(*outs):
        assert np.array_equal(first, other)


@pytest.mark.parametrize("reduce_H", [False, True])
def test_reduced_kernel_matches_monte_carlo_over_orthogonal_directions(reduce_H):
    rng = np.random.default_rng(0)
    blocks = BlockReduction.subspace(9, 3, reduce_H)
    nodes, weights = blocks.quadrature(24)
    z = _random_reduced(blocks, 4, rng)
    z2 = _random_reduced(blocks, 3, rng)
    c = rng.standard_normal(3)
    s_red, g_red = reduced_interaction(z, z2, c, blocks.n_explicit, nodes, weights)
    b, b2 = _lifts(blocks, z, rng, 20000), _lifts(blocks, z2, rng, 20000)
    kappa, _ = _kappa_np(b[:, :, None, :], b2[:, None, :, :])
    draws = kappa @ c  # (n, m)
    err = np.abs(draws.mean(axis=0) - s_red)
    se = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(err < N_SIGMA * se + 1e-15), (err, se)


def test_reduced_gradient_matches_monte_carlo_of_projected_full_gradient():
    # d/dr of the averaged kernel = average of the full gradient along b_⊥/r
    rng = np.random.default_rng(1)
    blocks = BlockReduction.subspace(7, 2)
    nodes, weights = blocks.quadrature(24)
    z = _random_reduced(blocks, 3, rng)
    z2 = _random_reduced(blocks, 5, rng)
    c = rng.standard_normal(5)
    _, g_red = reduced_interaction(z, z2, c, blocks.n_explicit, nodes, weights)
    b, b2 = _lifts(blocks, z, rng, 20000), _lifts(blocks, z2, rng, 20000)
    _, grad = _kappa_np(b[:, :, None, :], b2[:, None, :, :])
    g = np.einsum("nmkd,k->nmd", grad, c)
    radial = np.einsum("nmd,nmd->nm", g[:, :, 2:], b[:, :, 2:]) / np.linalg.norm(b[:, :, 2:],
                                                                                  axis=2)
    draws = np.concatenate([g[:, :, :2], radial[:, :, None]], axis=2)
    err = np.abs(draws.mean(axis=0) - g_red)
    se = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(err < N_SIGMA * se + 1e-15)


def test_norm_target_terms_equal_full_ones_on_any_lift():
    rng = np.random.default_rng(2)
    d, d_H = 11, 4
    for reduce_H in (False, True):
        blocks = BlockReduction.subspace(d, d_H, reduce_H)
        backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H, coef=1.7)), blocks)
        z = _random_reduced(blocks, 6, rng)
        t_red, g_red = backend.target_terms(z)
        b = blocks.lift(z, rng)
        t_full, g_full = NormTarget(d_H).unit_terms(b)
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
            assert fd == pytest.approx(gz[i, col], abs=RTOL_FD)
        ap, am = a.copy(), a.copy()
        ap[i] += h
        am[i] -= h
        fd = (backend.risk(ap, z, w) - backend.risk(am, z, w)) / (2 * h * w[i])
        assert fd == pytest.approx(ga[i], abs=RTOL_FD)


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
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)), blocks, n_nodes=8)
    a, z = sample_reduced_init(m, d, d_H, rng)
    z[0, -1] = 0.0
    _, gz, _ = backend.gradients(a, z, np.full(m, 1.0 / m))
    assert gz[0, -1] == 0.0
    res = simulate_reduced(backend, a, z, 0.05, 60, n_snapshots=5)
    assert res.status == "ok"
    assert np.all(res.snapshots["z"][:, :, -1] >= 0)
    assert res.z[0, -1] == 0.0
    assert np.all(np.diff(res.risk) <= 1e-12)  # small dt: the risk never increases


def test_integrators_from_the_registry_run_on_reduced_state():
    rng = np.random.default_rng(7)
    d, d_H, m = 9, 2, 16
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)), BlockReduction.subspace(d, d_H),
                             n_nodes=8)
    a, z = sample_reduced_init(m, d, d_H, rng)
    runs = {name: simulate_reduced(backend, a, z, 0.01, 20, integrator=name)
            for name in ("euler", "heun", "rk4", "euler_projected")}
    ends = [r.risk[-1] for r in runs.values()]
    assert max(ends) - min(ends) < 1e-3  # same flow, O(dt) apart at t = 0.2
    proj = runs["euler_projected"]
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
    b = _lifts(blocks, z, rng, 20000)
    draws = np.maximum(np.einsum("nmd,kd->nmk", b, x), 0.0).transpose(0, 2, 1) @ (w * a)
    se = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(np.abs(draws.mean(axis=0) - f_red) < N_SIGMA * se + 1e-15)


@pytest.mark.slow
def test_full_flow_approaches_reduced_flow_as_m_grows():
    # The i.i.d. start is symmetric only in law: the laws differ by a symmetry defect of
    # order m^(-1/2). The risk is quadratic in μ and its first variation at a symmetric
    # measure is itself symmetric, so the defect enters the risk only at second order: m^(-1).
    d, d_H, dt, n = 12, 3, 0.02, 60
    problem = mf.Problem(d, mf.NormTarget(d_H))
    blocks = BlockReduction.subspace(d, d_H)
    backend = ReducedBackend(problem, blocks, n_nodes=8)
    widths = [16, 64, 256]
    risk_gaps, law_gaps = [], []
    for m in widths:
        r_seed, l_seed = [], []
        for seed in range(4):
            p0 = mf.init_sphere_rademacher(m, d, np.random.default_rng([seed, m]))
            full = mf.simulate_flow(problem, p0, dt, n)
            red = simulate_reduced(backend, p0.a, blocks.project(p0.b), dt, n)
            r_seed.append(np.max(np.abs(full.risk - red.risk)))
            b = full.particles.b
            x_full = np.column_stack([full.particles.a, b[:, :d_H], np.linalg.norm(b[:, d_H:],
                                                                                  axis=1)])
            l_seed.append(np.sqrt(np.mean(np.sum((x_full - np.column_stack([red.a, red.z])) ** 2,
                                                 axis=1))))
        risk_gaps.append(np.mean(r_seed))
        law_gaps.append(np.mean(l_seed))
    law_slope = fit_power_law(widths, law_gaps).slope
    risk_slope = fit_power_law(widths, risk_gaps).slope
    assert LAW_RATE_WINDOW[0] < law_slope < LAW_RATE_WINDOW[1], (law_slope, law_gaps)
    assert RISK_RATE_WINDOW[0] < risk_slope < RISK_RATE_WINDOW[1], (risk_slope, risk_gaps)
