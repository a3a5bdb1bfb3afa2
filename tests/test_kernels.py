"""Every compiled kernel against its slow NumPy reference, Monte Carlo, and thread counts."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import reference as ref
from conftest import FORCED_THREADS, N_SIGMA, RTOL_FD, RTOL_KERNEL, RTOL_QUAD
from meanfield.kernels.gaussian import interaction, sphere_coordinate_quadrature
from meanfield.models.targets import NormTarget
from meanfield.kernels.sampled import potential_gradients, predict_batch


def _hard_points(rng, d):
    """Generic points plus the hard cases: parallel, antiparallel, orthogonal, tiny, zero."""
    u = rng.standard_normal((6, d))
    v = np.vstack([rng.standard_normal((4, d)), 2.5 * u[0], -0.3 * u[1],
                   1e-9 * rng.standard_normal(d), np.zeros(d)])
    if d >= 2:  # an exactly orthogonal pair
        w = np.zeros(d)
        w[0], w[1] = -u[2][1], u[2][0]
        u[2, 2:] = 0
        v = np.vstack([v, w])
    return u, v


@pytest.mark.parametrize("d", [1, 3, 17])
def test_interaction_matches_reference(rng, d):
    u, v = _hard_points(rng, d)
    c = rng.standard_normal(v.shape[0])
    S, G = interaction(u, v, c)
    S_ref, G_ref = ref.interaction(u, v, c)
    scale = np.abs(c).sum() * np.linalg.norm(u, axis=1).max() * np.linalg.norm(v, axis=1).max()
    np.testing.assert_allclose(S, S_ref, rtol=0, atol=RTOL_KERNEL * scale)
    # arccos in the reference loses ~√ε at γ ≈ 0, π: compare gradients at 1e-7 there
    np.testing.assert_allclose(G, G_ref, rtol=0, atol=1e-7 * np.abs(c).sum() * 3)


def test_interaction_gradient_is_derivative_of_kappa(rng):
    d = 5
    u = rng.standard_normal((3, d))
    v = rng.standard_normal((4, d))
    c = rng.standard_normal(4)
    _, G = interaction(u, v, c)
    h = 1e-6
    for i in range(3):
        for l in range(d):
            up, um = u.copy(), u.copy()
            up[i, l] += h
            um[i, l] -= h
            fd = (interaction(up, v, c)[0][i] - interaction(um, v, c)[0][i]) / (2 * h)
            assert abs(G[i, l] - fd) <= RTOL_FD * max(1.0, abs(fd))


def test_interaction_against_monte_carlo(rng):
    d, n = 4, 1_000_000
    u = rng.standard_normal((3, d))
    v = rng.standard_normal((2, d))
    c = np.array([0.7, -1.3])
    S, _ = interaction(u, v, c)
    x = rng.standard_normal((n, d))
    samples = np.maximum(x @ u.T, 0) * (np.maximum(x @ v.T, 0) @ c)[:, None]
    se = samples.std(0) / np.sqrt(n)
    assert np.all(np.abs(S - samples.mean(0)) < N_SIGMA * se)


@pytest.mark.parametrize("d_H,d", [(1, 4), (2, 5), (3, 3), (5, 9)])
def test_norm_target_matches_quadrature_reference(rng, d_H, d):
    b = rng.standard_normal((4, d))
    b[1, d_H:] = 0.0  # b inside H
    if d > d_H:
        b[2, :d_H] = 0.0  # b orthogonal to H
    T, G = NormTarget(d_H).unit_terms(b)
    T_ref = np.array([ref.norm_target_T(bi, d_H) for bi in b])
    np.testing.assert_allclose(T, T_ref, rtol=RTOL_QUAD)
    h = 1e-6
    for i in (0, 3):
        for l in range(d):
            bp, bm = b[i].copy(), b[i].copy()
            bp[l] += h
            bm[l] -= h
            fd = (ref.norm_target_T(bp, d_H) - ref.norm_target_T(bm, d_H)) / (2 * h)
            assert abs(G[i, l] - fd) <= 1e-5 * max(1.0, abs(fd))


def test_norm_target_against_monte_carlo(rng):
    d, d_H, n = 6, 3, 1_000_000
    b = rng.standard_normal((2, d))
    T, _ = NormTarget(d_H).unit_terms(b)
    x = rng.standard_normal((n, d))
    samples = np.linalg.norm(x[:, :d_H], axis=1)[:, None] * np.maximum(x @ b.T, 0)
    se = samples.std(0) / np.sqrt(n)
    assert np.all(np.abs(T - samples.mean(0)) < N_SIGMA * se)


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_sphere_coordinate_quadrature_moments(k):
    """E t² = 1/k and E t⁴ = 3/(k(k+2)) for one coordinate of a uniform point on S^{k−1}."""
    t, w = sphere_coordinate_quadrature(k, 16)
    assert abs(w.sum() - 1) < 1e-14
    assert abs(w @ t ** 2 - 1 / k) < 1e-14
    assert abs(w @ t ** 4 - 3 / (k * (k + 2))) < 1e-14


@pytest.mark.parametrize("kind,code", [("relu", 0), ("linear", 1), ("leaky_relu", 2), ("tanh", 3)])
def test_sampled_kernels_match_reference(rng, kind, code):
    n, m, d = 50, 7, 4
    x = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    a = rng.standard_normal(m)
    b = rng.standard_normal((m, d))
    w = rng.random(m)
    w /= w.sum()
    f = predict_batch(x, a, b, w, code)
    ga, gb = potential_gradients(x, f - y, a, b, code)
    ga_ref, gb_ref, _ = ref.sampled_gradients(x, y, a, b, w, kind)
    np.testing.assert_allclose(f, ref.act(x @ b.T, kind) @ (w * a), rtol=RTOL_KERNEL, atol=1e-14)
    np.testing.assert_allclose(ga, ga_ref, rtol=RTOL_KERNEL, atol=1e-14)
    np.testing.assert_allclose(gb, gb_ref, rtol=RTOL_KERNEL, atol=1e-14)


@pytest.fixture(scope="module")
def thread_report():
    """tests/thread_invariance.py run with 3 Numba threads (forced, whatever the machine)."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(FORCED_THREADS))
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("thread_invariance.py"))],
                         env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("family", ["pair_numba", "pair_blas", "sampled", "reduced"])
def test_parallel_branch_is_bit_identical_to_one_thread(thread_report, family):
    # sizes past each family's serial threshold: every size decision chose the parallel
    # branch, and (pair kernels) the tasks really ran on several threads
    assert thread_report["threads"] == FORCED_THREADS
    rep = thread_report[family]
    assert rep["decisions"] and all(rep["decisions"]), rep
    if family.startswith("pair"):
        assert rep["tasks_parallel"] and all(rep["tasks_parallel"]), rep
    assert rep["finite"] and rep["identical"], rep


@pytest.mark.parametrize("family", ["norm_target", "radial"])
def test_prange_kernels_are_bit_identical_to_one_thread(thread_report, family):
    # these kernels have no serial branch: prange splits the work at any size
    rep = thread_report[family]
    assert rep["n_arrays"] > 0 and rep["finite"] and rep["identical"], rep
