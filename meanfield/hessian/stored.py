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
z_j = Σ_k c_k D_jk ⟨b_j, b_k⟩, s_j = Σ_k c_k R_jk. The two Θ products have the same
coefficient in A and in B and are one product Θ (β̃ + α̃ b); with P_jk = ⟨b_j, β̃_k⟩ (the
m × m Gram matrix of one vector), ⟨b_j, (D β̃)_j⟩ = Σ_k D_jk P_jk and
((R⁻ ∘ b β̃ᵀ) b)_j − (D (ν q̃ b))_j = (M b)_j with M_jk = R⁻_jk P_jk − D_jk ν_k q̃_k. Per
vector this is three matrix products of 2 d m² flops each (Θ(β̃ + α̃ b), P = b β̃ᵀ, M b) and
one elementwise pass over P (:func:`~meanfield.kernels.hessian.mix_rows`), for a block of
vectors at once. The target's Hessian is folded into G once: G_j ← G_j − (2π/v_ρ) ∇²T(b_j)
(it enters B and the diagonal blocks only through G_j β_j).

Parallel over row blocks (tasks of :func:`~meanfield.kernels.threads.run_tasks`, BLAS with
one thread inside each): a row's result is computed by the same operations in the same order
whatever the thread count, so products are identical for any number of threads.

The same stored sums give, for free, the per-particle diagonal blocks of H
(:meth:`StoredHessian.blocks`): the (d + 1) × (d + 1) block of particle j, whose inverse
(shifted) is the preconditioner of the LOBPCG eigensolver in :func:`meanfield.hessian.spectrum`.

Memory: 4 m² doubles (3.2 GB at m = 10⁴); :data:`STORED_MAX_BYTES` caps it. Temporaries of a
product: a few row blocks of p × m doubles (:data:`_MIX_DOUBLES`).
"""
import numpy as np

from ..kernels.hessian import geometry_rows, mix_rows
from ..kernels.threads import blas_single_thread, run_tasks

__all__ = ["StoredHessian", "STORED_MAX_BYTES", "stored_bytes"]

#: largest memory (bytes) the stored pair matrices may take (4 m² doubles).
STORED_MAX_BYTES = 4 * 2 ** 30
_INV_2PI = 1.0 / (2.0 * np.pi)
#: rows per task when forming the geometry, the products and the coarse matrix (tasks are
#: fixed by m, never by the thread count).
_ROWS = 256
#: doubles of one P block (rows × p × m) in a product: bounds the temporaries per task.
_MIX_DOUBLES = 1 << 21


def stored_bytes(m):
    """Bytes of the four stored m × m matrices."""
    return 4 * 8 * m * m


class StoredHessian:
    """Hessian-vector products of a :class:`~meanfield.hessian.HessianOperator`'s state for
    blocks of vectors, with the pair geometry stored (module docstring).

    Parameters
    ----------
    op : HessianOperator
        The state; its public attributes (``a``, ``b``, ``w``, ``e``, ``v_rho``, ``linear``,
        ``target_hessian``, :meth:`~meanfield.hessian.HessianOperator.coordinate_scale`)
        are used.
    max_bytes : int
        Refuse if the four m × m matrices would take more (default :data:`STORED_MAX_BYTES`).
    parallel : bool
        Row-block tasks on the Numba thread count (identical results either way).
    dtype : numpy dtype
        Storage and product precision of Θ, R, R⁻, D (float64; float32 halves the memory
        and the time of the matrix products, at a relative error of the products of order
        1e-7 (sums of m float32 products), which sets the floor of the eigenvalue residuals).
        The per-particle sums G, Y, z, s and the diagonal blocks stay float64.

    Attributes
    ----------
    n_products : int
        Number of vectors multiplied so far.
    seconds_store : float
        Time spent forming the stored matrices.
    """

    def __init__(self, op, max_bytes=STORED_MAX_BYTES, parallel=True, dtype=np.float64):
        import time

        t0 = time.perf_counter()
        self.op = op
        m, d = op.m, op.d
        self.m, self.d, self.n = m, d, op.n
        self.n_products = 0
        self.parallel = parallel
        self._blocks = None
        self.seconds_store = 0.0
        self.dtype = dtype = np.dtype(dtype)
        if dtype not in (np.float64, np.float32):
            raise ValueError(f"dtype must be float64 or float32, got {dtype}")
        if op.linear:  # products are O(m d) already: nothing to store
            return
        need = stored_bytes(m) * dtype.itemsize // 8
        if need > max_bytes:
            raise ValueError(f"storing the pair geometry needs {need / 2**30:.1f} GiB for "
                             f"m = {m} (max_bytes = {max_bytes / 2**30:.1f} GiB)")
        b = op.b
        c = op.w * op.a
        self.theta = np.empty((m, m), dtype)
        self.r = np.empty((m, m), dtype)
        self.inv_r = np.empty((m, m), dtype)
        self.dr = np.empty((m, m), dtype)
        same = dtype == np.float64
        self.G = np.empty((m, d, d))
        self.Y = np.empty((m, d))
        self.z = np.empty(m)
        self.s = np.empty(m)
        nb2 = np.einsum("ij,ij->i", b, b)
        iu0, iu1 = np.triu_indices(d)
        outer = b[:, iu0] * b[:, iu1]            # the upper triangle of b_k b_kᵀ, (m, d(d+1)/2)
        cb = c[:, None] * b

        def task(t):
            i0, i1 = t * _ROWS, min(m, (t + 1) * _ROWS)
            dots = b[i0:i1] @ b.T
            if same:
                th, r, ir, dr = (self.theta[i0:i1], self.r[i0:i1], self.inv_r[i0:i1],
                                 self.dr[i0:i1])
            else:   # float64 first: G, Y, z, s from the exact geometry
                th, r, ir, dr = (np.empty_like(dots) for _ in range(4))
            geometry_rows(i0, dots, nb2[i0:i1], nb2, b[i0:i1], b, True, th, r, ir, dr)
            if not same:
                self.theta[i0:i1], self.r[i0:i1] = th, r
                self.inv_r[i0:i1], self.dr[i0:i1] = ir, dr
            g = (ir * c) @ outer
            blk = self.G[i0:i1]
            blk[:, iu0, iu1] = g
            blk[:, iu1, iu0] = g
            self.Y[i0:i1] = dr @ cb
            dots *= dr
            self.z[i0:i1] = dots @ c
            self.s[i0:i1] = r @ c

        with blas_single_thread():
            run_tasks(task, (m + _ROWS - 1) // _ROWS, parallel)
        if not op.target_hessian.zero:   # fold ∇²T into G (module docstring)
            self.G -= (2.0 * np.pi / op.v_rho) * op.target_hessian.dense()
        self.nu = np.where(nb2 > 0, 1.0 / np.where(nb2 > 0, nb2, 1.0), 0.0)
        self.seconds_store = time.perf_counter() - t0

    # -- products ----------------------------------------------------------------------------
    def pair_sums(self, alpha, beta):
        """2π-free pair sums (A, B) of the particle interaction, target Hessian included,
        for p vectors: alpha (m, p), beta (m, p, d) -> A (m, p), B (m, p, d) (standard
        Gaussian inputs; multiply by v_ρ). ReLU only."""
        op = self.op
        m, d = self.m, self.d
        b, w = op.b, op.w
        p = alpha.shape[1]
        c = w * op.a
        nu = self.nu
        al = w[:, None] * alpha                                   # α̃ (m, p)
        bt = c[:, None, None] * beta                              # β̃ (m, p, d)
        q = np.einsum("jd,jpd->jp", b, beta)                      # q_j
        qt = c[:, None] * q                                       # q̃_k = ⟨b_k, β̃_k⟩
        nqt = nu[:, None] * qt
        dt = self.dtype
        U = (bt + al[:, :, None] * b[:, None, :]).reshape(m, p * d).astype(dt)
        rhs_r = np.concatenate([al, nqt], axis=1).astype(dt)     # R [α̃ | ν q̃]
        qt_s = qt.astype(dt)
        bt_rows = np.ascontiguousarray(bt.transpose(1, 0, 2)).reshape(p * m, d).astype(dt)
        s_rows = np.ascontiguousarray(nqt.T).astype(dt)          # (p, m): ν_k q̃_kt
        b_s = b.astype(dt)
        th = np.empty((m, p * d), dt)
        rr = np.empty((m, 2 * p), dt)
        irq = np.empty((m, p), dt)
        dsum = np.empty((m, p), dt)
        pv = np.empty((m, p, d), dt)
        sub = max(1, min(_ROWS, _MIX_DOUBLES // (p * m)))

        def task(t):
            i0, i1 = t * _ROWS, min(m, (t + 1) * _ROWS)
            np.matmul(self.theta[i0:i1], U, out=th[i0:i1])
            np.matmul(self.r[i0:i1], rhs_r, out=rr[i0:i1])
            np.matmul(self.inv_r[i0:i1], qt_s, out=irq[i0:i1])
            for j0 in range(i0, i1, sub):
                j1 = min(i1, j0 + sub)
                P = (b_s[j0:j1] @ bt_rows.T).reshape(j1 - j0, p, m)
                mix_rows(P, self.inv_r[j0:j1], self.dr[j0:j1], s_rows, dsum[j0:j1])
                np.matmul(P.reshape((j1 - j0) * p, m), b_s,
                          out=pv[j0:j1].reshape((j1 - j0) * p, d))

        with blas_single_thread():
            run_tasks(task, (m + _ROWS - 1) // _ROWS, self.parallel)
        th = th.reshape(m, p, d).astype(np.float64, copy=False)
        rr = rr.astype(np.float64, copy=False)
        irq = irq.astype(np.float64, copy=False)
        dsum = dsum.astype(np.float64, copy=False)
        pv = pv.astype(np.float64, copy=False)
        r_al, r_nq = rr[:, :p], rr[:, p:]
        A = r_al + r_nq + np.einsum("jd,jpd->jp", b, th)
        s = self.s[:, None]
        qn = q * nu[:, None]
        coef_u = (r_al - s * qn) * nu[:, None] + irq - nu[:, None] * dsum \
            - nu[:, None] * (np.einsum("jpd,jd->jp", beta, self.Y) - qn * self.z[:, None])
        B = th + np.einsum("jab,jpb->jpa", self.G, beta) - qn[:, :, None] * self.Y[:, None, :] \
            + pv + coef_u[:, :, None] * b[:, None, :] + (s * nu[:, None])[:, :, None] * beta
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
        alpha = np.ascontiguousarray(X[:m])
        beta = X[m:].reshape(m, d, p).transpose(0, 2, 1)                 # (m, p, d)
        A, B = self.pair_sums(alpha, beta)
        v = op.v_rho
        w, a = op.w, op.a
        out = np.empty((self.n, p))
        out[:m] = w[:, None] * (v * A + np.einsum("jd,jpd->jp", op.e, beta))
        ob = w[:, None, None] * (op.e[:, None, :] * alpha[:, :, None] + (v * a)[:, None, None] * B)
        out[m:] = ob.transpose(0, 2, 1).reshape(m * d, p)
        return out[:, 0] if single else out

    def matmat(self, X):
        """H X, H = D^{-1/2} ∇²F D^{-1/2}, for X of shape (n, p) or (n,)."""
        s = self.op.coordinate_scale()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            return self.hvp_F(X / s) / s
        return self.hvp_F(X / s[:, None]) / s[:, None]

    # -- diagonal blocks ------------------------------------------------------------------------
    def blocks(self):
        """The per-particle diagonal blocks of H, shape (m, d + 1, d + 1): for particle j the
        rows and columns (a_j, b_j1..b_jd) of H = D^{-1/2} ∇²F D^{-1/2}. Computed once and
        kept (a read-only array).

        H_{a_j a_j} = v_ρ w_j κ(b_j, b_j), H_{a_j b_j} = e_j + v_ρ w_j a_j ∇_1κ(b_j, b_j),
        H_{b_j b_j} = a_j (v_ρ Σ_l w_l a_l ∇²_11κ(b_j, b_l) − ∇²T(b_j)) + v_ρ w_j a_j² ∇²_12κ(b_j, b_j)
        (module docstring of :mod:`meanfield.hessian`; ∇²_12κ(u, u) = I/2, κ(u, u) = ‖u‖²/2,
        ∇_1κ(u, u) = u/2).
        """
        if self._blocks is None:
            self._blocks = self._compute_blocks()
            self._blocks.flags.writeable = False
        return self._blocks

    def _compute_blocks(self):
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
        # 2π (Σ_l c_l ∇²_11κ(b_j, b_l) − ∇²T(b_j)/v_ρ) from the stored sums (∇²T is in G)
        bb = np.einsum("ia,ib->iab", b, b)
        h11 = (self.s * nu)[:, None, None] * (eye[None] - bb * nu[:, None, None])
        h11 += self.G
        cross = self.Y * nu[:, None]
        h11 -= np.einsum("ja,jb->jab", cross, b) + np.einsum("ja,jb->jab", b, cross)
        h11 += (self.z * nu * nu)[:, None, None] * bb
        diag = v * h11 * _INV_2PI
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
        V = np.asarray(V, dtype=np.float64)
        al, be = V[:, 0], V[:, 1:]
        q = np.einsum("jd,jd->j", b, be)
        nu = self.nu
        sw = np.sqrt(w)
        C = np.empty((m, m))
        nq = nu * q

        def task(t):
            i0, i1 = t * _ROWS, min(m, (t + 1) * _ROWS)
            sl = slice(i0, i1)
            th, r, ir, dr = self.theta[sl], self.r[sl], self.inv_r[sl], self.dr[sl]
            dot = b[sl] @ b.T
            g_bb = be[sl] @ b.T            # ⟨β_j, b_k⟩
            g_tb = b[sl] @ be.T            # ⟨b_j, β_k⟩
            g_tt = be[sl] @ be.T           # ⟨β_j, β_k⟩
            kap = r + th * dot
            grad_k = th * g_tb + r * nq[None, :]                # 2π⟨∇_1κ(b_k, b_j), β_k⟩
            grad_j = th * g_bb + r * nq[sl, None]               # 2π⟨∇_1κ(b_j, b_k), β_j⟩
            h12 = th * g_tt + ir * g_bb * g_tb - dr * g_bb * nq[None, :] \
                + ir * q[sl, None] * q[None, :] - dr * nq[sl, None] * g_tb
            blk = (al[sl, None] * al[None, :]) * kap + al[sl, None] * a[None, :] * grad_k \
                + a[sl, None] * al[None, :] * grad_j + (a[sl, None] * a[None, :]) * h12
            C[sl] = (v * _INV_2PI) * (sw[sl, None] * sw[None, :]) * blk

        with blas_single_thread():
            run_tasks(task, (m + _ROWS - 1) // _ROWS, self.parallel)
        Bl = self.blocks()
        C[np.arange(m), np.arange(m)] = np.einsum("ja,jab,jb->j", V, Bl, V)
        return C
