"""The balanced 1-D model (ε, c, θ) of the seed code for f*(x) = ‖x_H‖ (MATH §5).

Derivation and time convention
------------------------------
Take the full flow of MATH §1–2 with x ∼ N(0, I_d) ("Gaussian-input time": one unit of
time is one unit of the full particle flow, whose Euler step of size dt is gradient descent
with learning rate m·dt). Write ψ(b) = T(b) − Σ_k w_k a_k κ(b, b_k), so that a' = ψ(b),
b' = a ∇ψ(b); ψ is 1-homogeneous. For a balanced particle, |a| = ‖b‖ = ρ (kept by the flow,
MATH §6), b = ρ u with u = cos θ u_H + sin θ u_⊥ a unit vector at angle θ to H:

    ρ' = ⟨u, b'⟩ = a ⟨u, ∇ψ(u)⟩ = ε ρ ψ(u),     u' = ε ∇_S ψ(u)

(Euler's identity for the 1-homogeneous ψ; ∇_S the spherical gradient). When μ is invariant
under O(d_H) × O(d_⊥), ψ(u) depends on u only through θ, ψ(u) = G(θ), and u moves along
the great circle through H at angular speed ε G'(θ). With the particle's output mass
c = |a|‖b‖ = ρ² (its contribution to f is ε c σ(⟨u, x⟩)):

    c' = 2 ε c G(θ),    θ' = ε G'(θ),
    G(θ) = A(θ) − Σ_k w_k ε_k c_k K(θ, θ_k),

    A(θ)     = E[‖x_H‖ σ(⟨u_θ, x⟩)] = α E_{t∼γ_{d_H}} κ(u_θ, v),  ⟨u_θ, v⟩ = t cos θ,
    K(θ, θ') = E κ(u_θ, u_θ'),  ⟨u_θ, u_θ'⟩ = cos θ cos θ' t_H + sin θ sin θ' t_⊥,
               t_H ∼ γ_{d_H}, t_⊥ ∼ γ_{d_⊥} independent (relative orientations in H, H⊥).

These are the velocities of the (a, ‖b_H‖, ‖b_⊥‖) reduced flow of :mod:`meanfield.models.reduced`
rewritten in (c, θ), in the same time (the tests check the identity). The risk is
F = ½ Σ_jk w_j w_k ε_j c_j ε_k c_k K(θ_j, θ_k) − Σ_j w_j ε_j c_j A(θ_j) + d_H/2, so the seed
paper's "re-scaled" risk F/d starts at d_H/(2d) from a start with zero mean predictor.

How G and G' are evaluated
--------------------------
K and A are even and π-periodic in each angle (θ ↦ −θ flips the sign of t_⊥, θ ↦ π − θ
that of t_H), so they are smooth functions of x = cos 2θ. They are **tabulated once** on the
P Chebyshev points θ_j = (j + ½)π/(2P) (K on the P × P grid) with a tensor Gauss–Jacobi
quadrature of ``table_nodes`` nodes per angle, and **interpolated spectrally**:

    K(θ, θ') ≈ Σ_{p,q<P} C_pq cos(2pθ) cos(2qθ'),   A(θ) ≈ Σ_p A_p cos(2pθ).

The expansion is separable, so G at all m particles costs O(mP + P²) per step instead of
O(m² Q): M_q = Σ_k w_k ε_k c_k cos(2qθ_k), G(θ_i) = Σ_p cos(2pθ_i)(A_p − (C M)_p), and G'
differentiates the cosines exactly. θ outside [0, π/2] is folded back by the symmetry, which
the cosine basis respects by construction. :meth:`RadialKernel.accuracy` measures the error
of K, ∂_θ K, A and A' against direct quadrature (192 nodes per angle) at random angles and
the corners. Measured with the defaults (P = 64, 96 table nodes), max absolute errors:
d_H = 5, d_⊥ = 25: 2e-14 (K), 7e-13 (∂K), 1e-13 (A), 3e-12 (A'); d_H = 35, d_⊥ = 5 and
d_H = 30, d_⊥ = 10: below 1e-12; d_H = 2, d_⊥ = 38: 1e-9 (K), 4e-8 (∂K), 2e-9 (A), 1e-7
(A'); d_H = 1: 1e-7 (K), 1e-5 (A'). The least smooth point is θ = θ' = 0 for small d_H.

The seed code's Monte Carlo estimator
-------------------------------------
``estimator="monte_carlo"`` is the estimator of the seed paper's notebook (JAX,
``1d-simulation-jax``), transcribed: every step draws N fresh samples of a unit input
direction at angle φ_i to H (cos² φ ∼ Beta(d_H/2, d_⊥/2), so ‖x_H‖ = cos φ, ‖x_⊥‖ = sin φ)
and two independent relative orientations (t_H, t_⊥), (t'_H, t'_⊥) ∼ γ_{d_H} ⊗ γ_{d_⊥}
(independent signs); the other particles see the input through the first, the particle
being moved through the second:

    f̃_i = Σ_k w_k ε_k c_k σ(cos θ_k cos φ_i t_H + sin θ_k sin φ_i t_⊥),  R_i = cos φ_i − f̃_i,
    z_ji = cos θ_j cos φ_i t'_H + sin θ_j sin φ_i t'_⊥,
    Ĝ(θ_j) = (d/N) Σ_i R_i σ(z_ji),   Ĝ'(θ_j) = (d/N) Σ_i R_i 1[z_ji > 0] ∂_θ z_ji.

The factor d turns the unit-sphere expectations into Gaussian ones (both factors are
1-homogeneous in x), so the time is the same as for the exact model. Ĝ and Ĝ' are unbiased
(the orientation shared by the other particles only adds variance); the cost is O(mN) per
step. The loss the notebook reports (and plots, as "re-scaled" loss, = F/d) is
L̂ = ½ mean_i (cos² φ_i − 2 cos φ_i f_i + f_i f̃_i) with f_i = Σ_j w_j ε_j c_j σ(z_ji): an
unbiased estimate of F/d whose noise does not vanish as F → 0.
"""
import json
from dataclasses import dataclass
from math import pi

import numpy as np

from ..kernels.threads import kernel, parallel_kernel, prange
from ..engine import Field, Result, Solver
from ..kernels.gaussian import sphere_average_terms, sphere_coordinate_quadrature
from .laws import GaussianLaw
from .targets import NormTarget
from .reduced import BlockReduction, reduced_interaction

__all__ = ["RadialKernel", "RadialField", "RadialFlowResult", "RadialSolver", "radial_solver",
           "simulate_radial", "ESTIMATORS",
           "fold_angle", "sample_sphere_coordinate"]

#: ways to evaluate G and G' in :func:`simulate_radial`.
ESTIMATORS = ("exact", "monte_carlo")


def fold_angle(theta):
    """Fold angles into [0, π/2] by the symmetries θ ↦ −θ and θ ↦ π − θ of the model."""
    t = np.mod(np.asarray(theta, dtype=np.float64), pi)
    return np.where(t > 0.5 * pi, pi - t, t)


def sample_sphere_coordinate(rng, k, size):
    """Samples of t ∼ γ_k (one coordinate of a uniform point on S^{k−1}): ±√Beta(½, (k−1)/2)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    sign = rng.choice([-1.0, 1.0], size=size)
    if k == 1:
        return sign
    return sign * np.sqrt(rng.beta(0.5, 0.5 * (k - 1), size=size))


# ------------------------------------------------------------------------- the kernel
@kernel
def _cosine_basis(theta, out_t, out_dt):
    """out_t[i, p] = cos(2pθ_i), out_dt[i, p] = −2p sin(2pθ_i), p < P = out_t.shape[1].

    Preconditions: ``theta`` (n,), outputs (n, P) float64 C-contiguous, P >= 2. Both
    sequences obey the stable three-term recurrence y_{p+1} = 2 cos(2θ) y_p − y_{p−1}.
    Serial: O(nP) flops, cheaper than a parallel launch at the sizes used.
    """
    n, P = out_t.shape
    for i in range(n):
        x = np.cos(2.0 * theta[i])
        s1 = np.sin(2.0 * theta[i])
        c_prev, c_cur = 1.0, x
        s_prev, s_cur = 0.0, s1
        out_t[i, 0] = 1.0
        out_dt[i, 0] = 0.0
        out_t[i, 1] = x
        out_dt[i, 1] = -2.0 * s1
        for p in range(2, P):
            c_prev, c_cur = c_cur, 2.0 * x * c_cur - c_prev
            s_prev, s_cur = s_cur, 2.0 * x * s_cur - s_prev
            out_t[i, p] = c_cur
            out_dt[i, p] = -2.0 * p * s_cur


def _unit(theta):
    theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    return np.ascontiguousarray(np.stack([np.cos(theta), np.sin(theta)], axis=1))


#: version of the table quadrature: bump it when the tables' formulas change, so that tables
#: cached by an older version are not read
TABLE_VERSION = 1


def default_cache_dir():
    """Folder for cached spectral tables of :class:`RadialKernel`: ``$MEANFIELD_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/meanfield``, else ``~/.cache/meanfield``; None (no cache) when
    ``MEANFIELD_CACHE_DIR`` is ``off``."""
    import os
    from pathlib import Path

    env = os.environ.get("MEANFIELD_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "meanfield"


class RadialKernel:
    """Spectral tables of K(θ, θ') and A(θ) for given d_H, d_⊥ (see the module docstring).

    Parameters
    ----------
    d_H, d_perp : int
        Dimensions of H and H⊥ (both >= 1).
    n_terms : int
        P, number of cosine modes per angle.
    table_nodes : int
        Gauss–Jacobi nodes per angle of the quadrature that fills the tables.
    cache_dir : str or Path or None
        If given, the spectral tables (C, A), which depend only on (d_H, d_perp, n_terms,
        table_nodes), are read from this folder when present and written to it after being
        built (see :func:`default_cache_dir`); the arrays are the ones the quadrature gave,
        so a cached kernel is bit-identical to a fresh one. None: always build.
    """

    def __init__(self, d_H, d_perp, n_terms=64, table_nodes=96, cache_dir=None):
        if int(d_H) != d_H or int(d_perp) != d_perp or d_H < 1 or d_perp < 1:
            raise ValueError(f"d_H and d_perp must be integers >= 1, got {d_H}, {d_perp}")
        if int(n_terms) < 2 or int(table_nodes) < 2:
            raise ValueError("n_terms and table_nodes must be >= 2")
        self.d_H, self.d_perp = int(d_H), int(d_perp)
        self.n_terms = P = int(n_terms)
        self.table_nodes = int(table_nodes)
        self.norm_target = NormTarget(self.d_H)  # f* = ‖x_H‖, x ∼ N(0, I_d)
        self.alpha = self.norm_target.alpha
        self.modes = 2.0 * np.arange(P)
        grid = (np.arange(P) + 0.5) * pi / (2 * P)
        self.grid = grid
        self.energy = 0.5 * self.norm_target.second_moment(GaussianLaw(), self.d_H + self.d_perp)
        tables = self._read_tables(cache_dir) if cache_dir else None
        #: True when the tables were read from ``cache_dir`` instead of built
        self.from_cache = tables is not None
        if tables is None:
            tables = self._build_tables()
            if cache_dir:
                self._write_tables(cache_dir, tables)
        self.C, self.A = tables

    # -- the spectral tables and their cache ---------------------------------------------
    def _table_file(self, cache_dir):
        from pathlib import Path

        return Path(cache_dir) / (f"radial_tables_v{TABLE_VERSION}_dH{self.d_H}_"
                                  f"dperp{self.d_perp}_P{self.n_terms}_n{self.table_nodes}.npz")

    def _read_tables(self, cache_dir):
        """(C, A) from the cache, or None (absent, unreadable or of the wrong shape)."""
        path = self._table_file(cache_dir)
        P = self.n_terms
        try:
            with np.load(path, allow_pickle=False) as z:
                C, A = z["C"], z["A"]
        except (OSError, KeyError, ValueError):
            return None
        if C.shape != (P, P) or A.shape != (P,) or C.dtype != np.float64:
            return None
        return np.ascontiguousarray(C), A

    def _write_tables(self, cache_dir, tables):
        from ..io import atomic_savez

        try:
            path = self._table_file(cache_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_savez(path, C=tables[0], A=tables[1])
        except OSError:
            pass  # a read-only or full cache folder only costs the next run the rebuild

    def _build_tables(self):
        """(C, A): the DCT coefficients of K and A on the Chebyshev grid (quadrature)."""
        P, grid = self.n_terms, self.grid
        k_tab, _ = self.kernel_direct(grid, grid, self.table_nodes)
        a_tab, _ = self.target_direct(grid, self.table_nodes)
        # DCT-II on the Chebyshev points: f_j = Σ_p c_p cos(p (j+½)π/P), c = dct/P, c_0 halved
        from scipy.fft import dct, dctn  # imported when used (slow to load)

        C = dctn(k_tab, type=2) / (P * P)
        C[0, :] *= 0.5
        C[:, 0] *= 0.5
        A = dct(a_tab, type=2) / P
        A[0] *= 0.5
        return np.ascontiguousarray(0.5 * (C + C.T)), A  # K is symmetric; remove round-off

    # -- direct quadrature (slow, for the tables and the accuracy checks) -------------------
    def _orientation_rule(self, n_nodes):
        """Tensor rule over (t_H, t_⊥): the (‖b_H‖, ‖b_⊥‖) reduction's quadrature."""
        return BlockReduction((self.d_H, self.d_perp), (True, True)).quadrature(n_nodes)

    def kernel_direct(self, theta, theta2, n_nodes=96):
        """K(θ_i, θ'_k) and ∂_θ K by direct tensor quadrature; arrays (n, n2)."""
        u = _unit(theta)
        u2 = _unit(theta2)
        nodes, weights = self._orientation_rule(n_nodes)
        K = np.empty((u.shape[0], u2.shape[0]))
        dK = np.empty_like(K)
        tangent = np.stack([-u[:, 1], u[:, 0]], axis=1)  # du/dθ
        for k in range(u2.shape[0]):
            s, g = reduced_interaction(u, u2[k: k + 1], np.ones(1), 0, nodes, weights)
            K[:, k] = s
            dK[:, k] = np.einsum("ij,ij->i", g, tangent)
        return K, dK

    def target_direct(self, theta, n_nodes=96):
        """A(θ) and A'(θ) by direct Gauss–Jacobi quadrature; arrays (n,)."""
        u = _unit(theta)
        t, w = sphere_coordinate_quadrature(self.d_H, n_nodes)
        out_t, out_g = sphere_average_terms(u, 1, t, w)
        tangent = np.stack([-u[:, 1], u[:, 0]], axis=1)
        return self.alpha * out_t, self.alpha * np.einsum("ij,ij->i", out_g, tangent)

    # -- spectral evaluation ----------------------------------------------------------------
    def basis(self, theta):
        """cos(2pθ) and its θ-derivative −2p sin(2pθ) at every angle: two (n, P) arrays."""
        theta = np.ascontiguousarray(np.atleast_1d(np.asarray(theta, dtype=np.float64)))
        T = np.empty((theta.size, self.n_terms))
        dT = np.empty_like(T)
        _cosine_basis(theta, T, dT)
        return T, dT

    def kernel(self, theta, theta2):
        """K(θ_i, θ'_k) and ∂_θ K from the tables; arrays (n, n2)."""
        T1, dT1 = self.basis(theta)
        T2, _ = self.basis(theta2)
        return T1 @ self.C @ T2.T, dT1 @ self.C @ T2.T

    def target(self, theta):
        """A(θ) and A'(θ) from the table."""
        T, dT = self.basis(theta)
        return T @ self.A, dT @ self.A

    def field(self, eps, c, theta, w):
        """G(θ_i), G'(θ_i) at every particle and the exact risk F.

        Parameters
        ----------
        eps, c, theta, w : (m,) arrays
            Signs, masses, angles and particle weights.

        Returns
        -------
        G, dG : (m,) arrays
        risk : float
        """
        T, dT = self.basis(theta)
        coef = w * eps * c
        M = T.T @ coef
        CM = self.C @ M
        h = self.A - CM
        risk = 0.5 * M @ CM - M @ self.A + self.energy
        return T @ h, dT @ h, float(risk)

    def risk(self, eps, c, theta, w):
        """Exact risk F of the 1-D model."""
        return self.field(eps, c, theta, w)[2]

    def predict(self, eps, c, theta, w, s_H, s_perp, n_nodes=64):
        """Predictor at inputs with ‖x_H‖ = s_H and ‖x_⊥‖ = s_perp (arrays (n,)).

        f = Σ_k w_k ε_k c_k E σ(cos θ_k s_H t_H + sin θ_k s_⊥ t_⊥), by tensor quadrature."""
        s_H = np.atleast_1d(np.asarray(s_H, dtype=np.float64))
        s_perp = np.broadcast_to(np.asarray(s_perp, dtype=np.float64), s_H.shape)
        nodes, weights = self._orientation_rule(n_nodes)
        coef = w * eps * c
        out = np.empty(s_H.size)
        for n in range(s_H.size):
            pre = (np.multiply.outer(np.cos(theta) * s_H[n], nodes[:, 0])
                   + np.multiply.outer(np.sin(theta) * s_perp[n], nodes[:, 1]))
            out[n] = coef @ (np.maximum(pre, 0.0) @ weights)
        return out

    def accuracy(self, n_points=200, rng=None, reference_nodes=192):
        """Max errors of the tables against direct quadrature with ``reference_nodes``
        nodes per angle at ``n_points`` random angles (and all their pairs for K).

        Returns a dict with ``K``, ``dK``, ``A``, ``dA`` (max absolute errors) and the
        magnitudes ``K_max``, ``A_max``."""
        rng = np.random.default_rng(0) if rng is None else rng
        th = rng.uniform(0.0, 0.5 * pi, size=n_points)
        th[:3] = (0.0, 0.5 * pi, 1e-3)  # the corners and near-corner, where K is least smooth
        K_ref, dK_ref = self.kernel_direct(th, th, reference_nodes)
        A_ref, dA_ref = self.target_direct(th, reference_nodes)
        K, dK = self.kernel(th, th)
        A, dA = self.target(th)
        return {"K": float(np.abs(K - K_ref).max()), "dK": float(np.abs(dK - dK_ref).max()),
                "A": float(np.abs(A - A_ref).max()), "dA": float(np.abs(dA - dA_ref).max()),
                "K_max": float(np.abs(K_ref).max()), "A_max": float(np.abs(A_ref).max())}


# ------------------------------------------------------------- the Monte Carlo estimator
@parallel_kernel
def _mc_field(cos_t, sin_t, coef, a_src, b_src, a_out, b_out, target, out_g, out_dg, out_r,
              out_f):
    """Monte Carlo sums of the seed code (see the module docstring), without the factor d/N.

    Preconditions: ``cos_t``, ``sin_t``, ``coef`` (m,); ``a_src``, ``b_src``, ``a_out``,
    ``b_out``, ``target`` (n,) float64, C-contiguous. Outputs written: ``out_g``, ``out_dg``
    (m,) = Σ_i R_i σ(z_ji) and Σ_i R_i 1[z_ji > 0] ∂_θ z_ji; ``out_r`` (n,) the residuals
    R_i = target_i − f̃_i; ``out_f`` (n,) the predictor f_i seen through the second
    orientation. Two parallel loops, each over the index that owns its output.
    """
    m = cos_t.shape[0]
    n = a_src.shape[0]
    for s in prange(n):
        f_src = 0.0
        f_out = 0.0
        for k in range(m):
            z = cos_t[k] * a_src[s] + sin_t[k] * b_src[s]
            if z > 0.0:
                f_src += coef[k] * z
            z = cos_t[k] * a_out[s] + sin_t[k] * b_out[s]
            if z > 0.0:
                f_out += coef[k] * z
        out_r[s] = target[s] - f_src
        out_f[s] = f_out
    for i in prange(m):
        g = 0.0
        dg = 0.0
        for s in range(n):
            z = cos_t[i] * a_out[s] + sin_t[i] * b_out[s]
            if z > 0.0:
                g += out_r[s] * z
                dg += out_r[s] * (cos_t[i] * b_out[s] - sin_t[i] * a_out[s])
        out_g[i] = g
        out_dg[i] = dg


def _mc_samples(rng, d_H, d_perp, n):
    """The notebook's draws: input angle φ ∼ τ_0 and two orientations per sample."""
    phi = np.arccos(np.sqrt(rng.beta(0.5 * d_H, 0.5 * d_perp, size=n)))
    t_h = sample_sphere_coordinate(rng, d_H, (2, n))
    t_p = sample_sphere_coordinate(rng, d_perp, (2, n))
    cos_p, sin_p = np.cos(phi), np.sin(phi)
    return (np.ascontiguousarray(cos_p * t_h[1]), np.ascontiguousarray(sin_p * t_p[1]),
            np.ascontiguousarray(cos_p * t_h[0]), np.ascontiguousarray(sin_p * t_p[0]),
            np.ascontiguousarray(cos_p))


def monte_carlo_field(kernel, eps, c, theta, w, rng, n_samples=1000):
    """Ĝ, Ĝ' and the notebook's loss estimate, in Gaussian units (d L̂ ≈ F), from
    ``n_samples`` fresh samples."""
    n = int(n_samples)
    a_src, b_src, a_out, b_out, target = _mc_samples(rng, kernel.d_H, kernel.d_perp, n)
    m = theta.shape[0]
    g = np.empty(m)
    dg = np.empty(m)
    res = np.empty(n)
    f_out = np.empty(n)
    _mc_field(np.ascontiguousarray(np.cos(theta)), np.ascontiguousarray(np.sin(theta)),
              np.ascontiguousarray(w * eps * c), a_src, b_src, a_out, b_out, target, g, dg, res,
              f_out)
    d = kernel.d_H + kernel.d_perp
    loss = 0.5 * np.mean(target * target - 2.0 * target * f_out + f_out * (target - res))
    return (d / n) * g, (d / n) * dg, d * float(loss)


# ------------------------------------------------------------------------------ the field
class RadialField(Field):
    """The 1-D model c' = 2εcG(θ), θ' = εG'(θ) as a field of the one loop (state (c, θ)).

    After every accepted step θ is folded back into [0, π/2] by the symmetries of the model;
    a step that makes a mass negative is outside the model (c = 0 is invariant for the
    flow): a fixed-step run stops with status ``diverged``, an adaptive one retries smaller.

    Parameters
    ----------
    kernel : RadialKernel
    eps : (m,) array of ±1
    weights : (m,) array
    estimator : {"exact", "monte_carlo"}
        How G and G' are evaluated; with ``monte_carlo`` the risk the velocity reports is the
        seed code's batch loss (recorded as ``risk``), the exact risk is recorded as
        ``risk_exact``.
    n_samples, seed : int
        Monte Carlo samples per evaluation and the seed of their generator.
    """

    names = ("c", "theta")
    state_label = "1-D particles"
    record_keys = ("risk_exact",)

    def __init__(self, kernel, eps, weights, estimator="exact", n_samples=1000, seed=0):
        super().__init__(weights)
        self.kernel = kernel
        self.eps = eps
        self.estimator = estimator
        self.deterministic = estimator == "exact"
        self.n_samples = int(n_samples)
        self.rng = np.random.default_rng(seed)

    def velocity(self, y, t=None):
        c, th = y
        eps = self.eps
        if self.estimator == "exact":
            g, dg, risk = self.kernel.field(eps, c, th, self.weights)
        else:
            g, dg, risk = monte_carlo_field(self.kernel, eps, c, th, self.weights, self.rng,
                                            self.n_samples)
        return (2.0 * eps * c * g, eps * dg), risk

    def project(self, y, t, rescale=False):
        folded = fold_angle(y[1])
        if np.array_equal(folded, y[1]):
            return y, False
        return (y[0], folded), True

    def invalid(self, y):
        if np.any(y[0] < 0):
            return "a mass became negative (2 dt |G| > 1)"
        return None

    def record(self, y, t, k, risk, index):
        exact = risk if self.estimator == "exact" else self.kernel.risk(self.eps, y[0], y[1],
                                                                         self.weights)
        return {"risk_exact": exact}

    def state_dict(self):
        return {"rng_state": np.array(json.dumps(self.rng.bit_generator.state))}

    def load_state(self, state):
        if "rng_state" in state:
            self.rng.bit_generator.state = json.loads(str(state["rng_state"]))


@dataclass
class RadialFlowResult(Result):
    """What :func:`simulate_radial` produced: a :class:`~meanfield.engine.Result` whose state
    is (c, θ).

    Attributes
    ----------
    t : (r,) array
    risk : (r,) array
        Exact risk F at recorded times (always exact, whatever drove the flow).
    risk_estimate : (r,) array
        What the driving estimator reported at the recorded state (the batch loss for
        ``monte_carlo``; equal to ``risk`` for ``exact``).
    snapshots : dict
        ``step``, ``t`` (s,), ``c``, ``theta`` (s, m).
    eps, c, theta, weights : (m,) arrays
        Final (or last finite) state; θ folded into [0, π/2].
    """

    eps: np.ndarray = None

    @property
    def risk(self):
        return self.records["risk_exact"]

    @property
    def risk_estimate(self):
        return self.records["risk"]

    @property
    def c(self):
        return self.state["c"]

    @property
    def theta(self):
        return self.state["theta"]


class RadialSolver(Solver):
    """The one loop over a :class:`RadialField` (result: :class:`RadialFlowResult`)."""

    result_class = RadialFlowResult

    def _result_kwargs(self):
        kw = super()._result_kwargs()
        kw["eps"] = self.field.eps.copy()
        return kw


def radial_solver(kernel, eps, c, theta, dt=None, n_steps=None, weights=None,
                  integrator="euler", estimator="exact", n_samples=1000, seed=0, **options):
    """A :class:`RadialSolver` of the 1-D model (inputs validated); ``options`` as for
    :class:`~meanfield.engine.Solver`."""
    if not isinstance(kernel, RadialKernel):
        raise ValueError("kernel must be a RadialKernel")
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    eps = np.asarray(eps, dtype=np.float64)
    c = np.array(c, dtype=np.float64)
    theta = np.array(theta, dtype=np.float64)
    m = eps.shape[0]
    if eps.ndim != 1 or c.shape != (m,) or theta.shape != (m,):
        raise ValueError("eps, c and theta must be 1-D arrays of the same length")
    if not np.all(np.abs(eps) == 1.0):
        raise ValueError("eps must contain only +1 and -1")
    if np.any(c < 0) or not np.all(np.isfinite(c)):
        raise ValueError("masses c must be finite and >= 0")
    if np.any(theta < 0) or np.any(theta > 0.5 * pi) or not np.all(np.isfinite(theta)):
        raise ValueError("angles theta must lie in [0, pi/2]")
    w = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
        raise ValueError("weights must be non-negative, shape (m,), summing to 1")
    if int(n_samples) < 1:
        raise ValueError("n_samples must be >= 1")
    field = RadialField(kernel, eps.copy(), w, estimator, n_samples, seed)
    return RadialSolver(field, (c, theta), integrator, dt=dt, n_steps=n_steps, **options)


def simulate_radial(kernel, eps, c, theta, dt=None, n_steps=None, weights=None,
                    integrator="euler", estimator="exact", n_samples=1000, seed=0,
                    record_every=None, n_snapshots=0, snapshot_spacing="linear",
                    snapshot_at=None, stop=None, **options):
    """Integrate c' = 2εcG(θ), θ' = εG'(θ) (Gaussian-input time; module docstring) through the
    one loop.

    Parameters
    ----------
    kernel : RadialKernel
    eps : (m,) array of ±1
    c : (m,) array, >= 0
    theta : (m,) array in [0, π/2]
    dt : float or None
        Step (fixed-step integrators) or first trial step (adaptive ones, exact estimator).
    n_steps : int or None
        Fixed-step runs (or give ``t_end``).
    weights : (m,) array, optional
        Particle weights summing to 1 (uniform 1/m by default).
    integrator : str
        From :data:`meanfield.engine.integrators.INTEGRATORS` (state (c, θ)).
    estimator : {"exact", "monte_carlo"}
    n_samples : int
        Fresh samples per evaluation of the Monte Carlo estimator.
    seed : int
        Seeds the Monte Carlo samples.
    record_every, n_snapshots, snapshot_spacing, stop
        As in :func:`meanfield.models.reduced.simulate_reduced`.
    snapshot_at : sequence of int, optional
        Explicit snapshot steps (within [0, n_steps]); overrides ``n_snapshots``
        (fixed-step integrators; use ``snapshot_times`` otherwise).
    **options
        ``t_end``, ``rtol``, ``atol``, ``max_steps``, ``n_records``, ``snapshot_times``,
        ``observers``, ... of :class:`~meanfield.engine.Solver`.

    Returns
    -------
    RadialFlowResult
        A mass that would become negative in a fixed step (2 dt |G| > 1) stops the run with
        status ``diverged``: c = 0 is invariant for the flow.
    """
    solver = radial_solver(kernel, eps, c, theta, dt, n_steps, weights, integrator, estimator,
                           n_samples, seed, record_every=record_every, n_snapshots=n_snapshots,
                           snapshot_spacing=snapshot_spacing, snapshot_steps=snapshot_at,
                           **options)
    solver.advance(stop=stop)
    return solver.result()
