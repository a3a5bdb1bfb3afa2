"""Repeated Hessian-vector products at one state, with the pair geometry stored.

An eigensolver applies H to hundreds of vectors at the same state. The tiled kernel
(:func:`meanfield.kernels.hessian.hvp_pair_sums`) recomputes the geometry of every pair
(one square root, one arctangent, one division) and its Gram tiles for each product. Here
the four m × m matrices that do not depend on the vector are computed once,

    Θ_jk = θ(b_j, b_k),  R_jk = r(b_j, b_k),  R⁻_jk = 1/r (0 at small angles),
    D_jk = ⟨b_j, b_k⟩ / r (0 at small angles),

with the same conventions as the kernel (near-parallel r from the orthogonal part, the
small-angle limit below ``SMALL_ANGLE``, self pairs r = 0, θ = π), and a product becomes
matrix products (BLAS) and one elementwise pass. With β̃_k = w_k a_k β_k, α̃_k = w_k α_k,
c_k = w_k a_k, q_j = ⟨b_j, β_j⟩, q̃_k = ⟨b_k, β̃_k⟩, ν_j = 1/‖b_j‖² (0 at b_j = 0), the pair
sums of the particle interaction (module docstring of :mod:`meanfield.kernels.hessian`) are

    2π A_j = (R α̃)_j + ⟨b_j, (Θ (α̃ b))_j⟩ + (R (ν q̃))_j + ⟨b_j, (Θ β̃)_j⟩
    2π B_j = (Θ (α̃ b))_j + G_j β_j − q_j ν_j Y_j + ((R⁻ ∘ b β̃ᵀ) b)_j − (D (ν q̃ b))_j
             + (Θ β̃)_j + κ_u,j b_j + s_j ν_j β_j,

    κ_u,j = ((R α̃)_j − s_j q_j ν_j) ν_j + (R⁻ q̃)_j − ν_j ⟨b_j, (D β̃)_j⟩
            − ν_j (⟨β_j, Y_j⟩ − q_j ν_j z_j),

with the vector-independent G_j = Σ_k c_k R⁻_jk b_k b_kᵀ (d × d), Y_j = Σ_k c_k D_jk b_k,
z_j = Σ_k c_k D_jk ⟨b_j, b_k⟩, s_j = Σ_k c_k R_jk. Per vector this is about 6 d m² multiply–adds
in BLAS and one m × m elementwise product (R⁻ ∘ b β̃ᵀ), for a block of vectors at once.

The same stored sums give, for free, the per-particle diagonal blocks of H
(:meth:`StoredHessian.blocks`): the (d + 1) × (d + 1) block of particle j, whose inverse
(shifted) is the preconditioner of the LOBPCG eigensolver in :func:`meanfield.hessian.spectrum`.

Memory: 4 m² doubles (3.2 GB at m = 10⁴); :data:`STORED_MAX_BYTES` caps it.
"""
import numpy as np

from ..kernels.hessian import SMALL_ANGLE, hvp_pair_sums

__all__ = ["StoredHessian", "STORED_MAX_BYTES", "stored_bytes"]

#: largest memory (bytes) the stored pair matrices may take (4 m² doubles).
STORED_MAX_BYTES = 4 * 2 ** 30
_INV_2PI = 1.0 / (2.0 * np.pi)
#: rows per block when forming the geometry and the elementwise products (memory of the
#: temporaries: a few rows × m doubles).
_ROWS = 1024


def stored_bytes(m):
    """Bytes of the four stored m × m matrices."""
    return 4 * 8 * m * m


def _geometry(bu, bv):
    """dot, r, θ, 1/r (0 at small angles) for rows ``bu`` against all ``bv`` — the same
    conventions as the tiled kernel (near-parallel r from the orthogonal part; the self
    pair, a row of ``bu`` equal to one of ``bv``, comes out as r = 0, θ = π)."""
    dot = bu @ bv.T
    nu2 = np.einsum("ij,ij->i", bu, bu)
    nv2 = np.einsum("ij,ij->i", bv, bv)
    prod = nu2[:, None] * nv2[None, :]
    cross2 = prod - dot * dot
    near = (cross2 <= 1e-8 * prod) & (prod > 0)
    if np.any(near):
        jj, kk = np.nonzero(near)
        vperp = bv[kk] - (dot[jj, kk] / nu2[jj])[:, None] * bu[jj]
        cross2[jj, kk] = nu2[jj] * np.einsum("ij,ij->i", vperp, vperp)
    r = np.sqrt(np.maximum(cross2, 0.0))
    theta = np.arctan2(r, -dot)
    big = r > SMALL_ANGLE * np.sqrt(prod)
    inv_r = np.where(big, 1.0 / np.where(big, r, 1.0), 0.0)
    return dot, r, theta, inv_r


def _hess11_sums(bu, bv, c):
    """Σ_l c_l ∇²_11κ(u_j, v_l) for rows u_j of ``bu`` and a few sources v_l, shape (m, d, d)
    (standard Gaussian inputs): (r/‖u‖²)(I − ûûᵀ) + v_⊥v_⊥ᵀ/r over 2π."""
    dot, r, _, inv_r = _geometry(bu, bv)
    nu2 = np.einsum("ij,ij->i", bu, bu)
    iu = np.where(nu2 > 0, 1.0 / np.where(nu2 > 0, nu2, 1.0), 0.0)
    vperp = bv[None, :, :] - (dot * iu[:, None])[:, :, None] * bu[:, None, :]   # (m, l, d)
    out = ((r * c[None, :]).sum(axis=1) * iu)[:, None, None] * (
        np.eye(bu.shape[1])[None] - np.einsum("ia,ib->iab", bu, bu) * iu[:, None, None])
    out += np.einsum("jl,jla,jlb->jab", c[None, :] * inv_r, vperp, vperp)
    return out * _INV_2PI


class StoredHessian:
    """Hessian-vector products of a :class:`~meanfield.hessian.HessianOperator`'s state for
    blocks of vectors, with the pair geometry stored (module docstring).

    Parameters
    ----------
    op : HessianOperator
        The state; its teacher and norm-target parts and the vector-independent terms are
        reused from it.
    max_bytes : int
        Refuse if the four m × m matrices would take more (default :data:`STORED_MAX_BYTES`).

    Attributes
    ----------
    n_products : int
        Number of vectors multiplied so far.
    """

    def __init__(self, op, max_bytes=STORED_MAX_BYTES):
        self.op = op
        m, d = op.m, op.d
        self.m, self.d, self.n = m, d, op.n
        self.n_products = 0
        if op.linear:  # products are O(m d) already: nothing to store
            return
        need = stored_bytes(m)
        if need > max_bytes:
            raise ValueError(f"storing the pair geometry needs {need / 2**30:.1f} GiB for "
                             f"m = {m} (max_bytes = {max_bytes / 2**30:.1f} GiB)")
        b = op.b
        c = op.w * op.a
        self.theta = np.empty((m, m))
        self.r = np.empty((m, m))
        self.inv_r = np.empty((m, m))
        self.dr = np.empty((m, m))
        self.G = np.empty((m, d, d))
        self.Y = np.empty((m, d))
        self.z = np.empty(m)
        self.s = np.empty(m)
        outer = np.einsum("ka,kb->kab", b, b).reshape(m, d * d)
        for i0 in range(0, m, _ROWS):
            i1 = min(m, i0 + _ROWS)
            dot, r, th, ir = _geometry(b[i0:i1], b)
            self.theta[i0:i1] = th
            self.r[i0:i1] = r
            self.inv_r[i0:i1] = ir
            dr = dot * ir
            self.dr[i0:i1] = dr
            self.G[i0:i1] = ((ir * c[None, :]) @ outer).reshape(i1 - i0, d, d)
            self.Y[i0:i1] = dr @ (c[:, None] * b)
            self.z[i0:i1] = (dr * dot) @ c
            self.s[i0:i1] = r @ c
        nu2 = np.einsum("ij,ij->i", b, b)
        self.nu = np.where(nu2 > 0, 1.0 / np.where(nu2 > 0, nu2, 1.0), 0.0)

    # -- products ----------------------------------------------------------------------------
    def _pair_sums(self, alpha, beta):
        """2π-free pair sums (A, B) of the particle interaction for p vectors:
        alpha (m, p), beta (m, p, d) -> A (m, p), B (m, p, d) (standard Gaussian inputs)."""
        op = self.op
        m, d = self.m, self.d
        b, w = op.b, op.w
        p = alpha.shape[1]
        c = w * op.a
        al = w[:, None] * alpha                                   # α̃ (m, p)
        bt = c[:, None, None] * beta                              # β̃ (m, p, d)
        q = np.einsum("jd,jpd->jp", b, beta)                      # q_j
        qt = np.einsum("kd,kpd->kp", b, bt)                       # q̃_k
        nu = self.nu
        # Θ [β̃ | α̃ b] in one product
        rhs = np.concatenate([bt.reshape(m, p * d),
                              (al[:, :, None] * b[:, None, :]).reshape(m, p * d)], axis=1)
        th = (self.theta @ rhs).reshape(m, 2, p, d)
        th_bt, th_ab = th[:, 0], th[:, 1]
        rr = self.r @ np.concatenate([al, nu[:, None] * qt], axis=1)   # R α̃, R (ν q̃)
        r_al, r_nq = rr[:, :p], rr[:, p:]
        irq = self.inv_r @ qt                                           # R⁻ q̃
        rhs = np.concatenate([bt.reshape(m, p * d),
                              ((nu[:, None] * qt)[:, :, None] * b[:, None, :]).reshape(m, p * d)],
                             axis=1)
        dd = (self.dr @ rhs).reshape(m, 2, p, d)
        d_bt, d_nqb = dd[:, 0], dd[:, 1]
        # (R⁻ ∘ b β̃ᵀ) b: the one elementwise product, per vector and row block
        pv = np.empty((m, p, d))
        for i0 in range(0, m, _ROWS):
            i1 = min(m, i0 + _ROWS)
            ir = self.inv_r[i0:i1]
            for t in range(p):
                prod = b[i0:i1] @ bt[:, t, :].T
                prod *= ir
                pv[i0:i1, t] = prod @ b
        A = r_al + np.einsum("jd,jpd->jp", b, th_ab) + r_nq + np.einsum("jd,jpd->jp", b, th_bt)
        s = self.s[:, None]
        qn = q * nu[:, None]
        coef_u = (r_al - s * qn) * nu[:, None] + irq \
            - nu[:, None] * np.einsum("jd,jpd->jp", b, d_bt) \
            - nu[:, None] * (np.einsum("jpd,jd->jp", beta, self.Y) - qn * self.z[:, None])
        B = th_ab + np.einsum("jab,jpb->jpa", self.G, beta) - qn[:, :, None] * self.Y[:, None, :] \
            + pv - d_nqb + th_bt + coef_u[:, :, None] * b[:, None, :] \
            + (s * nu[:, None])[:, :, None] * beta
        return A * _INV_2PI, B * _INV_2PI

    def hvp_F(self, X):
        """∇²_θ F · X for a block X of shape (n, p) (or (n,)), same order as
        :meth:`HessianOperator.hvp_F`."""
        op = self.op
        X = np.asarray(X, dtype=np.float64)
        single = X.ndim == 1
        if single:
            X = X[:, None]
        if X.shape[0] != self.n:
            raise ValueError(f"vectors must have {self.n} rows, got shape {X.shape}")
        m, d, p = self.m, self.d, X.shape[1]
        self.n_products += p
        if op.linear:
            out = np.column_stack([op.hvp_F(X[:, t]) for t in range(p)])
            return out[:, 0] if single else out
        alpha = X[:m]
        beta = X[m:].reshape(m, d, p).transpose(0, 2, 1)                 # (m, p, d)
        A, B = self._pair_sums(alpha, beta)
        v = op.v_rho
        A *= v
        B *= v
        if op.teacher is not None or op.norm is not None:
            for t in range(p):
                hess_t = np.zeros((m, d))
                if op.teacher is not None:
                    zeros = np.zeros_like(op.teacher.b)
                    _, h = hvp_pair_sums(op.b, beta[:, t], op.teacher.b, zeros,
                                         np.zeros(op.teacher.a.size), op.teacher.a)
                    hess_t += v * h
                if op.norm is not None:
                    hess_t += op._norm_hess_apply(np.ascontiguousarray(beta[:, t]))
                B[:, t] -= hess_t
        w, a = op.w, op.a
        out = np.empty((self.n, p))
        out[:m] = w[:, None] * (A + np.einsum("jd,jpd->jp", op.e, beta))
        ob = w[:, None, None] * (op.e[:, None, :] * alpha[:, :, None] + a[:, None, None] * B)
        out[m:] = ob.transpose(0, 2, 1).reshape(m * d, p)
        return out[:, 0] if single else out

    def matmat(self, X):
        """H X, H = D^{-1/2} ∇²F D^{-1/2}, for X of shape (n, p) or (n,)."""
        s = self.op._scale()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            return self.hvp_F(X / s) / s
        return self.hvp_F(X / s[:, None]) / s[:, None]

    # -- diagonal blocks ------------------------------------------------------------------------
    def blocks(self):
        """The per-particle diagonal blocks of H, shape (m, d + 1, d + 1): for particle j the
        rows and columns (a_j, b_j1..b_jd) of H = D^{-1/2} ∇²F D^{-1/2}.

        H_{a_j a_j} = v_ρ w_j κ(b_j, b_j), H_{a_j b_j} = e_j + v_ρ w_j a_j ∇_1κ(b_j, b_j),
        H_{b_j b_j} = a_j (v_ρ Σ_l w_l a_l ∇²_11κ(b_j, b_l) − ∇²T(b_j)) + v_ρ w_j a_j² ∇²_12κ(b_j, b_j)
        (module docstring of :mod:`meanfield.hessian`; ∇²_12κ(u, u) = I/2, κ(u, u) = ‖u‖²/2,
        ∇_1κ(u, u) = u/2).
        """
        op = self.op
        m, d = self.m, self.d
        a, b, w, v = op.a, op.b, op.w, op.v_rho
        out = np.zeros((m, d + 1, d + 1))
        nb2 = np.einsum("ij,ij->i", b, b)
        out[:, 0, 0] = v * w * (nb2 if op.linear else 0.5 * nb2)
        ab = op.e + v * (w * a)[:, None] * (b if op.linear else 0.5 * b)
        out[:, 0, 1:] = ab
        out[:, 1:, 0] = ab
        eye = np.eye(d)
        if op.linear:
            out[:, 1:, 1:] = (v * w * a * a)[:, None, None] * eye
            return out
        nu = self.nu
        # Σ_l c_l ∇²_11κ(b_j, b_l) · 2π from the stored sums (as _hess11_sums)
        bb = np.einsum("ia,ib->iab", b, b)
        h11 = (self.s * nu)[:, None, None] * (eye[None] - bb * nu[:, None, None])
        h11 += self.G
        cross = self.Y * nu[:, None]
        h11 -= np.einsum("ja,jb->jab", cross, b) + np.einsum("ja,jb->jab", b, cross)
        h11 += (self.z * nu * nu)[:, None, None] * bb
        diag = v * h11 * _INV_2PI
        if op.teacher is not None:
            diag -= v * _hess11_sums(b, op.teacher.b, op.teacher.a)
        if op.norm is not None:
            diag -= op._norm_hess_dense()
        out[:, 1:, 1:] = a[:, None, None] * diag + (0.5 * v * w * a * a)[:, None, None] * eye
        return out

    # -- the coarse matrix ------------------------------------------------------------------------
    def coarse_matrix(self, V):
        """Vᵀ H V for block-diagonal V (one column per particle), shape (m, m).

        ``V`` has shape (m, d + 1): column j of the (n, m) matrix is V[j] on particle j's
        coordinates (a_j, b_j) and zero elsewhere. The off-diagonal entries are the pair blocks
        of H (j ≠ k, scaled by (w_j w_k)^{-1/2}),

            v_ρ √(w_j w_k) [α_j α_k κ(b_j, b_k) + α_j a_k ⟨∇_1κ(b_k, b_j), β_k⟩
                            + a_j α_k ⟨∇_1κ(b_j, b_k), β_j⟩ + a_j a_k β_jᵀ ∇²_12κ(b_j, b_k) β_k],

        from the stored geometry and the Gram matrices ⟨β_j, b_k⟩, ⟨β_j, β_k⟩ (O(m² d)); the
        diagonal is V[j]ᵀ (block j) V[j] (:meth:`blocks`). ReLU only.
        """
        op = self.op
        if op.linear:
            raise ValueError("coarse_matrix: ReLU activation only")
        m = self.m
        a, b, w, v = op.a, op.b, op.w, op.v_rho
        al, be = V[:, 0], V[:, 1:]
        q = np.einsum("jd,jd->j", b, be)
        nu = self.nu
        sw = np.sqrt(w)
        C = np.empty((m, m))
        for i0 in range(0, m, _ROWS):
            i1 = min(m, i0 + _ROWS)
            sl = slice(i0, i1)
            th, r, ir, dr = self.theta[sl], self.r[sl], self.inv_r[sl], self.dr[sl]
            dot = b[sl] @ b.T
            g_bb = be[sl] @ b.T            # ⟨β_j, b_k⟩
            g_tb = b[sl] @ be.T            # ⟨b_j, β_k⟩
            g_tt = be[sl] @ be.T           # ⟨β_j, β_k⟩
            kap = r + th * dot
            grad_k = th * g_tb + r * (nu * q)[None, :]          # 2π⟨∇_1κ(b_k, b_j), β_k⟩
            grad_j = th * g_bb + r * (nu[sl] * q[sl])[:, None]  # 2π⟨∇_1κ(b_j, b_k), β_j⟩
            h12 = th * g_tt + ir * g_bb * g_tb - dr * g_bb * (nu * q)[None, :] \
                + ir * q[sl, None] * q[None, :] - dr * (q[sl] * nu[sl])[:, None] * g_tb
            blk = (al[sl, None] * al[None, :]) * kap + al[sl, None] * a[None, :] * grad_k \
                + a[sl, None] * al[None, :] * grad_j + (a[sl, None] * a[None, :]) * h12
            C[sl] = (v * _INV_2PI) * (sw[sl, None] * sw[None, :]) * blk
        Bl = self.blocks()
        C[np.arange(m), np.arange(m)] = np.einsum("ja,jab,jb->j", V, Bl, V)
        return C
