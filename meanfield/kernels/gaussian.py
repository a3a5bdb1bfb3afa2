"""Exact population expectations for Gaussian inputs (arc-cosine kernel), compiled with Numba.

For x ∼ N(0, I_d) and γ the angle between u and v (MATH §2):

    κ(u, v)   = E[σ(⟨u,x⟩) σ(⟨v,x⟩)] = (‖u‖‖v‖ sin γ + (π − γ)⟨u, v⟩) / (2π)
    ∇_u κ     = ((π − γ) v + (‖u‖‖v‖ sin γ / ‖u‖²) u) / (2π)

where ``‖u‖‖v‖ sin γ = √max(‖u‖²‖v‖² − ⟨u,v⟩², 0)`` and π − γ = atan2(that, −⟨u,v⟩), which is
stable at γ ≈ 0 and γ ≈ π. Other input scales multiply products by v_ρ = E[x_1²]
(Gaussian N(0, s²I): s²; uniform on the sphere: 1/d).

How the pair sums are computed (issue 8; numbers in benchmarks/README.md)
-------------------------------------------------------------------------
With θ_ik = π − γ_ik and r_ik = ‖b_i‖‖b'_k‖ sin γ_ik, the sums are

    S_i = (Σ_k c_k r_ik + ⟨b_i, Σ_k c_k θ_ik b'_k⟩) / (2π)
    G_i = (Σ_k c_k θ_ik b'_k + (Σ_k c_k r_ik / ‖b_i‖²) b_i) / (2π)

so the O(m² d) work is two matrix products per tile — the Gram tile ⟨b_i, b'_k⟩ and the
reduction Σ_k (c_k θ_ik) b'_k — and an O(m²) elementwise pass (one square root, one
arctangent per pair). Nothing of size m × m is stored (tiles of at most 128 × 256,
panels of at most 256 × 4096) except, for large d, a weight matrix no larger than the
accumulation buffers it replaces (below).

* The arctangent is :func:`fast_atan2`, a branch-free double-precision atan2 (fdlibm's
  polynomial, one division) that LLVM vectorises; libm's scalar atan2 would cost more
  than everything else in the pass together.
* For d below the measured crossover (:func:`_use_blas`: d < 64, or m < 512 and
  d < 256) the matrix products are register-blocked Numba loops (:func:`abt_tile`,
  :func:`_ay_tile`) that vectorise over a contiguous index; above it (issue 17) they are
  BLAS calls on row panels (:func:`_blas_symmetric`, :func:`_blas_general`: the Gram
  panel and both reductions through NumPy's ``matmul``, which releases the GIL) and only
  the elementwise pass (:func:`_tile_angles`) is Numba. BLAS then runs with one thread
  per task (:func:`~meanfield.kernels.threads.blas_single_thread`), so it neither fights the
  tasks for the cores nor makes a product's summation depend on its thread count.
* When the sources are the outputs (the particle interaction, ``b_src`` is ``b_out``),
  each unordered pair is computed once (:func:`_sym_workers` on tiles, or the upper
  triangle of panels), which halves the Gram and elementwise work. A tile or panel then
  adds to two row blocks, so the work is split into fixed runs ("virtual workers", up to
  8 for the tiles, 4 for the panels, each with its own accumulation buffer, reused between
  calls) and the buffers are added in worker order (:func:`_add_workers`, or
  :func:`_sym_finish` in compiled callers): every row receives its contributions in the
  same order whatever the number of threads.
  On the BLAS path with m ≤ 4 d the panels instead write the whole weight matrix
  W_ik = c_k θ_ik (each pair once, its transpose side copied), no larger than the
  buffers it replaces (:func:`_uses_dense_weights`), and G = W B is taken in row
  blocks (:func:`_blas_dense_weights`): one product of inner size m per block instead
  of a thin one per panel and side.
* The kernels are serial ``nogil`` functions; the tasks (virtual workers, row chunks,
  panels) run on a small thread pool (:func:`~meanfield.kernels.threads.run_tasks`), taken
  dynamically, one or two hand-offs per driver call (~40 µs each). Problems below 0.3 ms
  of work run in the calling thread (a size rule, :func:`_run_serially`), where the
  hand-off would cost more than the second core saves (benchmarks/README.md). The caller
  never waits for a helper thread that took no task, so a helper that other processes
  keep off the CPU costs nothing.
* Cold start: no kernel here is ``parallel=True`` (parfor lowering was most of the
  compile time), callees get run-time rather than literal arguments (a literal would
  compile another specialisation) and each tile kernel has one call site per caller
  (every call site is inlined and optimised again).

Floating-point policy: the products and row sums may be reassociated (``reassoc``,
``contract``) — this fixes the summation order per tile shape, not per thread — but the
elementwise pass is not contracted, so that the self-pair of the symmetric kernel, whose
squared norm is read from the Gram tile's own diagonal, gets r_ii = 0 and θ_ii = π exactly.
Every choice (tiles or panels, their shapes, the virtual workers, serial or threaded)
depends on the sizes only.
"""
from math import copysign, pi, sqrt

import numpy as np

import threading

from .threads import blas_single_thread, get_threads, kernel, parallel_kernel, prange, run_tasks

__all__ = ["interaction", "kappa", "sphere_average_terms",
           "sphere_coordinate_quadrature"]

_INV_2PI = 1.0 / (2.0 * pi)

# Tile shapes (see _tile_shape). They fix the summation order, so they depend on d only.
_TILE_ROWS = 64        # rows of b_out per block (general kernel)
_TILE_COLS = 256       # sources per tile (general kernel)
_TILE_SYM = 128        # square tile of the symmetric kernel
_SYM_WORKERS = 8       # virtual workers (own accumulation buffers) of the symmetric kernel
_SYM_BUFFER_BYTES = 256 << 20  # their buffers' cap: past it, the general kernel (no buffers)
_SERIAL_WORK = 1 << 20  # m_out·m_src·(d + 16) below this: no threads (≈ 0.3 ms of work)
_SMALL_D = 56          # below: Gram tiles by rank-4 row updates; above: by dot products
# BLAS panels (large d): for d >= _BLAS_MIN_D when both sides have >= _BLAS_MIN_M rows, or
# d >= _BLAS_MIN_D_SMALL_M and >= _BLAS_MIN_M_SMALL rows (crossovers measured on 2 threads,
# benchmarks/README.md: the panels win from d ≈ 48–64 at m ≥ 512, from d ≈ 200 at m = 256)
_BLAS_MIN_D = 64
_BLAS_MIN_M = 512
_BLAS_MIN_D_SMALL_M = 256
_BLAS_MIN_M_SMALL = 128
_BLAS_PANEL = 128       # rows per panel up to m = 4 · _BLAS_PANEL_BIG, then _BLAS_PANEL_BIG
_BLAS_PANEL_BIG = 256
_BLAS_CHUNK = 4096      # columns (sources) per Gram panel of both BLAS paths
_BLAS_ROWS_T = 1024     # rows per transposed product of the symmetric path (bounds its temporary)
_BLAS_WORKERS = 4       # virtual workers of the symmetric BLAS path (memory permitting)

# float64 constants of fdlibm's s_atan.c: π/4, atan(1/2), π/2, π split into high + low
# parts, and the odd minimax polynomial of atan on |t| < 7/16.
_PI_HI, _PI_LO = 3.141592653589793, 1.2246467991473532e-16
_PIO2_HI, _PIO2_LO = 1.5707963267948966, 6.123233995736766e-17
_PIO4_HI, _PIO4_LO = 0.7853981633974483, 3.061616997868383e-17
_ATAN_HALF_HI, _ATAN_HALF_LO = 4.63647609000806093515e-01, 2.26987774529616870924e-17
_AT0, _AT1 = 3.33333333333329318027e-01, -1.99999999998764832476e-01
_AT2, _AT3 = 1.42857142725034663711e-01, -1.11111104054623557880e-01
_AT4, _AT5 = 9.09088713343650656196e-02, -7.69187620504482999495e-02
_AT6, _AT7 = 6.66107313738753120669e-02, -5.83357013379057348645e-02
_AT8, _AT9 = 4.97687799461593236017e-02, -3.65315727442169155270e-02
_AT10 = 1.62858201153657823623e-02


@kernel(error_model="numpy", inline="always")
def fast_atan2(y, x):
    """atan2(y, x) in double precision without branches (so loops calling it vectorise).

    Same values as ``math.atan2`` to within 2 ulp (tested), including the signed zeros,
    ±π, infinities and NaN. The ratio q = min(|x|,|y|)/max(|x|,|y|) ∈ [0, 1] is reduced as
    in fdlibm to |t| < 7/16 — t = q, (2q − 1)/(2 + q) around atan(1/2), or (q − 1)/(q + 1)
    around π/4 — computed as one quotient of the unreduced numerator and denominator; then
    the angle is k + s·atan(t) with k ∈ {0, atan ½, π/4, π/2, …, π} added as high + low parts.
    Inlined (``inline="always"``, so loops calling it vectorise), it takes the caller's
    fast-math flags: callers use at most ``reassoc`` (tested: still ≤ 1 ulp from libm over
    the full range; ``contract`` would allow 2).
    """
    ax = abs(x)
    ay = abs(y)
    swap = ay > ax
    num = ax if swap else ay
    den = ay if swap else ax
    mid = num > 0.4375 * den
    big = (num >= 0.6875 * den) & (num > 0.0)
    tn = num - den if big else (2.0 * num - den if mid else num)
    td = num + den if big else (2.0 * den + num if mid else den)
    t = tn / td
    t = 0.0 if num == den else t      # 0/0 and inf/inf: the reduced argument is 0
    z = t * t
    w = z * z
    s1 = z * (_AT0 + w * (_AT2 + w * (_AT4 + w * (_AT6 + w * (_AT8 + w * _AT10)))))
    s2 = w * (_AT1 + w * (_AT3 + w * (_AT5 + w * (_AT7 + w * _AT9))))
    p = t - t * (s1 + s2)
    k_hi = _PIO4_HI if big else (_ATAN_HALF_HI if mid else 0.0)
    k_lo = _PIO4_LO if big else (_ATAN_HALF_LO if mid else 0.0)
    if swap:                          # atan(|y|/|x|) = π/2 − atan(|x|/|y|)
        k_hi = _PIO2_HI - k_hi
        k_lo = _PIO2_LO - k_lo
        p = -p
    if copysign(1.0, x) < 0.0:        # x < 0 or x = −0: the angle is π − that
        k_hi = _PI_HI - k_hi
        k_lo = _PI_LO - k_lo
        p = -p
    return copysign(k_hi + (p + k_lo), y)


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def abt_tile(x, xr, xc, nx, y, yr, yc, ny, n, out, accumulate):
    """out[i, j] (+)= Σ_{t<n} x[xr+i, xc+t] · y[yr+j, yc+t] for i < nx, j < ny.

    Dot products along the contiguous index t (vectorised: needs ``reassoc``), blocked
    2 rows × 4 columns so each loaded value is used 2–4 times. Used for Gram tiles with
    d ≥ 56 and for every reduction tile. Callers pass run-time values, not literal
    constants, for the offsets and ``accumulate`` (one compiled specialisation).
    Preconditions: 2-D C-contiguous float64 arrays, all index ranges in bounds, ``out``
    at least (nx, ny).
    """
    i = 0
    while i < nx:
        two = i + 2 <= nx
        x0 = x[xr + i, xc:xc + n]
        x1 = x[xr + i + 1, xc:xc + n] if two else x0
        j = 0
        while j < ny:
            if j + 4 <= ny:
                y0 = y[yr + j, yc:yc + n]
                y1 = y[yr + j + 1, yc:yc + n]
                y2 = y[yr + j + 2, yc:yc + n]
                y3 = y[yr + j + 3, yc:yc + n]
                s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = 0.0
                for t in range(n):
                    u0 = x0[t]
                    u1 = x1[t]
                    s00 += u0 * y0[t]
                    s01 += u0 * y1[t]
                    s02 += u0 * y2[t]
                    s03 += u0 * y3[t]
                    s10 += u1 * y0[t]
                    s11 += u1 * y1[t]
                    s12 += u1 * y2[t]
                    s13 += u1 * y3[t]
                if not accumulate:
                    out[i, j:j + 4] = 0.0
                    if two:
                        out[i + 1, j:j + 4] = 0.0
                out[i, j] += s00
                out[i, j + 1] += s01
                out[i, j + 2] += s02
                out[i, j + 3] += s03
                if two:
                    out[i + 1, j] += s10
                    out[i + 1, j + 1] += s11
                    out[i + 1, j + 2] += s12
                    out[i + 1, j + 3] += s13
                j += 4
            else:
                y0 = y[yr + j, yc:yc + n]
                s00 = s10 = 0.0
                for t in range(n):
                    s00 += x0[t] * y0[t]
                    s10 += x1[t] * y0[t]
                if not accumulate:
                    out[i, j] = 0.0
                    if two:
                        out[i + 1, j] = 0.0
                out[i, j] += s00
                if two:
                    out[i + 1, j] += s10
                j += 1
        i += 2


@kernel(error_model="numpy", fastmath={"contract"})
def _ay_tile(a, ar, ni, nt, y, yc, nk, out):
    """out[i, j] = Σ_{t<nt} a[ar+i, t] · y[t, yc+j] for i < ni, j < nk.

    Rank-4 updates of each output row, vectorised over the contiguous j: for small d
    (Gram tiles with d < 56: a dot product of length d would spend as much on its final
    horizontal sum as on the products; measured 20–30 against 10–20 GFLOP/s at
    d = 16–48). ``y`` is the transposed source array (d, n). Preconditions as :func:`abt_tile`.
    """
    for i in range(ni):
        orow = out[i, :nk]
        ai = a[ar + i, :nt]
        orow[:] = 0.0
        t = 0
        while t + 4 <= nt:
            a0 = ai[t]
            a1 = ai[t + 1]
            a2 = ai[t + 2]
            a3 = ai[t + 3]
            y0 = y[t, yc:yc + nk]
            y1 = y[t + 1, yc:yc + nk]
            y2 = y[t + 2, yc:yc + nk]
            y3 = y[t + 3, yc:yc + nk]
            for j in range(nk):
                orow[j] += a0 * y0[j] + a1 * y1[j] + a2 * y2[j] + a3 * y3[j]
            t += 4
        while t < nt:
            a0 = ai[t]
            y0 = y[t, yc:yc + nk]
            for j in range(nk):
                orow[j] += a0 * y0[j]
            t += 1


@kernel(error_model="numpy")
def gram_tile(b_rows, i0, ni, b_cols, b_cols_t, k0, nk, dots):
    """dots[ii, kk] = ⟨b_rows[i0+ii], b_cols[k0+kk]⟩ (rank-4 updates for small d). Used by
    the sampled kernels; the pair kernels choose the two cases inline."""
    d = b_rows.shape[1]
    zero = i0 - i0  # run-time 0 / False: see _general_rows
    if d < _SMALL_D:
        _ay_tile(b_rows, i0, ni, d, b_cols_t, k0, nk, dots)
    else:
        abt_tile(b_rows, i0, zero, ni, b_cols, k0, zero, nk, d, dots, zero > 0)


@kernel(error_model="numpy", fastmath={"reassoc"})
def _tile_angles(dots, ni, nk, n2_rows, c_rows, n2_cols, c_cols, w, theta, radial_rows,
                 radial_cols, both, upper):
    """The elementwise pass over one tile (no contraction: see the module notes).

    For ii < ni, kk < nk, with r = √max(‖u‖²‖v‖² − ⟨u,v⟩², 0) and θ = atan2(r, −⟨u,v⟩):
    w[ii, kk] = c_cols[kk] θ and radial_rows[ii] += Σ_kk c_cols[kk] r. If ``both``, also
    theta[ii, kk] = c_rows[ii] θ and radial_cols[kk] += Σ_ii c_rows[ii] r (the transposed
    tile's weights and radial sums). The 1-D arrays are views of length ≥ ni (rows) or
    ≥ nk (cols).

    ``upper`` (with ``both``, for a diagonal tile: the same points on both sides, so the
    radial arrays are one) computes each unordered pair once: only kk ≥ ii, with both
    sides' radial sums; w below the diagonal is left to the caller (w[kk, ii] =
    theta[ii, kk]). Half the elementwise work of the full tile, which dominates a tile at
    small d. The self-pair is added to both sides, which adds nothing: its squared norms
    are its own Gram entry, so r_ii = 0 exactly for a finite point (θ_ii = π).
    """
    for ii in range(ni):
        n2_i = n2_rows[ii]
        c_i = c_rows[ii] if both else 0.0
        # the row's columns as views from k0, so the loop below starts at 0: a loop from a
        # variable start did not vectorise (3× slower, measured)
        k0 = ii if upper else 0
        drow = dots[ii, k0:nk]
        wrow = w[ii, k0:nk]
        trow = theta[ii, k0:nk]
        n2k = n2_cols[k0:nk]
        ck = c_cols[k0:nk]
        rc = radial_cols[k0:nk]
        acc = 0.0
        for kk in range(nk - k0):
            dot = drow[kk]
            cross = sqrt(max(n2_i * n2k[kk] - dot * dot, 0.0))
            angle = fast_atan2(cross, -dot)
            wrow[kk] = ck[kk] * angle
            acc += ck[kk] * cross
            if both:
                trow[kk] = c_i * angle
                rc[kk] += c_i * cross
        radial_rows[ii] += acc


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def finish_rows(b, n2, radial, out_s, out_g):
    """In place: out_g holds Σ_k c_k θ_ik b'_k and radial Σ_k c_k r_ik on entry;
    S_i = (radial_i + ⟨b_i, out_g_i⟩)/(2π), G_i = (out_g_i + radial_i/‖b_i‖² b_i)/(2π)."""
    m, d = b.shape
    for i in range(m):
        bi = b[i]
        gi = out_g[i]
        s = 0.0
        for l in range(d):
            s += bi[l] * gi[l]
        out_s[i] = (radial[i] + s) * _INV_2PI
        # (‖v‖ sin γ/‖u‖) u term; at u = 0 the feature is flat in that direction.
        rad = radial[i] / n2[i] if n2[i] > 0.0 else 0.0
        for l in range(d):
            gi[l] = (gi[l] + rad * bi[l]) * _INV_2PI


@kernel(error_model="numpy")
def _general_rows(ib0, ib1, tr, tc, bt, nt2, bs, bs_t, ns2, cs, out_s, out_g):
    """Kernel sums S_i = Σ_k c_k κ(b_i, b'_k) and G_i = Σ_k c_k ∇_1 κ(b_i, b'_k) for the
    rows of blocks ib0 ≤ ib < ib1 (block ib: rows ib·tr …), all sources, tc at a time.

    Preconditions (checked by :func:`interaction`): ``bt`` (mt, d), ``bs`` (ms, d) and its
    transpose ``bs_t`` (d, ms) are C-contiguous float64, ms ≥ 1; ``nt2``/``ns2`` are the
    squared row norms; ``cs`` (ms,); ``out_s`` (mt,) and ``out_g`` (mt, d) are written
    (those rows only), not accumulated into. The factor 1/(2π) is applied here; the law's
    v_ρ by the caller. Each block's numbers depend on (tr, tc, d) only, so any split of
    the blocks among tasks or threads gives the same result.
    """
    mt, d = bt.shape
    ms = bs.shape[0]
    dots = np.empty((tr, tc))
    w = np.empty((tr, tc))
    radial = np.empty(tr)
    # run-time 0 / False / True: a literal constant argument would make Numba compile
    # one more specialisation of the callee (each costs seconds on a cold start)
    zero = ib0 - ib0
    no = zero > 0
    yes = zero == 0
    for ib in range(ib0, ib1):
        i0 = ib * tr
        ni = min(tr, mt - i0)
        radial[:] = 0.0
        g = out_g[i0:i0 + ni]
        g[:] = 0.0
        for k0 in range(0, ms, tc):
            nk = min(tc, ms - k0)
            if d < _SMALL_D:  # the Gram tile
                _ay_tile(bt, i0, ni, d, bs_t, k0, nk, dots)
            else:
                abt_tile(bt, i0, zero, ni, bs, k0, zero, nk, d, dots, no)
            # both=False: the c_rows, theta and radial_cols arguments are not touched
            _tile_angles(dots, ni, nk, nt2[i0:i0 + ni], radial, ns2[k0:k0 + nk],
                         cs[k0:k0 + nk], w, w, radial, radial, no, no)
            abt_tile(w, zero, zero, ni, bs_t, zero, k0, d, nk, g, yes)
        finish_rows(bt[i0:i0 + ni], nt2[i0:i0 + ni], radial[:ni], out_s[i0:i0 + ni], g)


def _tile_shape(d):
    """(rows, cols, symmetric) tile sizes for dimension d. Constant today: narrower tiles
    for large d, to keep a tile's (tile, d) operands in L2, measured no faster at d = 300
    and d = 1000 (benchmarks/README.md); kept as the one place to choose them."""
    return _TILE_ROWS, _TILE_COLS, _TILE_SYM


def _run_serially(m_out, m_src, d):
    """Small problems run in the calling thread: below ~10⁶ units of work (~0.3 ms) the
    hand-off to the helper threads costs more than they save (measured crossover at
    d = 10 and 30: m ≈ 200). Depends on the sizes only, so results stay
    thread-independent."""
    return m_out * m_src * (d + 16) < _SERIAL_WORK


@kernel(error_model="numpy")
def _sym_workers(v0, v1, tb, b, b_t, c, n2, buf_r, buf_g, tiles):
    """Virtual workers v0 ≤ v < v1 of the symmetric pair sums (b_src is b_out = b): each
    zeroes its buffers, then adds its fixed run of tb × tb tiles into them.

    ``tiles`` (4, tb, tb) is work space (Gram tile, weights w = c_k θ, the other side's
    weights c_i θ, diagonal norms), given by the caller (:func:`_tile_space`) so that this
    kernel allocates nothing: NumPy's ``empty`` inside it cost 0.2–0.3 s to compile on a
    first run.

    The n_b(n_b + 1)/2 tiles (I ≤ K) are split into ``n_workers`` = len(buf_g) contiguous
    runs. An off-diagonal tile adds to rows I and K, so each *virtual* worker accumulates
    into its own buffers ``buf_r`` (n_workers, m) and ``buf_g`` (n_workers, m, d); a
    diagonal tile takes its squared norms from its own Gram diagonal, so the self-pair has
    r_ii = 0 and θ_ii = π exactly. Which thread runs a worker never changes what it adds or
    in which order (:func:`_add_workers` adds the buffers in worker order).

    A diagonal tile computes each of its pairs once (:func:`_tile_angles` with ``upper``)
    and takes its weights below the diagonal from the transposed side: at small d the
    elementwise pass is most of a tile's time, and this saves a third of the elementwise
    work at m = 256 (3 tiles, 2 of them diagonal), half of it at m ≤ 128.
    """
    m, d = b.shape
    n_workers = buf_g.shape[0]
    n_blocks = (m + tb - 1) // tb
    n_tiles = n_blocks * (n_blocks + 1) // 2
    dots = tiles[0]
    w = tiles[1]
    theta = tiles[2]
    n2_diag = tiles[3, 0]
    # run-time 0 / False / True (see _general_rows)
    zero = v0 - v0
    no = zero > 0
    yes = zero == 0
    for v in range(v0, v1):
        t_first = n_tiles * v // n_workers
        t_last = n_tiles * (v + 1) // n_workers
        # tile number t_first -> (ib, kb), row-major order of the upper triangle (ib ≤ kb)
        ib = 0
        t = t_first
        while ib < n_blocks and t >= n_blocks - ib:
            t -= n_blocks - ib
            ib += 1
        kb = ib + t
        g_v = buf_g[v]
        r_v = buf_r[v]
        g_v[:] = 0.0
        r_v[:] = 0.0
        for _ in range(t_first, t_last):
            i0 = ib * tb
            ni = min(tb, m - i0)
            k0 = kb * tb
            nk = min(tb, m - k0)
            diagonal = ib == kb
            if d < _SMALL_D:  # the Gram tile
                _ay_tile(b, i0, ni, d, b_t, k0, nk, dots)
            else:
                abt_tile(b, i0, zero, ni, b, k0, zero, nk, d, dots, no)
            if diagonal:
                # squared norms from the tile's own diagonal: r_ii = 0 and θ_ii = π exactly
                for ii in range(ni):
                    n2_diag[ii] = dots[ii, ii]
                n2_rows = n2_diag
                n2_cols = n2_diag
            else:
                n2_rows = n2[i0:i0 + ni]
                n2_cols = n2[k0:k0 + nk]
            # a diagonal tile computes each pair once (upper: w on and above the diagonal)
            _tile_angles(dots, ni, nk, n2_rows, c[i0:i0 + ni], n2_cols, c[k0:k0 + nk], w,
                         theta, r_v[i0:i0 + ni], r_v[k0:k0 + nk], yes, diagonal)
            # rows I: Σ_k c_k θ_ik b_k; then (off-diagonal) rows K: Σ_i c_i θ_ik b_i. Both
            # reductions read w with the dots contiguous. One call site of each kernel
            # keeps this one small (every call site is inlined and optimised again).
            for side in range(1 if diagonal else 2):
                r0, nr, s0, ns = i0, ni, k0, nk
                if side == 1:
                    r0, nr, s0, ns = k0, nk, i0, ni
                if diagonal or side == 1:
                    # w[kk, ii] = theta[ii, kk] = c_i θ: all of it for rows K, below the
                    # diagonal for a diagonal tile; 8 columns of w at a time, so the stores
                    # are contiguous (2.5× faster than one column at a time)
                    ii0 = 0
                    while ii0 < ni:
                        n8 = min(8, ni - ii0)
                        for kk in range(ii0 + 1 if diagonal else 0, nk):
                            o = w[kk, ii0:ii0 + n8]
                            for u in range(min(n8, kk - ii0) if diagonal else n8):
                                o[u] = theta[ii0 + u, kk]
                        ii0 += 8
                abt_tile(w, zero, zero, nr, b_t, zero, s0, d, ns, g_v[r0:r0 + nr], yes)
            kb += 1
            if kb == n_blocks:
                ib += 1
                kb = ib


@kernel(error_model="numpy")
def _sym_finish(i0, i1, b, n2, buf_r, buf_g, out_s, out_g):
    """Rows i0 ≤ i < i1 of the symmetric pair sums: add the workers' buffers in worker
    order, then finish the rows (:func:`finish_rows`; writes those rows only)."""
    d = b.shape[1]
    radial = np.zeros(i1 - i0)
    out_g[i0:i1] = 0.0
    for v in range(buf_g.shape[0]):
        for i in range(i0, i1):
            radial[i - i0] += buf_r[v, i]
            gi = out_g[i]
            bg = buf_g[v, i]
            for l in range(d):
                gi[l] += bg[l]
    finish_rows(b[i0:i1], n2[i0:i1], radial, out_s[i0:i1], out_g[i0:i1])


@kernel(error_model="numpy")
def sym_finish_block(ib, tb, b, n2, buf_r, buf_g, out_s, out_g):
    """:func:`_sym_finish` for the rows of block ib (rows ib·tb …); used by
    :mod:`meanfield.kernels.reduced`."""
    i0 = ib * tb
    _sym_finish(i0, min(b.shape[0], i0 + tb), b, n2, buf_r, buf_g, out_s, out_g)


@kernel(error_model="numpy")
def transpose_scaled(theta, ni, nk, c, out):
    """out[kk, ii] = theta[ii, kk] · c[ii] (8 rows at a time, so stores are contiguous);
    used by :mod:`meanfield.kernels.reduced` (the pair tiles here scale in
    :func:`_tile_angles` and copy the transposed weights in :func:`_sym_workers`)."""
    ii0 = 0
    while ii0 + 8 <= ni:
        for kk in range(nk):
            o = out[kk, ii0:ii0 + 8]
            for u in range(8):
                o[u] = theta[ii0 + u, kk] * c[ii0 + u]
        ii0 += 8
    for ii in range(ii0, ni):
        for kk in range(nk):
            out[kk, ii] = theta[ii, kk] * c[ii]


# ---------------------------------------------------------------- drivers (tasks on threads)
_BUFFERS = threading.local()
_WEIGHTS = threading.local()


def _worker_buffers(n_workers, m, d):
    """The virtual workers' buffers (n_workers, m) and (n_workers, m, d), kept between
    calls of the same shape in the calling thread (the workers zero them): a fresh
    array of tens of MiB costs a page fault per 4 KiB on every flow step."""
    key = (n_workers, m, d)
    if getattr(_BUFFERS, "key", None) != key:
        _drop_kept_arrays()  # the old ones (and a weight matrix) freed before allocating
        _BUFFERS.r = np.empty((n_workers, m))
        _BUFFERS.g = np.empty((n_workers, m, d))
        _BUFFERS.key = key
    return _BUFFERS.r, _BUFFERS.g


def _drop_kept_arrays():
    """Free the calling thread's kept buffers and weight matrix: a thread keeps the arrays
    of one symmetric path at a time, so at most ``_SYM_BUFFER_BYTES``."""
    _BUFFERS.key = _BUFFERS.r = _BUFFERS.g = None
    _WEIGHTS.m = _WEIGHTS.w = None


def _split(n, parts):
    """Bounds of ``parts`` contiguous near-equal chunks of range(n)."""
    parts = max(1, min(parts, n))
    return [(n * p // parts, n * (p + 1) // parts) for p in range(parts)]


def _add_workers(i0, i1, b, n2, buf_r, buf_g, out_s, out_g):
    """:func:`_sym_finish` with NumPy's adds (the same operations in the same order, so
    the same numbers): rows i0 ≤ i < i1, the workers' buffers added in worker order to
    zeros, then :func:`finish_rows`. Used by the drivers here so that a first run compiles
    one kernel fewer (``_sym_finish`` cost ~1 s to compile; these adds are O(m d) against
    the pair sums' O(m² d)). The drivers call it once for all rows, in the calling thread:
    on threads the adds were never faster (memory-bound at large sizes: m = 4096, d = 100
    and m = 2048, d = 1000 the same to 1 %) and slower for small ones, where NumPy keeps
    the GIL for short loops (m = 260, d = 10: 0.55 ms against 0.90 ms per evaluation)."""
    g = out_g[i0:i1]
    g[:] = 0.0
    radial = np.zeros(i1 - i0)
    for v in range(buf_g.shape[0]):
        radial += buf_r[v, i0:i1]
        g += buf_g[v, i0:i1]
    finish_rows(b[i0:i1], n2[i0:i1], radial, out_s[i0:i1], g)


def _numba_symmetric(b, c, n2, out_s, out_g, parallel):
    """Symmetric pair sums with the Numba tiles: up to 8 virtual workers (tasks), then
    the rows finished in the calling thread. Results depend on (m, d) only."""
    m, d = b.shape
    tb = _tile_shape(d)[2]
    n_blocks = (m + tb - 1) // tb
    # with fewer tiles than workers, one worker per tile: the same tiles in the same order
    # as eight workers, of which the others would zero and add empty buffers (x + 0.0 is x
    # for every sum here, which starts from +0.0: the same numbers)
    n_workers = min(_SYM_WORKERS, n_blocks * (n_blocks + 1) // 2)
    buf_r, buf_g = _worker_buffers(n_workers, m, d)
    b_t = np.ascontiguousarray(b.T)
    if parallel:
        run_tasks(lambda v: _sym_workers(v, v + 1, tb, b, b_t, c, n2, buf_r, buf_g,
                                         _tile_space(tb)), n_workers)
    else:
        _sym_workers(0, n_workers, tb, b, b_t, c, n2, buf_r, buf_g, _tile_space(tb))
    _add_workers(0, m, b, n2, buf_r, buf_g, out_s, out_g)


def _numba_general(bt, nt2, bs, ns2, cs, out_s, out_g, parallel):
    tr, tc, _ = _tile_shape(bt.shape[1])
    bs_t = np.ascontiguousarray(bs.T)
    n_blocks = (bt.shape[0] + tr - 1) // tr
    chunks = _split(n_blocks, 4 * get_threads() if parallel else 1)
    run_tasks(lambda t: _general_rows(*chunks[t], tr, tc, bt, nt2, bs, bs_t, ns2, cs, out_s,
                                      out_g), len(chunks), parallel)


# Large d: the Gram and reduction products through BLAS, the elementwise pass in Numba.
# The products go through NumPy's matmul, which releases the GIL around its BLAS call, so
# the tasks' products run on all threads at once; SciPy's ``dgemm`` wrapper keeps the GIL
# for the whole call (measured: two threads calling it took 2.2× one call's time each, two
# threads calling matmul 1.1×), which had serialised this path.
_SCRATCH = threading.local()


def _scratch(n):
    """A float64 work array of at least n elements, kept per thread between calls (a fresh
    array of MiBs costs a page fault per 4 KiB on every evaluation)."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < n:
        _SCRATCH.buf = None
        buf = _SCRATCH.buf = np.empty(n)
    return buf


def _tile_space(tb):
    """The calling thread's work space (4, tb, tb) for :func:`_sym_workers`: a view of its
    scratch array (:func:`_scratch`; a thread runs one pair sum at a time)."""
    return _scratch(4 * tb * tb)[:4 * tb * tb].reshape(4, tb, tb)


def _panel_arrays(n_rows, n_cols, d, n_arrays, n_prod):
    """``n_arrays`` flat work arrays of n_rows · n_cols elements and one (n_prod, d)
    array, all views of the calling thread's scratch (:func:`_block` shapes them)."""
    size = n_rows * n_cols
    buf = _scratch(n_arrays * size + n_prod * d)
    flats = [buf[k * size:(k + 1) * size] for k in range(n_arrays)]
    off = n_arrays * size
    return flats, buf[off:off + n_prod * d].reshape(n_prod, d)


def _block(flat, n_rows, n_cols):
    """The first n_rows · n_cols elements of a flat work array as a C-contiguous block."""
    return flat[:n_rows * n_cols].reshape(n_rows, n_cols)


def _blas_panel_rows(m):
    """Rows per panel of the BLAS paths (a size rule: the summation order depends on it)."""
    return _BLAS_PANEL if m <= 4 * _BLAS_PANEL_BIG else _BLAS_PANEL_BIG


def _snake_runs(n_panels, n_workers):
    """The panels of each virtual worker, dealt in snake order (0 1 2 3 3 2 1 0 0 1 …) so
    that the upper triangle's long and short panels balance."""
    runs = [[] for _ in range(n_workers)]
    for j in range(n_panels):
        r = j % (2 * n_workers)
        runs[r if r < n_workers else 2 * n_workers - 1 - r].append(j)
    return runs


def _panel_weights(b, c, n2, i0, i1, r_v, f_dots, f_w, f_theta):
    """The weights of panel rows i0:i1 against columns i0 … m − 1 (the upper triangle), for
    both symmetric BLAS forms: yields ``(k0, k1, w, theta)`` with w[ii, kk] = c_k θ and
    theta[ii, kk] = c_i θ for columns k0:k1 — first the diagonal block (theta None: its
    norms come from its own Gram diagonal, so the self-pair is exact, and w holds both
    sides), then the columns right of it ``_BLAS_CHUNK`` at a time (bounded work arrays
    at any m). The radial sums are added into ``r_v``. w and theta are views of the flat
    work arrays, overwritten by the next block: use them before asking for it."""
    m = b.shape[0]
    ni = i1 - i0
    bi, ci = b[i0:i1], c[i0:i1]
    dots = np.matmul(bi, bi.T, out=_block(f_dots, ni, ni))
    w = _block(f_w, ni, ni)
    n2_diag = dots.diagonal().copy()  # writable (a read-only array is another type)
    _tile_angles(dots, ni, ni, n2_diag, ci, n2_diag, ci, w, w, r_v[i0:i1], r_v[i0:i1], False,
                 False)
    yield i0, i1, w, None
    for k0 in range(i1, m, _BLAS_CHUNK):
        k1 = min(m, k0 + _BLAS_CHUNK)
        nc = k1 - k0
        dots = np.matmul(bi, b[k0:k1].T, out=_block(f_dots, ni, nc))
        w, theta = _block(f_w, ni, nc), _block(f_theta, ni, nc)
        _tile_angles(dots, ni, nc, n2[i0:i1], ci, n2[k0:k1], c[k0:k1], w, theta, r_v[i0:i1],
                     r_v[k0:k1], True, False)
        yield k0, k1, w, theta


def _blas_symmetric(b, c, n2, out_s, out_g, parallel, n_workers):
    """Symmetric pair sums by BLAS panels: panel J (rows i0:i1) against the columns
    i0 … m − 1 only (the upper triangle), its diagonal block apart (norms from its own
    Gram diagonal, as in the tiles). The panels are dealt to ``n_workers`` virtual
    workers in a fixed order; each adds into its own buffers, BLAS with one thread, and
    :func:`_add_workers` adds the buffers in worker order. Results depend on (m, d) only."""
    m, d = b.shape
    p = _blas_panel_rows(m)
    n_panels = (m + p - 1) // p
    runs = _snake_runs(n_panels, n_workers)
    buf_r, buf_g = _worker_buffers(n_workers, m, d)

    def worker(v):
        r_v, g_v = buf_r[v], buf_g[v]
        r_v[:] = 0.0
        g_v[:] = 0.0
        for j in runs[v]:
            i0, i1 = j * p, min(m, (j + 1) * p)
            ni, nk = i1 - i0, m - i1
            bi = b[i0:i1]
            width = max(min(nk, _BLAS_CHUNK), ni)
            blocks, prod = _panel_arrays(ni, width, d, 3, max(ni, min(nk, _BLAS_ROWS_T)))
            for k0, k1, w, theta in _panel_weights(b, c, n2, i0, i1, r_v, *blocks):
                g_v[i0:i1] += np.matmul(w, b[k0:k1], out=prod[:ni])
                if theta is None:  # the diagonal block: w serves both sides
                    continue
                for r0 in range(0, k1 - k0, _BLAS_ROWS_T):
                    r1 = min(k1 - k0, r0 + _BLAS_ROWS_T)
                    g_v[k0 + r0:k0 + r1] += np.matmul(theta[:, r0:r1].T, bi,
                                                      out=prod[:r1 - r0])

    with blas_single_thread():
        run_tasks(worker, n_workers, parallel)
    _add_workers(0, m, b, n2, buf_r, buf_g, out_s, out_g)


def _weight_matrix(m):
    """The (m, m) weight matrix of :func:`_blas_dense_weights`, kept per calling thread for
    the next call of the same size (every entry is written by each call)."""
    if getattr(_WEIGHTS, "m", None) != m:
        _drop_kept_arrays()
        _WEIGHTS.w = np.empty((m, m))
        _WEIGHTS.m = m
    return _WEIGHTS.w


def _uses_dense_weights(m, d, n_workers):
    """Whether the symmetric BLAS path forms the whole weight matrix (m × m doubles) instead
    of ``n_workers`` accumulation buffers (m, d + 1): when it is no larger than they are
    (m ≤ 4 d with the usual 4 workers). A size rule (``n_workers`` depends on the sizes
    only), never the thread count."""
    return m <= n_workers * (d + 1)


def _blas_dense_weights(b, c, n2, out_s, out_g, parallel, n_workers):
    """Symmetric pair sums through the full weight matrix W_ik = c_k θ_ik: the Gram panels
    of the upper triangle (as :func:`_blas_symmetric`) write W's panel rows and, transposed,
    its panel columns (each pair computed once); then G = W B in row blocks, one product
    of inner size m per block instead of one thin product per panel and side plus their
    adds into accumulation buffers (m = 1024, d = 1000, one thread: 107 against 139 ms).
    The radial sums accumulate in per-virtual-worker buffers (m,) added in worker order.
    Every entry of W is written by exactly one panel, so the numbers depend on (m, d) only."""
    m, d = b.shape
    p = _blas_panel_rows(m)
    n_panels = (m + p - 1) // p
    runs = _snake_runs(n_panels, n_workers)
    weights = _weight_matrix(m)
    buf_r = np.zeros((n_workers, m))

    def worker(v):
        r_v = buf_r[v]
        for j in runs[v]:
            i0, i1 = j * p, min(m, (j + 1) * p)
            width = max(min(m - i1, _BLAS_CHUNK), i1 - i0)
            blocks, _ = _panel_arrays(i1 - i0, width, d, 3, 0)
            for k0, k1, w, theta in _panel_weights(b, c, n2, i0, i1, r_v, *blocks):
                weights[i0:i1, k0:k1] = w
                if theta is not None:
                    weights[k0:k1, i0:i1] = theta.T

    radial = np.zeros(m)

    def rows(j):
        i0, i1 = j * p, min(m, (j + 1) * p)
        np.matmul(weights[i0:i1], b, out=out_g[i0:i1])
        finish_rows(b[i0:i1], n2[i0:i1], radial[i0:i1], out_s[i0:i1], out_g[i0:i1])

    with blas_single_thread():
        run_tasks(worker, n_workers, parallel)
        for v in range(n_workers):  # worker order
            radial += buf_r[v]
        run_tasks(rows, n_panels, parallel)


def _blas_general(bt, nt2, bs, ns2, cs, out_s, out_g, parallel):
    """General pair sums by BLAS panels: row panels of ``bt`` (tasks, no shared writes)
    against the sources in chunks of ``_BLAS_CHUNK``; BLAS with one thread."""
    mt, d = bt.shape
    ms = bs.shape[0]
    p = _blas_panel_rows(mt)
    n_panels = (mt + p - 1) // p

    def panel(j):
        i0, i1 = j * p, min(mt, (j + 1) * p)
        ni = i1 - i0
        radial = np.zeros(ni)
        g = out_g[i0:i1]
        (f_dots, f_w), prod = _panel_arrays(ni, min(ms, _BLAS_CHUNK), d, 2, ni)
        for k0 in range(0, ms, _BLAS_CHUNK):
            k1 = min(ms, k0 + _BLAS_CHUNK)
            nk = k1 - k0
            dots = np.matmul(bt[i0:i1], bs[k0:k1].T, out=_block(f_dots, ni, nk))
            w = _block(f_w, ni, nk)
            _tile_angles(dots, ni, nk, nt2[i0:i1], radial, ns2[k0:k1], cs[k0:k1], w, w,
                         radial, radial, False, False)
            if k0 == 0:
                np.matmul(w, bs[k0:k1], out=g)
            else:
                g += np.matmul(w, bs[k0:k1], out=prod[:ni])
        finish_rows(bt[i0:i1], nt2[i0:i1], radial, out_s[i0:i1], g)

    with blas_single_thread():
        run_tasks(panel, n_panels, parallel)


def _use_blas(m_out, m_src, d):
    """The BLAS panels where the products dominate (a size rule from the measured
    crossover, benchmarks/README.md; never the thread count)."""
    m = min(m_out, m_src)
    return ((d >= _BLAS_MIN_D and m >= _BLAS_MIN_M)
            or (d >= _BLAS_MIN_D_SMALL_M and m >= _BLAS_MIN_M_SMALL))


def _check_rows(name, arr, d=None):
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim != 2 or (d is not None and arr.shape[1] != d):
        want = f"(n, {d})" if d is not None else "(n, d)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    return arr


def interaction(b_out, b_src, c_src):
    """Σ_k c_k κ(b_i, b'_k) and its gradient in b_i, for standard Gaussian inputs.

    Parameters
    ----------
    b_out : (m, d) array
        Points b_i where the sums are wanted.
    b_src : (n, d) array
        Source points b'_k.
    c_src : (n,) array
        Source coefficients c_k (for the particle interaction, w_k a_k).

    Returns
    -------
    S : (m,) array
        S_i = Σ_k c_k κ(b_i, b'_k).
    G : (m, d) array
        G_i = Σ_k c_k ∇_1 κ(b_i, b'_k).

    Notes
    -----
    Memory O((m + n) d): tiles or panels, never an m × n array (but the m × m weights
    above, when m ≤ 4 d). When ``b_src`` equals
    ``b_out`` (the particle interaction) each unordered pair is computed once and the
    self-pair is exact (κ(u, u) = ‖u‖²/2); that path adds at most 256 MiB of buffers
    (or, for large d and m ≤ 4 d, the m × m weight matrix, no larger than those buffers),
    kept (per calling thread) for the next call of the same shape. The BLAS panels keep
    a work array per thread of 3 · 256 · min(n, 4096) + max(256, min(n, 1024)) · d doubles
    at most (32 MiB at d = 1000), reused by later calls. A source with c_k = 0
    contributes nothing. The numbers depend on the sizes only, never on the number of
    threads; for large d (:func:`_use_blas`) they come from BLAS panels and agree with the
    Numba tiles to round-off.
    """
    b_out = _check_rows("b_out", b_out)
    b_src = _check_rows("b_src", b_src, b_out.shape[1])
    c_src = np.ascontiguousarray(c_src, dtype=np.float64)
    if c_src.shape != (b_src.shape[0],):
        raise ValueError(f"c_src must have shape ({b_src.shape[0]},), got {c_src.shape}")
    m, d = b_out.shape
    same = b_src is b_out or (b_src.shape == b_out.shape and np.array_equal(b_src, b_out))
    blas = _use_blas(m, b_src.shape[0], d)
    # the particle interaction: each pair once, unless the workers' buffers would be large
    n_workers = _symmetric_workers(m, d, blas) if same else 0
    symmetric = n_workers > 0
    nonzero = c_src != 0.0
    if not nonzero.all() and not (symmetric and np.isfinite(b_src).all()):
        # a source with c_k = 0 contributes nothing, even a non-finite one: drop it
        b_src, c_src, symmetric = b_src[nonzero], c_src[nonzero], False
        blas = _use_blas(m, b_src.shape[0], d)
    out_s = np.empty(b_out.shape[0])
    out_g = np.empty_like(b_out)
    if b_src.shape[0] == 0 or b_out.shape[0] == 0:
        out_s[:] = 0.0
        out_g[:] = 0.0
        return out_s, out_g
    parallel = not _run_serially(m, b_src.shape[0], d)
    n2 = np.einsum("ij,ij->i", b_out, b_out)
    if symmetric and blas and _uses_dense_weights(m, d, n_workers):
        _blas_dense_weights(b_out, c_src, n2, out_s, out_g, parallel, n_workers)
    elif symmetric and blas:
        _blas_symmetric(b_out, c_src, n2, out_s, out_g, parallel, n_workers)
    elif symmetric:
        _numba_symmetric(b_out, c_src, n2, out_s, out_g, parallel)
    else:
        ns2 = n2 if b_src is b_out else np.einsum("ij,ij->i", b_src, b_src)
        if blas:
            _blas_general(b_out, n2, b_src, ns2, c_src, out_s, out_g, parallel)
        else:
            _numba_general(b_out, n2, b_src, ns2, c_src, out_s, out_g, parallel)
    return out_s, out_g


def _symmetric_workers(m, d, blas):
    """Virtual workers of the symmetric path, 0 if their buffers (n_workers · m · (d + 1)
    doubles) would pass ``_SYM_BUFFER_BYTES`` (then the general path runs)."""
    per_worker = 8 * m * (d + 1)
    if blas:
        n = min(_BLAS_WORKERS, _SYM_BUFFER_BYTES // per_worker)
        return n if n >= 2 else 0
    return _SYM_WORKERS if _SYM_WORKERS * per_worker <= _SYM_BUFFER_BYTES else 0


def kappa(u, v):
    """κ(u, v) for single vectors u, v (d,) (standard Gaussian inputs)."""
    s, _ = interaction(np.atleast_2d(u), np.atleast_2d(v), np.ones(1))
    return float(s[0])


# ------------------------------------------------------------- norm target ‖P_H x‖ by quadrature
def sphere_coordinate_quadrature(k, n_nodes=64):
    """Nodes and weights for t ∼ γ_k, the law of one coordinate of a uniform point on S^{k−1}.

    Density ∝ (1 − t²)^{(k−3)/2} on [−1, 1]: Gauss–Jacobi with α = β = (k − 3)/2
    (k = 2 is Chebyshev); k = 1 is the two atoms ±1 with weight ½. Weights sum to 1.

    Returns
    -------
    t : (q,) array
    w : (q,) array
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k == 1:
        return np.array([-1.0, 1.0]), np.array([0.5, 0.5])
    alpha = (k - 3) / 2.0
    from scipy.special import roots_jacobi  # imported when used: scipy.special is slow to load

    t, w = roots_jacobi(int(n_nodes), alpha, alpha)
    return np.ascontiguousarray(t), np.ascontiguousarray(w / w.sum())


@parallel_kernel(error_model="numpy", fastmath={"reassoc"})
def _norm_target_kernel(b, d_h, nodes, weights, out_t, out_g):
    """T(b_i) = E_t κ(b_i, v_t) over v uniform on the unit sphere of H = span(e_1..e_dH),
    and its gradient; factor 1/(2π) applied, α and coefficient applied by the caller.

    With h = ‖b_H‖, r = ‖b_⊥‖: ⟨b, v⟩ = t h, ‖b‖‖v‖ sin γ = √(r² + (1 − t²) h²) (no
    cancellation), and E[v | t] = t b_H/h.
    """
    m, d = b.shape
    q = nodes.shape[0]
    for i in prange(m):
        h2 = 0.0
        for l in range(d_h):
            h2 += b[i, l] * b[i, l]
        r2 = 0.0
        for l in range(d_h, d):
            r2 += b[i, l] * b[i, l]
        h = sqrt(h2)
        n2 = h2 + r2
        acc_t = 0.0
        acc_h = 0.0  # coefficient of b_H/h
        acc_cross = 0.0
        for j in range(q):  # vectorised: fast_atan2 has no branches, the sums may reassociate
            t = nodes[j]
            dot = t * h
            cross = sqrt(max(r2 + (1.0 - t * t) * h2, 0.0))
            theta = fast_atan2(cross, -dot)  # π − γ
            acc_t += weights[j] * (cross + theta * dot)
            acc_h += weights[j] * theta * t
            acc_cross += weights[j] * cross
        out_t[i] = acc_t * _INV_2PI
        radial = acc_cross / n2 if n2 > 0.0 else 0.0
        along_h = acc_h / h if h > 0.0 else 0.0
        for l in range(d):
            g = radial * b[i, l]
            if l < d_h:
                g += along_h * b[i, l]
            out_g[i, l] = g * _INV_2PI


def sphere_average_terms(b, n_h_cols, nodes, weights):
    """E_v κ(b_i, v) and its gradient in b_i, for v uniform on a unit sphere whose span holds
    the first ``n_h_cols`` coordinates, with a given quadrature in t = ⟨v, b_H/‖b_H‖⟩.

    This is the building block of the norm target (‖x_H‖ = α E_v σ(⟨v, x_H⟩)): κ depends on
    b only through ‖b_H‖ and ‖b‖, so reduced models whose H-block is stored as fewer columns
    (e.g. just ‖b_H‖) pass their own ``n_h_cols`` and the quadrature of the true dim H.

    Parameters
    ----------
    b : (m, p) array
    n_h_cols : int
        Number of leading columns of b that make up b_H (1 ≤ n_h_cols ≤ p).
    nodes, weights : (q,) arrays
        Quadrature for t ∼ γ_{dim H} (see :func:`sphere_coordinate_quadrature`).

    Returns
    -------
    T : (m,) array
    grad_T : (m, p) array
    """
    b = _check_rows("b", b)
    if not 1 <= n_h_cols <= b.shape[1]:
        raise ValueError(f"n_h_cols = {n_h_cols} must be between 1 and {b.shape[1]}")
    nodes = np.ascontiguousarray(nodes, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if nodes.ndim != 1 or nodes.shape != weights.shape:
        raise ValueError("nodes and weights must be 1-D arrays of the same length")
    out_t = np.empty(b.shape[0])
    out_g = np.empty_like(b)
    _norm_target_kernel(b, int(n_h_cols), nodes, weights, out_t, out_g)
    return out_t, out_g
