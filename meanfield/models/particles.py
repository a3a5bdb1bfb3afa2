"""Particles (a_j, b_j) with weights, and the initialisations a researcher uses.

A finite particle measure μ_m = Σ_j w_j δ_{(a_j, b_j)} with Σ_j w_j = 1 (uniform w_j = 1/m
is the mean-field scaling f = (1/m) Σ_j a_j σ(⟨b_j, x⟩)). All randomness comes from a numpy
``Generator`` passed in by the caller.
"""
from dataclasses import dataclass

import numpy as np

__all__ = ["Particles", "as_particles", "layer_rates", "charge_terms", "rescaling_charge", "charge_scale", "dissipation",
           "orbit_rescale", "init_sphere_rademacher", "init_gaussian", "init_paired", "load_particles",
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
        """Per-particle a_j² − ‖b_j‖², shape (m,) (:func:`rescaling_charge`)."""
        return rescaling_charge(self.a, self.b)


# ------------------------------------------------------------------ the rescaling charge
# Q and the dissipation live here, the lowest layer: the particle field (its projection and
# Q-drift record), the block-reduced field and the theory checks all use them, and theory/
# imports models/, never the reverse.
def layer_rates(rate_a, rate_b):
    """The per-layer rates (η_a, η_b) as floats; ValueError unless both are positive."""
    if not (rate_a > 0 and rate_b > 0):
        raise ValueError(f"rate_a and rate_b must be positive, got {rate_a}, {rate_b}")
    return float(rate_a), float(rate_b)


def as_particles(a, b):
    """``a`` (m,) and ``b`` (m, d) as float64 arrays; ValueError for any other layout."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 2 or b.shape[0] != a.shape[0]:
        raise ValueError(f"need a of shape (m,) and b of shape (m, d); got {a.shape} and {b.shape}")
    return a, b


def charge_terms(a, b, rate_a=1.0, rate_b=1.0):
    """The two terms of the rescaling charge, a_j²/η_a and ‖b_j‖²/η_b, each (m,).

    Parameters
    ----------
    a : (m,) array
    b : (m, d) array
        (or the reduced coordinates z of a block-reduced particle: ‖z_j‖ = ‖b_j‖).
    rate_a, rate_b : float
        Per-layer rates η_a, η_b > 0.

    Returns
    -------
    A, C : (m,) arrays
    """
    a, b = as_particles(a, b)
    ra, rb = layer_rates(rate_a, rate_b)
    return a * a / ra, np.einsum("ij,ij->i", b, b) / rb


def rescaling_charge(a, b, rate_a=1.0, rate_b=1.0):
    """Q_j = a_j²/η_a − ‖b_j‖²/η_b, the Noether charge of (a, b) ↦ (a/s, s b), (m,).

    Conserved by the flow without weight decay, Q_j(t) = e^{−2λt} Q_j(0) with it, for any
    per-layer rates (MATH §6; :mod:`meanfield.theory.conservation`)."""
    A, C = charge_terms(a, b, rate_a, rate_b)
    return A - C


def charge_scale(a, b, rate_a=1.0, rate_b=1.0):
    """M_j = a_j²/η_a + ‖b_j‖²/η_b: the size of the terms whose difference is Q_j, (m,).

    Rounding errors of Q_j are a few EPS·M_j, whatever the value of Q_j (Q_j = 0 for balanced
    particles)."""
    A, C = charge_terms(a, b, rate_a, rate_b)
    return A + C


def dissipation(va, vb, weights, rate_a=1.0, rate_b=1.0):
    """D = Σ_j w_j (v_{a,j}²/η_a + ‖v_{b,j}‖²/η_b) = −dE/dt (the metric of the rates).

    Parameters
    ----------
    va : (m,) array
    vb : (m, d) array
        Velocities of a and b.
    weights : (m,) array
    rate_a, rate_b : float

    Returns
    -------
    float
    """
    A, C = charge_terms(va, vb, rate_a, rate_b)
    w = np.asarray(weights, dtype=np.float64)
    # ndarray methods, not np.any/np.all: a record runs this at every step
    if w.shape != A.shape or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError(f"weights must be a finite non-negative array of shape {A.shape}")
    # two weighted sums (not w @ (A + C)): the order the flow's records have always used
    return float(w @ A + w @ C)


def orbit_rescale(a, b, q_target, rate_a=1.0, rate_b=1.0):
    """Move each particle along its rescaling orbit (a, b) ↦ (s a, b/s), s > 0, so that
    a²/rate_a − ‖b‖²/rate_b = q_target. The predictor is unchanged (σ is 1-homogeneous).

    Solves A y² − Q y − C = 0 for y = s² (A = a²/rate_a, C = ‖b‖²/rate_b) with the root
    formula that does not cancel for either sign of Q (MATH §6).

    Parameters
    ----------
    a : (m,) array
    b : (m, d) array
    q_target : (m,) array

    Returns
    -------
    a_new : (m,) array
    b_new : (m, d) array
    """
    A, C = charge_terms(a, b, rate_a, rate_b)
    Q = q_target
    disc = np.sqrt(Q * Q + 4.0 * A * C)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(Q >= 0, (Q + disc) / (2.0 * A), 2.0 * C / (disc - Q))
    # a = 0 and b = 0 are fixed points of the orbit: leave them alone
    y = np.where(np.isfinite(y) & (y > 0), y, 1.0)
    s = np.sqrt(y)
    return a * s, b / s[:, None]


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
