"""Exact population expectations for Gaussian inputs (arc-cosine kernel), compiled with Numba.

For x ∼ N(0, I_d) and γ the angle between u and v (MATH §2):

    κ(u, v)   = E[σ(⟨u,x⟩) σ(⟨v,x⟩)] = (‖u‖‖v‖ sin γ + (π − γ)⟨u, v⟩) / (2π)
    ∇_u κ     = ((π − γ) v + (‖u‖‖v‖ sin γ / ‖u‖²) u) / (2π)

where ``‖u‖‖v‖ sin γ = √max(‖u‖²‖v‖² − ⟨u,v⟩², 0)`` and γ = atan2(that, ⟨u,v⟩), which is
stable at γ ≈ 0 and γ ≈ π. Other input scales multiply products by v_ρ = E[x_1²]
(Gaussian N(0, s²I): s²; uniform on the sphere: 1/d).

The one pair kernel :func:`_pair_sums` serves both the particle–particle interaction and
the teacher term (a teacher is just another set of particles), so the whole exact backend
is two compiled kernels (this one and the norm-target quadrature).
"""
from math import atan2, pi, sqrt

import numpy as np
from scipy.special import roots_jacobi

from ._numba import parallel_kernel, prange

__all__ = ["interaction", "kappa", "norm_target_terms", "sphere_coordinate_quadrature"]

_INV_2PI = 1.0 / (2.0 * pi)


@parallel_kernel
def _pair_sums(bt, nt2, bs, ns2, cs, out_s, out_g):
    """Kernel sums S_i = Σ_k c_k κ(b_i, b'_k) and G_i = Σ_k c_k ∇_1 κ(b_i, b'_k).

    Preconditions (checked by :func:`interaction`): ``bt`` (mt, d) and ``bs`` (ms, d) are
    C-contiguous float64; ``nt2``/``ns2`` are their squared row norms; ``cs`` (ms,);
    ``out_s`` (mt,) and ``out_g`` (mt, d) are written, not accumulated into.
    The factor 1/(2π) is applied here; the law's v_ρ is applied by the caller.
    Parallel over i (the output row): no shared writes, identical for any thread count.
    """
    mt, d = bt.shape
    ms = bs.shape[0]
    for i in prange(mt):
        acc_s = 0.0
        acc_cross = 0.0
        for l in range(d):
            out_g[i, l] = 0.0
        for k in range(ms):
            c = cs[k]
            if c == 0.0:
                continue
            dot = 0.0
            for l in range(d):
                dot += bt[i, l] * bs[k, l]
            cross = sqrt(max(nt2[i] * ns2[k] - dot * dot, 0.0))  # ‖u‖‖v‖ sin γ
            angle = atan2(cross, dot)
            coef = c * (pi - angle)
            acc_s += c * cross + coef * dot
            acc_cross += c * cross
            for l in range(d):
                out_g[i, l] += coef * bs[k, l]
        out_s[i] = acc_s * _INV_2PI
        # (‖v‖ sin γ/‖u‖) u term; at u = 0 the feature is flat in that direction.
        radial = acc_cross / nt2[i] if nt2[i] > 0.0 else 0.0
        for l in range(d):
            out_g[i, l] = (out_g[i, l] + radial * bt[i, l]) * _INV_2PI


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
    """
    b_out = _check_rows("b_out", b_out)
    b_src = _check_rows("b_src", b_src, b_out.shape[1])
    c_src = np.ascontiguousarray(c_src, dtype=np.float64)
    if c_src.shape != (b_src.shape[0],):
        raise ValueError(f"c_src must have shape ({b_src.shape[0]},), got {c_src.shape}")
    out_s = np.empty(b_out.shape[0])
    out_g = np.empty_like(b_out)
    if b_src.shape[0] == 0:
        out_s[:] = 0.0
        out_g[:] = 0.0
        return out_s, out_g
    _pair_sums(b_out, np.einsum("ij,ij->i", b_out, b_out), b_src,
               np.einsum("ij,ij->i", b_src, b_src), c_src, out_s, out_g)
    return out_s, out_g


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
    t, w = roots_jacobi(int(n_nodes), alpha, alpha)
    return np.ascontiguousarray(t), np.ascontiguousarray(w / w.sum())


@parallel_kernel
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
        for j in range(q):
            t = nodes[j]
            dot = t * h
            cross = sqrt(max(r2 + (1.0 - t * t) * h2, 0.0))
            angle = atan2(cross, dot)
            acc_t += weights[j] * (cross + (pi - angle) * dot)
            acc_h += weights[j] * (pi - angle) * t
            acc_cross += weights[j] * cross
        out_t[i] = acc_t * _INV_2PI
        radial = acc_cross / n2 if n2 > 0.0 else 0.0
        along_h = acc_h / h if h > 0.0 else 0.0
        for l in range(d):
            g = radial * b[i, l]
            if l < d_h:
                g += along_h * b[i, l]
            out_g[i, l] = g * _INV_2PI


def norm_target_terms(b, d_H, n_nodes=64):
    """E[‖x_H‖ σ(⟨b, x⟩)] and its gradient for x ∼ N(0, I_d), H = first d_H coordinates.

    Parameters
    ----------
    b : (m, d) array
    d_H : int
    n_nodes : int
        Gauss–Jacobi nodes (64 reach round-off on generic points).

    Returns
    -------
    T : (m,) array
    grad_T : (m, d) array
    """
    from .problem import norm_target_alpha

    b = _check_rows("b", b)
    if not 1 <= d_H <= b.shape[1]:
        raise ValueError(f"d_H = {d_H} must be between 1 and d = {b.shape[1]}")
    nodes, weights = sphere_coordinate_quadrature(d_H, n_nodes)
    out_t = np.empty(b.shape[0])
    out_g = np.empty_like(b)
    _norm_target_kernel(b, int(d_H), nodes, weights, out_t, out_g)
    alpha = norm_target_alpha(d_H)
    return alpha * out_t, alpha * out_g
