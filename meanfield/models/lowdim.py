"""Low-dimensional targets f*(x) = f*(P_H x): moving between the full particles and the
reduced models, and the diagnostics that compare them (MATH §5).

H is the span of the first d_H coordinates (as for :class:`meanfield.models.problem.NormTarget`),
d_⊥ = d − d_H. Three descriptions of the same particle:

* full: (a, b) ∈ R × R^d (:mod:`meanfield.engine`);
* subspace-reduced: z = (b_H, ‖b_⊥‖) for the (d_H + 2)-variable flow, or (‖b_H‖, ‖b_⊥‖)
  with both blocks reduced (:mod:`meanfield.models.reduced`);
* radial (balanced, |a| = ‖b‖): sign ε = sign a, mass c = |a|‖b‖, angle to H
  θ = atan2(‖b_⊥‖, ‖b_H‖) ∈ [0, π/2] (:mod:`meanfield.models.radial1d`).

Projection is the push-forward; lifting draws the directions inside the reduced blocks
uniformly. Initial conditions of the seed paper's law (a = ±1, b uniform on S^{d−1}) are
sampled directly in reduced form: ‖b_H‖² ∼ Beta(d_H/2, d_⊥/2), ‖b_⊥‖ = √(1 − ‖b_H‖²).
"""
from math import pi

import numpy as np

__all__ = ["radial_from_reduced", "radial_from_particles", "reduced_from_radial",
           "sample_reduced_init", "sample_radial_init", "signed_masses", "angle_law",
           "distances_to_limit", "wasserstein_1d", "wasserstein_matched", "coupled_distance",
           "profile_inputs"]


def _check_d(d, d_H):
    if int(d) != d or int(d_H) != d_H or not 1 <= d_H < d:
        raise ValueError(f"need integers 1 <= d_H < d, got d_H = {d_H}, d = {d}")
    return int(d), int(d_H)


# ------------------------------------------------------------------------ coordinates
def radial_from_reduced(a, h, r, balance_tol=1e-8):
    """(ε, c, θ) of balanced particles given a, ‖b_H‖ = h and ‖b_⊥‖ = r (arrays (m,)).

    Raises ValueError if some particle is not balanced (| |a| − ‖b‖ | > balance_tol·max(1, |a|)):
    the 1-D model describes balanced particles only.
    """
    a = np.asarray(a, dtype=np.float64)
    h = np.abs(np.asarray(h, dtype=np.float64))
    r = np.abs(np.asarray(r, dtype=np.float64))
    norm = np.hypot(h, r)
    gap = np.abs(np.abs(a) - norm)
    if np.any(gap > balance_tol * np.maximum(1.0, np.abs(a))):
        raise ValueError(f"particles are not balanced (max | |a| - ||b|| | = {gap.max():.3g}); "
                         "the 1-D model needs |a| = ||b|| (e.g. the sphere/Rademacher start)")
    eps = np.where(a >= 0, 1.0, -1.0)
    return eps, np.abs(a) * norm, np.arctan2(r, h)


def radial_from_particles(particles, d_H, balance_tol=1e-8):
    """(ε, c, θ) of full balanced particles (a :class:`~meanfield.models.particles.Particles`)."""
    b = particles.b
    d, d_H = _check_d(b.shape[1], d_H)
    h = np.linalg.norm(b[:, :d_H], axis=1)
    r = np.linalg.norm(b[:, d_H:], axis=1)
    return radial_from_reduced(particles.a, h, r, balance_tol)


def reduced_from_radial(eps, c, theta):
    """(a, z) of the (a, ‖b_H‖, ‖b_⊥‖) model for balanced radial particles: a = ε√c,
    z = √c (cos θ, sin θ)."""
    rho = np.sqrt(np.asarray(c, dtype=np.float64))
    theta = np.asarray(theta, dtype=np.float64)
    return np.asarray(eps, dtype=np.float64) * rho, np.stack([rho * np.cos(theta),
                                                              rho * np.sin(theta)], axis=1)


def sample_reduced_init(m, d, d_H, rng, reduce_H=False):
    """Reduced particles with the law of the seed paper's start (a = ±1, b ∼ U(S^{d−1})).

    Returns a (m,) and z: (m, d_H + 1) = (b_H, ‖b_⊥‖) for the (d_H + 2)-variable model, or
    (m, 2) = (‖b_H‖, ‖b_⊥‖) with ``reduce_H``. ‖b_H‖² ∼ Beta(d_H/2, d_⊥/2) and b_H/‖b_H‖ is
    uniform on S^{d_H−1}.
    """
    d, d_H = _check_d(d, d_H)
    if int(m) < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    a = rng.choice([-1.0, 1.0], size=int(m))
    h = np.sqrt(rng.beta(0.5 * d_H, 0.5 * (d - d_H), size=int(m)))
    r = np.sqrt(np.maximum(1.0 - h * h, 0.0))
    if reduce_H:
        return a, np.stack([h, r], axis=1)
    u = rng.standard_normal((int(m), d_H))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return a, np.hstack([h[:, None] * u, r[:, None]])


def sample_radial_init(m, d, d_H, rng):
    """(ε, c, θ) of the seed code's start: ε = ±1, c = 1, θ = arccos √Beta(d_H/2, d_⊥/2)."""
    d, d_H = _check_d(d, d_H)
    eps = rng.choice([-1.0, 1.0], size=int(m))
    theta = np.arccos(np.sqrt(rng.beta(0.5 * d_H, 0.5 * (d - d_H), size=int(m))))
    return eps, np.ones(int(m)), theta


# ------------------------------------------------------------------------ diagnostics
def signed_masses(eps, c, w):
    """Total positive and negative output mass τ⁺([0, π/2]) = Σ_{ε=+1} w c, τ⁻ likewise."""
    mass = np.asarray(w) * np.asarray(c)
    eps = np.asarray(eps)
    return float(mass[eps > 0].sum()), float(mass[eps < 0].sum())


def angle_law(eps, c, theta, w, bins=30):
    """Mass-weighted histograms of the angle to H for τ⁺ and τ⁻.

    Returns edges (bins + 1,) on [0, π/2] and the masses per bin of τ⁺ and τ⁻ (bins,) each
    (not normalised: they sum to the total positive / negative mass)."""
    edges = np.linspace(0.0, 0.5 * pi, int(bins) + 1)
    mass = np.asarray(w) * np.asarray(c)
    pos = np.asarray(eps) > 0
    hp, _ = np.histogram(theta[pos], bins=edges, weights=mass[pos])
    hn, _ = np.histogram(theta[~pos], bins=edges, weights=mass[~pos])
    return edges, hp, hn


def distances_to_limit(eps, c, theta, w, alpha):
    """The seed paper's distances of (τ⁺, τ⁻) to the limit α δ_0 (and no negative mass).

    Returns a dict: ``w2_pos`` = W₂(τ⁺/|τ⁺|, δ_0) = (Σ w c θ² / Σ w c)^½ over ε = +1,
    ``mass_gap`` = |α − |τ⁺||, ``w2_neg`` = W₂(τ⁻/|τ⁻|, δ_{π/2}), ``mass_neg`` = |τ⁻|.
    """
    mass = np.asarray(w) * np.asarray(c)
    pos = np.asarray(eps) > 0
    mp, mn = mass[pos].sum(), mass[~pos].sum()
    w2p = np.sqrt((mass[pos] @ theta[pos] ** 2) / mp) if mp > 0 else float("nan")
    w2n = np.sqrt((mass[~pos] @ (0.5 * pi - theta[~pos]) ** 2) / mn) if mn > 0 else float("nan")
    return {"w2_pos": float(w2p), "mass_gap": float(abs(alpha - mp)), "w2_neg": float(w2n),
            "mass_neg": float(mn)}


def wasserstein_1d(u, v, u_weights=None, v_weights=None):
    """W₁ between two weighted 1-D laws (:func:`meanfield.theory.distances.wasserstein_1d`)."""
    from ..theory.distances import wasserstein_1d as w1

    return w1(u, v, u_weights, v_weights, p=1)


def wasserstein_matched(X, Y, p=2):
    """Exact W_p between two uniform empirical laws of the same size in R^k (X, Y: (n, k), or
    (n,) for k = 1): :func:`meanfield.theory.distances.wasserstein_discrete`."""
    from ..theory.distances import wasserstein_discrete

    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.shape != Y.shape:
        raise ValueError(f"need two samples of the same shape, got {X.shape} and {Y.shape}")
    return wasserstein_discrete(X, Y, p=p)


def coupled_distance(X, Y):
    """(mean_j |X_j − Y_j|²)^½ for two particle systems with a common labelling: an upper
    bound of W₂ between their laws (:func:`meanfield.theory.distances.coupled_distance`)."""
    from ..theory.distances import coupled_distance as coupled

    return coupled(X, Y)


def profile_inputs(d, d_H, r_values, rng=None, n_directions=1):
    """Inputs x = u_H + r e_⊥ (unit u_H ∈ H, unit e_⊥ ∈ H⊥) for every r in ``r_values``.

    With ``rng``, u_H and e_⊥ are ``n_directions`` independent uniform pairs (the full
    predictor depends on them at finite m); without, u_H = e_1 and e_⊥ = e_{d_H+1}.
    Returns an array (n_directions, len(r_values), d). The target is ‖x_H‖ = 1 at every x.
    """
    d, d_H = _check_d(d, d_H)
    r_values = np.asarray(r_values, dtype=np.float64)
    out = np.zeros((int(n_directions), r_values.size, d))
    for k in range(int(n_directions)):
        if rng is None:
            u_h = np.eye(d_H)[0]
            e_p = np.eye(d - d_H)[0]
        else:
            u_h = rng.standard_normal(d_H)
            e_p = rng.standard_normal(d - d_H)
            u_h /= np.linalg.norm(u_h)
            e_p /= np.linalg.norm(e_p)
        out[k, :, :d_H] = u_h
        out[k, :, d_H:] = r_values[:, None] * e_p
    return out

