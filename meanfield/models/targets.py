"""Targets f*: every part knows its own mathematics under the input laws it supports.

A target is a part or a sum of parts (:class:`TargetSum`). With σ(z) = max(z, 0),
v_ρ = E[x_1²] and an input law ρ that is symmetric with E[xxᵀ] = v_ρ I (MATH §2, §4), a part
f_p provides

* ``parity``: :data:`EVEN` (f(−x) = f(x)), :data:`ODD` (f(−x) = −f(x)) or :data:`NEITHER`;
* ``second_moment(law, d)``: E_ρ[f_p²];
* ``cross_moment(other, law, d)``: E_ρ[f_p f_q] when it knows a closed form, else
  ``NotImplemented`` (the sum then asks the other part; opposite parities give 0 without asking);
* ``xbar(law, d)``: X̄_p = E_ρ[f_p(x) x], shape (d,);
* ``correlation(b, law)``: T_p(b) = E_ρ[f_p(x) σ(⟨b, x⟩)] and ∇_b T_p, shapes (m,) and (m, d);
* ``correlation_hessian(b, law)``: ∇²_b T_p at the rows b_j, as a :class:`CorrelationHessian`
  (``apply(β)`` = (∇²T_p(b_j) β_j)_j, ``dense()`` = (∇²T_p(b_j))_j), for the exact Hessian of
  the risk (:mod:`meanfield.hessian`); an odd part has T_p linear in b, hence ∇²T_p = 0;
* ``reduce(blocks, law, interaction, target_nodes)``: the same T_p in the coordinates of a
  block reduction (MATH §5), or a ValueError when f_p is not invariant under the rotations of
  the reduced blocks;
* ``used_coordinates(d)`` and ``rotation_blocks(d)``: what the symmetry checks need.

Which laws a part supports (closed forms; anything else raises a ValueError from
:meth:`TargetPart.check_law` that names the part and the laws, and the problem then needs the
sampled backend):

=================  =====================================================================
part               laws with closed-form expectations
=================  =====================================================================
Teacher            GaussianLaw(s) (products × s²), SphereLaw (products / d)
NormTarget         GaussianLaw(s), SphereLaw (‖x_H‖ is 1-homogeneous)
OddPowerTarget     GaussianLaw(s) only (its moments are not those of a 1-homogeneous f)
CallableTarget     none (sampled backend only)
=================  =====================================================================

For an odd part only X̄_p enters the ReLU correlation, because the odd part of σ(z) is z/2:
T_p(b) = ½⟨b, X̄_p⟩. A finite ReLU network f_T = Σ_k a*_k σ(⟨b*_k, x⟩) + ⟨β, x⟩ meets any part
q through q's own correlation: E[f_T f_q] = Σ_k a*_k T_q(b*_k) + ⟨β, X̄_q⟩, so a new part that
implements the methods above works with the exact backend, teachers included.
"""
from dataclasses import dataclass
from math import exp, lgamma, pi, sqrt

import numpy as np

from ..kernels.gaussian import interaction, sphere_average_terms, sphere_coordinate_quadrature
from ..kernels.hessian import hess11_sums, hvp_pair_sums
from .laws import GaussianLaw, SphereLaw, as_float_array

__all__ = ["EVEN", "ODD", "NEITHER", "TargetPart", "Teacher", "NormTarget", "OddPowerTarget",
           "CallableTarget", "TargetSum", "norm_target_alpha", "odd_cubic_target",
           "double_factorial", "CorrelationHessian"]

#: f(−x) = f(x)
EVEN = 1
#: f(−x) = −f(x)
ODD = -1
#: neither (e.g. a ReLU unit: σ(z) = z/2 + |z|/2)
NEITHER = 0


def double_factorial(n):
    """n!! = n (n − 2) (n − 4) … (1 for n ≤ 1); E[z^{2k}] = (2k − 1)!! for z ∼ N(0, 1)."""
    out = 1
    while n > 1:
        out *= n
        n -= 2
    return out


def norm_target_alpha(d_H):
    """α(d_H) = 2√π Γ((d_H+1)/2)/Γ(d_H/2): ‖x_H‖ = α E_{v∼U(S^{d_H−1})} σ(⟨v, x_H⟩)."""
    if d_H < 1:
        raise ValueError("d_H must be >= 1")
    return 2.0 * sqrt(pi) * exp(lgamma((d_H + 1) / 2.0) - lgamma(d_H / 2.0))


# ------------------------------------------------------------------------------ the base
class TargetPart:
    """One additive part f_p of a target f* = Σ_p f_p (see the module docstring).

    Subclasses set ``laws`` (the law types with closed forms) and implement ``__call__`` and
    the expectations they support; the defaults say clearly that a closed form is missing.
    """

    #: law types under which the expectations below have closed forms.
    laws = ()
    parity = NEITHER

    # -- checks ---------------------------------------------------------------------------
    def supports(self, law):
        """True when ``law`` is one of the laws with closed-form expectations for this part."""
        return isinstance(law, self.laws)

    def check_law(self, law):
        """Raise ValueError unless :meth:`supports` ``law``."""
        if not self.supports(law):
            names = ", ".join(t.__name__ for t in self.laws) or "no law"
            raise ValueError(f"{type(self).__name__} has closed-form expectations under {names}, "
                             f"not under {type(law).__name__}: use backend='sampled'")

    def check_dimension(self, d):
        """Raise ValueError when the part cannot live in R^d."""

    # -- expectations (override what the part supports) ------------------------------------
    def _missing(self, what, law):
        self.check_law(law)
        raise ValueError(f"{type(self).__name__} has no closed form for {what}")

    def second_moment(self, law, d):
        """E_ρ[f_p²] (float)."""
        self._missing("E f*²", law)

    def cross_moment(self, other, law, d):
        """E_ρ[f_p f_q] for another part q, or ``NotImplemented`` when unknown here."""
        return NotImplemented

    def xbar(self, law, d):
        """X̄_p = E_ρ[f_p(x) x], shape (d,)."""
        self._missing("X̄ = E[f* x]", law)

    def correlation(self, b, law):
        """T_p(b_j) = E_ρ[f_p(x) σ(⟨b_j, x⟩)] and ∇_b T_p, shapes (m,) and (m, d)."""
        self._missing("T(b) = E[f* σ(⟨b,x⟩)]", law)

    def correlation_hessian(self, b, law, n_nodes=None):
        """∇²_b T_p at the rows b_j (m, d), as a :class:`CorrelationHessian`.

        An odd part has T_p(b) = ½⟨b, X̄_p⟩ (module docstring), linear in b: its Hessian is
        zero. Other parts override this; without an override it is a ValueError.

        Parameters
        ----------
        b : (m, d) array
        law : GaussianLaw or SphereLaw
        n_nodes : int, optional
            Nodes of any 1-D quadrature (the part's default when None).
        """
        self.check_law(law)
        if self.parity == ODD:
            return CorrelationHessian(b)
        raise ValueError(f"{type(self).__name__} has no closed form for the Hessian of "
                         "T(b) = E[f* σ(⟨b,x⟩)]")

    def reduce(self, blocks, law, interaction, target_nodes=64):
        """T_p in the reduced coordinates z of ``blocks`` (MATH §5): a function z -> (T, ∇_z T).

        Parameters
        ----------
        blocks : BlockReduction
        law : GaussianLaw or SphereLaw
        interaction : callable
            ``interaction(z_out, z_src, c_src) -> (S (m,), ∇S (m, p + R))``, the reduced
            kernel Σ_k c_k κ̃(z_i, z'_k) of standard Gaussian inputs.
        target_nodes : int
            Gauss–Jacobi nodes of any 1-D target quadrature.
        """
        self.check_law(law)
        raise ValueError(f"{type(self).__name__} has no exact reduced form")

    # -- symmetries ---------------------------------------------------------------------------
    def used_coordinates(self, d):
        """Boolean mask (d,) of the coordinates f_p depends on, or None when unknown."""
        return None

    def rotation_blocks(self, d):
        """Index arrays of coordinate blocks B (|B| ≥ 2) inside the used coordinates whose
        rotations leave f_p invariant (e.g. H for ‖x_H‖)."""
        return []

    # -- pictures ---------------------------------------------------------------------------
    #: dimension of the subspace H the part lives on (plotting views), or None.
    subspace_dim = None

    def directions(self):
        """Distinguished directions of f_p for pictures: list of (kind, (d,) vector), kind
        one of ``"b*"`` (a teacher unit), ``"β"`` (a linear part), ``"w*"`` (∝ X̄)."""
        return []


def _v_rho(law, d):
    return law.second_moment(d)


# ------------------------------------------------------------------ Hessians of T in b
class CorrelationHessian:
    """∇²_b T(b_j) at fixed rows b (m, d): the zero Hessian (a T linear in b), and the base
    of the parts' Hessians.

    Methods
    -------
    apply(beta) : (m, d) -> (m, d)
        Row j is ∇²T(b_j) β_j.
    dense() : -> (m, d, d)
        The m Hessians.

    Attributes
    ----------
    zero : bool
        True when ∇²T = 0 identically (callers may skip it).
    """

    zero = True

    def __init__(self, b):
        self.shape = np.shape(b)

    def apply(self, beta):
        return np.zeros(self.shape)

    def dense(self):
        m, d = self.shape
        return np.zeros((m, d, d))

    def __add__(self, other):
        if self.zero:
            return other
        if other.zero:
            return self
        return _SumHessian([self, other])


class _SumHessian(CorrelationHessian):
    """Σ_p ∇²T_p."""

    zero = False

    def __init__(self, terms):
        self.terms = list(terms)
        self.shape = terms[0].shape

    def apply(self, beta):
        return sum(t.apply(beta) for t in self.terms)

    def dense(self):
        return sum(t.dense() for t in self.terms)

    def __add__(self, other):
        return self if other.zero else _SumHessian(self.terms + [other])


class _UnitsHessian(CorrelationHessian):
    """v Σ_k a*_k ∇²_11κ(b_j, b*_k): the Hessian of a ReLU teacher's T (standard-Gaussian
    kernel times v = v_ρ). Products by the tiled kernel of :mod:`meanfield.kernels.hessian`
    (O(m k d), nothing stored), the dense form by :func:`~meanfield.kernels.hessian.hess11_sums`."""

    zero = False

    def __init__(self, b, units_a, units_b, v):
        self.b = np.ascontiguousarray(b, dtype=np.float64)
        self.shape = self.b.shape
        self.units_a, self.units_b, self.v = units_a, units_b, v

    def apply(self, beta):
        k = self.units_a.size
        _, out = hvp_pair_sums(self.b, beta, self.units_b, np.zeros_like(self.units_b),
                               np.zeros(k), self.units_a)
        return self.v * out

    def dense(self):
        return self.v * hess11_sums(self.b, self.units_b, self.units_a)


class _NormHessian(CorrelationHessian):
    """K · 2π E_v ∇²_11κ(b_j, v) over v uniform on the unit sphere of H (the norm target),
    K = coef v_ρ α/(2π), by a 1-D Gauss–Jacobi quadrature over t = ⟨v, e⟩
    (e = b_H/‖b_H‖, v = t e + √(1−t²) ω): with h = ‖b_H‖, ρ⊥ = ‖b_⊥‖,
    r(t) = (ρ⊥² + (1 − t²) h²)^{1/2},

        2π E_v ∇²_11κ(b, v) = (E r/‖b‖²)(I − b̂b̂ᵀ) + (ρ⊥²/‖b‖²) E[t²/r] f fᵀ
                              + E[(1 − t²)/r]/(d_H − 1) (P_H − e eᵀ),

    f = (ρ⊥ e − h b_⊥/ρ⊥)/‖b‖ (a unit vector ⊥ b); no cancellation anywhere (b ∈ H, b ⊥ H,
    d_H = 1 included). The per-row coefficients are computed once here."""

    zero = False

    def __init__(self, b, d_h, K, n_nodes):
        b = np.asarray(b, dtype=np.float64)
        self.shape = b.shape
        m, d = b.shape
        self.d_h = d_h
        t, wq = sphere_coordinate_quadrature(d_h, n_nodes)
        bh, bp = b[:, :d_h], b[:, d_h:]
        h2 = np.einsum("ij,ij->i", bh, bh)
        rp2 = np.einsum("ij,ij->i", bp, bp)
        n2 = h2 + rp2
        h, rp = np.sqrt(h2), np.sqrt(rp2)
        r = np.sqrt(rp2[:, None] + (1.0 - t * t)[None, :] * h2[:, None])  # (m, q)
        safe = r > 0
        inv_r = np.where(safe, 1.0 / np.where(safe, r, 1.0), 0.0)
        pos_n2 = n2 > 0
        inv_n2 = np.where(pos_n2, 1.0 / np.where(pos_n2, n2, 1.0), 0.0)
        self.c_rad = (r @ wq) * inv_n2
        self.c_f = rp2 * inv_n2 * ((t * t * inv_r) @ wq)
        self.c_om = ((1.0 - t * t) * inv_r) @ wq / (d_h - 1) if d_h > 1 else np.zeros(m)
        e = np.zeros((m, d))
        e[:, :d_h] = np.where(h[:, None] > 0, bh / np.where(h > 0, h, 1.0)[:, None], 0.0)
        e[h == 0, 0] = 1.0  # any unit vector of H: the terms are invariant there
        f = np.zeros_like(e)
        live = (rp > 0) & pos_n2
        f[live] = (rp[live, None] * e[live]
                   - h[live, None] * np.concatenate([np.zeros((live.sum(), d_h)),
                                                     bp[live] / rp[live, None]], axis=1)) \
            / np.sqrt(n2[live])[:, None]
        self.e, self.f = e, f
        self.bhat = b * np.sqrt(inv_n2)[:, None]
        self.K = K

    def apply(self, beta):
        d_h = self.d_h
        bh = self.bhat
        out = self.c_rad[:, None] * (beta - bh * np.einsum("ij,ij->i", bh, beta)[:, None])
        f = self.f
        out += (self.c_f * np.einsum("ij,ij->i", f, beta))[:, None] * f
        e = self.e
        ph = np.zeros_like(beta)
        ph[:, :d_h] = beta[:, :d_h]
        out += self.c_om[:, None] * (ph - e * np.einsum("ij,ij->i", e, beta)[:, None])
        return self.K * out

    def dense(self):
        m, d = self.shape
        d_h = self.d_h
        ph = np.zeros((d, d))
        ph[:d_h, :d_h] = np.eye(d_h)
        bh, f, e = self.bhat, self.f, self.e
        out = self.c_rad[:, None, None] * (np.eye(d) - np.einsum("ia,ib->iab", bh, bh))
        out += self.c_f[:, None, None] * np.einsum("ia,ib->iab", f, f)
        out += self.c_om[:, None, None] * (ph - np.einsum("ia,ib->iab", e, e))
        return self.K * out


# --------------------------------------------------------------------------- the teacher
@dataclass(frozen=True, eq=False)
class Teacher(TargetPart):
    """f*(x) = Σ_k a*_k σ(⟨b*_k, x⟩) + ⟨β, x⟩ (σ = ReLU), exact for Gaussian and sphere inputs.

    Parameters
    ----------
    a : (k,) array
        Output weights of the teacher's units (may be empty).
    b : (k, d) array
        Input weights of the teacher's units.
    beta : (d,) array, optional
        Linear part.

    Notes
    -----
    With v = v_ρ (s² for N(0, s² I), 1/d on the sphere) and κ the arc-cosine kernel (MATH §2):
    T(b) = v Σ_k a*_k κ(b, b*_k) + ½⟨b, v β⟩, X̄ = v β + ½ v Σ_k a*_k b*_k,
    E f*² = v ‖β‖² + v Σ_{kl} a*_k a*_l κ(b*_k, b*_l) + Σ_k a*_k ⟨b*_k, v β⟩.
    Parity: odd when there are no units and β is given, else neither.
    """

    a: object
    b: object
    beta: object = None

    laws = (GaussianLaw, SphereLaw)

    def __post_init__(self):
        a = as_float_array("teacher a", self.a, 1)
        b = as_float_array("teacher b", self.b, 2)
        if b.shape[0] != a.shape[0]:
            raise ValueError(f"teacher a has {a.shape[0]} units but b has {b.shape[0]} rows")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        if self.beta is not None:
            beta = as_float_array("teacher beta", self.beta, 1)
            if beta.shape[0] != b.shape[1]:
                raise ValueError(f"teacher beta has length {beta.shape[0]}, expected d = {b.shape[1]}")
            object.__setattr__(self, "beta", beta)

    @property
    def d(self):
        return self.b.shape[1]

    @property
    def parity(self):
        return ODD if (self.a.size == 0 and self.beta is not None) else NEITHER

    def check_dimension(self, d):
        if self.d != d:
            raise ValueError(f"teacher input dimension {self.d} differs from d = {d}")

    def __call__(self, x):
        out = np.maximum(x @ self.b.T, 0.0) @ self.a
        if self.beta is not None:
            out = out + x @ self.beta
        return out

    def _units(self):
        return self.a.size > 0

    def second_moment(self, law, d):
        self.check_law(law)
        v = _v_rho(law, d)
        total = 0.0
        if self.beta is not None:
            total = v * self.beta @ self.beta
        if self._units():
            s, _ = interaction(self.b, self.b, self.a)
            total += v * self.a @ s
            if self.beta is not None:
                total += self.a @ (self.b @ (v * self.beta))
        return total

    def cross_moment(self, other, law, d):
        """E[f_T f_q] = Σ_k a*_k T_q(b*_k) + ⟨β, X̄_q⟩ (any part q with those two)."""
        self.check_law(law)
        total = 0.0
        if self._units():
            total += self.a @ other.correlation(self.b, law)[0]
        if self.beta is not None:
            total += self.beta @ other.xbar(law, d)
        return total

    def xbar(self, law, d):
        self.check_law(law)
        v = _v_rho(law, d)
        lin = v * self.beta if self.beta is not None else np.zeros(d)
        return lin + 0.5 * v * self.a @ self.b

    def correlation(self, b, law):
        self.check_law(law)
        v = _v_rho(law, b.shape[1])
        if self.beta is not None:
            lin = v * self.beta  # X̄ of the linear part; ½ of it is what σ sees
            t = 0.5 * (b @ lin)
            g = np.broadcast_to(0.5 * lin, b.shape).copy()
        else:
            t = np.zeros(b.shape[0])
            g = np.zeros(b.shape)
        if self._units():
            s, gs = interaction(b, self.b, self.a)
            t += v * s
            g += v * gs
        return t, g

    def correlation_hessian(self, b, law, n_nodes=None):
        """∇²T = v Σ_k a*_k ∇²_11κ(b, b*_k) (the linear part β adds nothing: ½⟨b, vβ⟩ is
        linear in b)."""
        self.check_law(law)
        b = np.asarray(b, dtype=np.float64)
        if not self._units():
            return CorrelationHessian(b)
        return _UnitsHessian(b, self.a, self.b, _v_rho(law, b.shape[1]))

    def _outside(self, blocks):
        return np.setdiff1d(np.arange(blocks.d), blocks.explicit_columns())

    def reduce(self, blocks, law, interaction, target_nodes=64):
        self.check_law(law)
        explicit, outside = blocks.explicit_columns(), self._outside(blocks)
        if self._units() and np.any(self.b[:, outside] != 0):
            raise ValueError("teacher units must vanish on the reduced blocks (the target "
                             "must be invariant under their rotations)")
        if self.beta is not None and np.any(self.beta[outside] != 0):
            raise ValueError("linear / odd parts of the target must vanish on the reduced blocks")
        v = _v_rho(law, blocks.d)
        p = blocks.n_explicit
        lin = (v * self.beta)[explicit] if self.beta is not None else None
        units_z = (np.hstack([self.b[:, explicit], np.zeros((self.a.size, blocks.n_reduced))])
                   if self._units() else None)

        def terms(z):
            t = np.zeros(z.shape[0])
            g = np.zeros_like(z)
            if lin is not None:
                t = 0.5 * (z[:, :p] @ lin)
                g[:, :p] = 0.5 * lin
            if units_z is not None:
                s, gs = interaction(z, units_z, self.a)
                t += v * s
                g += v * gs
            return t, g
        return terms

    def directions(self):
        out = [("b*", row) for row in self.b]
        if self.beta is not None and np.any(self.beta != 0):
            out.append(("β", self.beta))
        return out

    def used_coordinates(self, d):
        used = np.any(self.b != 0, axis=0)
        if self.beta is not None:
            used |= self.beta != 0
        return used


# --------------------------------------------------------------------------- norm target
@dataclass(frozen=True)
class NormTarget(TargetPart):
    """f*(x) = coef · ‖P_H x‖ with H spanned by the first ``d_H`` coordinates.

    Exact for Gaussian inputs through a 1-D Gauss–Jacobi quadrature (MATH §2); ‖x_H‖ is
    itself an infinite-width network with total output mass α(d_H) spread uniformly on
    the unit sphere of H, so T(b) = coef v_ρ α E_{v∼U(S^{d_H−1})} κ(b, v), X̄ = 0 (even) and
    E f*² = coef² v_ρ d_H. Sphere inputs: products are the Gaussian value / d.
    """

    d_H: int
    coef: float = 1.0
    #: Gauss–Jacobi nodes of the 1-D quadrature of T (64 reach round-off on generic points).
    n_nodes = 64

    laws = (GaussianLaw, SphereLaw)
    parity = EVEN

    def __post_init__(self):
        if int(self.d_H) != self.d_H or self.d_H < 1:
            raise ValueError(f"NormTarget.d_H must be a positive integer, got {self.d_H}")

    @property
    def alpha(self):
        return norm_target_alpha(self.d_H)

    def check_dimension(self, d):
        if self.d_H > d:
            raise ValueError(f"NormTarget.d_H = {self.d_H} exceeds d = {d}; choose d_H <= d")

    def __call__(self, x):
        return self.coef * np.linalg.norm(x[:, : self.d_H], axis=1)

    def second_moment(self, law, d):
        self.check_law(law)
        return self.coef ** 2 * _v_rho(law, d) * self.d_H

    def xbar(self, law, d):
        self.check_law(law)
        return np.zeros(d)

    def unit_terms(self, b, n_nodes=None):
        """α E_v κ(b_j, v) = E[‖x_H‖ σ(⟨b_j, x⟩)] for x ∼ N(0, I_d), and its gradient.

        Parameters
        ----------
        b : (m, d) array
        n_nodes : int, optional
            Gauss–Jacobi nodes (default :attr:`n_nodes`).

        Returns
        -------
        T : (m,) array
        grad_T : (m, d) array
        """
        b = np.ascontiguousarray(b, dtype=np.float64)
        if b.ndim != 2 or not 1 <= self.d_H <= b.shape[1]:
            raise ValueError(f"b must be (m, d) with d >= d_H = {self.d_H}, got shape {b.shape}")
        nodes, weights = sphere_coordinate_quadrature(self.d_H, n_nodes or self.n_nodes)
        out_t, out_g = sphere_average_terms(b, int(self.d_H), nodes, weights)
        alpha = self.alpha
        return alpha * out_t, alpha * out_g

    def correlation(self, b, law):
        self.check_law(law)
        t, g = self.unit_terms(b)
        v = _v_rho(law, b.shape[1])
        return self.coef * v * t, self.coef * v * g

    def correlation_hessian(self, b, law, n_nodes=None):
        """∇²T = coef v_ρ α E_v ∇²_11κ(b, v) by the 1-D quadrature of ``n_nodes`` nodes
        (default :attr:`n_nodes`, as the gradient)."""
        self.check_law(law)
        b = np.asarray(b, dtype=np.float64)
        K = self.coef * _v_rho(law, b.shape[1]) * self.alpha / (2.0 * pi)
        return _NormHessian(b, int(self.d_H), K, int(n_nodes or self.n_nodes))

    def reduce(self, blocks, law, interaction, target_nodes=64):
        """T depends on z only through ‖b_H‖² and ‖b‖²: H's columns go first and the
        full-space quadrature runs with d_H replaced by the number of those columns."""
        self.check_law(law)
        cols = blocks.leading_columns(self.d_H)
        rest = np.setdiff1d(np.arange(blocks.n_coords), cols)
        perm = np.concatenate([cols, rest])
        inv_perm = np.argsort(perm)
        n_h_cols = int(cols.size)
        nodes, weights = sphere_coordinate_quadrature(self.d_H, int(target_nodes))
        scale = self.coef * _v_rho(law, blocks.d) * self.alpha

        def terms(z):
            out_t, out_g = sphere_average_terms(np.ascontiguousarray(z[:, perm]), n_h_cols,
                                                nodes, weights)
            return scale * out_t, scale * out_g[:, inv_perm]
        return terms

    def used_coordinates(self, d):
        used = np.zeros(d, dtype=bool)
        used[: self.d_H] = True
        return used

    def rotation_blocks(self, d):
        return [np.arange(self.d_H)] if self.d_H >= 2 else []

    @property
    def subspace_dim(self):
        return self.d_H


# --------------------------------------------------------------------------- odd powers
@dataclass(frozen=True, eq=False)
class OddPowerTarget(TargetPart):
    """f*(x) = coef · Σ_k z_k x_k^p with p odd (E1 uses p = 3).

    For symmetric inputs only X̄ = E[f* x] enters the ReLU correlation, because the odd
    part of σ(z) is z/2: E[f* σ(⟨b,x⟩)] = ⟨b, X̄⟩/2. With x ∼ N(0, s² I),
    X̄_k = coef z_k s^{p+1} p!!, and E f*² = coef² ‖z‖² s^{2p} (2p−1)!!; two such parts meet
    as coef coef' ⟨z, z'⟩ s^{p+p'} (p+p'−1)!!. Gaussian inputs only.
    """

    z: object
    coef: float = 1.0
    power: int = 3

    laws = (GaussianLaw,)
    parity = ODD

    def __post_init__(self):
        object.__setattr__(self, "z", as_float_array("odd target z", self.z, 1))
        if self.power < 1 or self.power % 2 == 0:
            raise ValueError(f"OddPowerTarget.power must be an odd positive integer, got {self.power}")

    def check_dimension(self, d):
        if self.z.shape[0] != d:
            raise ValueError(f"odd target z has length {self.z.shape[0]}, expected d = {d}")

    def __call__(self, x):
        # x ** p with an integer array exponent is a slow pow(); odd powers by products
        xp = x
        x2 = x * x
        for _ in range((self.power - 1) // 2):
            xp = xp * x2
        return self.coef * xp @ self.z

    def second_moment(self, law, d):
        self.check_law(law)
        s2 = law.scale ** 2
        p = self.power
        return self.coef ** 2 * (self.z @ self.z) * s2 ** p * double_factorial(2 * p - 1)

    def cross_moment(self, other, law, d):
        if not isinstance(other, OddPowerTarget):
            return NotImplemented
        self.check_law(law)
        q = self.power + other.power
        return (self.coef * other.coef * (self.z @ other.z) * (law.scale ** 2) ** (q // 2)
                * double_factorial(q - 1))

    def xbar(self, law, d):
        self.check_law(law)
        s2 = law.scale ** 2
        p = self.power
        return self.coef * self.z * s2 ** ((p + 1) / 2) * double_factorial(p)

    def correlation(self, b, law):
        xbar = self.xbar(law, b.shape[1])
        return 0.5 * (b @ xbar), np.broadcast_to(0.5 * xbar, b.shape).copy()

    def reduce(self, blocks, law, interaction, target_nodes=64):
        xbar = self.xbar(law, blocks.d)
        outside = np.setdiff1d(np.arange(blocks.d), blocks.explicit_columns())
        if np.any(xbar[outside] != 0):
            raise ValueError("linear / odd parts of the target must vanish on the reduced blocks")
        xbar_e = np.ascontiguousarray(xbar[blocks.explicit_columns()])
        p = blocks.n_explicit

        def terms(z):
            g = np.zeros_like(z)
            g[:, :p] = 0.5 * xbar_e
            return 0.5 * (z[:, :p] @ xbar_e), g
        return terms

    def used_coordinates(self, d):
        return self.z != 0

    def directions(self):
        # for isotropic inputs X̄ ∝ z: the direction of the linear predictor w*
        return [("w*", self.z)]


def odd_cubic_target(d, rng):
    """The seed paper's E1 target: f* = C Σ z_k x_k³, z ∼ N(0, I/d), C = √(2d³/15)/‖z‖.

    With x ∼ N(0, I/d) this gives ½ E f*² = 1, ‖w*‖ = √(6d/5) and F* = 0.4.
    """
    z = rng.standard_normal(d) / sqrt(d)
    coef = sqrt(2.0 * d ** 3 / 15.0) / np.linalg.norm(z)
    return OddPowerTarget(z=z, coef=coef, power=3)


# ---------------------------------------------------------------------------- callables
@dataclass(frozen=True, eq=False)
class CallableTarget(TargetPart):
    """Any f*: (n, d) array -> (n,) array. Sampled backend only (no law has closed forms)."""

    fn: object
    name: str = "callable"

    laws = ()

    def __call__(self, x):
        return np.asarray(self.fn(x), dtype=np.float64)


# ------------------------------------------------------------------------------ the sum
class TargetSum:
    """f* = Σ_p f_p: the expectations of the sum from those of its parts.

    Parameters
    ----------
    parts : tuple of TargetPart
    """

    def __init__(self, parts):
        self.parts = tuple(parts)
        for part in self.parts:
            if not isinstance(part, TargetPart):
                raise ValueError(f"unknown target {part!r}; use Teacher, NormTarget, "
                                 "OddPowerTarget, CallableTarget or another TargetPart")

    def __call__(self, x):
        return sum(part(x) for part in self.parts)

    @property
    def parity(self):
        """EVEN or ODD when every part has that parity, else NEITHER."""
        par = {part.parity for part in self.parts}
        return par.pop() if len(par) == 1 else NEITHER

    def supports(self, law):
        return all(part.supports(law) for part in self.parts)

    def check_law(self, law):
        for part in self.parts:
            part.check_law(law)

    def check_dimension(self, d):
        for part in self.parts:
            part.check_dimension(d)

    def cross_moment(self, p, q, law, d):
        """E[f_p f_q] of two parts: 0 for opposite parities, else from either part."""
        if {p.parity, q.parity} == {EVEN, ODD}:
            return 0.0
        out = p.cross_moment(q, law, d)
        if out is NotImplemented:
            out = q.cross_moment(p, law, d)
        if out is NotImplemented:
            raise ValueError(f"no closed form for E[f_p f_q] of {type(p).__name__} and "
                             f"{type(q).__name__}: merge them into one part or use "
                             "backend='sampled'")
        return out

    def second_moment(self, law, d):
        """E f*² = Σ_p E f_p² + 2 Σ_{p<q} E[f_p f_q]."""
        parts = self.parts
        total = 0.0
        for p in parts:
            total += p.second_moment(law, d)
        for i, p in enumerate(parts):
            for q in parts[i + 1:]:
                total += 2.0 * self.cross_moment(p, q, law, d)
        return total

    def xbar(self, law, d, parity=None):
        """X̄ = Σ_p X̄_p, shape (d,); only the parts of the given parity when given."""
        total = np.zeros(d)
        for part in self.parts:
            if parity is None or part.parity == parity:
                total = total + part.xbar(law, d)
        return total

    def units(self):
        """(a*, b*) of (k,) and (k, d): every ReLU unit of the target when the target is
        those units and nothing else (Teacher parts without a linear part), else None.

        Then T(b) = v_ρ Σ_k a*_k κ(b, b*_k) and E f*² = v_ρ Σ_kl a*_k a*_l κ(b*_k, b*_l), so
        the exact backend can treat the units as particles of weight −a* (one pair sum)."""
        if not self.parts or not all(isinstance(p, Teacher) and p.beta is None
                                     for p in self.parts):
            return None
        return (np.concatenate([p.a for p in self.parts]),
                np.concatenate([p.b for p in self.parts]))

    def correlation(self, b, law, activation="relu"):
        """T(b_j) = E[f* σ(⟨b_j, x⟩)] and ∇T, shapes (m,) and (m, d).

        For ``activation='linear'`` (σ(z) = z) T(b) = ⟨b, X̄⟩ and ∇T = X̄."""
        b = np.asarray(b, dtype=np.float64)
        if activation == "linear":
            xbar = self.xbar(law, b.shape[1])
            return b @ xbar, np.broadcast_to(xbar, b.shape).copy()
        t = np.zeros(b.shape[0])
        g = np.zeros(b.shape)
        for part in self.parts:
            tp, gp = part.correlation(b, law)
            t = t + tp
            g = g + gp
        return t, g

    def correlation_hessian(self, b, law, activation="relu", n_nodes=None):
        """Σ_p ∇²T_p at the rows b (m, d), a :class:`CorrelationHessian` (zero for the
        linear activation, where T(b) = ⟨b, X̄⟩)."""
        b = np.asarray(b, dtype=np.float64)
        total = CorrelationHessian(b)
        if activation == "linear":
            return total
        for part in self.parts:
            total = total + part.correlation_hessian(b, law, n_nodes)
        return total

    def reduce(self, blocks, law, interaction, target_nodes=64):
        """Σ_p of the parts' reduced T: a function z (m, p + R) -> (T (m,), ∇_z T)."""
        fns = [part.reduce(blocks, law, interaction, target_nodes) for part in self.parts]

        def terms(z):
            t = np.zeros(z.shape[0])
            g = np.zeros_like(z)
            for fn in fns:
                tp, gp = fn(z)
                t = t + tp
                g = g + gp
            return t, g
        return terms

    def used_coordinates(self, d):
        """Union of the parts' masks (d,), or None when a part does not know its own."""
        used = np.zeros(d, dtype=bool)
        for part in self.parts:
            u = part.used_coordinates(d)
            if u is None:
                return None
            used |= u
        return used

    def rotation_blocks(self, d):
        """Blocks inside the used coordinates whose rotations leave every part invariant:
        a part invariant under them, or one that does not use their coordinates."""
        out = []
        for part in self.parts:
            for block in part.rotation_blocks(d):
                if all(any(np.array_equal(block, c) for c in q.rotation_blocks(d))
                       or not np.any(q.used_coordinates(d)[block])
                       for q in self.parts if q is not part) \
                        and not any(np.array_equal(block, c) for c in out):
                    out.append(block)
        return out
