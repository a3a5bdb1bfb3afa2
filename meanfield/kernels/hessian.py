"""Compiled tiles of the exact Hessian-vector product (arc-cosine kernel, Gaussian inputs).

One kernel, :func:`hvp_pair_sums`, serves every pair sum of the Hessian-vector product: the
particle interaction (sources = the particles themselves) and the teacher part of the target
(sources = the teacher's units, with zero directions). For output rows u = b_j with
direction β_j and sources v = b_k with coefficients α̃_k, β̃_k (d,) and c_k, it returns

    A_j = Σ_k [κ(u, v) α̃_k + ∇_1κ(v, u)·β̃_k]                                     (scalar)
    B_j = Σ_k [∇_1κ(u, v) α̃_k + c_k ∇²_11κ(u, v) β_j + ∇²_12κ(u, v) β̃_k]           (d,)

with, for dot = ⟨u,v⟩, r = √(‖u‖²‖v‖² − dot²) = ‖u‖‖v‖ sin γ, θ = π − γ,
v_⊥ = v − (dot/‖u‖²) u and u_⊥ = u − (dot/‖v‖²) v (derivation in :mod:`meanfield.hessian`):

    2π κ          = r + θ dot
    2π ∇_1κ(u, v) = θ v + (r/‖u‖²) u
    2π ∇²_11κ     = (r/‖u‖²)(I − ûûᵀ) + v_⊥ v_⊥ᵀ / r
    2π ∇²_12κ     = θ I + (v u_⊥ᵀ + u v_⊥ᵀ) / r

Written through the Gram tiles ⟨u, v⟩, ⟨u, β̃_k⟩, ⟨β_j, v⟩ and the two reductions
Σ_k X_jk v_k, Σ_k θ_jk β̃_k, the O(m² d) work is five matrix products per tile and an O(m²)
elementwise pass (one square root, one arctangent, one division per pair); nothing of size
m × m is stored (tiles of 64 × 256).

Small angles. The 1/r terms are O(sin γ) (κ is C² but not C³ where u ∥ v: its Hessian is
continuous, with value θ I/(2π) in the limit), but written in the (u, v) basis they cancel
catastrophically: their rounding error is ~ε/sin γ. (r itself is recomputed as
‖u‖ ‖v − (dot/‖u‖²) u‖ when sin²γ ≤ 1e-8: the difference of squares would leave an error
of ~√ε ‖u‖‖v‖ in r, which shows in the Hessian of clustered particles.) Pairs with sin γ ≤ ``SMALL_ANGLE``
(2⁻²⁶ ≈ √ε) therefore take the limit (the 1/r terms dropped): the error is then at most
~√ε ≈ 1.5e-8 of the pair's scale either way. Zero vectors (‖u‖ = 0 or ‖v‖ = 0, where κ is
not twice differentiable) give the same convention as the velocity: terms divided by ‖u‖²
are zero. A self-pair (``same`` and j = k) is set to its exact value r = 0, θ = π.

Parallel over blocks of output rows (``prange``), each block writing its rows only: results
are identical for any number of threads; small problems run the same blocks serially.
"""
from math import pi, sqrt

import numpy as np

from .threads import kernel, parallel_kernel, prange
from .gaussian import abt_tile, fast_atan2, gram_tile

__all__ = ["hvp_pair_sums", "SMALL_ANGLE", "pair_geometry", "hess11_sums", "geometry_rows",
           "mix_rows"]

_INV_2PI = 1.0 / (2.0 * pi)
#: sin γ at or below which a pair takes the parallel (or antiparallel) limit: √ε.
SMALL_ANGLE = 2.0 ** -26
#: sin²γ below which r is recomputed from the orthogonal part (the difference of squares
#: ‖u‖²‖v‖² − ⟨u,v⟩² has error ~ε‖u‖²‖v‖², i.e. r would be wrong by ~√ε there).
_NEAR_PARALLEL = 1e-8
_TILE_ROWS = 64
_TILE_COLS = 256
#: m_out·m_src·(d + 16) below this: no parallel region (as in meanfield.kernels.gaussian).
_SERIAL_WORK = 1 << 22


@kernel(error_model="numpy", fastmath={"reassoc"})
def _hvp_tile_pass(i0, k0, ni, nk, same, bt, bs, dots, gp, gq, nt2, nt, qq, ns2, ns, ins2, qs,
                   al, cs, x, th, c2, sc):
    """Elementwise pass over one tile (rows i0.., sources k0..).

    On entry ``dots``, ``gp`` (⟨u, β̃_k⟩) and ``gq`` (⟨β_j, v⟩) hold the Gram tiles; ``nt``,
    ``ns`` are the norms, ``ins2`` the inverse squared source norms (0 for a zero vector);
    ``c2`` is scratch (≥ nk). On exit ``x[ii, kk]`` is the coefficient of v_k and
    ``th[ii, kk]`` that of β̃_k in B_j, and the row sums are added to ``sc[ii, :]``:
    0: Σ(r + θ dot) α̃, 1: Σ r q̃/‖v‖², 2: Σ r α̃, 3: Σ c r, 4: Σ (coefficient of u from the
    1/r terms). The main loop has no branches (selects only), so it vectorises.
    """
    d = bt.shape[1]
    for ii in range(ni):
        i = i0 + ii
        n2u = nt2[i]
        nu = nt[i]
        inv_n2u = 1.0 / n2u if n2u > 0.0 else 0.0
        qu = qq[i]
        drow = dots[ii, :nk]
        crow = c2[:nk]
        for kk in range(nk):
            crow[kk] = n2u * ns2[k0 + kk] - drow[kk] * drow[kk]
        for kk in range(nk):
            prod = n2u * ns2[k0 + kk]
            if crow[kk] <= _NEAR_PARALLEL * prod and prod > 0.0:
                # ‖u‖²‖v‖² − dot² cancels (error ~ ε‖u‖²‖v‖²): r = ‖u‖ ‖v − (dot/‖u‖²) u‖
                f = drow[kk] * inv_n2u
                acc = 0.0
                for l in range(d):
                    z = bs[k0 + kk, l] - f * bt[i, l]
                    acc += z * z
                crow[kk] = n2u * acc
        if same and k0 <= i < k0 + nk:
            crow[i - k0] = 0.0  # the self pair: r = 0 and θ = atan2(0, −‖u‖²) = π exactly
        prow = gp[ii, :nk]
        qrow = gq[ii, :nk]
        xrow = x[ii, :nk]
        trow = th[ii, :nk]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        s4 = 0.0
        for kk in range(nk):
            k = k0 + kk
            dot = drow[kk]
            cross = sqrt(max(crow[kk], 0.0))
            angle = fast_atan2(cross, -dot)
            big = cross > SMALL_ANGLE * (nu * ns[k])
            inv_r = 1.0 / (cross if big else 1.0)
            inv_r = inv_r if big else 0.0
            alk = al[k]
            ck = cs[k]
            qk = qs[k]
            p = prow[kk]
            s = qrow[kk] - dot * qu * inv_n2u                 # ⟨v_⊥, β_j⟩
            s0 += (cross + angle * dot) * alk
            s1 += cross * qk * ins2[k]
            s2 += cross * alk
            s3 += ck * cross
            # c_k v_⊥v_⊥ᵀβ_j/r + v u_⊥ᵀβ̃_k/r (coefficient of v) and the u parts
            xrow[kk] = angle * alk + (ck * s + p - dot * qk * ins2[k]) * inv_r
            s4 += (qk - dot * p * inv_n2u - ck * s * dot * inv_n2u) * inv_r
            trow[kk] = angle
        sc[ii, 0] += s0
        sc[ii, 1] += s1
        sc[ii, 2] += s2
        sc[ii, 3] += s3
        sc[ii, 4] += s4


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def _hvp_finish(i0, ni, bt, beta_t, nt2, qq, sc, out_a, out_b):
    """Rows i0..: on entry out_a holds ⟨u, Σ θ β̃⟩ and out_b the reductions Σ X v + Σ θ β̃;
    add the scalar terms (u and β_j coefficients of B, Σ(r + θ dot)α̃ + Σ r q̃/‖v‖² of A)
    and apply 1/(2π)."""
    d = bt.shape[1]
    for ii in range(ni):
        i = i0 + ii
        n2u = nt2[i]
        inv_n2u = 1.0 / n2u if n2u > 0.0 else 0.0
        ui = bt[i]
        gi = out_b[i]
        coef_u = (sc[ii, 2] - sc[ii, 3] * qq[i] * inv_n2u) * inv_n2u + sc[ii, 4]
        coef_beta = sc[ii, 3] * inv_n2u
        bj = beta_t[i]
        for l in range(d):
            gi[l] = (gi[l] + coef_u * ui[l] + coef_beta * bj[l]) * _INV_2PI
        out_a[i] = (sc[ii, 0] + sc[ii, 1] + out_a[i]) * _INV_2PI


@kernel(error_model="numpy")
def _hvp_block(ib, tr, tc, same, bt, beta_t, nt2, nt, qq, bs, bs_t, btil, btil_t, ns2, ns, ins2,
               qs, al, cs, out_a, out_b):
    """Rows ib·tr … of :func:`hvp_pair_sums` against all sources (writes those rows only)."""
    mt, d = bt.shape
    ms = bs.shape[0]
    i0 = ib * tr
    ni = min(tr, mt - i0)
    dots = np.empty((tr, tc))
    gp = np.empty((tr, tc))
    gq = np.empty((tr, tc))
    x = np.empty((tr, tc))
    th = np.empty((tr, tc))
    c2 = np.empty(tc)
    sc = np.zeros((tr, 5))
    yb = np.zeros((tr, d))
    gb = out_b[i0:i0 + ni]
    gb[:] = 0.0
    for k0 in range(0, ms, tc):
        nk = min(tc, ms - k0)
        gram_tile(bt, i0, ni, bs, bs_t, k0, nk, dots)
        gram_tile(bt, i0, ni, btil, btil_t, k0, nk, gp)
        gram_tile(beta_t, i0, ni, bs, bs_t, k0, nk, gq)
        _hvp_tile_pass(i0, k0, ni, nk, same, bt, bs, dots, gp, gq, nt2, nt, qq, ns2, ns, ins2,
                       qs, al, cs, x, th, c2, sc)
        abt_tile(x, 0, 0, ni, bs_t, 0, k0, d, nk, gb, True)
        abt_tile(th, 0, 0, ni, btil_t, 0, k0, d, nk, yb, True)
    # A_j gets ⟨u, Σ θ β̃⟩; B_j gets Σ θ β̃
    for ii in range(ni):
        s = 0.0
        for l in range(d):
            s += bt[i0 + ii, l] * yb[ii, l]
            gb[ii, l] += yb[ii, l]
        out_a[i0 + ii] = s
    _hvp_finish(i0, ni, bt, beta_t, nt2, qq, sc, out_a, out_b)


@parallel_kernel(error_model="numpy")
def _hvp_pairs(same, bt, beta_t, nt2, nt, qq, bs, bs_t, btil, btil_t, ns2, ns, ins2, qs, al, cs,
               out_a, out_b, tr, tc, serial):
    """Parallel (or serial) loop over row blocks of :func:`_hvp_block`.

    Preconditions (checked by :func:`hvp_pair_sums`): ``bt``, ``beta_t`` (mt, d), ``bs``,
    ``btil`` (ms, d) and their transposes ``bs_t``, ``btil_t`` (d, ms) C-contiguous float64;
    ``nt2``, ``nt``, ``qq`` (mt,), ``ns2``, ``ns``, ``ins2``, ``qs``, ``al``, ``cs`` (ms,);
    ms ≥ 1 (squared norms, norms, inverse squared norms). Outputs written.
    """
    n_blocks = (bt.shape[0] + tr - 1) // tr
    if serial:
        for ib in range(n_blocks):
            _hvp_block(ib, tr, tc, same, bt, beta_t, nt2, nt, qq, bs, bs_t, btil, btil_t, ns2,
                       ns, ins2, qs, al, cs, out_a, out_b)
    else:
        for ib in prange(n_blocks):
            _hvp_block(ib, tr, tc, same, bt, beta_t, nt2, nt, qq, bs, bs_t, btil, btil_t, ns2,
                       ns, ins2, qs, al, cs, out_a, out_b)


def _rows(name, arr, shape):
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


def hvp_pair_sums(b_out, beta_out, b_src, beta_src, alpha_src, c_src, same=False,
                  serial=None):
    """Pair sums A (m,) and B (m, d) of the Hessian-vector product (module docstring).

    Parameters
    ----------
    b_out, beta_out : (m, d) arrays
        Output points u_j = b_j and the direction's rows β_j at them.
    b_src, beta_src : (n, d) arrays
        Source points v_k and their coefficient vectors β̃_k.
    alpha_src, c_src : (n,) arrays
        Coefficients α̃_k (of κ and ∇_1κ) and c_k (of ∇²_11κ).
    same : bool
        True when ``b_src`` is ``b_out`` (row j and source j are the same point: its
        self-pair is set exactly to r = 0, θ = π).
    serial : bool, optional
        Force the serial (True) or parallel (False) path; default by problem size. Both
        give identical numbers.

    Returns
    -------
    A : (m,) array
    B : (m, d) array
        Standard Gaussian inputs: multiply by v_ρ for other scales.
    """
    b_out = np.ascontiguousarray(b_out, dtype=np.float64)
    if b_out.ndim != 2:
        raise ValueError(f"b_out must be 2-D (m, d), got shape {b_out.shape}")
    m, d = b_out.shape
    beta_out = _rows("beta_out", beta_out, (m, d))
    b_src = np.ascontiguousarray(b_src, dtype=np.float64)
    if b_src.ndim != 2 or b_src.shape[1] != d:
        raise ValueError(f"b_src must have shape (n, {d}), got {b_src.shape}")
    n = b_src.shape[0]
    beta_src = _rows("beta_src", beta_src, (n, d))
    alpha_src = _rows("alpha_src", alpha_src, (n,))
    c_src = _rows("c_src", c_src, (n,))
    if same and b_src.shape != b_out.shape:
        raise ValueError("same=True needs b_src to be b_out")
    out_a = np.zeros(m)
    out_b = np.zeros((m, d))
    if n == 0 or m == 0:
        return out_a, out_b
    nt2 = np.einsum("ij,ij->i", b_out, b_out)
    ns2 = nt2 if same else np.einsum("ij,ij->i", b_src, b_src)
    qq = np.einsum("ij,ij->i", b_out, beta_out)
    qs = np.einsum("ij,ij->i", b_src, beta_src)
    if serial is None:
        serial = m * n * (d + 16) < _SERIAL_WORK
    ins2 = np.where(ns2 > 0, 1.0 / np.where(ns2 > 0, ns2, 1.0), 0.0)
    _hvp_pairs(bool(same), b_out, beta_out, nt2, np.sqrt(nt2), qq, b_src,
               np.ascontiguousarray(b_src.T), beta_src, np.ascontiguousarray(beta_src.T), ns2,
               np.sqrt(ns2), ins2, qs, alpha_src, c_src, out_a, out_b, _TILE_ROWS, _TILE_COLS,
               bool(serial))
    return out_a, out_b


# ------------------------------------------------------------------ dense pair geometry (NumPy)
def pair_geometry(bu, bv, same=False):
    """dot, r, θ, 1/r (0 at small angles), ‖u‖², ‖v‖² for all pairs (u_j, v_k), shapes (m, n)
    and (m,), (n,), with the conventions of the tiled kernel (module docstring): r from the
    orthogonal part where sin²γ ≤ 1e-8, 1/r = 0 where sin γ ≤ ``SMALL_ANGLE``, and with
    ``same`` (``bv`` is ``bu``) the self pairs r = 0, θ = π."""
    dot = bu @ bv.T
    nu2 = np.einsum("ij,ij->i", bu, bu)
    nv2 = np.einsum("ij,ij->i", bv, bv)
    prod = nu2[:, None] * nv2[None, :]
    cross2 = prod - dot * dot
    near = (cross2 <= _NEAR_PARALLEL * prod) & (prod > 0)
    if np.any(near):  # r = ‖u‖ ‖v − (dot/‖u‖²) u‖ where the difference of squares cancels
        jj, kk = np.nonzero(near)
        vperp = bv[kk] - (dot[jj, kk] / nu2[jj])[:, None] * bu[jj]
        cross2[jj, kk] = nu2[jj] * np.einsum("ij,ij->i", vperp, vperp)
    if same:
        np.fill_diagonal(cross2, 0.0)
    r = np.sqrt(np.maximum(cross2, 0.0))
    theta = np.arctan2(r, -dot)
    if same:
        np.fill_diagonal(theta, np.pi)
    big = r > SMALL_ANGLE * np.sqrt(prod)
    inv_r = np.where(big, 1.0 / np.where(big, r, 1.0), 0.0)
    return dot, r, theta, inv_r, nu2, nv2


def hess11_sums(bu, bv, c, same=False):
    """Σ_l c_l ∇²_11κ(u_j, v_l) for standard Gaussian inputs, shape (m, d, d):
    2π ∇²_11κ(u, v) = (r/‖u‖²)(I − ûûᵀ) + v_⊥v_⊥ᵀ/r (module docstring; conventions of
    :func:`pair_geometry`). Rows are taken in chunks so that no (rows, n, d) temporary
    exceeds ~2²² doubles (a teacher with many units)."""
    m, d = bu.shape
    n = bv.shape[0]
    out = np.empty((m, d, d))
    rows = max(1, (1 << 22) // max(1, n * d))
    eye = np.eye(d)
    for i0 in range(0, m, rows):
        i1 = min(m, i0 + rows)
        u = bu[i0:i1]
        dot, r, _, inv_r, nu2, _ = pair_geometry(u, bv)
        if same:   # the self pair: r = 0 (no 1/r term)
            idx = np.arange(i0, i1)
            r[idx - i0, idx] = 0.0
            inv_r[idx - i0, idx] = 0.0
        iu = np.where(nu2 > 0, 1.0 / np.where(nu2 > 0, nu2, 1.0), 0.0)
        vperp = bv[None, :, :] - (dot * iu[:, None])[:, :, None] * u[:, None, :]
        blk = ((r * c[None, :]).sum(axis=1) * iu)[:, None, None] * (
            eye[None] - np.einsum("ia,ib->iab", u, u) * iu[:, None, None])
        blk += np.einsum("jl,jla,jlb->jab", c[None, :] * inv_r, vperp, vperp)
        out[i0:i1] = blk * _INV_2PI
    return out


# ------------------------------------------------------- stored geometry (meanfield.hessian.stored)
@kernel(error_model="numpy", fastmath={"reassoc"})
def geometry_rows(i0, dots, nu2, nv2, bu, bv, same, theta, r, inv_r, dr):
    """θ, r, 1/r and ⟨u, v⟩/r of rows u = ``bu[ii]`` (global index i0 + ii) against every
    source v = ``bv[k]``, given the Gram rows ``dots`` (ni, n) and squared norms; the
    conventions of :func:`_hvp_tile_pass` (r from the orthogonal part where sin²γ ≤ 1e-8,
    1/r = 0 where sin γ ≤ ``SMALL_ANGLE``, and with ``same`` the self pair r = 0, θ = π).
    Writes rows of the four (ni, n) outputs; ``r`` is scratch for r² first."""
    ni, n = dots.shape
    d = bu.shape[1]
    for ii in range(ni):
        n2u = nu2[ii]
        inv_n2u = 1.0 / n2u if n2u > 0.0 else 0.0
        nu = sqrt(n2u)
        drow = dots[ii]
        crow = r[ii]
        for k in range(n):
            crow[k] = n2u * nv2[k] - drow[k] * drow[k]
        for k in range(n):
            prod = n2u * nv2[k]
            if crow[k] <= _NEAR_PARALLEL * prod and prod > 0.0:
                f = drow[k] * inv_n2u
                acc = 0.0
                for l in range(d):
                    z = bv[k, l] - f * bu[ii, l]
                    acc += z * z
                crow[k] = n2u * acc
        if same and 0 <= i0 + ii < n:
            crow[i0 + ii] = 0.0
        trow = theta[ii]
        irow = inv_r[ii]
        drrow = dr[ii]
        for k in range(n):
            dot = drow[k]
            cross = sqrt(max(crow[k], 0.0))
            big = cross > SMALL_ANGLE * (nu * sqrt(nv2[k]))
            ir = 1.0 / (cross if big else 1.0)
            ir = ir if big else 0.0
            crow[k] = cross
            trow[k] = fast_atan2(cross, -dot)
            irow[k] = ir
            drrow[k] = dot * ir


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def mix_rows(P, inv_r, dr, s, dsum):
    """One elementwise pass of the stored product (:mod:`meanfield.hessian.stored`): for rows
    j, vectors t and sources k, with P_jtk = ⟨b_j, β̃_kt⟩ on entry,
    ``dsum[j, t] = Σ_k D_jk P_jtk`` and ``P_jtk ← R⁻_jk P_jtk − D_jk s_tk`` (in place).
    Shapes: P (ni, p, n), inv_r and dr (ni, n), s (p, n), dsum (ni, p)."""
    ni, p, n = P.shape
    for j in range(ni):
        irow = inv_r[j]
        drow = dr[j]
        for t in range(p):
            prow = P[j, t]
            srow = s[t]
            acc = 0.0
            for k in range(n):
                x = prow[k]
                acc += drow[k] * x
                prow[k] = irow[k] * x - drow[k] * srow[k]
            dsum[j, t] = acc
