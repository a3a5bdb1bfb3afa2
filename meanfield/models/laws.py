"""Input laws ρ: Gaussian N(0, s² I_d), uniform on the sphere, or any sampled law.

``rotation_invariant`` says whether every orthogonal map of R^d leaves the law invariant
(the symmetry checks of :mod:`meanfield.theory.conservation` need it).
"""
from dataclasses import dataclass

import numpy as np

__all__ = ["GaussianLaw", "SphereLaw", "SampledLaw", "rademacher_law", "boolean_cube_law",
           "symmetric_mixture_law", "as_float_array"]


def as_float_array(name, value, ndim):
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
    #: every orthogonal map of R^d leaves N(0, s² I) invariant.
    rotation_invariant = True

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

    rotation_invariant = True

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
    #: unknown in general: the symmetry checks do not apply.
    rotation_invariant = False

    def __post_init__(self):
        if (self.sampler is None) == (self.data is None):
            raise ValueError("SampledLaw needs exactly one of sampler= (a function (rng, n) -> "
                             "(n, d) array) or data= (an (n, d) array)")
        if self.data is not None:
            object.__setattr__(self, "data", as_float_array("SampledLaw.data", self.data, 2))

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
