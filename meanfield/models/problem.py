"""The problem: input law ρ, target f*, activation σ, dimension d.

A :class:`Problem` is a frozen description; it never holds particles. The exact backend
(:mod:`meanfield.kernels.gaussian`) applies when ρ is Gaussian ``N(0, s² I_d)`` (or uniform on the
sphere, by the 1/d scaling of 1-homogeneous products) and every part of the target has a
closed-form correlation with a ReLU feature; otherwise the sampled backend is used.
"""
from dataclasses import dataclass, field
from math import exp, lgamma, pi, sqrt

import numpy as np

__all__ = [
    "GaussianLaw", "SphereLaw", "SampledLaw", "rademacher_law", "boolean_cube_law",
    "symmetric_mixture_law",
    "Teacher", "NormTarget", "OddPowerTarget", "CallableTarget",
    "Problem", "ACTIVATIONS", "norm_target_alpha", "odd_cubic_target",
]

#: activation name -> integer code used by compiled kernels (never pass callables to kernels).
ACTIVATIONS = {"relu": 0, "linear": 1, "leaky_relu": 2, "tanh": 3}
#: activations with exact Gaussian expectations.
EXACT_ACTIVATIONS = ("relu", "linear")


def _as_float_array(name, value, ndim):
    arr = np.ascontiguousarray(np.asarray(value, dtype=np.float64))
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; pass finite values")
    return arr


# ----------------------------------------------------------------------------- input laws
@dataclass(frozen=True)
class GaussianLaw:
    """x ~ N(0, s² I_d). ``scale`` is s > 0 (E1 of the seed paper uses s = 1/√d)."""

    scale: float = 1.0

    def __post_init__(self):
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"GaussianLaw.scale must be a positive number, got {self.scale}")

    def second_moment(self, d):
        """v_ρ with E[x xᵀ] = v_ρ I."""
        return self.scale ** 2

    def sample(self, rng, n, d):
        return self.scale * rng.standard_normal((n, d))


@dataclass(frozen=True)
class SphereLaw:
    """x uniform on the unit sphere S^{d-1}: exact for 1-homogeneous products (Gaussian value / d)."""

    def second_moment(self, d):
        return 1.0 / d

    def sample(self, rng, n, d):
        x = rng.standard_normal((n, d))
        return x / np.linalg.norm(x, axis=1, keepdims=True)


@dataclass(frozen=True, eq=False)
class SampledLaw:
    """Any input law, for the sampled backend only.

    Give either ``sampler(rng, n, d) -> (n, d) array`` (fresh samples: online SGD) or ``data``,
    a fixed (n, d) array (full-batch gradient on that data set, or minibatches drawn from it).
    ``name`` is used in provenance and error messages.
    """

    sampler: object = None
    data: object = None
    name: str = "sampled"

    def __post_init__(self):
        if (self.sampler is None) == (self.data is None):
            raise ValueError("SampledLaw needs exactly one of sampler= (a function (rng, n) -> "
                             "(n, d) array) or data= (an (n, d) array)")
        if self.data is not None:
            object.__setattr__(self, "data", _as_float_array("SampledLaw.data", self.data, 2))

    def second_moment(self, d):
        return None

    def sample(self, rng, n, d):
        if self.data is not None:
            idx = rng.integers(0, self.data.shape[0], size=n)
            return self.data[idx]
        x = np.ascontiguousarray(np.asarray(self.sampler(rng, n, d), dtype=np.float64))
        if x.shape != (n, d):
            raise ValueError(f"sampler returned shape {x.shape}, expected ({n}, {d})")
        return x



def rademacher_law():
    """x uniform on {−1, +1}^d (symmetric, E[xxᵀ] = I): sampled backend."""
    return SampledLaw(sampler=lambda rng, n, d: rng.choice([-1.0, 1.0], size=(n, d)),
                      name="rademacher")


def boolean_cube_law():
    """x uniform on {0, 1}^d (not symmetric): sampled backend."""
    return SampledLaw(sampler=lambda rng, n, d: rng.integers(0, 2, size=(n, d)).astype(np.float64),
                      name="boolean_cube")


def symmetric_mixture_law(shift=1.0, scale=0.5):
    """½ N(shift·1/√d, scale² I) + ½ N(−shift·1/√d, scale² I): symmetric, not Gaussian."""
    def sampler(rng, n, d):
        signs = rng.choice([-1.0, 1.0], size=(n, 1))
        return signs * shift / np.sqrt(d) + scale * rng.standard_normal((n, d))
    return SampledLaw(sampler=sampler, name="symmetric_mixture")


# ------------------------------------------------------------------------------- targets
def norm_target_alpha(d_H):
    """α(d_H) = 2√π Γ((d_H+1)/2)/Γ(d_H/2): ‖x_H‖ = α E_{v∼U(S^{d_H−1})} σ(⟨v, x_H⟩)."""
    if d_H < 1:
        raise ValueError("d_H must be >= 1")
    return 2.0 * sqrt(pi) * exp(lgamma((d_H + 1) / 2.0) - lgamma(d_H / 2.0))


@dataclass(frozen=True, eq=False)
class Teacher:
    """f*(x) = Σ_k a*_k σ(⟨b*_k, x⟩) + ⟨β, x⟩ (σ = ReLU), exact for Gaussian and sphere inputs.

    Parameters
    ----------
    a : (k,) array
        Output weights of the teacher's units (may be empty).
    b : (k, d) array
        Input weights of the teacher's units.
    beta : (d,) array, optional
        Linear part.
    """

    a: object
    b: object
    beta: object = None

    def __post_init__(self):
        a = _as_float_array("teacher a", self.a, 1)
        b = _as_float_array("teacher b", self.b, 2)
        if b.shape[0] != a.shape[0]:
            raise ValueError(f"teacher a has {a.shape[0]} units but b has {b.shape[0]} rows")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        if self.beta is not None:
            beta = _as_float_array("teacher beta", self.beta, 1)
            if beta.shape[0] != b.shape[1]:
                raise ValueError(f"teacher beta has length {beta.shape[0]}, expected d = {b.shape[1]}")
            object.__setattr__(self, "beta", beta)

    @property
    def d(self):
        return self.b.shape[1]

    def __call__(self, x):
        out = np.maximum(x @ self.b.T, 0.0) @ self.a
        if self.beta is not None:
            out = out + x @ self.beta
        return out


@dataclass(frozen=True)
class NormTarget:
    """f*(x) = coef · ‖P_H x‖ with H spanned by the first ``d_H`` coordinates.

    Exact for Gaussian inputs through a 1-D Gauss–Jacobi quadrature (MATH §2); ‖x_H‖ is
    itself an infinite-width network with total output mass α(d_H) spread uniformly on
    the unit sphere of H.
    """

    d_H: int
    coef: float = 1.0

    def __post_init__(self):
        if int(self.d_H) != self.d_H or self.d_H < 1:
            raise ValueError(f"NormTarget.d_H must be a positive integer, got {self.d_H}")

    @property
    def alpha(self):
        return norm_target_alpha(self.d_H)

    def __call__(self, x):
        return self.coef * np.linalg.norm(x[:, : self.d_H], axis=1)


@dataclass(frozen=True, eq=False)
class OddPowerTarget:
    """f*(x) = coef · Σ_k z_k x_k^p with p odd (E1 uses p = 3).

    For symmetric inputs only X̄ = E[f* x] enters the ReLU correlation, because the odd
    part of σ(z) is z/2: E[f* σ(⟨b,x⟩)] = ⟨b, X̄⟩/2. With x ∼ N(0, s² I),
    X̄_k = coef z_k s^{p+1} p!!, and E f*² = coef² ‖z‖² s^{2p} (2p−1)!!.
    """

    z: object
    coef: float = 1.0
    power: int = 3

    def __post_init__(self):
        object.__setattr__(self, "z", _as_float_array("odd target z", self.z, 1))
        if self.power < 1 or self.power % 2 == 0:
            raise ValueError(f"OddPowerTarget.power must be an odd positive integer, got {self.power}")

    def __call__(self, x):
        # x ** p with an integer array exponent is a slow pow(); odd powers by products
        xp = x
        x2 = x * x
        for _ in range((self.power - 1) // 2):
            xp = xp * x2
        return self.coef * xp @ self.z


def _double_factorial(n):
    out = 1
    while n > 1:
        out *= n
        n -= 2
    return out


def odd_cubic_target(d, rng):
    """The seed paper's E1 target: f* = C Σ z_k x_k³, z ∼ N(0, I/d), C = √(2d³/15)/‖z‖.

    With x ∼ N(0, I/d) this gives ½ E f*² = 1, ‖w*‖ = √(6d/5) and F* = 0.4.
    """
    z = rng.standard_normal(d) / sqrt(d)
    coef = sqrt(2.0 * d ** 3 / 15.0) / np.linalg.norm(z)
    return OddPowerTarget(z=z, coef=coef, power=3)


@dataclass(frozen=True, eq=False)
class CallableTarget:
    """Any f*: (n, d) array -> (n,) array. Sampled backend only."""

    fn: object
    name: str = "callable"

    def __call__(self, x):
        return np.asarray(self.fn(x), dtype=np.float64)


# ------------------------------------------------------------------------------- problem
@dataclass(frozen=True, eq=False)
class Problem:
    """Population risk F(μ) = ½ E_{x∼ρ}[(f(μ; x) − f*(x))²] of a two-layer network without bias.

    Parameters
    ----------
    d : int
        Input dimension.
    target : Teacher, NormTarget, OddPowerTarget, CallableTarget or tuple of them
        The target f*; a tuple means the sum of its parts.
    law : GaussianLaw, SphereLaw or SampledLaw
        Input law ρ.
    activation : str
        One of ``ACTIVATIONS``; ``relu`` and ``linear`` are exact for Gaussian inputs.
    leaky_slope : float
        Negative-side slope of ``leaky_relu``.
    """

    d: int
    target: object
    law: object = field(default_factory=GaussianLaw)
    activation: str = "relu"
    leaky_slope: float = 0.01

    def __post_init__(self):
        if int(self.d) != self.d or self.d < 1:
            raise ValueError(f"d must be a positive integer, got {self.d}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of "
                             + ", ".join(ACTIVATIONS))
        parts = self.target if isinstance(self.target, tuple) else (self.target,)
        for part in parts:
            if not isinstance(part, (Teacher, NormTarget, OddPowerTarget, CallableTarget)):
                raise ValueError(f"unknown target {part!r}; use Teacher, NormTarget, "
                                 "OddPowerTarget or CallableTarget")
            if isinstance(part, Teacher) and part.d != self.d:
                raise ValueError(f"teacher input dimension {part.d} differs from d = {self.d}")
            if isinstance(part, NormTarget) and part.d_H > self.d:
                raise ValueError(f"NormTarget.d_H = {part.d_H} exceeds d = {self.d}; "
                                 "choose d_H <= d")
            if isinstance(part, OddPowerTarget) and part.z.shape[0] != self.d:
                raise ValueError(f"odd target z has length {part.z.shape[0]}, expected d = {self.d}")
        if not isinstance(self.law, (GaussianLaw, SphereLaw, SampledLaw)):
            raise ValueError(f"unknown input law {self.law!r}; use GaussianLaw, SphereLaw or SampledLaw")
        object.__setattr__(self, "target_parts", parts)

    @property
    def act_code(self):
        return ACTIVATIONS[self.activation]

    @property
    def exact(self):
        """True when the exact (closed-form / quadrature) backend applies."""
        if self.activation not in EXACT_ACTIVATIONS:
            return False
        if isinstance(self.law, GaussianLaw):
            return all(not isinstance(p, CallableTarget) for p in self.target_parts)
        if isinstance(self.law, SphereLaw):
            # only 1-homogeneous targets: products are the Gaussian value / d
            return all(isinstance(p, (Teacher, NormTarget)) for p in self.target_parts)
        return False

    @property
    def v_rho(self):
        """v_ρ with E[xxᵀ] = v_ρ I, or None if unknown (sampled laws)."""
        return self.law.second_moment(self.d)

    def target_values(self, x):
        """f*(x) for x of shape (n, d)."""
        x = np.asarray(x, dtype=np.float64)
        return sum(part(x) for part in self.target_parts)

    def sample_inputs(self, rng, n):
        """n inputs from ρ, shape (n, d)."""
        return self.law.sample(rng, n, self.d)
