"""The problem: input law ρ, target f*, activation σ, dimension d.

A :class:`Problem` is a frozen description; it never holds particles. The exact backend
(:mod:`meanfield.kernels.gaussian`) applies when ρ is Gaussian ``N(0, s² I_d)`` (or uniform on the
sphere, by the 1/d scaling of 1-homogeneous products) and every part of the target has a
closed-form correlation with a ReLU feature; otherwise the sampled backend is used.
"""
from dataclasses import dataclass, field

import numpy as np

from .laws import (GaussianLaw, SampledLaw, SphereLaw, boolean_cube_law, rademacher_law,
                   symmetric_mixture_law)
from .targets import (CallableTarget, NormTarget, OddPowerTarget, Teacher, TargetSum,
                      norm_target_alpha, odd_cubic_target)

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


# ------------------------------------------------------------------------------- problem
@dataclass(frozen=True, eq=False)
class Problem:
    """Population risk F(μ) = ½ E_{x∼ρ}[(f(μ; x) − f*(x))²] of a two-layer network without bias.

    Parameters
    ----------
    d : int
        Input dimension.
    target : TargetPart (Teacher, NormTarget, OddPowerTarget, CallableTarget, ...) or tuple
        The target f*; a tuple means the sum of its parts. ``target_sum`` (a
        :class:`~meanfield.models.targets.TargetSum`) holds its expectations.
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
        target_sum = TargetSum(parts)  # raises on anything that is not a target part
        target_sum.check_dimension(self.d)
        if not isinstance(self.law, (GaussianLaw, SphereLaw, SampledLaw)):
            raise ValueError(f"unknown input law {self.law!r}; use GaussianLaw, SphereLaw or SampledLaw")
        object.__setattr__(self, "target_parts", parts)
        object.__setattr__(self, "target_sum", target_sum)

    @property
    def act_code(self):
        return ACTIVATIONS[self.activation]

    @property
    def exact(self):
        """True when the exact (closed-form / quadrature) backend applies."""
        return self.activation in EXACT_ACTIVATIONS and self.target_sum.supports(self.law)

    @property
    def v_rho(self):
        """v_ρ with E[xxᵀ] = v_ρ I, or None if unknown (sampled laws)."""
        return self.law.second_moment(self.d)

    def target_values(self, x):
        """f*(x) for x of shape (n, d)."""
        x = np.asarray(x, dtype=np.float64)
        return self.target_sum(x)

    def sample_inputs(self, rng, n):
        """n inputs from ρ, shape (n, d)."""
        return self.law.sample(rng, n, self.d)
