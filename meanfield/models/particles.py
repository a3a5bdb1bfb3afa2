"""Particles (a_j, b_j) with weights, and the initialisations a researcher uses.

A finite particle measure μ_m = Σ_j w_j δ_{(a_j, b_j)} with Σ_j w_j = 1 (uniform w_j = 1/m
is the mean-field scaling f = (1/m) Σ_j a_j σ(⟨b_j, x⟩)). All randomness comes from a numpy
``Generator`` passed in by the caller.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Particles", "init_sphere_rademacher", "init_gaussian", "init_paired", "load_particles",
           "save_particles", "INITS", "make_init"]


@dataclass(eq=False)
class Particles:
    """Particle measure.

    Parameters
    ----------
    a : (m,) array
        Output weights.
    b : (m, d) array
        Input weights.
    weights : (m,) array, optional
        Non-negative masses summing to 1; uniform 1/m when omitted.
    """

    a: np.ndarray
    b: np.ndarray
    weights: np.ndarray = None

    def __post_init__(self):
        a = np.ascontiguousarray(np.asarray(self.a, dtype=np.float64))
        b = np.ascontiguousarray(np.asarray(self.b, dtype=np.float64))
        if a.ndim != 1:
            raise ValueError(f"particles a must be a 1-D array of shape (m,), got shape {a.shape}")
        if b.ndim != 2 or b.shape[0] != a.shape[0]:
            raise ValueError(f"particles b must have shape (m, d) = ({a.shape[0]}, d), "
                             f"got {b.shape}")
        if a.shape[0] < 1:
            raise ValueError("need at least one particle (m >= 1)")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise ValueError("particles contain NaN or inf; pass finite a and b")
        if self.weights is None:
            w = np.full(a.shape[0], 1.0 / a.shape[0])
        else:
            w = np.ascontiguousarray(np.asarray(self.weights, dtype=np.float64))
            if w.shape != a.shape or np.any(w < 0) or not np.all(np.isfinite(w)):
                raise ValueError("weights must be a finite non-negative array of shape (m,)")
            total = w.sum()
            if not np.isclose(total, 1.0, rtol=1e-12, atol=0):
                raise ValueError(f"weights must sum to 1 (they sum to {total!r}); normalise them")
        self.a, self.b, self.weights = a, b, w

    @property
    def m(self):
        return self.a.shape[0]

    @property
    def d(self):
        return self.b.shape[1]

    def copy(self):
        return Particles(self.a.copy(), self.b.copy(), self.weights.copy())

    def Q(self):
        """Per-particle a_j² − ‖b_j‖², shape (m,)."""
        return self.a ** 2 - np.einsum("ij,ij->i", self.b, self.b)


def _unit_sphere(rng, m, d):
    b = rng.standard_normal((m, d))
    return b / np.linalg.norm(b, axis=1, keepdims=True)


def init_sphere_rademacher(m, d, rng):
    """The seed paper's start: a = ±1 with probability ½, b uniform on S^{d−1} (balanced)."""
    return Particles(rng.choice([-1.0, 1.0], size=m), _unit_sphere(rng, m, d))


def init_gaussian(m, d, rng, scale_a=1.0, scale_b=None):
    """a ∼ N(0, scale_a²), b ∼ N(0, scale_b² I_d) with scale_b = 1/√d by default."""
    if scale_b is None:
        scale_b = 1.0 / np.sqrt(d)
    return Particles(scale_a * rng.standard_normal(m), scale_b * rng.standard_normal((m, d)))


def init_paired(base):
    """Orbit-symmetric start: every particle (a, b) together with (−a, −b).

    Takes the first ⌈m/2⌉ particles of ``base`` and appends their images, so the measure is
    exactly invariant under (a, b) ↦ (−a, −b); m must be even.
    """
    m = base.m
    if m % 2:
        raise ValueError(f"a paired start needs an even number of particles, got m = {m}")
    half_a, half_b = base.a[: m // 2], base.b[: m // 2]
    return Particles(np.concatenate([half_a, -half_a]), np.concatenate([half_b, -half_b]))


def load_particles(path, d=None):
    """Read particles from an .npz file with arrays ``a`` (m,) and ``b`` (m, d) (and optional
    ``weights``). Raises ValueError naming the problem if the file is missing or malformed."""
    from ..io import load_array_file

    try:
        arrays = load_array_file(path, ("a", "b"), ("weights",))
    except ValueError as exc:
        raise ValueError(f"particle file {exc}") from None
    a, b, w = arrays["a"], arrays["b"], arrays.get("weights")
    p = Particles(a, b, w)
    if d is not None and p.d != d:
        raise ValueError(f"particle file {path} has d = {p.d}, expected d = {d}")
    return p


def save_particles(path, particles):
    """Write particles to .npz (arrays ``a``, ``b``, ``weights``), atomically."""
    from ..io import atomic_savez

    return atomic_savez(path, a=particles.a, b=particles.b, weights=particles.weights)


#: names accepted by :func:`make_init` (and the CLI's ``init`` key).
INITS = ("sphere", "gaussian", "paired", "file")


def make_init(name, m, d, rng, init_file=None):
    """Initial particles by name: ``sphere`` (a = ±1, b uniform on the sphere), ``gaussian``,
    ``paired`` (sphere start made orbit-symmetric under (a, b) ↦ (−a, −b)), or ``file``."""
    if name == "sphere":
        return init_sphere_rademacher(m, d, rng)
    if name == "gaussian":
        return init_gaussian(m, d, rng)
    if name == "paired":
        return init_paired(init_sphere_rademacher(m, d, rng))
    if name == "file":
        if init_file is None:
            raise ValueError("init 'file' needs init_file (an .npz with arrays a and b)")
        return load_particles(init_file, d)
    raise ValueError(f"unknown init {name!r}; choose one of {', '.join(INITS)}")
