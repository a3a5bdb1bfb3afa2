"""The tiled pair kernels of meanfield.kernels.gaussian (issue 8) against direct NumPy formulas.

Covers what the tiling and the vectorised arctangent could get wrong: tile and block
edges, the small-d / large-d Gram paths, the symmetric (b_src is b_out) kernel with its
virtual workers, zero-weight sources, and bit-identical results for 1 and 2 threads.
"""
import math

import numba
import numpy as np
import pytest

from conftest import MAX_ULP_ATAN, RTOL_KERNEL
from meanfield.kernels import gaussian
from meanfield.kernels.threads import kernel
from meanfield.kernels.gaussian import fast_atan2, interaction
from meanfield.models.targets import NormTarget


@kernel(error_model="numpy")
def _atan2_loop(y, x, out):
    for i in range(y.shape[0]):
        out[i] = fast_atan2(y[i], x[i])


@kernel(error_model="numpy", fastmath={"reassoc"})
def _atan2_loop_reassoc(y, x, out):
    # the flags _tile_angles and _norm_target_kernel call fast_atan2 with (it is inlined)
    for i in range(y.shape[0]):
        out[i] = fast_atan2(y[i], x[i])


def _ulps(got, want):
    spacing = np.spacing(np.abs(want))
    return np.abs(got - want) / np.where(spacing > 0, spacing, np.finfo(float).tiny)


def _dense_reference(b_out, b_src, c, n_out=None, n_src=None):
    """S, G of MATH §2 with dense (m, n) arrays, γ from NumPy's arctan2."""
    dots = b_out @ b_src.T
    n_out = np.einsum("ij,ij->i", b_out, b_out) if n_out is None else n_out
    n_src = np.einsum("ij,ij->i", b_src, b_src) if n_src is None else n_src
    cross = np.sqrt(np.maximum(n_out[:, None] * n_src[None, :] - dots ** 2, 0.0))
    theta = np.pi - np.arctan2(cross, dots)
    s = (cross + theta * dots) @ c / (2 * np.pi)
    radial = np.divide(cross @ c, n_out, out=np.zeros_like(n_out), where=n_out > 0)
    g = ((theta * c) @ b_src + radial[:, None] * b_out) / (2 * np.pi)
    return s, g


def _symmetric_reference(b, c):
    """The same with b_src = b_out, squared norms from the Gram diagonal (self-pair exact)."""
    n = np.einsum("ij,ij->i", b, b)
    return _dense_reference(b, b, c, n, n)


def _rel(got, want):
    """Relative error in the 2-norm (0 when both are 0: antiparallel pairs give S = G = 0)."""
    diff, size = np.linalg.norm(got - want), np.linalg.norm(want)
    return diff / size if size > 0 else diff


@pytest.mark.parametrize("loop", [_atan2_loop, _atan2_loop_reassoc])
def test_atan2_matches_libm_over_the_full_range(rng, loop):
    n = 200_000
    angle = rng.uniform(-np.pi, np.pi, n)
    radius = np.exp(rng.uniform(-700, 700, n))
    y, x = radius * np.sin(angle), radius * np.cos(angle)
    out = np.empty(n)
    loop(y, x, out)
    assert _ulps(out, np.arctan2(y, x)).max() <= MAX_ULP_ATAN


@pytest.mark.parametrize("x_sign", [1.0, -1.0])
@pytest.mark.parametrize("y_sign", [1.0, -1.0])
def test_atan2_near_zero_and_pi(rng, x_sign, y_sign):
    """γ ≈ 0 and γ ≈ π: y tiny against x = ±1, down to subnormals."""
    y = y_sign * np.exp(rng.uniform(-744, 0, 20_000))
    x = np.full_like(y, x_sign)
    out = np.empty_like(y)
    _atan2_loop(y, x, out)
    assert _ulps(out, np.arctan2(y, x)).max() <= MAX_ULP_ATAN


def test_atan2_special_values_are_those_of_math_atan2():
    special = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 5e-324, -2.5e-310, 1e308]
    y, x = (a.ravel().copy() for a in np.meshgrid(special, special))
    out = np.empty_like(y)
    _atan2_loop(y, x, out)
    for yi, xi, got in zip(y, x, out):
        want = math.atan2(yi, xi)
        if math.isnan(want):
            assert math.isnan(got), (yi, xi)
        else:  # exact, with the sign of zero (fast_atan2(±0, −0) = ±π, fast_atan2(±0, +0) = ±0)
            assert got == want and math.copysign(1, got) == math.copysign(1, want), (yi, xi)


@pytest.mark.parametrize("m,n,d", [(1, 1, 1), (130, 300, 3), (65, 257, 55), (64, 77, 56),
                                   (129, 40, 41), (70, 130, 300)])
def test_general_kernel_matches_dense_formula(rng, m, n, d):
    """Sizes straddle the 64-row blocks, 256-source tiles and the d < 56 Gram switch."""
    b_out = rng.standard_normal((m, d))
    b_src = rng.standard_normal((n, d))
    c = rng.standard_normal(n)
    s, g = interaction(b_out, b_src, c)
    s_ref, g_ref = _dense_reference(b_out, b_src, c)
    assert _rel(s, s_ref) <= RTOL_KERNEL
    assert _rel(g, g_ref) <= RTOL_KERNEL


@pytest.mark.parametrize("m,d", [(1, 4), (127, 10), (300, 55), (300, 56), (700, 33),
                                 (150, 200), (100, 600)])
def test_symmetric_kernel_matches_dense_formula(rng, m, d):
    """1 to 6 blocks of 128 rows: idle workers, one tile per worker, several tiles per
    worker; d on both sides of the Gram switch at 56, and large."""
    b = rng.standard_normal((m, d))
    c = rng.standard_normal(m)
    s, g = interaction(b, b, c)
    s_ref, g_ref = _symmetric_reference(b, c)
    assert _rel(s, s_ref) <= RTOL_KERNEL
    assert _rel(g, g_ref) <= RTOL_KERNEL
    # an equal copy takes the same path: identical numbers, not just close ones
    s_copy, g_copy = interaction(b, b.copy(), c)
    assert np.array_equal(s, s_copy) and np.array_equal(g, g_copy)


def test_symmetric_self_pair_is_exact(rng):
    """κ(u, u) = ‖u‖²/2 and ∇_1 κ(u, u) = u/2: r_ii = 0 and θ_ii = π exactly."""
    u = rng.standard_normal((1, 37))
    s, g = interaction(u, u, np.ones(1))
    assert s[0] == pytest.approx(0.5 * u[0] @ u[0], rel=4 * np.finfo(float).eps)
    np.testing.assert_allclose(g[0], 0.5 * u[0], rtol=4 * np.finfo(float).eps)


def test_zero_weight_sources_contribute_nothing(rng):
    """c_k = 0 drops b'_k even when it is not finite (as the per-pair loop did)."""
    b = rng.standard_normal((9, 5))
    c = rng.standard_normal(9)
    b_bad = b.copy()
    b_bad[3] = np.nan
    c[3] = 0.0
    keep = np.arange(9) != 3
    s, g = interaction(b[:4], b_bad, c)
    s_ref, g_ref = interaction(b[:4], b[keep], c[keep])
    np.testing.assert_allclose(s, s_ref, rtol=RTOL_KERNEL)
    np.testing.assert_allclose(g, g_ref, rtol=RTOL_KERNEL)
    s_self, g_self = interaction(b_bad, b_bad, c)  # symmetric call: only row 3 is NaN
    assert np.isnan(s_self[3]) and np.isfinite(np.delete(s_self, 3)).all()
    assert np.isfinite(np.delete(g_self, 3, axis=0)).all()


def test_symmetric_and_general_kernels_agree(rng):
    b = rng.standard_normal((300, 12))
    c = rng.standard_normal(300)
    s_sym, g_sym = interaction(b, b, c)
    moved = b.copy()
    moved[-1, -1] = np.nextafter(moved[-1, -1], np.inf)  # not equal: the general kernel
    s_gen, g_gen = interaction(b, moved, c)
    assert _rel(s_sym, s_gen) <= RTOL_KERNEL
    assert _rel(g_sym, g_gen) <= RTOL_KERNEL


def _same_bits_on_1_and_2_threads(compute):
    """``compute()`` (a tuple of arrays) on 1 thread and on 2 (the machine permitting):
    asserts every array is bit-identical and returns the 1-thread results."""
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            results.append(compute())
    finally:
        numba.set_num_threads(before)
    for one, two in zip(*results):
        assert np.array_equal(one, two)
    return results[0]


def test_tiled_kernels_identical_for_1_and_2_threads(rng):
    """Several tiles in every direction, so the threads really split the work."""
    b = rng.standard_normal((700, 20))
    small = rng.standard_normal((700, 6))
    src = rng.standard_normal((400, 20))
    c = rng.standard_normal(700)
    _same_bits_on_1_and_2_threads(
        lambda: interaction(b, b, c) + interaction(small, small, c)
        + interaction(b, src, c[:400]) + NormTarget(4).unit_terms(b))


@pytest.mark.parametrize("m,d,blas", [(300, 9, False), (300, 210, True)])
def test_serial_and_parallel_drivers_compute_the_same_numbers(rng, m, d, blas):
    """Small problems run their tasks in order in the calling thread (a size rule); the
    tasks are the same code, so the numbers are the same (Numba tiles and BLAS panels)."""
    b = rng.standard_normal((m, d))
    c = rng.standard_normal(m)
    n2 = np.einsum("ij,ij->i", b, b)
    before = numba.get_num_threads()
    outs = []
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        for parallel in (False, True):
            s_sym, s_gen = np.empty(m), np.empty(m)
            g_sym, g_gen = np.empty((m, d)), np.empty((m, d))
            s_w, g_w = np.empty(m), np.empty((m, d))
            if blas:
                gaussian._blas_symmetric(b, c, n2, s_sym, g_sym, parallel, 3)
                gaussian._blas_general(b, n2, b, n2, c, s_gen, g_gen, parallel)
                gaussian._blas_dense_weights(b, c, n2, s_w, g_w, parallel, 3)
            else:
                gaussian._numba_symmetric(b, c, n2, s_sym, g_sym, parallel)
                gaussian._numba_general(b, n2, b, n2, c, s_gen, g_gen, parallel)
                s_w, g_w = s_sym, g_sym
            outs.append((s_sym, g_sym, s_gen, g_gen, s_w, g_w))
    finally:
        numba.set_num_threads(before)
    for one, two in zip(*outs):
        assert np.array_equal(one, two)
    s_ref, g_ref = _symmetric_reference(b, c)
    for s, g in (outs[0][:2], outs[0][2:4], outs[0][4:]):
        assert _rel(s, s_ref) <= RTOL_KERNEL and _rel(g, g_ref) <= RTOL_KERNEL


def test_sampled_kernels_serial_parallel_and_threads_agree(rng):
    """predict_batch / potential_gradients: the serial driver (small batches), the parallel
    one, and 1 or 2 threads all compute the same numbers; and they match NumPy."""
    from meanfield.kernels import sampled
    n, m, d = 600, 300, 12  # n·m·(d + 4) above the serial threshold
    x = rng.standard_normal((n, d))
    a = rng.standard_normal(m)
    b = rng.standard_normal((m, d))
    w = np.full(m, 1.0 / m)
    r = rng.standard_normal(n)
    f_ref = np.maximum(x @ b.T, 0.0) @ (w * a)
    z = x @ b.T
    ga_ref = (r @ np.maximum(z, 0.0)) / n
    gb_ref = a[:, None] * (((z > 0) * r[:, None]).T @ x) / n
    f, ga, gb = _same_bits_on_1_and_2_threads(
        lambda: (sampled.predict_batch(x, a, b, w),) + sampled.potential_gradients(x, r, a, b))
    assert _rel(f, f_ref) <= RTOL_KERNEL and _rel(ga, ga_ref) <= RTOL_KERNEL
    assert _rel(gb, gb_ref) <= RTOL_KERNEL
    f_serial = np.empty(n)
    sampled._predict_kernel(x, w * a, b, np.ascontiguousarray(b.T), 0, 0.01, f_serial, True)
    ga_s, gb_s = np.empty(m), np.empty((m, d))
    sampled._gradient_kernel(x, np.ascontiguousarray(x.T), r, a, b, 0, 0.01, ga_s, gb_s, True)
    assert np.array_equal(f_serial, f) and np.array_equal(ga_s, ga) and np.array_equal(gb_s, gb)


# ------------------------------------------------------------- the BLAS panels (large d)
@pytest.fixture(params=["dense_weights", "panels"])
def symmetric_blas(request, monkeypatch):
    """Each test of the symmetric BLAS path runs on both of its forms: the whole weight
    matrix W then G = W B (normally m ≤ 4 d), and the panels' accumulation buffers (larger
    m); a spy records which one ran, so the test can check it was the one asked for."""
    dense = request.param == "dense_weights"
    monkeypatch.setattr(gaussian, "_uses_dense_weights", lambda m, d, n_workers: dense)
    want = "_blas_dense_weights" if dense else "_blas_symmetric"
    yield want, _spy_symmetric_blas(monkeypatch)


def _spy_symmetric_blas(monkeypatch):
    """A list that records, in order, which symmetric BLAS form each call ran."""
    ran = []
    for name in ("_blas_dense_weights", "_blas_symmetric"):
        original = getattr(gaussian, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            ran.append(_name)
            return _original(*args, **kwargs)
        monkeypatch.setattr(gaussian, name, spy)
    return ran


def test_dense_weights_only_where_no_larger_than_the_buffers():
    """The size rule: W (m² doubles) replaces the n_workers (m, d + 1) buffers only when it
    is no larger (m ≤ 4 (d + 1) with 4 workers)."""
    assert gaussian._uses_dense_weights(1024, 1000, 4)
    assert gaussian._uses_dense_weights(404, 100, 4)
    assert not gaussian._uses_dense_weights(405, 100, 4)
    assert not gaussian._uses_dense_weights(4096, 1000, 4)
    assert not gaussian._uses_dense_weights(3500, 1000, 3)


@pytest.mark.parametrize("m,d,want", [(300, 256, "_blas_dense_weights"),
                                      (600, 129, "_blas_symmetric")])
def test_interaction_chooses_the_symmetric_blas_form_by_size(rng, monkeypatch, m, d, want):
    """Unforced, the particle interaction takes the weight matrix at m ≤ 4 d and the
    panels' buffers above."""
    ran = _spy_symmetric_blas(monkeypatch)
    b = rng.standard_normal((m, d))
    c = rng.standard_normal(m)
    s, g = interaction(b, b, c)
    assert ran == [want]
    s_ref, g_ref = _symmetric_reference(b, c)
    assert _rel(s, s_ref) <= RTOL_KERNEL and _rel(g, g_ref) <= RTOL_KERNEL


def test_dense_weights_write_every_entry(rng):
    """The kept weight matrix filled with NaN before a call (as a stale or unwritten entry
    would be): the result is still finite and equal to the dense formula, so every
    entry of W is written by the call itself."""
    m, d = 300, 256
    b = rng.standard_normal((m, d))
    c = rng.standard_normal(m)
    interaction(b, b, c)  # W of this size now kept by this thread
    gaussian._weight_matrix(m)[:] = np.nan
    s, g = interaction(b, b, c)
    assert np.isfinite(s).all() and np.isfinite(g).all()
    s_ref, g_ref = _symmetric_reference(b, c)
    assert _rel(s, s_ref) <= RTOL_KERNEL and _rel(g, g_ref) <= RTOL_KERNEL


@pytest.fixture
def blas_everywhere(monkeypatch):
    """Send every size to the BLAS panels (normally d ≥ _BLAS_MIN_D, m ≥ _BLAS_MIN_M), with
    small panels and source chunks so that tiny problems cross their edges."""
    monkeypatch.setattr(gaussian, "_BLAS_MIN_D", 1)
    monkeypatch.setattr(gaussian, "_BLAS_MIN_M", 1)
    monkeypatch.setattr(gaussian, "_BLAS_MIN_D_SMALL_M", 1)
    monkeypatch.setattr(gaussian, "_BLAS_MIN_M_SMALL", 1)
    monkeypatch.setattr(gaussian, "_BLAS_PANEL", 3)
    monkeypatch.setattr(gaussian, "_BLAS_CHUNK", 5)
    monkeypatch.setattr(gaussian, "_BLAS_ROWS_T", 2)


@pytest.mark.parametrize("d", [1, 3, 17])
def test_blas_panels_match_slow_reference_on_hard_points(rng, blas_everywhere, symmetric_blas,
                                                        d):
    """Parallel, antiparallel, orthogonal, tiny and zero vectors (zero as a source only),
    the symmetric and the general panel paths against tests/reference.py, non-uniform
    coefficients of both signs; tolerances as test_kernels.py's."""
    import reference as ref
    u, v = _hard_points(rng, d)
    pts = np.vstack([u, v])
    pts = pts[np.linalg.norm(pts, axis=1) > 0]  # the reference's ∇κ(0, ·) divides by 0
    c = rng.standard_normal(pts.shape[0])
    scale = np.abs(c).sum() * np.linalg.norm(pts, axis=1).max() ** 2
    for b_out, b_src in ((u, v), (pts, pts)):
        cs = c[:b_src.shape[0]]
        S, G = interaction(b_out, b_src, cs)
        S_ref, G_ref = ref.interaction(b_out, b_src, cs)
        np.testing.assert_allclose(S, S_ref, rtol=0, atol=1e-12 * scale)
        # arccos in the reference loses ~√ε at γ ≈ 0, π (as in test_kernels.py)
        np.testing.assert_allclose(G, G_ref, rtol=0, atol=1e-7 * np.abs(cs).sum() * 3)
    want, ran = symmetric_blas
    assert ran == [want]


def _hard_points(rng, d):
    from test_kernels import _hard_points as hard
    return hard(rng, d)


@pytest.mark.parametrize("m,d", [(520, 100), (700, 210), (1030, 300), (300, 260)])
def test_blas_panels_match_dense_formula_and_tiles(rng, symmetric_blas, m, d):
    """Real sizes (default panels, both size rules): 3–9 panels of 128 rows, 4 virtual
    workers, a last short panel; symmetric and general paths against the dense formula
    and the Numba tiles."""
    assert gaussian._use_blas(m, m, d)
    b = rng.standard_normal((m, d))
    b[1] = 3.0 * b[0]          # parallel
    b[2] = -0.5 * b[0]         # antiparallel
    b[3] = 0.0                 # zero
    c = rng.standard_normal(m) * rng.random(m)
    src = rng.standard_normal((m + 41, d))
    cs = rng.standard_normal(m + 41)
    s, g = interaction(b, b, c)
    want, ran = symmetric_blas
    assert ran == [want]
    s_gen, g_gen = interaction(b, src, cs)
    s_ref, g_ref = _symmetric_reference(b, c)
    assert _rel(s, s_ref) <= RTOL_KERNEL and _rel(g, g_ref) <= RTOL_KERNEL
    s_ref, g_ref = _dense_reference(b, src, cs)
    assert _rel(s_gen, s_ref) <= RTOL_KERNEL and _rel(g_gen, g_ref) <= RTOL_KERNEL
    saved = gaussian._BLAS_MIN_D, gaussian._BLAS_MIN_D_SMALL_M
    try:
        gaussian._BLAS_MIN_D = gaussian._BLAS_MIN_D_SMALL_M = 10 ** 9  # the Numba tiles
        s_t, g_t = interaction(b, b, c)
    finally:
        gaussian._BLAS_MIN_D, gaussian._BLAS_MIN_D_SMALL_M = saved
    assert _rel(s, s_t) <= RTOL_KERNEL and _rel(g, g_t) <= RTOL_KERNEL


def test_blas_self_pair_is_exact(rng, symmetric_blas):
    """Diagonal blocks take their norms from their own Gram diagonal: κ(u, u) = ‖u‖²/2."""
    m, d = 300, 256
    b = rng.standard_normal((m, d))
    c = np.zeros(m)
    c[200] = 1.0
    assert gaussian._use_blas(m, m, d)
    s, g = interaction(b, b, c)
    want, ran = symmetric_blas
    assert ran == [want]
    assert s[200] == pytest.approx(0.5 * b[200] @ b[200], rel=4 * np.finfo(float).eps)
    np.testing.assert_allclose(g[200], 0.5 * b[200], rtol=4 * np.finfo(float).eps)


def test_blas_panels_identical_for_1_and_2_threads(rng, symmetric_blas):
    """Above the serial size rule, so the tasks really run on 2 threads (each BLAS call
    with one thread); the general path too."""
    m, d = 900, 220
    assert gaussian._use_blas(m, m, d) and not gaussian._run_serially(m, m, d)
    b = rng.standard_normal((m, d))
    c = rng.standard_normal(m)
    src = rng.standard_normal((500, d))
    _same_bits_on_1_and_2_threads(lambda: interaction(b, b, c) + interaction(b, src, c[:500]))
    want, ran = symmetric_blas
    assert ran == [want, want]


def test_blas_chunks_identical_for_1_and_2_threads(rng, monkeypatch, symmetric_blas):
    """The symmetric and general panels with many column chunks and transposed-product
    blocks (sizes patched small), above the serial size rule so that the tasks run on 2
    threads: the same bits on 1 and 2 threads, and the tiles' numbers to round-off."""
    m, d = 300, 80
    monkeypatch.setattr(gaussian, "_BLAS_MIN_D", 1)
    monkeypatch.setattr(gaussian, "_BLAS_MIN_M", 1)
    monkeypatch.setattr(gaussian, "_BLAS_PANEL", 16)
    monkeypatch.setattr(gaussian, "_BLAS_CHUNK", 50)
    monkeypatch.setattr(gaussian, "_BLAS_ROWS_T", 7)
    assert gaussian._use_blas(m, m, d) and not gaussian._run_serially(m, m, d)
    b = rng.standard_normal((m, d))
    c = rng.standard_normal(m)
    src = rng.standard_normal((m, d))
    one_thread = _same_bits_on_1_and_2_threads(
        lambda: interaction(b, b, c) + interaction(b, src, c))
    want, ran = symmetric_blas
    assert ran == [want, want]
    monkeypatch.setattr(gaussian, "_BLAS_MIN_D", 10 ** 9)
    monkeypatch.setattr(gaussian, "_BLAS_MIN_D_SMALL_M", 10 ** 9)
    tiles = interaction(b, b, c) + interaction(b, src, c)
    for got, want in zip(one_thread, tiles):
        assert _rel(got, want) <= RTOL_KERNEL


def test_blas_scratch_is_reused_and_never_leaks_between_shapes(rng, blas_everywhere):
    """The panels' work arrays are views of one per-thread buffer, kept between calls and
    grown on demand: a call after a larger and a smaller one of other shapes gives the same
    numbers as the first call (nothing stale from an earlier call is read)."""
    b = rng.standard_normal((40, 7))
    c = rng.standard_normal(40)
    src = rng.standard_normal((23, 7))
    first = interaction(b, b, c) + interaction(b, src, c[:23])
    buf = gaussian._scratch(1)
    assert gaussian._scratch(buf.size) is buf            # reused, not reallocated
    big = gaussian._scratch(buf.size + 1)
    assert big is not buf and big.size > buf.size        # grown on demand
    big[:] = np.nan                                       # stale garbage everywhere
    interaction(rng.standard_normal((90, 11)), rng.standard_normal((90, 11)),
                rng.standard_normal(90))
    interaction(rng.standard_normal((9, 3)), rng.standard_normal((9, 3)),
                rng.standard_normal(9))
    again = interaction(b, b, c) + interaction(b, src, c[:23])
    for one, two in zip(first, again):
        assert np.array_equal(one, two)


def test_run_tasks_runs_each_task_once_and_raises_a_task_error():
    """The thread pool driver: every index exactly once on 2 threads, in order on 1; an
    exception in a task reaches the caller."""
    from meanfield.kernels.threads import run_tasks
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            seen = []
            run_tasks(seen.append, 37)
            assert sorted(seen) == list(range(37))
            if threads == 1:
                assert seen == list(range(37))
            with pytest.raises(ZeroDivisionError):
                run_tasks(lambda t: 1 / (t - 3), 6)
    finally:
        numba.set_num_threads(before)


def test_run_tasks_never_waits_for_a_helper_that_took_no_task():
    """A helper thread kept busy (as by other processes holding the cores) takes no task,
    and the caller, having done them all, returns without waiting for it."""
    import threading
    from meanfield.kernels import threads as th
    before = numba.get_num_threads()
    release = threading.Event()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        if numba.get_num_threads() < 2:
            pytest.skip("one Numba thread: no helper threads")
        th.run_tasks(lambda t: None, 2)  # the helper threads exist
        th._task_threads(1).inboxes[0].put(release.wait)  # the helper is now busy
        seen = []
        caller = threading.Thread(target=th.run_tasks, args=(seen.append, 5), daemon=True)
        caller.start()
        caller.join(timeout=30)
        returned = not caller.is_alive()
    finally:
        release.set()
        numba.set_num_threads(before)
    assert returned and sorted(seen) == list(range(5))


def test_run_tasks_raises_only_after_the_started_tasks_finish():
    """A task failing in the calling thread while a helper's task is still running: the
    error reaches the caller only once that task has finished (its writes are complete),
    and no task starts after the failure."""
    import threading
    import time
    from meanfield.kernels.threads import run_tasks
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one Numba thread: no helper threads")
    before = numba.get_num_threads()
    helper_started, finished, started = threading.Event(), [], []

    def task(t):
        started.append(t)
        if threading.current_thread() is threading.main_thread():
            helper_started.wait(10)  # a helper has taken a task (its own, slow one)
            raise ZeroDivisionError
        helper_started.set()
        time.sleep(0.2)
        finished.append(t)

    try:
        numba.set_num_threads(2)
        with pytest.raises(ZeroDivisionError):
            run_tasks(task, 20)
    finally:
        numba.set_num_threads(before)
    assert len(finished) == 1 and len(started) == 2


def test_run_tasks_from_several_threads_at_once():
    """Concurrent callers share the helper threads but never each other's replies: each
    returns only when all its own tasks are done."""
    import threading
    import time
    from meanfield.kernels.threads import run_tasks
    before = numba.get_num_threads()
    complete = []

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one Numba thread: no helper threads")

    def call(k):
        numba.set_num_threads(2)  # per thread: a new thread starts at NUMBA_NUM_THREADS
        done = []

        def task(t):
            time.sleep(0.002 * ((t + k) % 3))  # releases the GIL, uneven durations
            done.append(t)
        run_tasks(task, 9)
        complete.append(sorted(done) == list(range(9)))

    for _ in range(5):
        callers = [threading.Thread(target=call, args=(k,), daemon=True) for k in range(3)]
        for c in callers:
            c.start()
        for c in callers:
            c.join(timeout=60)
    assert numba.get_num_threads() == before
    assert len(complete) == 15 and all(complete)


def test_threaded_pair_sums_work_in_a_forked_child(rng):
    """A process forked after the task threads exist (multiprocessing's default on Linux)
    gets threads of its own instead of waiting forever on its parent's."""
    import multiprocessing as mp
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    b = rng.standard_normal((700, 20))
    c = rng.standard_normal(700)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        want = interaction(b, b, c)  # the parent's pool now exists
        with mp.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(interaction, (b, b, c)).get(timeout=300)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_numpy_adds_of_the_workers_buffers_equal_the_compiled_ones(rng):
    """The drivers finish the symmetric sums with NumPy (:func:`gaussian._add_workers`);
    the compiled :func:`gaussian._sym_finish` (kept for compiled callers) does the same
    adds in the same order: the same bits, signed zeros included."""
    n_workers, m, d = 8, 37, 5
    b = rng.standard_normal((m, d))
    n2 = np.einsum("ij,ij->i", b, b)
    buf_r = rng.standard_normal((n_workers, m))
    buf_g = rng.standard_normal((n_workers, m, d))
    buf_g[:, 3] = -0.0  # a row whose every contribution is a negative zero
    outs = []
    for finish in (gaussian._add_workers, gaussian._sym_finish):
        s, g = np.full(m, np.nan), np.full((m, d), np.nan)
        finish(5, 30, b, n2, buf_r, buf_g, s, g)
        outs.append((s[5:30], g[5:30], np.signbit(g[5:30])))
    for one, two in zip(*outs):
        assert np.array_equal(one, two)


@pytest.mark.parametrize("m", [129, 256, 260, 300])
def test_one_worker_per_tile_gives_the_numbers_of_eight_workers(rng, m):
    """With fewer tiles than eight (m ≤ 3 · 128 at d = 10), the symmetric driver runs one
    virtual worker per tile: the same tiles in the same order as eight workers, minus
    the empty ones, whose zero buffers added nothing. Checked against eight workers
    (the layout before, empties included) bit for bit, signs of zeros too."""
    d = 10
    b = rng.standard_normal((m, d))
    b[m // 2:, 0] = 0.0  # gradient entries that are zeros (sums of ± products of zeros)
    c = rng.standard_normal(m)
    c[::7] = -0.0
    n2 = np.einsum("ij,ij->i", b, b)
    tb = gaussian._tile_shape(d)[2]
    n_blocks = -(-m // tb)
    assert n_blocks * (n_blocks + 1) // 2 < gaussian._SYM_WORKERS  # the path in question
    b_t = np.ascontiguousarray(b.T)
    buf_r, buf_g = np.empty((8, m)), np.empty((8, m, d))
    gaussian._sym_workers(0, 8, tb, b, b_t, c, n2, buf_r, buf_g, np.empty((4, tb, tb)))
    want_s, want_g = np.empty(m), np.empty((m, d))
    gaussian._add_workers(0, m, b, n2, buf_r, buf_g, want_s, want_g)
    for parallel in (False, True):
        s, g = np.empty(m), np.empty((m, d))
        gaussian._numba_symmetric(b, c, n2, s, g, parallel)
        assert gaussian._BUFFERS.key[0] == n_blocks * (n_blocks + 1) // 2
        assert np.array_equal(s, want_s) and np.array_equal(g, want_g)
        assert np.array_equal(np.signbit(g), np.signbit(want_g))
