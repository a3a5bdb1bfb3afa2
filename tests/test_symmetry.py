"""Group actions on particles, orbit-symmetric starts, symmetry defects (MATH §3)."""
import itertools

import numpy as np
import pytest

from conftest import DEFECT_RATE_SLACK, ORBIT_ROUNDOFF, ROTATION_ROUNDOFF, RTOL_KERNEL
import meanfield as mf
from meanfield.theory import symmetry as S
from meanfield.kernels.threads import get_threads, set_threads

# -- tolerances ---------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny problems: one thread avoids parallel start-up costs on a shared machine."""
    old = get_threads()
    set_threads(1)
    yield
    set_threads(old)


def _random_signed_perm(rng, d):
    return S._signed_permutation(1.0, rng.permutation(d), rng.choice([-1.0, 1.0], d), "g")


# ------------------------------------------------------------------------------ actions
def test_signed_permutations_compose_exactly(rng):
    d = 6
    g, h = _random_signed_perm(rng, d), _random_signed_perm(rng, d)
    b = rng.standard_normal((5, d))
    assert np.array_equal((g * h).apply_b(b), g.apply_b(h.apply_b(b)))
    assert np.array_equal(g.apply_b(b), b @ g.T.T)
    assert np.array_equal((g.inverse() * g).apply_b(b), b)
    assert (g * h).exact and np.array_equal((g * h).T, g.T @ h.T)


def test_matrix_actions_compose_and_invert(rng):
    d = 4
    g = S.block_rotation(d, [1, 3], angle=0.7)
    h = S.orthogonal_map(np.linalg.qr(rng.standard_normal((d, d)))[0])
    b = rng.standard_normal((5, d))
    assert not g.exact
    assert np.allclose((g * h).apply_b(b), g.apply_b(h.apply_b(b)), atol=1e-14, rtol=0)
    assert np.allclose((h.inverse() * h).apply_b(b), b, atol=1e-14, rtol=0)
    # a rotation by π/2 of a coordinate pair is not stored as a signed permutation (cos is
    # 6e-17, not 0) but a reflection given as a matrix is detected and applied exactly
    refl = S.orthogonal_map(np.diag([1.0, -1.0, 1.0, 1.0]))
    assert refl.exact and refl.same_as(S.coordinate_reflection(d, [1]))


def test_action_validation():
    with pytest.raises(ValueError, match="orthogonal"):
        S.orthogonal_map(np.array([[1.0, 0.1], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="permutation"):
        S.coordinate_permutation([0, 0, 1])
    with pytest.raises(ValueError, match="at least 2 distinct"):
        S.block_rotation(4, [1], angle=0.3)
    with pytest.raises(ValueError, match="exactly one"):
        S.block_rotation(4, [1, 2])
    with pytest.raises(ValueError, match="indices"):
        S.coordinate_reflection(3, [5])


def test_predictor_equivariance(rng):
    """f(g#μ; x) = s f(μ; Tᵀx), for a sign flip with a reflection and a block rotation."""
    d = 5
    p = mf.init_gaussian(20, d, rng)
    x = rng.standard_normal((50, d))
    for g in (S.sign_flip(d, np.diag([1.0, -1.0, 1.0, 1.0, -1.0])),
              S.block_rotation(d, [0, 2, 4], R=np.linalg.qr(rng.standard_normal((3, 3)))[0])):
        lhs = mf.predict(g.apply(p), x)
        rhs = g.sign * mf.predict(p, g.apply_inputs(x))
        assert np.allclose(lhs, rhs, atol=1e-13, rtol=0)


def test_target_equivariance_error(rng):
    d = 5
    odd = mf.Problem(d=d, target=mf.odd_cubic_target(d, rng), law=mf.GaussianLaw(0.5))
    norm = mf.Problem(d=d, target=mf.NormTarget(2))
    assert S.target_equivariance_error(odd, S.sign_flip(d), rng) < 1e-14
    assert S.target_equivariance_error(norm, S.sign_flip(d), rng) > 1.0  # f* ≥ 0: no sign flip
    rot = S.block_rotation(d, [0, 1], angle=1.234)
    assert S.target_equivariance_error(norm, rot, rng) < 1e-14


# ------------------------------------------------------------------------------- groups
def test_generated_group_orders():
    d = 5
    rot3 = S.block_rotation(d, [0, 1], angle=2 * np.pi / 3)
    refl = S.coordinate_reflection(d, [0])
    shift = S.coordinate_permutation([0, 1, 3, 4, 2])
    assert len(S.generate_group([S.block_rotation(d, [0, 1], angle=2 * np.pi / 5)])) == 5
    assert len(S.generate_group([rot3, refl])) == 6            # D3
    assert len(S.generate_group([rot3, refl, shift])) == 18    # D3 × Z3
    assert len(S.generate_group([S.sign_flip(d)])) == 2
    assert len(S.generate_group([S.coordinate_permutation([1, 2, 0, 3, 4]),
                                 S.coordinate_permutation([1, 0, 2, 3, 4])])) == 6  # S3
    with pytest.raises(ValueError, match="more than"):
        S.generate_group([S.block_rotation(d, [0, 1], angle=1.0)], max_size=200)


def _groups(rng):
    """(problem, generators, base) for three finite symmetry groups of three problems."""
    d = 5
    odd = mf.Problem(d=d, target=mf.odd_cubic_target(d, rng), law=mf.GaussianLaw(1 / np.sqrt(d)))
    norm = mf.Problem(d=d, target=mf.NormTarget(2))
    b_star = np.eye(d)[:3]
    teacher = mf.Problem(d=d, target=mf.Teacher(np.ones(3), b_star))
    return {
        "sign_flip": (odd, [S.sign_flip(d)], mf.init_sphere_rademacher(16, d, rng)),
        "D3xZ3": (norm, [S.block_rotation(d, [0, 1], angle=2 * np.pi / 3),
                         S.coordinate_reflection(d, [0]),
                         S.coordinate_permutation([0, 1, 3, 4, 2])],
                  mf.init_sphere_rademacher(3, d, rng)),
        "S3xZ4": (teacher, [S.coordinate_permutation([2, 0, 1, 3, 4]),
                            S.coordinate_permutation([1, 0, 2, 3, 4]),
                            S.block_rotation(d, [3, 4], angle=np.pi / 2)],
                  mf.init_sphere_rademacher(2, d, rng)),
    }


def test_orbit_init_is_invariant(rng):
    for name, (problem, gens, base) in _groups(rng).items():
        start = S.orbit_init(base, gens)
        n = len(start.group)
        assert start.particles.m == base.m * n
        assert start.particles.weights.sum() == pytest.approx(1.0, abs=1e-14)
        for g in gens:
            tol = 0.0 if all(x.exact for x in gens) else ROTATION_ROUNDOFF
            assert S.symmetry_defect(start.particles, g, pairing=start.pairing(g)) <= tol
            assert S.symmetry_defect(start.particles, g) <= max(tol, 1e-15)  # Hungarian
        with pytest.raises(ValueError, match="not an element"):
            start.pairing(S.coordinate_reflection(5, [1, 2, 3]))


@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.3, "rate_a": 2.0, "rate_b": 0.5}],
                         ids=["plain", "decay+rates"])
@pytest.mark.parametrize("group", ["sign_flip", "D3xZ3", "S3xZ4"])
def test_orbit_starts_stay_symmetric_under_the_flow(rng, group, options):
    """Every action here is linear and orthogonal on b (and ±1 on a), so it commutes with the
    decoupled decay −λθ and with the per-layer rates: the velocity field stays equivariant."""
    problem, gens, base = _groups(rng)[group]
    for g in gens:
        assert S.target_equivariance_error(problem, g, rng) < 1e-14  # it is a symmetry
    start = S.orbit_init(base, gens)
    r = mf.simulate_flow(problem, start.particles, dt=0.05, n_steps=50, **options)
    assert r.status == "ok" and r.risk[-1] < r.risk[0]
    p = mf.Particles(r.particles.a, r.particles.b, start.particles.weights)
    for g in gens:
        assert S.symmetry_defect(p, g, pairing=start.pairing(g), relative=True) <= ORBIT_ROUNDOFF


def test_random_start_defect_falls_like_inverse_sqrt_m():
    """i.i.d. starts are invariant in law only: the sliced defect ~ m^{−½} (at t = 0; the flow
    version is the slow test below)."""
    d = 5
    g = S.block_rotation(d, [0, 1], angle=2 * np.pi / 3)
    ms = np.array([64, 256, 1024, 4096])
    mean = [np.mean([S.symmetry_defect(mf.init_sphere_rademacher(int(m), d,
                                                                 np.random.default_rng([s, m])),
                                       g, method="sliced") for s in range(4)]) for m in ms]
    from meanfield.theory.conservation import loglog_slope

    assert abs(loglog_slope(ms, mean) + 0.5) <= DEFECT_RATE_SLACK


@pytest.mark.slow
def test_random_start_defect_after_the_flow_falls_like_inverse_sqrt_m():
    from meanfield.theory.conservation import loglog_slope

    d = 5
    problem = mf.Problem(d=d, target=mf.NormTarget(2))
    g = S.block_rotation(d, [0, 1], angle=2 * np.pi / 3)
    ms = np.array([32, 128, 512])
    mean = []
    for m in ms:
        vals = []
        for s in range(3):
            p0 = mf.init_sphere_rademacher(int(m), d, np.random.default_rng([s, m]))
            r = mf.simulate_flow(problem, p0, dt=0.05, n_steps=20)
            vals.append(S.symmetry_defect(r.particles, g, method="sliced"))
        mean.append(np.mean(vals))
    assert abs(loglog_slope(ms, mean) + 0.5) <= DEFECT_RATE_SLACK


# ---------------------------------------------------------------------------- distances
def test_wasserstein_1d_against_scipy(rng):
    from scipy.stats import wasserstein_distance

    x, y = rng.standard_normal(17), rng.standard_normal(9) + 0.3
    wx, wy = rng.uniform(size=17), rng.uniform(size=9)
    ref = wasserstein_distance(x, y, wx, wy)
    assert S.wasserstein_1d(x, y, wx, wy) == pytest.approx(ref, rel=RTOL_KERNEL)
    # batch form, and W_p of a translate is the shift
    out = S.wasserstein_1d(np.stack([x, x]), np.stack([x + 0.5, x - 2.0]), p=2)
    assert np.allclose(out, [0.5, 2.0], rtol=1e-12)
    with pytest.raises(ValueError, match="p must be"):
        S.wasserstein_1d(x, y, p=0.5)


def test_matching_defect_equals_brute_force(rng):
    """Hungarian W₂(μ, g#μ) against the minimum over all 5! permutations."""
    d = 3
    p = mf.init_gaussian(5, d, rng)
    g = S.sign_flip(d)
    theta = np.column_stack([p.a, p.b])
    image = np.column_stack([-p.a, -p.b])
    brute = min(np.sqrt(np.mean(np.sum((image - theta[list(pi)]) ** 2, axis=1)))
                for pi in itertools.permutations(range(5)))
    assert S.symmetry_defect(p, g) == pytest.approx(brute, rel=1e-12)
    assert S.symmetry_defect(p, g, method="sliced") > 0.05


def test_defect_validation(rng):
    p = mf.Particles(np.ones(3), np.ones((3, 2)), np.array([0.5, 0.25, 0.25]))
    g = S.sign_flip(2)
    with pytest.raises(ValueError, match="uniform weights"):
        S.symmetry_defect(p, g)
    with pytest.raises(ValueError, match="permutation"):
        S.symmetry_defect(p, g, pairing=np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="unknown method"):
        S.symmetry_defect(p, g, method="kl")
    with pytest.raises(ValueError, match="d = 2"):
        S.symmetry_defect(p, S.sign_flip(3))
