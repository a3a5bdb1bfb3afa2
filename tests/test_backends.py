"""Exact risk and velocity: against Monte Carlo, finite differences, and flow invariances."""
import numpy as np
import pytest

import reference as ref
from conftest import N_SIGMA, RTOL_FD, RTOL_KERNEL
import meanfield as mf
from meanfield.models.backends import ExactBackend, SampledBackend


def _targets(d, rng):
    teacher = mf.Teacher(rng.standard_normal(3), rng.standard_normal((3, d)),
                         beta=0.5 * rng.standard_normal(d))
    return {
        "teacher": teacher,
        # ReLU units only (two parts): the exact backend's one-pair-sum path
        "units": (mf.Teacher(rng.standard_normal(3), rng.standard_normal((3, d))),
                  mf.Teacher(rng.standard_normal(2), rng.standard_normal((2, d)))),
        "linear": mf.Teacher(np.zeros(0), np.zeros((0, d)), rng.standard_normal(d)),
        "norm": mf.NormTarget(2, coef=1.5),
        "odd_cubic": mf.odd_cubic_target(d, rng),
        "teacher+norm": (mf.NormTarget(3, 0.7), teacher),
        "odd+teacher": (mf.OddPowerTarget(rng.standard_normal(d), 0.3, 5), teacher),
    }


CASES = [(t, law, act) for t in ("teacher", "units", "linear", "norm", "odd_cubic", "teacher+norm",
                                 "odd+teacher")
         for law in ("gauss", "sphere") for act in ("relu", "linear")
         if not (law == "sphere" and t.startswith("odd"))]


def _law(name):
    return mf.GaussianLaw(0.8) if name == "gauss" else mf.SphereLaw()


def _fuse_at_any_m(monkeypatch, target):
    """The units-only target through the one-pair-sum path even at these few particles
    (normally taken from 8 particles per unit on: a cost rule, not a validity one)."""
    if target == "units":
        monkeypatch.setattr(ExactBackend, "fuses_units", lambda self, m: self.units is not None)


@pytest.mark.parametrize("target,law,act", CASES)
def test_exact_risk_against_monte_carlo(rng, monkeypatch, target, law, act):
    d, n = 5, 400_000
    _fuse_at_any_m(monkeypatch, target)
    problem = mf.Problem(d, _targets(d, rng)[target], _law(law), act)
    p = mf.init_gaussian(6, d, rng, scale_b=1.0)
    F = ExactBackend(problem).risk(p.a, p.b, p.weights)
    errs = []
    for _ in range(3):  # 1.2e6 samples in total, in chunks
        x = problem.sample_inputs(rng, n)
        r = mf.predict(p, x, act) - problem.target_values(x)
        errs.append(0.5 * r * r)
    e = np.concatenate(errs)
    assert abs(F - e.mean()) < N_SIGMA * e.std() / np.sqrt(e.size)


@pytest.mark.parametrize("weights", ["uniform", "dirichlet"])
@pytest.mark.parametrize("target", ["teacher", "units", "norm", "odd_cubic", "teacher+norm"])
@pytest.mark.parametrize("act", ["relu", "linear"])
def test_velocity_is_minus_m_times_gradient_of_risk(rng, monkeypatch, target, act, weights):
    """Particle velocity = −∇_θ V_μ(θ_j) = −(1/w_j) ∂F(μ_m)/∂θ_j (= −m ∂F/∂θ_j for uniform
    weights; MATH §1)."""
    _fuse_at_any_m(monkeypatch, target)
    d, m = 4, 5
    problem = mf.Problem(d, _targets(d, rng)[target], mf.GaussianLaw(1.1), act)
    backend = ExactBackend(problem)
    p = mf.init_gaussian(m, d, rng, scale_b=1.0)
    w = p.weights if weights == "uniform" else rng.dirichlet(np.ones(m))
    ga, gb, _ = backend.gradients(p.a, p.b, w)
    fa, fb = ref.finite_difference_gradient(lambda a, b: backend.risk(a, b, w), p.a, p.b)
    np.testing.assert_allclose(ga, fa / w, rtol=RTOL_FD, atol=RTOL_FD)
    np.testing.assert_allclose(gb, fb / w[:, None], rtol=RTOL_FD, atol=RTOL_FD)


@pytest.mark.parametrize("law", ["gauss", "sphere"])
@pytest.mark.parametrize("m,d", [(40, 3), (300, 10), (600, 80)])
def test_units_in_the_pair_sum_match_the_separate_target_terms(rng, law, m, d):
    """A target of ReLU units only goes through one symmetric pair sum (the units as
    particles of weight −a*); it gives the gradients and risk of the separate path
    (particles' pair sum + target correlation + ½ E f*²) to round-off, on the tiles and
    (600, 80) on the BLAS panels. A target with a linear part is not fused."""
    from meanfield.kernels import gaussian
    units = _targets(d, rng)["units"]
    backend = ExactBackend(mf.Problem(d, units, _law(law)))
    assert backend.units is not None and backend.units[0].shape == (5,)
    assert backend.fuses_units(m) and not backend.fuses_units(39)  # k = 5 ≤ m/8
    assert gaussian._use_blas(m + 5, m + 5, d) == (m == 600)
    p = mf.init_gaussian(m, d, rng, scale_b=1.0)
    w = rng.dirichlet(np.ones(m))
    fused = backend.gradients(p.a, p.b, w)
    backend.units = None
    separate = backend.gradients(p.a, p.b, w)
    for got, want in zip(fused[:2], separate[:2]):
        assert np.abs(got - want).max() <= RTOL_KERNEL * np.abs(want).max()
    # the risk: both are sums of O(E f*²) terms, so round-off is relative to that scale
    assert abs(fused[2] - separate[2]) <= RTOL_KERNEL * max(1.0, 2 * backend.energy)
    assert ExactBackend(mf.Problem(d, _targets(d, rng)["teacher"], _law(law))).units is None


def test_velocity_with_unequal_weights_against_reference_risk(rng):
    """The same identity with F written out from the reference κ (not the backend's risk),
    weights spread over a factor ~30, ReLU teacher with a linear part."""
    d, m = 4, 6
    teacher = mf.Teacher(rng.standard_normal(2), rng.standard_normal((2, d)),
                         rng.standard_normal(d))
    backend = ExactBackend(mf.Problem(d, teacher))
    p = mf.init_gaussian(m, d, rng, scale_b=1.0)
    w = np.geomspace(1.0, 30.0, m)
    w /= w.sum()

    def F(a, b):
        c = w * a
        K = np.array([[ref.kappa(u, v) for v in b] for u in b])
        T = np.array([[ref.kappa(u, v) for v in teacher.b] for u in b]) @ teacher.a
        T = T + 0.5 * b @ teacher.beta  # E[σ(⟨b, x⟩)⟨β, x⟩] = ⟨b, β⟩/2
        return 0.5 * c @ K @ c - c @ T

    ga, gb, _ = backend.gradients(p.a, p.b, w)
    fa, fb = ref.finite_difference_gradient(F, p.a, p.b)
    np.testing.assert_allclose(ga, fa / w, rtol=RTOL_FD, atol=RTOL_FD)
    np.testing.assert_allclose(gb, fb / w[:, None], rtol=RTOL_FD, atol=RTOL_FD)


def test_risk_matches_dense_reference(rng):
    """F = ½ΣΣ w_j w_k a_j a_k κ_jk − Σ w_j a_j T_j + ½E f*², written out with the reference κ."""
    d, m = 4, 6
    teacher = mf.Teacher(rng.standard_normal(2), rng.standard_normal((2, d)))
    problem = mf.Problem(d, teacher)
    p = mf.init_gaussian(m, d, rng)
    w = rng.random(m)
    w /= w.sum()
    F = ExactBackend(problem).risk(p.a, p.b, w)
    K = np.array([[ref.kappa(u, v) for v in p.b] for u in p.b])
    T = np.array([[ref.kappa(u, v) for v in teacher.b] for u in p.b]) @ teacher.a
    KT = np.array([[ref.kappa(u, v) for v in teacher.b] for u in teacher.b])
    F_ref = 0.5 * (w * p.a) @ K @ (w * p.a) - (w * p.a) @ T + 0.5 * teacher.a @ KT @ teacher.a
    assert abs(F - F_ref) <= RTOL_KERNEL * max(1.0, abs(F_ref))


def test_permuting_particles_permutes_velocities(rng):
    d, m = 6, 9
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(m, d, rng)
    backend = ExactBackend(problem)
    ga, gb, F = backend.gradients(p.a, p.b, p.weights)
    perm = rng.permutation(m)
    ga2, gb2, F2 = backend.gradients(p.a[perm].copy(), p.b[perm].copy(), p.weights[perm].copy())
    np.testing.assert_allclose(ga2, ga[perm], rtol=RTOL_KERNEL, atol=1e-15)
    np.testing.assert_allclose(gb2, gb[perm], rtol=RTOL_KERNEL, atol=1e-15)
    assert abs(F2 - F) <= RTOL_KERNEL * abs(F)


def test_duplicating_every_particle_changes_nothing(rng):
    """μ_m is a measure: (1/2m) Σ (δ_θj + δ_θj) = μ_m, so risk and velocities are unchanged."""
    d, m = 5, 7
    problem = mf.Problem(d, _targets(d, rng)["teacher"])
    p = mf.init_gaussian(m, d, rng)
    q = mf.Particles(np.concatenate([p.a, p.a]), np.concatenate([p.b, p.b]))
    backend = ExactBackend(problem)
    ga, gb, F = backend.gradients(p.a, p.b, p.weights)
    ga2, gb2, F2 = backend.gradients(q.a, q.b, q.weights)
    np.testing.assert_allclose(ga2[:m], ga, rtol=RTOL_KERNEL, atol=1e-15)
    np.testing.assert_allclose(gb2[m:], gb, rtol=RTOL_KERNEL, atol=1e-15)
    assert abs(F2 - F) <= RTOL_KERNEL * abs(F)


def test_sampled_backend_on_fixed_data_matches_reference(rng):
    d, m, n = 4, 5, 64
    x = rng.standard_normal((n, d))
    teacher = mf.Teacher(rng.standard_normal(2), rng.standard_normal((2, d)))
    problem = mf.Problem(d, teacher, mf.SampledLaw(data=x))
    p = mf.init_gaussian(m, d, rng)
    ga, gb, F = SampledBackend(problem, batch_size=None).gradients(p.a, p.b, p.weights, rng)
    ga_r, gb_r, F_r = ref.sampled_gradients(x, teacher(x), p.a, p.b, p.weights)
    np.testing.assert_allclose(ga, ga_r, rtol=RTOL_KERNEL, atol=1e-15)
    np.testing.assert_allclose(gb, gb_r, rtol=RTOL_KERNEL, atol=1e-15)
    assert abs(F - F_r) <= RTOL_KERNEL * F_r


def test_sampled_gradient_is_unbiased_for_exact_gradient(rng):
    """Averaged over fresh Gaussian batches, the sampled gradient tends to the exact one."""
    d, m = 3, 4
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_gaussian(m, d, rng, scale_b=1.0)
    ga, gb, _ = ExactBackend(problem).gradients(p.a, p.b, p.weights)
    sb = SampledBackend(problem, batch_size=20_000)
    draws = [sb.gradients(p.a, p.b, p.weights, rng) for _ in range(50)]
    ga_s = np.array([g[0] for g in draws])
    se = ga_s.std(0) / np.sqrt(len(draws))
    assert np.all(np.abs(ga_s.mean(0) - ga) < N_SIGMA * se)


def test_exact_backend_refuses_what_it_cannot_do(rng):
    with pytest.raises(ValueError, match="sampled"):
        ExactBackend(mf.Problem(3, mf.NormTarget(1), mf.rademacher_law()))
    with pytest.raises(ValueError, match="sampled"):
        ExactBackend(mf.Problem(3, mf.NormTarget(1), activation="tanh"))
    with pytest.raises(ValueError, match="sampled"):
        ExactBackend(mf.Problem(3, mf.odd_cubic_target(3, rng), mf.SphereLaw()))


def test_large_d_blas_panels_agree_with_tiles_in_the_backend(rng, monkeypatch):
    """The whole exact velocity (teacher sum + norm target + particle interaction, non-uniform
    weights) with the particle interaction on the BLAS panels (d ≥ _BLAS_MIN_D) and on the
    Numba tiles: the same to round-off."""
    from meanfield.kernels import gaussian
    d, m = 260, 300
    assert gaussian._use_blas(m, m, d)
    teacher = mf.Teacher(rng.standard_normal(3), rng.standard_normal((3, d)) / np.sqrt(d))
    problem = mf.Problem(d, (mf.NormTarget(3, 0.7), teacher))
    backend = ExactBackend(problem)
    p = mf.init_gaussian(m, d, rng)
    w = rng.random(m)
    w /= w.sum()
    ga, gb, F = backend.gradients(p.a, p.b, w)
    monkeypatch.setattr(gaussian, "_BLAS_MIN_D", 10 ** 9)
    monkeypatch.setattr(gaussian, "_BLAS_MIN_D_SMALL_M", 10 ** 9)
    ga_t, gb_t, F_t = backend.gradients(p.a, p.b, w)
    assert np.linalg.norm(ga - ga_t) <= RTOL_KERNEL * np.linalg.norm(ga_t)
    assert np.linalg.norm(gb - gb_t) <= RTOL_KERNEL * np.linalg.norm(gb_t)
    assert F == pytest.approx(F_t, rel=RTOL_KERNEL)
