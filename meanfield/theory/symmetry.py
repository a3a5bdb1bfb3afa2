"""Symmetries of particle measures: group actions, orbit-symmetric starts, symmetry defects.

An action g = (s, T), s ∈ {+1, −1} and T orthogonal (d × d), moves a particle by

    g · (a, b) = (s a, T b),

and a measure by push-forward. Since f(g#μ; x) = s f(μ; Tᵀx), the risk is invariant under g
when T#ρ = ρ and f*∘T = s f* (MATH §3), and then the flow keeps an invariant μ_0 invariant:
exactly (to round-off) for a finite start made of whole orbits, in law (defect ~ m^{−½}) for
i.i.d. starts.

Signed permutations of coordinates (coordinate permutations, reflections, the sign flip
(a, b) ↦ (−a, −b)) are stored as index maps and applied by indexing, so they are exact in
floating point; other orthogonal maps (block rotations) are applied by a matrix product.

The *symmetry defect* of μ under g is a distance between μ and g#μ:

* ``method="matching"``: the W₂ distance between the two uniform empirical measures, by an
  exact optimal transport plan (POT's network simplex, m ≤ 3000), or by a known pairing (an orbit start
  knows which particle is the image of which, :meth:`OrbitStart.pairing`);
* ``method="sliced"``: the sliced Wasserstein distance (weighted, any m): the mean of the
  1-D W_p between projections on fixed random directions of R^{1+d}. For i.i.d. starts it
  falls like m^{−½}.
"""
from dataclasses import dataclass

import numpy as np

from ..models.particles import Particles
from .distances import coupled_distance, sliced_wasserstein, wasserstein_1d, wasserstein_discrete

__all__ = [
    "ParticleAction", "identity_action", "orthogonal_map", "sign_flip", "coordinate_permutation",
    "coordinate_reflection", "block_rotation", "generate_group", "OrbitStart", "orbit_init",
    "target_equivariance_error", "wasserstein_1d", "symmetry_defect", "DEFECT_METHODS",
]

#: two group elements are the same when their matrices agree to this (entry-wise).
GROUP_TOL = 1e-9
#: largest m for the Hungarian assignment (an m × m cost matrix, O(m³) time).
MAX_MATCHING_M = 3000
DEFECT_METHODS = ("matching", "sliced")


@dataclass(frozen=True, eq=False)
class ParticleAction:
    """g · (a, b) = (sign · a, T b) with T orthogonal.

    Build it with :func:`orthogonal_map`, :func:`sign_flip`, :func:`coordinate_permutation`,
    :func:`coordinate_reflection` or :func:`block_rotation`; compose with ``g * h`` (apply h
    first) and invert with :meth:`inverse`.

    Attributes
    ----------
    sign : float
        +1 or −1 (the action on a).
    T : (d, d) array
        Orthogonal matrix acting on b.
    perm, flips : (d,) arrays or None
        When T is a signed permutation, (T b)_i = flips_i b_{perm_i} (exact application).
    name : str
    """

    sign: float
    T: np.ndarray
    perm: np.ndarray = None
    flips: np.ndarray = None
    name: str = ""

    @property
    def d(self):
        return self.T.shape[0]

    @property
    def exact(self):
        """True when applied by indexing (signed permutation): no rounding."""
        return self.perm is not None

    def apply_b(self, b):
        """T b for every row of b (m, d) -> (m, d)."""
        b = np.asarray(b, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != self.d:
            raise ValueError(f"b must have shape (m, {self.d}), got {b.shape}")
        if self.perm is not None:
            return b[:, self.perm] * self.flips
        return b @ self.T.T

    def apply(self, particles):
        """g#μ: a new :class:`Particles` with (sign·a_j, T b_j) and the same weights."""
        if not isinstance(particles, Particles):
            raise ValueError("apply() takes meanfield.Particles; use apply_b for arrays")
        return Particles(self.sign * particles.a, self.apply_b(particles.b),
                         particles.weights.copy())

    def apply_inputs(self, x):
        """Tᵀ x for inputs x (n, d): f(g#μ; x) = sign · f(μ; Tᵀ x)."""
        x = np.asarray(x, dtype=np.float64)
        return x @ self.T

    def __mul__(self, other):
        """(self ∘ other): apply ``other`` first."""
        if not isinstance(other, ParticleAction) or other.d != self.d:
            raise ValueError("compose actions on the same dimension d")
        name = f"{self.name}∘{other.name}"
        if self.exact and other.exact:
            # (T_g T_h b)_i = f^g_i (T_h b)_{p^g_i} = f^g_i f^h_{p^g_i} b_{p^h_{p^g_i}}
            perm = other.perm[self.perm]
            flips = self.flips * other.flips[self.perm]
            return _signed_permutation(self.sign * other.sign, perm, flips, name)
        return ParticleAction(self.sign * other.sign, self.T @ other.T, name=name)

    def inverse(self):
        """g⁻¹ = (sign, Tᵀ)."""
        if self.exact:
            inv = np.empty_like(self.perm)
            inv[self.perm] = np.arange(self.d)
            return _signed_permutation(self.sign, inv, self.flips[inv], self.name + "⁻¹")
        return ParticleAction(self.sign, self.T.T.copy(), name=self.name + "⁻¹")

    def same_as(self, other, tol=GROUP_TOL):
        """True when both actions are the same map (to ``tol`` entry-wise)."""
        return (self.sign == other.sign and self.d == other.d
                and bool(np.max(np.abs(self.T - other.T)) <= tol))


def _signed_permutation(sign, perm, flips, name):
    d = perm.size
    T = np.zeros((d, d))
    T[np.arange(d), perm] = flips
    return ParticleAction(float(sign), T, np.asarray(perm, dtype=np.int64),
                          np.asarray(flips, dtype=np.float64), name)


def _check_d(d):
    if int(d) != d or d < 1:
        raise ValueError(f"d must be a positive integer, got {d}")
    return int(d)


def identity_action(d):
    """The identity (1, I)."""
    d = _check_d(d)
    return _signed_permutation(1.0, np.arange(d), np.ones(d), "id")


def orthogonal_map(T, name="T"):
    """(a, b) ↦ (a, T b) for an orthogonal T (d, d); signed permutations are detected and
    applied exactly."""
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 2 or T.shape[0] != T.shape[1]:
        raise ValueError(f"T must be a square (d, d) matrix, got shape {T.shape}")
    if not np.all(np.isfinite(T)) or not np.allclose(T.T @ T, np.eye(T.shape[0]), atol=1e-10):
        raise ValueError("T must be orthogonal (Tᵀ T = I to 1e-10); orthonormalise it first, "
                         "e.g. with numpy.linalg.qr")
    return _maybe_signed(1.0, T, name)


def _maybe_signed(sign, T, name):
    nz = np.abs(T) > 0.5
    if np.all(nz.sum(axis=1) == 1) and np.all(np.isin(T, (-1.0, 0.0, 1.0))):
        perm = np.argmax(nz, axis=1)
        return _signed_permutation(sign, perm, T[np.arange(T.shape[0]), perm], name)
    return ParticleAction(float(sign), T.copy(), name=name)


def sign_flip(d, T=None, name=None):
    """(a, b) ↦ (−a, T b), by default T = −I: the symmetry of an odd target (f*∘T = −f*)."""
    d = _check_d(d)
    if T is None:
        return _signed_permutation(-1.0, np.arange(d), -np.ones(d), name or "(a,b)↦(−a,−b)")
    g = orthogonal_map(T)
    if g.d != d:
        raise ValueError(f"T must be ({d}, {d}), got {g.T.shape}")
    if g.exact:
        return _signed_permutation(-1.0, g.perm, g.flips, name or "(a,b)↦(−a,Tb)")
    return ParticleAction(-1.0, g.T, name=name or "(a,b)↦(−a,Tb)")


def coordinate_permutation(perm, name=None):
    """b ↦ (b_{perm_0}, ..., b_{perm_{d−1}}): a permutation of input coordinates (exact)."""
    perm = np.asarray(perm)
    d = perm.size
    if perm.ndim != 1 or perm.dtype.kind not in "iu" or not np.array_equal(np.sort(perm),
                                                                          np.arange(d)):
        raise ValueError(f"perm must be a permutation of 0..d−1, got {perm.tolist()}")
    return _signed_permutation(1.0, perm.astype(np.int64), np.ones(d),
                               name or f"perm{tuple(int(i) for i in perm)}")


def coordinate_reflection(d, coords, name=None):
    """b_i ↦ −b_i for i in ``coords`` (exact)."""
    d = _check_d(d)
    coords = np.atleast_1d(np.asarray(coords))
    if coords.dtype.kind not in "iu" or coords.size == 0 or coords.min() < 0 or coords.max() >= d:
        raise ValueError(f"coords must be indices in [0, {d}), got {coords.tolist()}")
    flips = np.ones(d)
    flips[coords] = -1.0
    return _signed_permutation(1.0, np.arange(d), flips, name or f"reflect{tuple(coords.tolist())}")


def block_rotation(d, block, angle=None, R=None, name=None):
    """Rotate the coordinates ``block`` of b by R (k × k orthogonal), or by ``angle`` in the
    plane of the block's first two coordinates.

    Parameters
    ----------
    d : int
    block : sequence of int (k,)
        Distinct coordinates in [0, d).
    angle : float, optional
        Rotation angle (radians) in the plane (block[0], block[1]).
    R : (k, k) array, optional
        Orthogonal matrix acting on the block.
    """
    d = _check_d(d)
    block = np.asarray(block)
    k = block.size
    if (block.ndim != 1 or block.dtype.kind not in "iu" or k < 2 or block.min() < 0
            or block.max() >= d or np.unique(block).size != k):
        raise ValueError(f"block must list at least 2 distinct coordinates in [0, {d}), "
                         f"got {block.tolist()}")
    if (angle is None) == (R is None):
        raise ValueError("give exactly one of angle= (radians) or R= (a (k, k) orthogonal matrix)")
    if R is None:
        R = np.eye(k)
        c, s = np.cos(angle), np.sin(angle)
        R[0, 0], R[0, 1], R[1, 0], R[1, 1] = c, -s, s, c
        label = name or f"rot{tuple(block.tolist())}({angle:.4g})"
    else:
        R = np.asarray(R, dtype=np.float64)
        if R.shape != (k, k) or not np.allclose(R.T @ R, np.eye(k), atol=1e-10):
            raise ValueError(f"R must be an orthogonal ({k}, {k}) matrix")
        label = name or f"rot{tuple(block.tolist())}"
    T = np.eye(d)
    T[np.ix_(block, block)] = R
    return _maybe_signed(1.0, T, label)


def generate_group(generators, max_size=1000):
    """All elements of the finite group generated by ``generators`` (identity first).

    Breadth-first closure under right multiplication by the generators; elements are
    identified when their matrices agree to GROUP_TOL.

    Raises
    ------
    ValueError
        If the closure exceeds ``max_size`` elements (the group is infinite, e.g. a rotation
        by an irrational angle, or larger than allowed).
    """
    gens = list(generators)
    if not gens:
        raise ValueError("give at least one generator")
    d = gens[0].d
    if any(not isinstance(g, ParticleAction) or g.d != d for g in gens):
        raise ValueError("generators must be ParticleAction objects on one dimension d")
    elements = [identity_action(d)]
    frontier = [elements[0]]
    while frontier:
        new = []
        for h in frontier:
            for g in gens:
                x = h * g
                if not any(x.same_as(e) for e in elements):
                    x = ParticleAction(x.sign, x.T, x.perm, x.flips, _short(x.name))
                    elements.append(x)
                    new.append(x)
                    if len(elements) > max_size:
                        raise ValueError(f"the group generated has more than {max_size} elements "
                                         "(infinite, or raise max_size); a rotation must have "
                                         "angle 2π/n for a finite group")
        frontier = new
    return elements


def _short(name):
    name = name.replace("id∘", "").replace("∘id", "")
    return name if len(name) < 60 else name[:57] + "..."


@dataclass
class OrbitStart:
    """An orbit-symmetric start: every base particle with all its images under a finite group.

    Attributes
    ----------
    particles : Particles
        m = m_base · |G| particles; particle k·|G| + i is ``group[i]`` applied to base
        particle k; weight = base weight / |G|.
    group : list of ParticleAction
        The group elements (identity first).
    """

    particles: Particles
    group: list

    def element_index(self, action):
        """Index of ``action`` in :attr:`group` (ValueError if it is not an element)."""
        for i, e in enumerate(self.group):
            if action.same_as(e):
                return i
        raise ValueError(f"action {action.name!r} is not an element of this group")

    def pairing(self, action):
        """π (m,) with action · θ_j = θ_{π_j} at the start (and, by symmetry, at all times
        of the flow): particle (k, i) goes to (k, index of action ∘ group[i])."""
        n = len(self.group)
        h = self.element_index(action)
        hg = np.array([self.element_index(self.group[h] * g) for g in self.group])
        m_base = self.particles.m // n
        k = np.repeat(np.arange(m_base), n)
        i = np.tile(np.arange(n), m_base)
        return k * n + hg[i]


def orbit_init(base, generators, max_size=1000):
    """Orbit-symmetric start from ``base`` particles for the finite group of ``generators``.

    Parameters
    ----------
    base : Particles
        m_base base particles (any weights).
    generators : sequence of ParticleAction
    max_size : int
        Largest group accepted.

    Returns
    -------
    OrbitStart
        m_base · |G| particles invariant under every element of the group.
    """
    if not isinstance(base, Particles):
        raise ValueError("base must be meanfield.Particles")
    group = generate_group(generators, max_size)
    if group[0].d != base.d:
        raise ValueError(f"generators act on d = {group[0].d}, base particles have d = {base.d}")
    n = len(group)
    a = np.empty((base.m, n))
    b = np.empty((base.m, n, base.d))
    for i, g in enumerate(group):
        a[:, i] = g.sign * base.a
        b[:, i] = g.apply_b(base.b)
    w = np.repeat(base.weights / n, n)
    return OrbitStart(Particles(a.reshape(-1), b.reshape(-1, base.d), w / w.sum()), group)


def target_equivariance_error(problem, action, rng, n=512):
    """max |f*(T x) − s f*(x)| over n inputs drawn from the problem's law, relative to
    max |f*(x)|: 0 (round-off) when the target has the symmetry the action needs.

    The law's invariance (T#ρ = ρ) is not checked here: Gaussian and spherical laws are
    invariant under every orthogonal T; a sampled law must be checked by its owner."""
    if action.d != problem.d:
        raise ValueError(f"action acts on d = {action.d}, the problem has d = {problem.d}")
    x = problem.sample_inputs(rng, int(n))
    y = problem.target_values(x)
    ty = problem.target_values(x @ action.T.T)
    size = float(np.max(np.abs(y))) or 1.0
    return float(np.max(np.abs(ty - action.sign * y))) / size


# --------------------------------------------------------------------------- distances
def _stack(particles):
    return np.concatenate([particles.a[:, None], particles.b], axis=1)


def symmetry_defect(particles, action, method="matching", pairing=None, n_projections=64, p=1,
                    seed=0, relative=False):
    """Distance between μ and g#μ (0 iff μ is g-invariant, for ``matching``).

    Parameters
    ----------
    particles : Particles
        μ = Σ_j w_j δ_{θ_j}, θ_j = (a_j, b_j) ∈ R^{1+d}.
    action : ParticleAction
    method : {"matching", "sliced"}
        ``matching``: W₂(μ, g#μ) for uniform weights, by exact optimal transport
        (:func:`meanfield.theory.distances.wasserstein_discrete`, m ≤ MAX_MATCHING_M), or, with ``pairing``,
        (Σ_j w_j ‖g·θ_j − θ_{π_j}‖²)^{1/2} (an upper bound on W₂, exact for orbit starts;
        any weights). ``sliced``: (mean over directions u of W_p(⟨u, θ⟩#μ, ⟨u, θ⟩#g#μ)^p)^{1/p}
        with ``n_projections`` directions uniform on S^d drawn from ``seed`` (the same
        directions for every call with the same seed and d).
    pairing : (m,) int array, optional
        Known image indices (e.g. :meth:`OrbitStart.pairing`).
    p : float
        Order of the sliced distance (W₁ by default: its m^{−½} rate needs only a finite
        first moment).
    relative : bool
        Divide by (Σ_j w_j ‖θ_j‖²)^{1/2}.

    Returns
    -------
    float
    """
    if not isinstance(particles, Particles):
        raise ValueError("particles must be meanfield.Particles")
    if not isinstance(action, ParticleAction) or action.d != particles.d:
        raise ValueError(f"action must be a ParticleAction on d = {particles.d}")
    theta = _stack(particles)
    image = _stack(action.apply(particles))
    w = particles.weights
    if method == "matching":
        if pairing is not None:
            pairing = np.asarray(pairing)
            if pairing.shape != (particles.m,) or pairing.dtype.kind not in "iu" \
                    or not np.array_equal(np.sort(pairing), np.arange(particles.m)):
                raise ValueError(f"pairing must be a permutation of 0..{particles.m - 1}")
            if not np.allclose(w[pairing], w, rtol=1e-12, atol=0):
                raise ValueError("pairing maps particles to particles of different weight")
            dist = coupled_distance(image, theta[pairing], w)
        else:
            if particles.m > MAX_MATCHING_M:
                raise ValueError(f"m = {particles.m} > {MAX_MATCHING_M} is too large for the "
                                 "assignment; pass pairing= or use method='sliced'")
            if not np.all(w == w[0]):
                raise ValueError("matching without a pairing needs uniform weights; use "
                                 "method='sliced' or pass pairing=")
            dist = wasserstein_discrete(image, theta, p=2)
    elif method == "sliced":
        if int(n_projections) < 1:
            raise ValueError(f"n_projections must be >= 1, got {n_projections}")
        rng = np.random.default_rng(seed)
        u = rng.standard_normal((int(n_projections), theta.shape[1]))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        dist = sliced_wasserstein(theta, image, u, w, w, p)
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(DEFECT_METHODS)}")
    if relative:
        size = float(np.sqrt(w @ np.sum(theta ** 2, axis=1)))
        dist = dist / size if size > 0 else dist
    return dist
