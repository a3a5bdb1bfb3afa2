"""Method of moments (seed 004): closed forms vs Monte Carlo, identities, recovery, controls."""
import numpy as np
import pytest

from conftest import MOMENTS_FAILED, MOMENTS_ROUND_OFF, N_SIGMA
from meanfield.systems import moments as mm
from meanfield.systems.equivalent import permute_units, rescale_units
from meanfield.theory.rates import fit_power_law


def _mc_check(samples, exact):
    """``samples`` (N, ...) of an estimator whose mean should be ``exact``."""
    mean = samples.mean(axis=0)
    se = samples.std(axis=0) / np.sqrt(len(samples))
    assert np.all(np.abs(mean - exact) <= N_SIGMA * se + 1e-12), np.max(
        np.abs(mean - exact) / (se + 1e-300))


def test_gaussian_closed_forms_against_monte_carlo():
    rng = np.random.default_rng(0)
    d, N = 4, 400_000
    u, v = rng.standard_normal(d), rng.standard_normal(d)
    g = rng.standard_normal((N, d))
    su, sv = np.maximum(g @ u, 0), np.maximum(g @ v, 0)
    _mc_check(su, np.linalg.norm(u) / np.sqrt(2 * np.pi))
    _mc_check(su[:, None] * g, u / 2)
    _mc_check(su * sv, mm.relu_kappa(u[None], v[None])[0, 0])
    gg = g[:, :, None] * g[:, None, :]
    _mc_check((su * sv)[:, None, None] * gg, mm.gaussian_relu_pair_moment(u, v))
    _mc_check((su * su)[:, None, None] * gg, mm.gaussian_relu_pair_moment(u, u))
    # E[σ(u·g) g⊗g⊗g] = ½ Σ_sym u ⊗ I, through GaussianMoments.fourth with identity maps
    A, W = np.eye(1), u[None, :]
    _, Tyx = mm.GaussianMoments(A, W).fourth(np.eye(1), np.eye(d))
    ggg = gg[:, :, :, None] * g[:, None, None, :]
    _mc_check(su[:, None, None, None] * ggg, Tyx[0])


def test_distinguishing_matrix_closed_form_against_monte_carlo():
    rng = np.random.default_rng(1)
    A, W = mm.make_teacher(5, 3, 6, rng)
    exact = mm.distinguishing_matrix(A, W)
    x = rng.standard_normal((300_000, 6))
    sampled = mm.distinguishing_matrix(A, W, x)
    # MC relative error ≈ (4th-moment spread)/√N ≈ 1%; 5% leaves a wide margin.
    assert np.linalg.norm(sampled - exact) < 0.05 * np.linalg.norm(exact)
    s = np.linalg.svd(exact, compute_uv=False)
    assert s[-1] > 0.05 * s[0]   # generic teacher: columns independent, identifiable


@pytest.fixture(scope="module")
def teacher():
    return mm.make_teacher(7, 4, 9, np.random.default_rng(2))


def test_odd_moment_identity_is_exact(teacher):
    A, W = teacher
    # Rademacher inputs, exact expectations by enumeration: E[y xᵀ] = ½ A W Σ, Σ = I.
    _, _, cross, _ = mm.rademacher_cube_moments(A, W).second()
    np.testing.assert_allclose(cross, 0.5 * A @ W, atol=MOMENTS_ROUND_OFF)
    # Bernoulli inputs on {0,1}^d (not symmetric): the identity fails.
    bits = mm.rademacher_cube_moments(A, W).x * 0.5 + 0.5
    moments = mm.SampleMoments(bits, mm.teacher_outputs(A, W, bits),
                               np.full(len(bits), 1.0 / len(bits)))
    sigma, _, cross, _ = moments.second()
    assert np.abs(cross - 0.5 * A @ W @ sigma).max() > 0.05


@pytest.mark.parametrize("law", ["gaussian", "rademacher", "gaussian-cov", "gaussian-noise"])
def test_exact_moments_recover_teacher_to_round_off(teacher, law):
    A, W = teacher
    k = W.shape[0]
    if law == "rademacher":
        moments = mm.rademacher_cube_moments(A, W)
    elif law == "gaussian-cov":   # whitening must undo a general covariance
        L = np.random.default_rng(3).standard_normal((9, 9))
        moments = mm.GaussianMoments(A, W, cov=L @ L.T + np.eye(9))
    elif law == "gaussian-noise":  # centred test function: output noise cancels exactly
        moments = mm.GaussianMoments(A, W, noise_std=0.7)
    else:
        moments = mm.GaussianMoments(A, W)
    fit = mm.recover(moments, k)
    s = fit.detector_singular_values
    assert s[-k] < MOMENTS_ROUND_OFF * s[0]           # null space of dimension exactly k ...
    assert s[-k - 1] > 1e-3 * s[0]            # ... and not more
    assert fit.eigen_imag < MOMENTS_ROUND_OFF
    assert fit.detector_residual < MOMENTS_ROUND_OFF
    assert mm.parameter_error(fit.A, fit.W, A, W) < 1e-9
    if law != "gaussian-noise":  # the moments-only output layer is exact without noise too
        fit = mm.recover(moments, k, a_method="moments")
        assert mm.parameter_error(fit.A, fit.W, A, W) < 1e-9


def test_pure_directions_are_annihilated_on_exact_moments(teacher):
    """σ(z)² = z σ(z): the rows of Ã^{-1} make the detector vanish, a mixed direction not."""
    A, W = teacher
    moments = mm.GaussianMoments(A, W)
    fit = mm.recover(moments, W.shape[0])
    assert fit.detector_residual < MOMENTS_ROUND_OFF
    # the pointwise identity behind it, on samples: with v a pure direction (a row of A⁺),
    # vᵀy = σ(z_j) and ℓ_v = z_j, so (vᵀy)² = ℓ_v vᵀy; a mixed direction violates it.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1000, 9))
    y = mm.teacher_outputs(A, W, x)
    s = y @ np.linalg.pinv(A).T      # (N, k): vᵀy for the k pure directions
    z = x @ W.T                      # ℓ_v for the same directions
    np.testing.assert_allclose(s ** 2, z * s, atol=1e-10)
    mixed = s[:, 0] + s[:, 1]
    assert np.abs(mixed ** 2 - (z[:, 0] + z[:, 1]) * mixed).max() > 0.1


def test_recovery_is_up_to_permutation_and_positive_rescaling(teacher):
    A, W = teacher
    A2, W2, _ = permute_units(A, W, [2, 0, 3, 1])
    A2, W2, _ = rescale_units(A2, W2, [0.5, 2.0, 3.0, 1.0])
    assert mm.parameter_error(A2, W2, A, W) < 1e-14
    assert mm.parameter_error(A, -W, A, W) > MOMENTS_FAILED


def test_non_symmetric_inputs_fail_on_exact_moments(teacher):
    """Negative control with exact expectations (no sampling): x uniform on {0,1}^d."""
    A, W = teacher
    bits = mm.rademacher_cube_moments(A, W).x * 0.5 + 0.5
    moments = mm.SampleMoments(bits, mm.teacher_outputs(A, W, bits),
                               np.full(len(bits), 1.0 / len(bits)))
    fit = mm.recover(moments, W.shape[0])
    assert fit.null_gap > 1e-3          # no exact k-dimensional null space
    assert mm.parameter_error(fit.A, fit.W, A, W) > MOMENTS_FAILED


@pytest.mark.parametrize("law", ["gaussian", "rademacher", "mixture"])
def test_sampled_recovery_is_accurate_for_symmetric_laws(teacher, law):
    A, W = teacher
    rng = np.random.default_rng(5)
    x = mm.sample_inputs(law, 40_000, 9, rng)
    y = mm.teacher_outputs(A, W, x, 0.1, rng)
    fit = mm.recover_from_samples(x, y, 4)
    assert mm.parameter_error(fit.A, fit.W, A, W) < 0.05


def test_sampled_recovery_fails_for_shifted_gaussian(teacher):
    A, W = teacher
    rng = np.random.default_rng(6)
    x = mm.sample_inputs("shifted_gaussian", 40_000, 9, rng)
    fit = mm.recover_from_samples(x, mm.teacher_outputs(A, W, x), 4)
    assert mm.parameter_error(fit.A, fit.W, A, W) > MOMENTS_FAILED


def test_gradient_descent_baseline_decreases_the_loss(teacher):
    A, W = teacher
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2000, 9))
    y = mm.teacher_outputs(A, W, x)
    gd = mm.fit_gd(x, y, 4, n_steps=300, lr=0.2, seed=0)
    assert np.all(np.isfinite(gd.loss))
    assert gd.loss[-1] < 0.2 * gd.loss[0]


def test_gradient_descent_runs_through_the_engine_as_plain_gd(teacher):
    """fit_gd is EmpiricalRiskField stepped by the engine's Euler at dt = lr: the same
    weights, bit for bit, as a hand-written gradient-descent loop, and its loss records."""
    A, W = teacher
    rng = np.random.default_rng(8)
    x = rng.standard_normal((500, 9))
    y = mm.teacher_outputs(A, W, x)
    n_steps, lr, every = 40, 0.2, 7
    gd = mm.fit_gd(x, y, 4, n_steps=n_steps, lr=lr, seed=3, record_every=every)
    r0 = np.random.default_rng(3)
    W1 = r0.standard_normal((4, 9))
    W1 *= 0.5 / np.linalg.norm(W1, axis=1, keepdims=True)
    A1 = 0.5 * r0.standard_normal((y.shape[1], 4)) / 2.0
    losses = []
    for step in range(n_steps + 1):
        pre = x @ W1.T
        h = np.maximum(pre, 0.0)
        r = h @ A1.T - y
        if step % every == 0 or step == n_steps:
            losses.append(0.5 * np.mean(np.sum(r ** 2, axis=1)))
        if step == n_steps:
            break
        g_A = r.T @ h / len(x)
        g_W = ((r @ A1) * (pre > 0)).T @ x / len(x)
        A1, W1 = A1 - lr * g_A, W1 - lr * g_W
    assert np.array_equal(gd.W, W1) and np.array_equal(gd.A, A1)
    np.testing.assert_allclose(gd.loss, losses, rtol=1e-13)
    assert len(gd.loss) == n_steps // every + 2


@pytest.mark.slow
def test_error_falls_like_inverse_square_root_of_n(teacher):
    A, W = teacher
    n_list = [2000, 8000, 32000, 128000]
    med = []
    for n in n_list:
        errs = []
        for t in range(7):
            rng = np.random.default_rng([8, n, t])
            x = rng.standard_normal((n, 9))
            fit = mm.recover_from_samples(x, mm.teacher_outputs(A, W, x, 0.1, rng), 4)
            errs.append(mm.parameter_error(fit.A, fit.W, A, W))
        med.append(np.median(errs))
    slope = fit_power_law(n_list, med).slope
    # median of 7 trials over a 64× range of N: slope within ±0.15 of −½
    assert -0.65 < slope < -0.35
