"""Compiled pair sums of the block-reduced kernel κ̃ (:func:`meanfield.models.reduced.reduced_interaction`).

In a module of their own so that their Numba cache (about a minute of compilation) does
not depend on the rest of :mod:`meanfield.models.reduced`.
"""
from math import pi, sqrt

import numpy as np

from .threads import kernel, parallel_kernel, prange
from .gaussian import (abt_tile, fast_atan2, finish_rows, gram_tile, sym_finish_block,
                       transpose_scaled)

_INV_2PI = 1.0 / (2.0 * pi)

# How the pair sums are computed (the design of meanfield/gaussian.py, with quadrature):
#
# With e_ik = ⟨y_i, y'_k⟩ and, at node j, dot_ikj = e_ik + Σ_l r_il r'_kl t_jl,
# cross_ikj = √max(‖z_i‖²‖z'_k‖² − dot², 0), θ_ikj = π − γ_ikj = atan2(cross, −dot), let
#
#     A_ik = Σ_j w_j θ_ikj,   B_ikl = Σ_j w_j θ_ikj t_jl,   C_ik = Σ_j w_j cross_ikj.
#
# Then g_i = (Σ_k c_k A_ik y'_k, Σ_k c_k B_ikl r'_kl) and radial_i = Σ_k c_k C_ik give
# S_i = (radial_i + ⟨z_i, g_i⟩)/2π and ∇S_i = (g_i + radial_i z_i/‖z_i‖²)/2π: the full
# kernel's finishing step (gaussian.finish_rows) applied to z. The O(m² p) work is the
# Gram tile of the explicit coordinates and one reduction tile (gaussian's register-blocked
# products); the O(m² Q (R + 1)) work is the elementwise pass of :func:`_reduced_row`,
# vectorised over the sources of a tile (branch-free gaussian.fast_atan2). Nothing of size
# m × m is stored. When the sources are the outputs (the particle interaction), each
# unordered pair is computed once (tiles I ≤ K, and the upper triangle of a diagonal tile:
# θ_ikj is symmetric in i, k), with fixed virtual workers as in gaussian.py, so
# the numbers depend on the sizes only, never on the thread count; small problems run
# without a parallel region. The elementwise pass is not contracted: on a diagonal tile the
# squared norms are read from the Gram diagonal, so a self-pair whose block norms are all 0
# gets cross = 0 and θ = π exactly (as in gaussian.py).

# Tile shapes and workers (fix the summation order; they depend on nothing but constants).
_RED_TILE_ROWS = 64        # rows per block (general kernel)
_RED_TILE_COLS = 256       # sources per tile (general kernel)
_RED_TILE_SYM = 128        # square tile of the symmetric kernel
_RED_WORKERS = 8           # virtual workers (own accumulation buffers), symmetric kernel
_RED_BUFFER_BYTES = 256 << 20  # their buffers' cap: past it, the general kernel
_RED_SERIAL_WORK = 1 << 23     # m_out·m_src·(p + Q (16 + 2R)) below this: no parallel region


def _run_serially(m_out, m_src, p, n_red, q):
    """Small problems run without a parallel region (as gaussian._run_serially, whose unit
    is one pair's elementwise pass ≈ 16 and one explicit coordinate ≈ 1; here every node
    costs a pass and 2R rank-1 updates). Depends on the sizes only."""
    return m_out * m_src * (p + q * (16 + 2 * n_red)) < _RED_SERIAL_WORK


@kernel(error_model="numpy", fastmath={"reassoc"})
def _reduced_row(erow, nk, z_i, p, n2_i, c_i, n2k, ck, r_t, k0, nodes, weights,
                 dot, tw, arow, brow, crow, wrow, trow, g_i, col_r, col_g, c0, both):
    """One output row i against the nk sources k0 … k0 + nk − 1 of a tile.

    On entry ``erow[kk]`` = e_ik. Writes ``wrow[kk]`` = c_k A_ik, adds Σ_k c_k B_ikl r'_kl
    to ``g_i[p + l]`` and returns Σ_k c_k C_ik. If ``both`` (the symmetric kernel: the
    transposed pair's share too), also writes ``trow[kk]`` = A_ik and adds c_i C_ik to
    ``col_r[kk]`` and c_i r_il B_ikl to ``col_g[l, c0 + kk]``. ``dot``, ``tw``, ``arow``,
    ``brow`` (R, ≥ nk) and ``crow`` are scratch. ``r_t`` (R, m_src) holds the sources'
    block norms transposed. No contraction (see the notes above).
    """
    q, n_red = nodes.shape
    n2r = n2k[:nk]
    cr = ck[:nk]
    a = arow[:nk]
    cc = crow[:nk]
    dr = dot[:nk]
    twr = tw[:nk]
    er = erow[:nk]
    a[:] = 0.0
    cc[:] = 0.0
    brow[:, :nk] = 0.0
    for j in range(q):
        wj = weights[j]
        dr[:] = er
        for l in range(n_red):
            u = z_i[p + l] * nodes[j, l]
            if u != 0.0:  # r_il = 0: the pair does not see block l's orientation
                rl = r_t[l, k0:k0 + nk]
                for kk in range(nk):
                    dr[kk] += u * rl[kk]
        for kk in range(nk):  # vectorised: fast_atan2 has no branches
            dd = dr[kk]
            cross = sqrt(max(n2_i * n2r[kk] - dd * dd, 0.0))
            th = wj * fast_atan2(cross, -dd)
            a[kk] += th
            cc[kk] += wj * cross
            twr[kk] = th
        for l in range(n_red):
            t = nodes[j, l]
            bl = brow[l, :nk]
            for kk in range(nk):
                bl[kk] += t * twr[kk]
    radial = 0.0
    wr = wrow[:nk]
    for kk in range(nk):
        wr[kk] = cr[kk] * a[kk]
        radial += cr[kk] * cc[kk]
    for l in range(n_red):
        bl = brow[l, :nk]
        rl = r_t[l, k0:k0 + nk]
        s = 0.0
        for kk in range(nk):
            s += cr[kk] * bl[kk] * rl[kk]
        g_i[p + l] += s
    if both:
        tr_ = trow[:nk]
        tr_[:] = a
        colr = col_r[:nk]
        for kk in range(nk):
            colr[kk] += c_i * cc[kk]
        for l in range(n_red):
            f = c_i * z_i[p + l]
            if f != 0.0:
                bl = brow[l, :nk]
                cg = col_g[l, c0:c0 + nk]
                for kk in range(nk):
                    cg[kk] += f * bl[kk]
    return radial


@kernel(error_model="numpy")
def _reduced_general_block(ib, tr, tc, zt, yt, nt2, ys, ys_t, rs_t, ns2, cs, nodes, weights,
                           out_s, out_g):
    """Rows ib·tr … of :func:`_reduced_pair_sums` against all sources, tc at a time (writes
    those rows only)."""
    mt, ncol = zt.shape
    p = yt.shape[1]
    n_red = ncol - p
    ms = ys.shape[0]
    i0 = ib * tr
    ni = min(tr, mt - i0)
    dots = np.zeros((tr, tc))
    w = np.empty((tr, tc))
    dot = np.empty(tc)
    tw = np.empty(tc)
    arow = np.empty(tc)
    crow = np.empty(tc)
    brow = np.empty((n_red, tc))
    radial = np.zeros(tr)
    g = out_g[i0:i0 + ni]
    g[:] = 0.0
    for k0 in range(0, ms, tc):
        nk = min(tc, ms - k0)
        if p > 0:
            gram_tile(yt, i0, ni, ys, ys_t, k0, nk, dots)
        for ii in range(ni):
            # both=False: c_i, trow, col_r and col_g are not touched
            radial[ii] += _reduced_row(dots[ii], nk, zt[i0 + ii], p, nt2[i0 + ii], 0.0,
                                       ns2[k0:k0 + nk], cs[k0:k0 + nk], rs_t, k0, nodes,
                                       weights, dot, tw, arow, brow, crow, w[ii], w[ii],
                                       g[ii], radial, brow, 0, False)
        if p > 0:
            abt_tile(w, 0, 0, ni, ys_t, 0, k0, p, nk, g, True)
    finish_rows(zt[i0:i0 + ni], nt2[i0:i0 + ni], radial, out_s[i0:i0 + ni], g)


@parallel_kernel(error_model="numpy")
def _reduced_pair_sums(zt, yt, nt2, ys, ys_t, rs_t, ns2, cs, nodes, weights, out_s, out_g,
                       tr, tc, serial):
    """S_i = Σ_k c_k κ̃(z_i, z'_k) and its gradient in z_i = (y_i, r_i), general sources.

    Preconditions (checked by :func:`reduced_interaction`): ``zt`` (mt, p + R) and its
    explicit part ``yt`` (mt, p); ``ys`` (ms, p), its transpose ``ys_t`` (p, ms) and the
    sources' block norms transposed ``rs_t`` (R, ms), all C-contiguous float64 (p or R may
    be 0), ms ≥ 1; ``nt2`` (mt,) and ``ns2`` (ms,) the squared norms ‖y‖² + ‖r‖²; ``cs``
    (ms,); ``nodes`` (Q, R) and ``weights`` (Q,) a tensor quadrature for (t_1..t_R) with
    weights summing to 1. ``out_s`` (mt,) and ``out_g`` (mt, p + R) are written, not
    accumulated into; the factor 1/(2π) is applied here.

    Per pair and node: κ = (cross + θ dot)/2π and, as in MATH §2 (the ∂γ terms cancel),
    ∂κ/∂y = (θ y' + cross y/‖z‖²)/2π, ∂κ/∂r_l = (θ t_l r'_l + cross r_l/‖z‖²)/2π (see the
    notes above for the tiling). Tiles of ``tr`` rows × ``tc`` sources; parallel over blocks
    of output rows (no shared writes), or the same blocks in a plain loop if ``serial``:
    identical for any thread count.
    """
    n_blocks = (zt.shape[0] + tr - 1) // tr
    if serial:
        for ib in range(n_blocks):
            _reduced_general_block(ib, tr, tc, zt, yt, nt2, ys, ys_t, rs_t, ns2, cs, nodes,
                                   weights, out_s, out_g)
    else:
        for ib in prange(n_blocks):
            _reduced_general_block(ib, tr, tc, zt, yt, nt2, ys, ys_t, rs_t, ns2, cs, nodes,
                                   weights, out_s, out_g)


@kernel(error_model="numpy")
def _reduced_sym_worker(v, tb, z, y, y_t, r_t, c, n2, nodes, weights, buf_r, buf_g):
    """Virtual worker v of :func:`_reduced_pair_sums_symmetric`: its run of tb × tb tiles
    (I ≤ K, row-major order of the upper triangle), into its buffers."""
    m, ncol = z.shape
    p = y.shape[1]
    n_red = ncol - p
    n_workers = buf_g.shape[0]
    n_blocks = (m + tb - 1) // tb
    n_tiles = n_blocks * (n_blocks + 1) // 2
    t_first = n_tiles * v // n_workers
    t_last = n_tiles * (v + 1) // n_workers
    ib = 0
    t = t_first
    while ib < n_blocks and t >= n_blocks - ib:
        t -= n_blocks - ib
        ib += 1
    kb = ib + t
    dots = np.zeros((tb, tb))
    w = np.empty((tb, tb))
    theta = np.empty((tb, tb))
    n2_diag = np.empty(tb)
    dot = np.empty(tb)
    tw = np.empty(tb)
    arow = np.empty(tb)
    crow = np.empty(tb)
    brow = np.empty((n_red, tb))
    col_g = np.empty((n_red, tb))
    g_v = buf_g[v]
    r_v = buf_r[v]
    for _ in range(t_first, t_last):
        i0 = ib * tb
        ni = min(tb, m - i0)
        k0 = kb * tb
        nk = min(tb, m - k0)
        if p > 0:
            gram_tile(y, i0, ni, y, y_t, k0, nk, dots)
        if ib == kb:
            # squared norms from the tile's own Gram diagonal: a flat self-pair has
            # cross = 0 and θ = π exactly
            for ii in range(ni):
                s = dots[ii, ii]
                for l in range(n_red):
                    s += z[i0 + ii, p + l] * z[i0 + ii, p + l]
                n2_diag[ii] = s
            col_g[:, :ni] = 0.0
            for ii in range(ni):
                i = i0 + ii
                # the self-pair into row i only, then each pair (ii, kk > ii) once
                rad = _reduced_row(dots[ii, ii:], 1, z[i], p, n2_diag[ii], 0.0, n2_diag[ii:],
                                   c[i:], r_t, i, nodes, weights, dot, tw, arow, brow, crow,
                                   w[ii, ii:], w[ii, ii:], g_v[i], r_v, col_g, 0, False)
                if ii + 1 < ni:
                    rad += _reduced_row(dots[ii, ii + 1:], ni - ii - 1, z[i], p, n2_diag[ii],
                                        c[i], n2_diag[ii + 1:], c[i + 1:], r_t, i + 1, nodes,
                                        weights, dot, tw, arow, brow, crow, w[ii, ii + 1:],
                                        theta[ii, ii + 1:], g_v[i], r_v[i + 1:], col_g,
                                        ii + 1, True)
                r_v[i] += rad
                w[ii, :ii] = 0.0          # the lower triangle is the upper one's transpose
                theta[ii, :ii + 1] = 0.0
            if p > 0:
                abt_tile(w, 0, 0, ni, y_t, 0, i0, p, ni, g_v[i0:i0 + ni], True)
                transpose_scaled(theta, ni, ni, c[i0:i0 + ni], w)
                abt_tile(w, 0, 0, ni, y_t, 0, i0, p, ni, g_v[i0:i0 + ni], True)
            for kk in range(ni):
                for l in range(n_red):
                    g_v[i0 + kk, p + l] += col_g[l, kk]
        else:
            col_g[:, :nk] = 0.0
            for ii in range(ni):
                r_v[i0 + ii] += _reduced_row(dots[ii], nk, z[i0 + ii], p, n2[i0 + ii],
                                             c[i0 + ii], n2[k0:k0 + nk], c[k0:k0 + nk], r_t,
                                             k0, nodes, weights, dot, tw, arow, brow, crow,
                                             w[ii], theta[ii], g_v[i0 + ii],
                                             r_v[k0:k0 + nk], col_g, 0, True)
            if p > 0:
                abt_tile(w, 0, 0, ni, y_t, 0, k0, p, nk, g_v[i0:i0 + ni], True)
                # rows K: Σ_ii c_i A_ik y_i, the tile transposed so the dots are contiguous
                transpose_scaled(theta, ni, nk, c[i0:i0 + ni], w)
                abt_tile(w, 0, 0, nk, y_t, 0, i0, p, ni, g_v[k0:k0 + nk], True)
            for kk in range(nk):
                for l in range(n_red):
                    g_v[k0 + kk, p + l] += col_g[l, kk]
        kb += 1
        if kb == n_blocks:
            ib += 1
            kb = ib


@parallel_kernel(error_model="numpy")
def _reduced_pair_sums_symmetric(z, y, y_t, r_t, c, n2, nodes, weights, buf_r, buf_g, out_s,
                                 out_g, tb, serial):
    """:func:`_reduced_pair_sums` for sources = outputs: each unordered pair of tiles once.

    Preconditions: ``z`` (m, p + R), ``y`` (m, p), ``y_t`` (p, m), ``r_t`` (R, m)
    C-contiguous float64, m ≥ 1; ``c`` (m,); ``n2`` (m,) the squared norms; ``buf_r``
    (n_workers, m) and ``buf_g`` (n_workers, m, p + R) zeros on entry (allocated by the
    caller: an allocation inside a parallel kernel is a parallel region of its own);
    ``out_s`` (m,), ``out_g`` (m, p + R) are written.

    As gaussian._pair_sums_symmetric: the n_b(n_b + 1)/2 tiles (I ≤ K) are split into
    ``n_workers`` fixed runs, each worker accumulating into its own buffers (an
    off-diagonal tile adds to rows I and K: θ_ikj is symmetric in i, k); then, parallel over
    row blocks, the buffers are added in worker order and the rows finished. Which thread
    runs a worker never changes what it adds or in which order: identical for any thread
    count (and with ``serial``).
    """
    n_blocks = (z.shape[0] + tb - 1) // tb
    n_workers = buf_g.shape[0]
    if serial:
        for v in range(n_workers):
            _reduced_sym_worker(v, tb, z, y, y_t, r_t, c, n2, nodes, weights, buf_r, buf_g)
        for ib in range(n_blocks):
            sym_finish_block(ib, tb, z, n2, buf_r, buf_g, out_s, out_g)
    else:
        for v in prange(n_workers):
            _reduced_sym_worker(v, tb, z, y, y_t, r_t, c, n2, nodes, weights, buf_r, buf_g)
        for ib in prange(n_blocks):
            sym_finish_block(ib, tb, z, n2, buf_r, buf_g, out_s, out_g)
