"""The Hessian of the m-particle population risk: products, dense matrix, spectra, polishing,
zero modes.

What is computed
----------------
F(a, b) = ½ Σ_jk w_j w_k a_j a_k κ_ρ(b_j, b_k) − Σ_j w_j a_j T(b_j) + ½ E f*² (MATH §2), with
particle weights w_j > 0 (Σ w_j = 1). The potential gradient g_j = ∇_θ V_μ(θ_j) is minus the
particle velocity and ∂F/∂θ_j = w_j g_j. Its Jacobian ∂g_j/∂θ_k = w_j⁻¹ ∂²F/∂θ_j∂θ_k is not
symmetric when the weights differ, so the operator reported here is the symmetric matrix

    H = D^{-1/2} ∇²_θ F D^{-1/2},   D = diag(w_1..w_m for a, then w_j repeated d times for b_j),

which is similar to that Jacobian (same eigenvalues: the local rates of the flow) and equals
m ∇²_θ F for uniform weights w_j = 1/m. Coordinates are ordered (a_1..a_m, b_1..b_m row by
row); in the variables φ = D^{1/2} θ, H is the plain Hessian of F, and ‖D^{1/2} g‖ =
(Σ_j w_j |g_j|²)^{1/2} is the gradient norm reported (its square is −dF/dt along the flow).

Blocks (e_j = ∇S_j − ∇T_j with S_j = Σ_k w_k a_k κ_ρ(b_j, b_k), so g_b,j = a_j e_j):

    ∂²F/∂a_j∂a_k = w_j w_k κ_ρ(b_j, b_k)
    ∂²F/∂a_j∂b_k = w_j [δ_jk e_j + w_k a_k ∇_1κ_ρ(b_k, b_j)]
    ∂²F/∂b_j∂b_k = w_j a_j [δ_jk (Σ_l w_l a_l ∇²_11κ_ρ(b_j, b_l) − ∇²T(b_j)) + w_k a_k ∇²_12κ_ρ(b_j, b_k)]

with 2π ∇²_11κ(u, v) = (r/‖u‖²)(I − ûûᵀ) + v_⊥v_⊥ᵀ/r and 2π ∇²_12κ(u, v) = θ I +
(v u_⊥ᵀ + u v_⊥ᵀ)/r (r = ‖u‖‖v‖ sin γ, θ = π − γ, v_⊥ = v − ⟨u,v⟩u/‖u‖²; derived by
differentiating MATH §2.2 with ∇_u θ = v_⊥/r and ∇_u r = ‖v‖² u_⊥/r; equivalently
∇²_11κ = E[δ(⟨u,x⟩) σ(⟨v,x⟩) x xᵀ], ∇²_12κ = E[σ'(⟨u,x⟩) σ'(⟨v,x⟩) x xᵀ]). The self pair of
the sum over l (l = j) is part of the formula: ∇²_11κ(u, u) = 0, ∇²_12κ(u, u) = I/2.
Target parts: ∇²T(b_j) comes from the target itself
(:meth:`~meanfield.models.targets.TargetSum.correlation_hessian`: each part owns the Hessian
of its T). A teacher's units give ∇²T = v_ρ Σ_k a*_k ∇²_11κ(b, b*_k) (the same pair kernel
with the teacher as sources); the linear part and odd parts enter only through E[f* x]
(T is linear in b: no second derivative); the norm target ‖P_H x‖ = α E_v σ(⟨v, x_H⟩) gives
∇²T = α E_v ∇²_11κ(b, v), a 1-D Gauss–Jacobi quadrature with no cancellation anywhere
(b ∈ H, b ⊥ H, d_H = 1 included; formula in ``meanfield.models.targets._NormHessian``). A
part without a Hessian of T is refused with a ValueError naming it. Linear activation:
κ_ρ = v_ρ⟨u, v⟩, ∇²_11κ = 0, ∇²_12κ = v_ρ I.

Smoothness and clusters. κ is C² but not C³ where two directions are parallel or
antiparallel (J(γ) has a γ³ term: κ behaves like |u_⊥|³ there), so F is twice
differentiable at coincident and clustered directions and its Hessian there is the limit
along the cluster: ∇²_12κ → θ I/(2π) (I/2 for parallel, 0 for antiparallel), ∇²_11κ → 0.
The kernels take this limit for pairs with sin γ ≤ 2⁻²⁶ (≈ √ε), where the general formula
would cancel catastrophically (see :mod:`meanfield.kernels.hessian`). At b_j = 0 F is not
twice differentiable (κ is 1-homogeneous in each argument); such particles are reported
(``n_zero_b``) and get the velocity's convention (terms divided by ‖b_j‖² are zero).

Zero modes: the rule implemented (:func:`predict_zero_modes`)
-------------------------------------------------------------
At a critical point ∇²F = E[∇f ∇fᵀ] + E[(f − f*) ∇²f] (Gauss–Newton part + residual part).
The residual part vanishes when f = f* (zero loss) and, for an odd target, at f = ⟨w*, x⟩
(then V(b) = E[(f − f*) σ(⟨b,x⟩)] ≡ 0 because the residual is odd and orthogonal to linear
functions). There the null space is {δθ : δf = 0}, and δf = Σ_j σ'(⟨b_j, x⟩) ⟨x, c_j⟩ with
c_j = w_j (δa_j b_j + a_j δb_j). Group the particles into clusters of equal direction
b̂ (angle below ``angle_tol``). For a cluster u the c_j add up to C_u ∈ V_u, with V_u = R^d if
some member is alive (a_j ≠ 0) and V_u = span(u) if all its members are dead (a_j = 0).
The map (δa_j, δb_j) ↦ c_j has a kernel of dimension 1 for a live particle (the rescaling
(a_j, b_j) ↦ (c a_j, b_j/c)) and d for a dead one (all of δb_j). A sum Σ_u σ'(⟨u,x⟩)⟨x, C_u⟩
vanishes for Gaussian x only if each kink cancels: C_u = 0 for a cluster without an
antipodal partner; for an antipodal pair (u, −u), C_u = C_{−u} = D ∈ V_u ∩ V_{−u}, and the
remaining linear function ⟨x, Σ D⟩ must vanish. Hence

    n_zero = m (d + 1) − Σ_u dim V_u + Σ_pairs dim(V_u ∩ V_{−u}) − dim span(∪_pairs V_u ∩ V_{−u}).

Special cases: distinct directions, all alive (teacher = student): m. A zero-loss minimum
whose neurons form k clusters on k + h neurons: m + d·h. A dead neuron (a_j = 0, its
direction shared with no other particle): d instead of 1, i.e. d − 1 beyond its rescaling
mode — not d more. Directly: with a_j = 0 every term of ∂²F/∂b_j∂θ_k carries the factor
a_j (blocks above) except ∂²F/∂a_j∂b_j = w_j e_j, and e_j = ∇V(b_j) = 0 where the residual
vanishes, so all d directions δb_j are flat to second order (the rescaling direction
(0, −b_j) is one of them); δa_j changes f by w_j δa_j σ(⟨b_j, x⟩), a kink no other particle
cancels, and is curved (∂²F/∂a_j² = w_j² κ_ρ(b_j, b_j) > 0). (If e_j ≠ 0 instead, the pair
(δa_j, δb_j ∥ e_j) has the indefinite block [[w_j²κ, w_j|e_j|], [w_j|e_j|, 0]]: a negative
direction and d − 1 flat ones; such a point is a saddle.) A dead neuron in the direction
of a live cluster has its δa_j flat as well (mass exchange with the live members): d + 1. An
odd-target end point made of antipodal pairs (the paired start): m + (m/2 − 1)·d. Away from
such points (a critical point with residual, e.g. a saddle) only the symmetries are exact
zero modes (a rescaling per live particle, all of δb_j for a dead one, one mass exchange
(a_j, a_k) ↦ (a_j + s/(w_j‖b_j‖), a_k − s/(w_k‖b_k‖)) per extra cluster member):
``n_zero_modes_symmetry``, a lower bound; the rule above then need not hold.

Counting zero modes (:func:`count_zero_modes`): sort |λ| ascending, s_1 ≤ … ≤ s_N, and
cut at the largest ratio s_{n+1}/s_n (with s_0 the round-off floor N ε max|λ|) among cuts
with s_n ≤ ``ceiling`` · max|λ|; ``spectral_gap`` is that ratio. Eigenvalues below the
cut are zero modes; negative and positive ones are those beyond it on either side.
"""
import time

import numpy as np

from ..models.backends import ExactBackend
from ..kernels.hessian import hess11_sums, hvp_pair_sums, pair_geometry
from ..kernels.threads import blas_single_thread

__all__ = ["HessianOperator", "dense_hessian", "spectrum", "rescaling_directions", "polish", "predict_zero_modes",
           "count_zero_modes", "analyse", "DENSE_MAX", "gradient_norm"]

#: largest number of parameters for which the dense matrix and full spectrum are computed.
DENSE_MAX = 5000
_INV_2PI = 1.0 / (2.0 * np.pi)


def _check_state(problem, a, b, weights):
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
    b = np.ascontiguousarray(np.asarray(b, dtype=np.float64))
    if a.ndim != 1 or b.ndim != 2 or b.shape[0] != a.shape[0]:
        raise ValueError(f"a must be (m,) and b (m, d); got {a.shape} and {b.shape}")
    if b.shape[1] != problem.d:
        raise ValueError(f"b has d = {b.shape[1]} columns, the problem has d = {problem.d}")
    if weights is None:
        w = np.full(a.shape[0], 1.0 / a.shape[0])
    else:
        w = np.ascontiguousarray(np.asarray(weights, dtype=np.float64))
        if w.shape != a.shape:
            raise ValueError(f"weights must have shape {a.shape}, got {w.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(np.isfinite(w))):
        raise ValueError("a, b and weights must be finite")
    if np.any(w <= 0):
        raise ValueError("every weight must be > 0: drop particles without mass first "
                         "(H is scaled by w_j^(-1/2))")
    return a, b, w


class HessianOperator:
    """Exact Hessian-vector products of F at one state (a, b, w).

    Parameters
    ----------
    problem : Problem
        An exact problem (Gaussian or spherical inputs, ReLU or linear activation).
    a : (m,) array
    b : (m, d) array
    weights : (m,) array, optional
        Positive particle weights (uniform 1/m by default).
    n_nodes : int
        Gauss–Jacobi nodes of the norm target's quadrature (64, as the gradient uses).

    Attributes
    ----------
    n : int
        Number of parameters m (d + 1).
    g_a, g_b : (m,), (m, d) arrays
        Potential gradients at the state (minus the velocity).
    risk : float
        F at the state.
    """

    def __init__(self, problem, a, b, weights=None, n_nodes=64):
        a, b, w = _check_state(problem, a, b, weights)
        self.problem = problem
        self.backend = ExactBackend(problem)
        self.a, self.b, self.w = a, b, w
        self.m, self.d = b.shape
        self.n = self.m * (self.d + 1)
        self.v_rho = self.backend.v_rho
        self.linear = self.backend.linear
        s, gs = self.backend.interaction_terms(a, b, w)
        t, gt = self.backend.target_terms(b)
        self.e = gs - gt
        self.g_a = s - t
        self.g_b = a[:, None] * self.e
        wa = w * a
        self.risk = float(0.5 * wa @ s - wa @ t + self.backend.energy)
        self.sqrt_w = np.sqrt(w)
        # ∇²T(b_j) from the target's parts (meanfield.models.targets): each part owns the
        # Hessian of its T; zero for odd parts and for the linear activation
        self.target_hessian = problem.target_sum.correlation_hessian(
            b, problem.law, "linear" if self.linear else "relu", n_nodes)
        self.n_products = 0

    # -- products --------------------------------------------------------------------------
    def split(self, vec):
        """Flat (n,) vector -> (α (m,), β (m, d)) views in the (a..., b row by row) order."""
        vec = np.asarray(vec, dtype=np.float64)
        if vec.shape != (self.n,):
            raise ValueError(f"vector must have shape ({self.n},), got {vec.shape}")
        return vec[:self.m], vec[self.m:].reshape(self.m, self.d)

    def hvp_F(self, vec, serial=None):
        """∇²_θ F · vec (unscaled Hessian of F), shape (n,)."""
        alpha, beta = self.split(vec)
        a, b, w, v = self.a, self.b, self.w, self.v_rho
        wa = w * a
        al_t = w * alpha
        be_t = wa[:, None] * beta
        if self.linear:
            mean = al_t @ b + be_t.sum(axis=0)
            A = v * (b @ mean)
            B = np.broadcast_to(v * mean, b.shape)
            hess_t = 0.0
        else:
            A, B = hvp_pair_sums(b, beta, b, be_t, al_t, wa, same=True, serial=serial)
            A *= v
            B *= v
            hess_t = 0.0 if self.target_hessian.zero else self.target_hessian.apply(beta)
        out = np.empty(self.n)
        out[:self.m] = w * (A + np.einsum("ij,ij->i", self.e, beta))
        out[self.m:] = (w[:, None] * (self.e * alpha[:, None] + a[:, None] * (B - hess_t))).ravel()
        self.n_products += 1
        return out

    def coordinate_scale(self):
        """The diagonal of D^{1/2}, shape (n,): √w_j for a_j, then √w_j repeated d times for
        b_j (H = D^{-1/2} ∇²F D^{-1/2}; φ = D^{1/2} θ)."""
        return np.concatenate([self.sqrt_w, np.repeat(self.sqrt_w, self.d)])

    _scale = coordinate_scale

    def matvec(self, vec, serial=None):
        """H · vec with H = D^{-1/2} ∇²F D^{-1/2} (= m ∇²F for uniform weights)."""
        s = self.coordinate_scale()
        return self.hvp_F(np.asarray(vec, dtype=np.float64) / s, serial=serial) / s

    def linear_operator(self):
        """H as a :class:`scipy.sparse.linalg.LinearOperator` (symmetric)."""
        from scipy.sparse.linalg import LinearOperator

        return LinearOperator((self.n, self.n), matvec=self.matvec, rmatvec=self.matvec,
                              dtype=np.float64)

    def gradient(self):
        """D^{-1/2} ∇F = D^{1/2} g: the gradient in the variables φ = D^{1/2} θ, shape (n,)."""
        return np.concatenate([self.sqrt_w * self.g_a,
                               (self.sqrt_w[:, None] * self.g_b).ravel()])

    def gradient_norm(self):
        """(Σ_j w_j |g_j|²)^{1/2}."""
        return float(np.linalg.norm(self.gradient()))


def gradient_norm(problem, a, b, weights=None):
    """(Σ_j w_j (g_a,j² + |g_b,j|²))^{1/2} at a state, from the exact backend."""
    a, b, w = _check_state(problem, a, b, weights)
    ga, gb, _ = ExactBackend(problem).gradients(a, b, w)
    return float(np.sqrt(w @ (ga * ga) + w @ np.einsum("ij,ij->i", gb, gb)))


# ------------------------------------------------------------------------------- dense
def dense_hessian(problem, a, b, weights=None, scaled=True, max_params=DENSE_MAX, n_nodes=64):
    """The Hessian as a dense (n, n) array, n = m (d + 1), order (a_1..a_m, b_1..b_m rows).

    Parameters
    ----------
    scaled : bool
        True: H = D^{-1/2} ∇²F D^{-1/2} (module docstring); False: ∇²_θ F itself.
    max_params : int
        Refuse above this many parameters (memory ~ 3 n² doubles).

    Returns
    -------
    (n, n) array, symmetric.
    """
    op = HessianOperator(problem, a, b, weights, n_nodes=n_nodes)
    if op.n > max_params:
        raise ValueError(f"{op.n} parameters exceed max_params = {max_params}; use "
                         "HessianOperator and spectrum(..., k=K) (Lanczos) instead")
    a, b, w, v = op.a, op.b, op.w, op.v_rho
    m, d = b.shape
    wa = w * a
    H = np.zeros((op.n, op.n))
    Haa = H[:m, :m]
    Hab = H[:m, m:].reshape(m, m, d)
    Hbb = H[m:, m:].reshape(m, d, m, d)
    if op.linear:
        Haa[:] = v * np.outer(w, w) * (b @ b.T)
        # ∂²F/∂a_j∂b_k = w_j δ_jk e_j + w_j w_k a_k v b_j
        Hab[:] = v * (w[:, None] * wa[None, :])[:, :, None] * b[:, None, :]
        hbb_pair = v * np.outer(wa, wa)[:, None, :, None] * np.eye(d)[None, :, None, :]
        Hbb[:] = hbb_pair
        diag_bb = np.zeros((m, d, d))
    else:
        dot, r, theta, inv_r, nu2, _ = pair_geometry(b, b, same=True)
        iu = np.where(nu2 > 0, 1.0 / np.where(nu2 > 0, nu2, 1.0), 0.0)
        Haa[:] = v * np.outer(w, w) * (r + theta * dot) * _INV_2PI
        # w_j w_k a_k ∇_1κ(b_k, b_j) = w_j w_k a_k (θ b_j + (r/‖b_k‖²) b_k)/2π
        coef = v * w[:, None] * wa[None, :] * _INV_2PI
        Hab[:] = (coef * theta)[:, :, None] * b[:, None, :] \
            + (coef * r * iu[None, :])[:, :, None] * b[None, :, :]
        # w_j a_j w_k a_k ∇²_12κ(b_j, b_k): θ I + (b_k u_⊥ᵀ + b_j v_⊥ᵀ)/r
        cc = v * np.outer(wa, wa) * _INV_2PI
        ci = cc * inv_r
        Hbb[:] = (cc * theta)[:, None, :, None] * np.eye(d)[None, :, None, :]
        Hbb += np.einsum("jk,ka,jb->jakb", ci, b, b)                     # v uᵀ
        Hbb -= np.einsum("jk,ka,kb->jakb", ci * dot * iu[None, :], b, b)  # v (dot/‖v‖²) vᵀ
        Hbb += np.einsum("jk,ja,kb->jakb", ci, b, b)                     # u vᵀ
        Hbb -= np.einsum("jk,ja,jb->jakb", ci * dot * iu[:, None], b, b)  # u (dot/‖u‖²) uᵀ
        diag_bb = v * hess11_sums(b, b, wa, same=True)
        if not op.target_hessian.zero:
            diag_bb -= op.target_hessian.dense()
    idx = np.arange(m)
    Hab[idx, idx, :] += w[:, None] * op.e
    Hbb[idx, :, idx, :] += wa[:, None, None] * diag_bb
    # the bb pair term was written for every (j, k) without the leading w_j a_j
    # (the linear branch's and the ReLU branch's pair terms already include w_j a_j w_k a_k)
    H[m:, :m] = H[:m, m:].T
    if scaled:
        s = op.coordinate_scale()
        H /= s[:, None]
        H /= s[None, :]
    return H


# ------------------------------------------------------------------------------- spectra
def rescaling_directions(a, b):
    """Unit rescaling directions u_j ∝ (a_j, −b_j) of every particle, shape (m, d + 1).

    (a_j, b_j) ↦ (c a_j, b_j/c) leaves F unchanged, so H u_j = 0 at a critical point; the
    u_j have disjoint supports (orthonormal), the same in θ and in φ = D^{1/2} θ.
    """
    u = np.concatenate([a[:, None], -b], axis=1)
    nrm = np.linalg.norm(u, axis=1)
    return u / np.where(nrm > 0, nrm, 1.0)[:, None]


def spectrum(op, k=None, dense_max=DENSE_MAX, tol=0.0, maxiter=None, which_small="SA",
             deflate_rescaling=False, method="lanczos", rtol=1e-8, log=None,
             stored_dtype=np.float64):
    """Eigenvalues of H at the operator's state.

    Parameters
    ----------
    op : HessianOperator
    k : int, optional
        With n > ``dense_max`` (or k given), the k smallest and k largest eigenvalues by
        Lanczos (``scipy.sparse.linalg.eigsh`` on the operator's products); otherwise all
        of them by ``numpy.linalg.eigh`` on the dense matrix.
    tol : float
        Relative accuracy for ``eigsh`` (0 = machine precision).
    which_small : str
        ``SA`` (smallest algebraic; negative directions first) — shift-invert needs a
        factorisation that a product-only operator does not have.
    deflate_rescaling : bool
        Lanczos only: compute the k smallest eigenvalues of H restricted to the orthogonal
        complement of the m rescaling directions (:func:`rescaling_directions`), which are
        zero modes at every critical point; with m ≫ k this is what shows whether any other
        flat direction exists. ``rescaling_residual`` = ‖H q‖/(‖q‖ λ_max) for
        q = Σ_j ±u_j (random signs) says how null the removed directions are.
    method : {"lanczos", "lobpcg"}
        How the k smallest are found when not dense. ``lanczos``: ARPACK ``SA`` on
        H + λ_max I, one tiled-kernel product per step. ``lobpcg``: the pair geometry is
        stored (4 m² doubles) and the k smallest come from LOBPCG with the two-level
        per-particle preconditioner of :mod:`meanfield.hessian.lobpcg` (ReLU and linear);
        the k largest from ARPACK ``LA`` on the stored products with relative tolerance
        ``rtol``. Far fewer products when the bottom of the spectrum is a dense band.
    rtol : float
        ``lobpcg`` only: residuals ‖Hx − λx‖ ≤ rtol · λ_max (smallest), ARPACK tolerance
        (largest).
    log : callable, optional
        ``lobpcg`` only: one line per stage.
    stored_dtype : numpy dtype
        ``lobpcg`` only: precision of the stored pair matrices (float64, or float32: half
        the memory and product time, products to ~1e-8 relative).

    Returns
    -------
    dict with ``eigenvalues`` (ascending), ``method`` (``dense`` or ``lanczos``),
    ``n_params``, ``smallest``/``largest`` (Lanczos), ``n_products``, ``seconds``.
    """
    start = time.perf_counter()
    n = op.n
    n0 = op.n_products
    if k is None and n <= dense_max:
        H = dense_hessian(op.problem, op.a, op.b, op.w, max_params=max(dense_max, n))
        ev = np.linalg.eigh(H)[0]
        return {"eigenvalues": ev, "method": "dense", "n_params": n,
                "n_products": 0, "seconds": time.perf_counter() - start}
    from scipy.sparse.linalg import eigsh

    if k is None:
        raise ValueError(f"{n} parameters exceed dense_max = {dense_max}: give k (Lanczos)")
    if not 1 <= k < n // 2:
        raise ValueError(f"k must be between 1 and {n // 2 - 1} for {n} parameters, got {k}")
    if method not in ("lanczos", "lobpcg"):
        raise ValueError(f"method must be 'lanczos' or 'lobpcg', got {method!r}")
    from scipy.sparse.linalg import LinearOperator

    if method == "lobpcg":
        return _spectrum_lobpcg(op, k, deflate_rescaling, rtol, maxiter, log, start, n0,
                                stored_dtype)

    lin = op.linear_operator()
    v0 = np.random.default_rng(0).standard_normal(n)  # a fixed start: reproducible results
    ncv = min(n, max(2 * k + 1, 40))
    large = eigsh(lin, k=k, which="LA", tol=tol, maxiter=maxiter, v0=v0, ncv=ncv,
                  return_eigenvectors=False)
    # ARPACK's stopping test is relative to |λ| (tol · max(ε^{2/3}, |λ|)), which a zero mode
    # cannot meet; on H + σI with σ = λ_max the test is relative to the spectrum's scale.
    # The Krylov spaces, hence the iterations, are the same.
    shift = float(max(abs(large.max()), 1e-300))
    extra = {}
    if deflate_rescaling:
        m, d = op.m, op.d
        U = rescaling_directions(op.a, op.b)

        def coeffs(x):
            return x[:m] * U[:, 0] + np.einsum("ij,ij->i", x[m:].reshape(m, d), U[:, 1:])

        def expand(c):
            return np.concatenate([c * U[:, 0], (c[:, None] * U[:, 1:]).ravel()])

        def project(x):
            return x - expand(coeffs(x))

        # (P H P + σ (I − P)) + σ I: the rescaling directions move to σ = λ_max (out of the
        # way of the smallest), and the whole is shifted by σ as below
        def deflated(x):
            c = coeffs(x)
            px = x - expand(c)
            return project(lin.matvec(px)) + shift * (px + 2.0 * expand(c))
        q = expand(np.random.default_rng(1).choice([-1.0, 1.0], size=m))
        extra["rescaling_residual"] = float(np.linalg.norm(lin.matvec(q))
                                            / (np.linalg.norm(q) * shift))
        shifted = LinearOperator((n, n), matvec=deflated, dtype=np.float64)
        v0 = project(v0)
    else:
        shifted = LinearOperator((n, n), matvec=lambda x: lin.matvec(x) + shift * x,
                                 dtype=np.float64)
    small = eigsh(shifted, k=k, which=which_small, tol=tol, maxiter=maxiter, v0=v0, ncv=ncv,
                  return_eigenvectors=False) - shift
    small, large = np.sort(small), np.sort(large)
    return {"eigenvalues": np.concatenate([small, large]),
            "method": "lanczos-deflated" if deflate_rescaling else "lanczos",
            "smallest": small, "largest": large, "n_params": n, **extra,
            "n_products": op.n_products - n0, "seconds": time.perf_counter() - start}


def _spectrum_lobpcg(op, k, deflate_rescaling, rtol, maxiter, log, start, n0,
                     stored_dtype=np.float64):
    """k largest by ARPACK on stored products, k smallest by LOBPCG (see :func:`spectrum`)."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    from .lobpcg import smallest_lobpcg
    from .stored import StoredHessian

    n = op.n
    t0 = time.perf_counter()
    S = StoredHessian(op, dtype=stored_dtype)
    lin = LinearOperator((n, n), matvec=S.matmat, matmat=S.matmat, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(n)
    with blas_single_thread():   # as in smallest_lobpcg: products parallel over row tasks
        large = np.sort(eigsh(lin, k=k, which="LA", tol=rtol, v0=v0,
                              ncv=min(n, max(2 * k + 1, 40)), maxiter=maxiter,
                              return_eigenvectors=False))
    n_large = S.n_products
    t_large = time.perf_counter() - t0
    if log is not None:
        log(f"  {k} largest (ARPACK on stored products): {n_large} products, {t_large:.1f} s")
    # the scale of the residual test: the spectrum's extent (λ_min ≥ −λ_max here is not
    # guaranteed; the smallest block eigenvalue bounds it from the other side)
    scale = float(max(abs(large[-1]), abs(large[0])))
    res = smallest_lobpcg(op, k, deflate_rescaling=deflate_rescaling, rtol=rtol,
                          maxiter=40 if maxiter is None else maxiter, stored=S, scale=scale,
                          log=log)
    extra = {}
    if deflate_rescaling:
        U = rescaling_directions(op.a, op.b)
        sign = np.random.default_rng(1).choice([-1.0, 1.0], size=op.m)
        q = np.concatenate([sign * U[:, 0], (sign[:, None] * U[:, 1:]).ravel()])
        extra["rescaling_residual"] = float(np.linalg.norm(S.matmat(q))
                                            / (np.linalg.norm(q) * scale))
    small = res["smallest"]
    return {"eigenvalues": np.concatenate([small, large]),
            "method": "lobpcg-deflated" if deflate_rescaling else "lobpcg",
            "smallest": small, "largest": large, "n_params": n, **extra,
            "residuals": res["residuals"], "lobpcg_iterations": res["iterations"],
            "lobpcg_converged": res["converged"], "coarse_start": res["coarse"],
            "n_products": S.n_products + op.n_products - n0,
            "n_products_largest": n_large, "n_products_smallest": res["n_products"],
            "seconds_largest": t_large, "seconds_smallest": res["seconds"],
            "seconds_store": res["seconds_store"], "seconds": time.perf_counter() - start}


def count_zero_modes(eigenvalues, scale=None, ceiling=1e-3, n_params=None):
    """Near-zero eigenvalues by the largest gap in |λ| (module docstring).

    Parameters
    ----------
    eigenvalues : (N,) array
        All eigenvalues, or the smallest k (with ``scale`` from the largest).
    scale : float, optional
        max |λ| (default: from ``eigenvalues``).
    ceiling : float
        A zero mode has |λ| ≤ ceiling · scale.
    n_params : int, optional
        Size of H (round-off floor n ε scale); default N.

    Returns
    -------
    dict: ``n_zero``, ``n_negative``, ``n_positive`` (among the given eigenvalues),
    ``spectral_gap`` (ratio across the cut), ``threshold`` (|λ| below it is zero),
    ``saturated`` (True when every given eigenvalue is below the cut: the count is a lower
    bound).
    """
    ev = np.asarray(eigenvalues, dtype=np.float64)
    s = np.sort(np.abs(ev))
    if scale is None:
        scale = float(s[-1]) if s.size else 1.0
    n_params = n_params or ev.size
    floor = n_params * np.finfo(float).eps * scale
    lower = np.concatenate([[floor], np.maximum(s, floor)])  # s_0 = floor
    best, best_ratio = 0, 0.0
    for n in range(0, s.size):
        if lower[n] > ceiling * scale:
            break
        upper = s[n] if n < s.size else np.inf
        ratio = max(upper, floor) / lower[n]
        if ratio > best_ratio:
            best, best_ratio = n, ratio
    saturated = False
    if s.size and s[-1] <= ceiling * scale and best_ratio < 10.0:
        best, best_ratio, saturated = s.size, float("nan"), True
    if saturated:
        threshold = ceiling * scale
    else:
        threshold = float(np.sqrt(lower[best] * max(s[best], floor))) if s.size else floor
    return {"n_zero": int(best), "n_negative": int(np.sum(ev < -threshold)),
            "n_positive": int(np.sum(ev > threshold)), "spectral_gap": float(best_ratio),
            "threshold": float(threshold), "saturated": bool(saturated), "scale": float(scale)}


# ------------------------------------------------------------------------------- zero modes
def _clusters(bhat, cos_tol):
    """Union-find labels of rows whose directions agree (cos ≥ 1 − cos_tol), blockwise."""
    m = bhat.shape[0]
    parent = np.arange(m)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i0 in range(0, m, 1024):
        c = bhat[i0:i0 + 1024] @ bhat.T
        ii, kk = np.nonzero(c >= 1.0 - cos_tol)
        for i, k in zip(ii + i0, kk):
            if k > i:
                ri, rk = find(i), find(k)
                if ri != rk:
                    parent[max(ri, rk)] = min(ri, rk)
    return np.array([find(i) for i in range(m)])


def predict_zero_modes(a, b, angle_tol=1e-6, dead_tol=1e-10):
    """Zero modes predicted by the cluster rule (module docstring).

    Parameters
    ----------
    a : (m,) array
    b : (m, d) array
    angle_tol : float
        Directions closer than this angle (radians) form one cluster; antipodal likewise.
    dead_tol : float
        |a_j| ≤ dead_tol · max |a| is a dead particle.

    Returns
    -------
    dict: ``n_zero_modes_predicted`` (the rule: exact where the residual part of ∇²F
    vanishes), ``n_zero_modes_symmetry`` (the directions that are flat at any critical point
    with ∇V(b_j) = 0 at dead particles: a rescaling per live particle, d per dead one, one
    mass exchange per extra member of a cluster; a lower bound), ``n_clusters``, ``n_dead``, ``n_antipodal_pairs``,
    ``n_zero_b`` (particles with b_j = 0: not covered by the rule), ``n_rescaling`` (m minus
    those).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    m, d = b.shape
    nb = np.linalg.norm(b, axis=1)
    zero_b = nb == 0
    keep = ~zero_b
    amax = np.max(np.abs(a)) if m else 0.0
    dead = np.abs(a) <= dead_tol * amax
    bhat = b[keep] / nb[keep, None]
    cos_tol = 1.0 - np.cos(angle_tol)
    labels = _clusters(bhat, cos_tol)
    roots = np.unique(labels)
    dead_k = dead[keep]
    live_cluster = {int(r): bool(np.any(~dead_k[labels == r])) for r in roots}
    dim_v = {r: (d if live_cluster[r] else 1) for r in live_cluster}
    # antipodal partners: representative directions with cos ≤ −1 + cos_tol
    reps = {r: bhat[labels == r].mean(axis=0) for r in live_cluster}
    rep_ids = list(reps)
    pairs = []
    if rep_ids:
        R = np.array([reps[r] / np.linalg.norm(reps[r]) for r in rep_ids])
        for i0 in range(0, len(rep_ids), 1024):
            c = R[i0:i0 + 1024] @ R.T
            ii, kk = np.nonzero(c <= -1.0 + cos_tol)
            for i, k in zip(ii + i0, kk):
                if k > i:
                    pairs.append((rep_ids[i], rep_ids[k], R[i]))
    inter = 0
    spans = []
    full = False
    for r1, r2, u in pairs:
        if live_cluster[r1] and live_cluster[r2]:
            inter += d
            full = True
        else:
            inter += 1
            spans.append(u)
    if full:
        span_dim = d
    elif spans:
        span_dim = int(np.linalg.matrix_rank(np.array(spans)))
    else:
        span_dim = 0
    m_eff = int(keep.sum())
    n_pred = m_eff * (d + 1) - sum(dim_v.values()) + inter - span_dim
    # symmetries alone: a rescaling per live particle, all of δb_j per dead one, one mass
    # exchange per extra member of a cluster
    sizes = np.bincount(np.searchsorted(roots, labels), minlength=len(roots))
    n_sym = int(np.sum(~dead_k) + d * np.sum(dead_k) + np.sum(sizes - 1))
    return {"n_zero_modes_predicted": int(n_pred), "n_zero_modes_symmetry": n_sym, "n_clusters": int(len(roots)),
            "n_dead": int(np.sum(dead & keep)), "n_antipodal_pairs": len(pairs),
            "n_zero_b": int(zero_b.sum()), "angle_tol": angle_tol, "dead_tol": dead_tol}


# ------------------------------------------------------------------------------- polishing
class _NonFinite(Exception):
    """The trust-region subproblem proposed a non-finite point (trlib at tiny gradients)."""


class _Budget(Exception):
    """The Hessian-vector product budget of :func:`polish` is spent."""


def polish(problem, a, b, weights=None, gtol=1e-14, maxiter=200, newton_steps=10, log=None,
           max_products=None):
    """Converge to a critical point of F: ``scipy.optimize.minimize(method='trust-krylov')``,
    then Newton steps with MINRES.

    The variables are φ = D^{1/2} θ, so the Hessian is the operator H of this module and
    the gradient norm is (Σ_j w_j |g_j|²)^{1/2}. Gradients come from
    :class:`~meanfield.models.backends.ExactBackend`, Hessian-vector products from
    :class:`HessianOperator`. Trust-krylov stops at ``gtol``, at ``maxiter``, or when its
    subproblem solver breaks down near round-off (it can propose NaN steps once the gradient
    is ~1e-9); then up to ``newton_steps`` Newton steps p = −H⁺∇ (MINRES, which handles the
    zero modes) are taken, each kept only if it lowers the gradient norm.

    Parameters
    ----------
    gtol : float
        Target gradient norm (round-off is ~1e-16 times the scale of F's terms).
    maxiter : int
        Trust-krylov iterations.
    newton_steps : int
    log : callable, optional
        Called with one line per iteration (iteration, F, gradient norm, products).
    max_products : int, optional
        Budget of Hessian-vector products for trust-krylov and for the Newton steps each
        (None: no limit). Near a degenerate valley (a near-continuum of tiny eigenvalues)
        trlib's Lanczos subproblem can run for thousands of products in one iteration (E1
        at m = 1024: more than 5 000 after iteration 16); when the budget is spent the stage
        stops with the best point so far, and the message says so.

    Returns
    -------
    dict: ``a``, ``b`` (the polished state), ``history`` (list of (iteration, F, gradient
    norm)), ``message``, ``gradient_norm``, ``risk``, ``n_products``, ``seconds``.
    """
    from scipy.optimize import minimize
    from scipy.sparse.linalg import minres

    a, b, w = _check_state(problem, a, b, weights)
    m, d = b.shape
    sw = np.sqrt(w)
    scale = np.concatenate([sw, np.repeat(sw, d)])
    cache = {}

    def operator(phi):
        if not np.all(np.isfinite(phi)):
            raise _NonFinite
        key = phi.tobytes()
        if cache.get("key") != key:
            theta = phi / scale
            cache["key"] = key
            cache["op"] = HessianOperator(problem, theta[:m], theta[m:].reshape(m, d), w)
        return cache["op"]

    products = [0]

    def fun(phi):
        op = operator(phi)
        return op.risk, op.gradient()

    def hessp(phi, p):
        if max_products is not None and products[0] >= max_products:
            raise _Budget
        products[0] += 1
        return operator(phi).matvec(p)

    history = []
    best = {}
    start = time.perf_counter()

    def record(it, phi, stage):
        op = operator(phi)
        gn = op.gradient_norm()
        history.append((it, op.risk, gn))
        if not best or gn < best["gn"]:
            best.update(gn=gn, phi=phi.copy())
        if log is not None:
            log(f"  {stage} {it:4d}   F = {op.risk:.16e}   |grad| = {gn:.3e}   "
                f"products = {products[0]}")

    phi0 = np.concatenate([a, b.ravel()]) * scale
    record(0, phi0, "trust-krylov")
    it = [0]

    def callback(intermediate_result):
        it[0] += 1
        record(it[0], intermediate_result.x, "trust-krylov")

    try:
        res = minimize(fun, phi0, jac=True, hessp=hessp, method="trust-krylov",
                       callback=callback, options={"gtol": gtol, "maxiter": maxiter})
        message = f"trust-krylov: {res.message}"
        if np.all(np.isfinite(res.x)):
            record(it[0] + 1, res.x, "trust-krylov")
    except (_NonFinite, FloatingPointError):  # NaN step, or the same under np.errstate(raise)
        message = "trust-krylov: its subproblem proposed a non-finite step (stopped there)"
    except _Budget:
        message = f"trust-krylov: stopped after {products[0]} products (max_products)"
    phi = best["phi"]
    for step in range(newton_steps):
        if best["gn"] <= gtol:
            break
        op = operator(phi)
        lin = op.linear_operator()
        n_before = op.n_products
        iters = max(100, 2 * op.n)
        if max_products is not None:   # each Newton step gets the budget again
            iters = min(iters, max(1, max_products))
        p, _ = minres(lin, -op.gradient(), rtol=1e-14, maxiter=iters)
        products[0] += op.n_products - n_before
        trial = phi + p
        if not np.all(np.isfinite(trial)):
            break
        before = best["gn"]
        record(step + 1, trial, "newton      ")
        if best["gn"] >= before:
            message += (f"; Newton step {step + 1} did not lower the gradient norm (the best "
                        "point is kept)")
            break
        phi = best["phi"]
    phi = best["phi"]
    theta = phi / scale
    final = HessianOperator(problem, theta[:m], theta[m:].reshape(m, d), w)
    return {"a": final.a, "b": final.b, "history": history, "message": message,
            "gradient_norm": final.gradient_norm(), "risk": final.risk,
            "n_products": products[0], "seconds": time.perf_counter() - start}


# ------------------------------------------------------------------------------- analysis
def analyse(problem, a, b, weights=None, k=None, dense_max=DENSE_MAX, angle_tol=1e-6,
            dead_tol=1e-10, ceiling=1e-3, deflate_rescaling=False, method="lanczos",
            rtol=1e-8, log=None, stored_dtype=np.float64):
    """Spectrum, zero-mode count and prediction, gradient norm at one state.

    Returns
    -------
    dict with ``eigenvalues`` (ascending: all when dense, else the k smallest then the k
    largest), ``method``, ``n_params``, ``n_zero_modes``, ``n_negative``, ``n_positive``,
    ``spectral_gap``, ``zero_threshold``, ``saturated``, ``n_zero_modes_predicted`` and the
    rule's details, ``gradient_norm``, ``risk``, ``seconds``.
    """
    op = HessianOperator(problem, a, b, weights)
    spec = spectrum(op, k=k, dense_max=dense_max, deflate_rescaling=deflate_rescaling,
                    method=method, rtol=rtol, log=log, stored_dtype=stored_dtype)
    ev = spec["eigenvalues"]
    if spec["method"] == "dense":
        count = count_zero_modes(ev, ceiling=ceiling)
    else:
        scale = float(max(abs(spec["largest"][-1]), abs(spec["smallest"][0])))
        count = count_zero_modes(spec["smallest"], scale=scale, ceiling=ceiling,
                                 n_params=op.n)
    pred = predict_zero_modes(op.a, op.b, angle_tol=angle_tol, dead_tol=dead_tol)
    n_zero = count["n_zero"] + (op.m if deflate_rescaling else 0)
    out = {"eigenvalues": ev, "method": spec["method"], "n_params": op.n, "m": op.m,
           "d": op.d, "n_zero_modes": n_zero, "n_negative": count["n_negative"],
           "n_positive": count["n_positive"] if spec["method"] == "dense"
           else op.n - n_zero - count["n_negative"],
           "spectral_gap": count["spectral_gap"], "zero_threshold": count["threshold"],
           "saturated": count["saturated"], "eigenvalue_scale": count["scale"],
           **pred, "gradient_norm": op.gradient_norm(), "risk": op.risk,
           "n_products": spec["n_products"], "seconds": spec["seconds"]}
    for key in ("rescaling_residual", "residuals", "lobpcg_iterations", "lobpcg_converged",
                "n_products_smallest", "n_products_largest", "seconds_smallest",
                "seconds_largest", "seconds_store"):
        if key in spec:
            out[key] = spec[key]
    if spec["method"] != "dense" and count["n_negative"] == len(spec["smallest"]):
        out["negative_saturated"] = True  # all k smallest are negative: a lower bound
    return out
