"""Conservation laws of the particle flow (Noether), with measured and predicted drift.

Every symmetry of the risk constrains the gradient path (MATH §6). For particles
θ_j = (a_j, b_j) with masses w_j and velocities v_j = −η ∘ ∇_θ V_μ(θ_j) − λ θ_j (per-layer
rates η = (η_a, η_b) on the gradient, weight decay λ decoupled from them, as
:class:`meanfield.models.flow.Simulation` defines them), with the quadratic form
⟨x, y⟩_S = x_a y_a/η_a − ⟨x_b, y_b⟩/η_b:

* **Rescaling charge** (σ 1-homogeneous): Q_j = ⟨θ_j, θ_j⟩_S = a_j²/η_a − ‖b_j‖²/η_b.
  Noether's identity ⟨θ, v(θ)⟩_S = −a g_a + ⟨b, g_b⟩ − λQ = −λQ (Euler's identity
  a g_a = ⟨b, g_b⟩ for 1-homogeneous σ) gives dQ_j/dt = −2λ Q_j, so Q_j(t) = e^{−2λt} Q_j(0)
  for any rates and any λ ≥ 0. Mean-field form: the law of e^{2λt} Q under μ_t is constant,
  measured by a weighted 1-D Wasserstein distance.
* **Balance matrix** (linear σ only): M = B Bᵀ/η_b − a aᵀ/η_a, every entry, M(t) = e^{−2λt} M(0);
  diag M = −Q.
* **Zero angular momentum** (rotations of a coordinate block that leave ρ and f* invariant):
  L = Σ_j w_j (P b_j (P v_j)ᵀ − P v_j (P b_j)ᵀ) = 0 at every state, for the exact population
  field; a finite batch breaks it.
* **Energy identity** (time translation): the flow is the gradient flow of
  E = F + (λ/2) Σ_j w_j (a_j²/η_a + ‖b_j‖²/η_b) in the metric Σ_j w_j (δa²/η_a + ‖δb‖²/η_b)
  (v_j = −η ∘ ∂E/∂θ_j / w_j), so E(t) + ∫_0^t D ds = E(0) with
  D = Σ_j w_j (v_{a,j}²/η_a + ‖v_{b,j}‖²/η_b).

Discrete versions (derived here). For a Runge–Kutta step θ⁺ = θ + dt Σ_i β_i k_i with stage
points Y_i = θ + dt Σ_l α_il k_l and k_i = v(Y_i), writing θ = Y_i − dt Σ_l α_il k_l in the
cross term of ⟨θ⁺, θ⁺⟩_S gives the exact algebraic identity

    Q⁺ − Q = 2 dt Σ_i β_i ⟨Y_i, k_i⟩_S + dt² Σ_il c_il ⟨k_i, k_l⟩_S,
    c_il = β_i β_l − β_i α_il − β_l α_li        (Cooper's matrix),

and Noether's identity at every stage, ⟨Y_i, k_i⟩_S = −λ Q(Y_i), turns it into a prediction
that uses only the stage points and velocities:

    Q⁺ − Q = −2λ dt Σ_i β_i Q(Y_i) + dt² Σ_il c_il ⟨k_i, k_l⟩_S.

Euler: Q⁺ − Q = −2λ dt Q + dt² ⟨k, k⟩_S, and with k = −η ∘ g − λθ,
⟨k, k⟩_S = η_a g_a² − η_b ‖g_b‖² + λ² Q, so Q⁺ = (1 − λdt)² Q + dt² (η_a g_a² − η_b ‖g_b‖²):
the law of MATH §6 (step η = dt) for any rates. Against e^{−2λt} the Euler drift is O(dt)
both from the dt² term and from (1 − λdt)² = e^{−2λdt} + O(dt²). Heun (λ = 0):
dt²/4 ⟨k_1 − k_2, k_1 − k_2⟩_S = O(dt⁴) per step, so its fixed-horizon drift is O(dt³).
Projected Euler restores Q to e^{−2λt} Q(0) exactly: zero. Heavy-ball momentum
(u⁺ = μu + dt k, θ⁺ = θ + u⁺): Q⁺ − Q = 2μ⟨θ, u⟩_S − 2λ dt Q + ⟨u⁺, u⁺⟩_S; the first term
does not cancel, so momentum breaks the law. At fixed μ the drift is still O(dt) over a fixed
horizon (the iteration is a consistent, rescaled gradient-flow discretisation); at fixed
friction γ (μ = 1 − γ√dt, the heavy-ball ODE θ'' + γθ' = v) it tends to a non-zero limit.
The balance matrix obeys the same identities with ⟨x, y⟩_S replaced by the matrix form
X_b Y_bᵀ/η_b − x_a y_aᵀ/η_a (symmetrised) and Q by M.

:class:`LawMonitor` observes a :class:`~meanfield.models.flow.Simulation` step by step (a stage
hook of the loop: it receives the stage points and velocities the integrator really used, no
extra evaluations) and checks every
identity above; :func:`trajectory_laws` does the post-hoc part for stored snapshots.
"""
from dataclasses import dataclass

import numpy as np

from ..engine.integrators import INTEGRATORS
# Q_j, its scale M_j and the dissipation D are defined once, with the particles (the flow
# field needs them too); re-exported here, where the laws about them live.
from ..models.particles import (as_particles, charge_scale, dissipation, layer_rates,
                                rescaling_charge)

__all__ = [
    "EPS", "rescaling_charge", "charge_scale", "ChargeLaw", "charge_law", "charge_drift",
    "charge_law_distance", "balance_matrix", "angular_momentum", "angular_momentum_residual",
    "rotation_blocks", "RK_TABLEAUS", "cooper_matrix", "predicted_charge_increment",
    "predicted_balance_increment", "momentum_charge_increment", "momentum_balance_increment",
    "lyapunov_energy", "dissipation", "energy_residual", "predicted_energy_residual",
    "PREDICTED_CHARGE_SLOPE", "PREDICTED_ENERGY_SLOPE", "loglog_slope", "LawRow", "LawMonitor",
    "trajectory_laws", "CRITERIA", "VERDICT_TOLERANCES", "law_verdict",
]

#: machine epsilon of float64; identities "to a few ulp" are measured in units of EPS·M_j
#: with M_j = a_j²/η_a + ‖b_j‖²/η_b the magnitude of the terms that make up Q_j.
EPS = float(np.finfo(np.float64).eps)

#: m above which the m × m balance matrix is not formed by the monitor (memory m² floats).
MAX_BALANCE_M = 2000


# ----------------------------------------------------------------------------- validation
def _weights(weights, m):
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be a finite non-negative array of shape ({m},)")
    return w


# ----------------------------------------------------------------------- rescaling charge
# rescaling_charge and charge_scale: meanfield.models.particles (imported above)
@dataclass(frozen=True)
class ChargeLaw:
    """What the flow says about Q_j: Q_j(t) = e^{−decay_rate·t} Q_j(0).

    Attributes
    ----------
    decay_rate : float
        2λ (0 without weight decay), whatever the rates.
    statement : str
        The law in words.
    """

    decay_rate: float
    statement: str


def charge_law(weight_decay=0.0, rate_a=1.0, rate_b=1.0):
    """The rescaling-charge law for the engine's velocity v = −η ∘ g − λθ.

    ⟨θ, v⟩_S = −λQ (Noether) gives dQ/dt = −2λQ, Q = a²/η_a − ‖b‖²/η_b: the law closes for
    any rates η_a, η_b > 0 and any λ ≥ 0 because the decay is not multiplied by the rates.

    Parameters
    ----------
    weight_decay : float
        λ ≥ 0.
    rate_a, rate_b : float
        η_a, η_b > 0 (they define Q, not the decay rate).

    Returns
    -------
    ChargeLaw
    """
    ra, rb = layer_rates(rate_a, rate_b)
    lam = float(weight_decay)
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay}")
    charge = "a² − ‖b‖²" if (ra, rb) == (1.0, 1.0) else "a²/η_a − ‖b‖²/η_b"
    if lam == 0.0:
        return ChargeLaw(0.0, f"{charge} conserved per particle")
    return ChargeLaw(2.0 * lam, f"{charge} = e^(−2λt) × initial per particle (λ = {lam:g}"
                     + (f", η = ({ra:g}, {rb:g}))" if (ra, rb) != (1.0, 1.0) else ")"))


def charge_drift(q0, q, t, decay_rate=0.0):
    """Q_j(t) − e^{−κt} Q_j(0) for every particle, shape (m,); κ = 2λ is
    ``charge_law(...).decay_rate``."""
    q0 = np.asarray(q0, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if q0.shape != q.shape or q0.ndim != 1:
        raise ValueError(f"q0 and q must be 1-D arrays of one shape, got {q0.shape}, {q.shape}")
    if not np.isfinite(decay_rate):
        raise ValueError(f"decay_rate must be a finite number (2λ), got {decay_rate}")
    return q - np.exp(-decay_rate * t) * q0


def charge_law_distance(q0, q, weights, t=0.0, decay_rate=0.0):
    """Mean-field form of the charge law: W₁ between the weighted laws of Q under μ_t and
    under the scaled initial measure, W₁(Σ_j w_j δ_{Q_j(t)}, Σ_j w_j δ_{e^{−κt} Q_j(0)}).

    Zero for the flow; it ignores particle labels (permutation invariant), so it also
    applies to measures compared without a correspondence.
    """
    from .distances import wasserstein_1d

    q0 = np.asarray(q0, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if q0.ndim != 1 or q.ndim != 1:
        raise ValueError("q0 and q must be 1-D arrays")
    w = _weights(weights, q.shape[0])
    if q0.shape != q.shape:
        raise ValueError("q0 and q must have the same length (pass each law's own weights "
                         "by calling meanfield.theory.distances.wasserstein_1d otherwise)")
    return wasserstein_1d(q, np.exp(-decay_rate * t) * q0, w, w)


# ----------------------------------------------------------------------- balance matrix
def balance_matrix(a, b, rate_a=1.0, rate_b=1.0):
    """M = B Bᵀ/η_b − a aᵀ/η_a, entries ⟨b_i, b_j⟩/η_b − a_i a_j/η_a, shape (m, m).

    Conserved entry by entry for the linear activation (with weight decay λ, for any rates:
    M(t) = e^{−2λt} M(0)); for ReLU only its diagonal (−Q_j) is.
    """
    a, b = as_particles(a, b)
    ra, rb = layer_rates(rate_a, rate_b)
    if a.shape[0] > 20000:
        raise ValueError(f"m = {a.shape[0]} makes the m × m balance matrix too large; "
                         "use a subset of particles")
    return b @ b.T / rb - np.outer(a, a) / ra


# ----------------------------------------------------------------------- angular momentum
def _block_basis(block, d):
    """Coordinate indices (1-D int) or an orthonormal basis (d, k) -> projector function."""
    arr = np.asarray(block)
    if arr.ndim == 1 and arr.dtype.kind in "iu":
        if arr.size == 0 or arr.min() < 0 or arr.max() >= d or np.unique(arr).size != arr.size:
            raise ValueError(f"a coordinate block must list distinct indices in [0, {d}); "
                             f"got {arr.tolist()}")
        return lambda x: x[:, arr]
    if arr.ndim == 2 and arr.shape[0] == d:
        basis = np.asarray(arr, dtype=np.float64)
        if not np.allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-10):
            raise ValueError("a block basis must have orthonormal columns (Uᵀ U = I)")
        return lambda x: x @ basis
    raise ValueError(f"block must be coordinate indices (k,) or an orthonormal basis ({d}, k); "
                     f"got an array of shape {arr.shape}")


def angular_momentum(b, vb, weights, block, block2=None):
    """L = Σ_j w_j (P b_j (P' v_j)ᵀ − P v_j (P' b_j)ᵀ), the Noether charge of rotations.

    Parameters
    ----------
    b, vb : (m, d) arrays
        Input weights and their velocities db_j/dt.
    weights : (m,) array
    block : int array (k,) or (d, k) orthonormal basis
        The block P (coordinates or basis of a subspace).
    block2 : same, optional
        The block P' (default P). With P = P' the result is antisymmetric (k, k), zero when
        the risk is invariant under rotations of that block; with P ≠ P' it is the
        off-diagonal block (a control: no symmetry mixes two different blocks).

    Returns
    -------
    (k, k') array
    """
    b = np.asarray(b, dtype=np.float64)
    vb = np.asarray(vb, dtype=np.float64)
    if b.ndim != 2 or vb.shape != b.shape:
        raise ValueError(f"b and vb must be (m, d) arrays of one shape, got {b.shape}, {vb.shape}")
    w = _weights(weights, b.shape[0])
    p1 = _block_basis(block, b.shape[1])
    p2 = p1 if block2 is None else _block_basis(block2, b.shape[1])
    if block2 is None:
        x = (w[:, None] * p1(b)).T @ p1(vb)
        return x - x.T  # exactly antisymmetric
    b1, v1, b2, v2 = p1(b), p1(vb), p2(b), p2(vb)
    return (w[:, None] * b1).T @ v2 - (w[:, None] * v1).T @ b2


def angular_momentum_residual(b, vb, weights, block, block2=None):
    """‖L‖_F / Σ_j w_j (‖P b_j‖‖P' v_j‖ + ‖P v_j‖‖P' b_j‖): L relative to the size of its
    terms, in [0, 1]; round-off (~1e-16) when the law holds. 0 when every term is 0."""
    L = angular_momentum(b, vb, weights, block, block2)
    b = np.asarray(b, dtype=np.float64)
    vb = np.asarray(vb, dtype=np.float64)
    p1 = _block_basis(block, b.shape[1])
    p2 = p1 if block2 is None else _block_basis(block2, b.shape[1])
    n = lambda x: np.linalg.norm(x, axis=1)  # noqa: E731
    scale = float(np.asarray(weights) @ (n(p1(b)) * n(p2(vb)) + n(p1(vb)) * n(p2(b))))
    return float(np.linalg.norm(L)) / scale if scale > 0 else 0.0


def rotation_blocks(problem):
    """Coordinate blocks whose rotations leave the input law and the target invariant.

    The law must be rotation invariant (:class:`GaussianLaw` or :class:`SphereLaw`). Then
    ``H_perp`` = the coordinates no target part depends on (each part's
    ``used_coordinates``: the first d_H coordinates for :class:`NormTarget`, the support of
    the teacher's b* and β, of the odd target's z), and ``H`` = the one block inside the used
    coordinates whose rotations leave every part invariant (``rotation_blocks``: the first
    d_H coordinates of a norm target, when no other part uses them). Blocks of size < 2 have
    no rotations and are left out.

    Returns
    -------
    dict
        name -> int array of coordinates; empty when nothing applies (sampled laws, callable
        targets).
    """
    if not problem.law.rotation_invariant:
        return {}
    d = problem.d
    target = problem.target_sum
    used = target.used_coordinates(d)
    if used is None:  # a part that does not know its coordinates (callable targets)
        return {}
    blocks = {}
    inside = target.rotation_blocks(d)
    if len(inside) == 1:
        blocks["H"] = inside[0]
    perp = np.flatnonzero(~used)
    if perp.size >= 2:
        blocks["H_perp"] = perp
    return blocks


# --------------------------------------------------------------- discrete charge identities
#: Butcher tableaux (α (s, s), β (s,)) of the explicit Runge–Kutta integrators of
#: :mod:`meanfield.engine.integrators` (taken from the registry: the embedded pairs' β is the weight
#: vector of the solution they propagate); :class:`LawMonitor` checks at run time that the stage points
#: the integrator really used agree with them.
RK_TABLEAUS = {name: cls.tableau for name, cls in INTEGRATORS.items()
               if cls.tableau is not None}

#: predicted log–log slope of the fixed-horizon charge drift against dt (None: round-off or
#: broken). Heun's 3 follows from its exact per-step drift dt²/4 ⟨k₁−k₂, k₁−k₂⟩_S.
PREDICTED_CHARGE_SLOPE = {"euler": 1.0, "heun": 3.0, "rk4": 4.0, "euler_projected": None,
                          "momentum": 1.0, "heavy_ball": 0.0}

#: predicted slope of the discrete energy-identity residual (integrator order, with its own
#: quadrature of D: left Riemann, trapezoid, Simpson).
PREDICTED_ENERGY_SLOPE = {"euler": 1.0, "euler_projected": 1.0, "heun": 2.0, "rk4": 4.0,
                          "momentum": None}


def cooper_matrix(integrator):
    """c_il = β_i β_l − β_i α_il − β_l α_li for a Runge–Kutta tableau (s, s).

    Q⁺ − Q = 2dt Σ_i β_i ⟨Y_i, k_i⟩_S + dt² Σ_il c_il ⟨k_i, k_l⟩_S for any quadratic form S;
    c = 0 would make the method conserve every quadratic invariant (Gauss methods)."""
    if integrator not in RK_TABLEAUS:
        raise ValueError(f"no tableau for {integrator!r}; choose one of {', '.join(RK_TABLEAUS)}")
    alpha, beta = RK_TABLEAUS[integrator]
    bb = np.outer(beta, beta)
    ba = beta[:, None] * alpha
    return bb - ba - ba.T


def _sform(xa, xb, ya, yb, ra, rb):
    """⟨x, y⟩_S per particle: x_a y_a/η_a − ⟨x_b, y_b⟩/η_b, (m,)."""
    return xa * ya / ra - np.einsum("ij,ij->i", xb, yb) / rb


def _mform(xa, xb, ya, yb, ra, rb):
    """Matrix form between particles, orientation of M: X_b Y_bᵀ/η_b − x_a y_aᵀ/η_a, (m, m)."""
    return xb @ yb.T / rb - np.outer(xa, ya) / ra


def _check_stages(stages):
    if not stages:
        raise ValueError("stages is empty: pass the (Y_a, Y_b, k_a, k_b) of every stage")
    for st in stages:
        if len(st) != 4:
            raise ValueError("each stage must be a tuple "
                             "(Y_a (m,), Y_b (m, d), k_a (m,), k_b (m, d))")


def predicted_charge_increment(stages, dt, integrator, weight_decay=0.0, rate_a=1.0, rate_b=1.0):
    """Predicted Q⁺ − Q (per particle) of one Runge–Kutta step from its stages:

        −2λ dt Σ_i β_i Q(Y_i) + dt² Σ_il c_il ⟨k_i, k_l⟩_S,   Q(Y) = Y_a²/η_a − ‖Y_b‖²/η_b.

    Uses the Noether identity ⟨Y_i, k_i⟩_S = −λ Q(Y_i) (velocity k = −η ∘ g − λY, weight
    decay outside the rates) instead of the computed inner product, so a measured increment
    that matches it to a few ulp checks a g_a = ⟨b, g_b⟩ at every stage.

    Parameters
    ----------
    stages : list of (Y_a (m,), Y_b (m, d), k_a (m,), k_b (m, d))
        Stage points and stage velocities, in the tableau's order.
    dt : float
    integrator : str
        ``euler``, ``euler_projected`` (the Euler part, before projection), ``heun`` or ``rk4``.
    weight_decay : float
        λ of the run.
    rate_a, rate_b : float
        η_a, η_b of the run (they define ⟨·,·⟩_S).

    Returns
    -------
    (m,) array
    """
    _check_stages(stages)
    ra, rb = layer_rates(rate_a, rate_b)
    c = cooper_matrix(integrator)
    beta = RK_TABLEAUS[integrator][1]
    if len(stages) != beta.size:
        raise ValueError(f"{integrator} has {beta.size} stages, got {len(stages)}")
    lam = float(weight_decay)
    out = np.zeros_like(np.asarray(stages[0][0], dtype=np.float64))
    if lam:
        for i, (ya, yb, _, _) in enumerate(stages):
            out -= 2.0 * lam * dt * beta[i] * _sform(ya, yb, ya, yb, ra, rb)
    quad = np.zeros_like(out)
    s = len(stages)
    for i in range(s):
        for l in range(s):
            if c[i, l] != 0.0:
                quad += c[i, l] * _sform(stages[i][2], stages[i][3], stages[l][2], stages[l][3],
                                         ra, rb)
    return out + dt * dt * quad


def predicted_balance_increment(stages, dt, integrator, weight_decay=0.0, rate_a=1.0, rate_b=1.0):
    """Predicted M⁺ − M (m, m) of one Runge–Kutta step, linear activation only:

        −2λ dt Σ_i β_i M(Y_i) + dt² Σ_il c_il (K_{b,i} K_{b,l}ᵀ/η_b − k_{a,i} k_{a,l}ᵀ/η_a).

    Noether's identity for the linear network (g_{a,j} = ⟨b_j, c⟩, g_{b,j} = a_j c with
    c = E[(f − f*) x]): (Y_b K_bᵀ + K_b Y_bᵀ)/η_b − (Y_a K_aᵀ + K_a Y_aᵀ)/η_a = −2λ M(Y),
    M(Y) = Y_b Y_bᵀ/η_b − Y_a Y_aᵀ/η_a, for every pair of particles (the gradient parts cancel
    pairwise, a_i⟨b_j, c⟩ − a_j⟨b_i, c⟩ + a_j⟨b_i, c⟩ − a_i⟨b_j, c⟩ = 0)."""
    _check_stages(stages)
    ra, rb = layer_rates(rate_a, rate_b)
    c = cooper_matrix(integrator)
    beta = RK_TABLEAUS[integrator][1]
    if len(stages) != beta.size:
        raise ValueError(f"{integrator} has {beta.size} stages, got {len(stages)}")
    lam = float(weight_decay)
    m = np.asarray(stages[0][0]).shape[0]
    out = np.zeros((m, m))
    if lam:
        for i, (ya, yb, _, _) in enumerate(stages):
            out -= 2.0 * lam * dt * beta[i] * _mform(ya, yb, ya, yb, ra, rb)
    s = len(stages)
    for i in range(s):
        for l in range(s):
            if c[i, l] != 0.0:
                out += dt * dt * c[i, l] * _mform(stages[i][2], stages[i][3], stages[l][2],
                                                  stages[l][3], ra, rb)
    return out


def momentum_charge_increment(a, b, ua, ub, ka, kb, dt, momentum, weight_decay=0.0, rate_a=1.0,
                              rate_b=1.0):
    """Predicted Q⁺ − Q of one heavy-ball step u⁺ = μu + dt k, θ⁺ = θ + u⁺:
    2μ⟨θ, u⟩_S − 2λ dt Q + ⟨u⁺, u⁺⟩_S (from Q⁺ − Q = 2⟨θ, u⁺⟩_S + ⟨u⁺, u⁺⟩_S and
    ⟨θ, k⟩_S = −λQ). The first term is why momentum breaks the law.

    Parameters
    ----------
    a, b : state before the step; ua, ub : momentum buffers before the step;
    ka, kb : the velocity v(θ) used by the step.
    """
    ra, rb = layer_rates(rate_a, rate_b)
    mu = float(momentum)
    ua1 = mu * ua + dt * ka
    ub1 = mu * ub + dt * kb
    lin = 2.0 * mu * _sform(a, b, ua, ub, ra, rb)
    if weight_decay:
        lin -= 2.0 * weight_decay * dt * _sform(a, b, a, b, ra, rb)
    return lin + _sform(ua1, ub1, ua1, ub1, ra, rb)


def momentum_balance_increment(a, b, ua, ub, ka, kb, dt, momentum, weight_decay=0.0, rate_a=1.0,
                               rate_b=1.0):
    """Matrix version of :func:`momentum_charge_increment` (linear activation), (m, m):
    μ(N + Nᵀ) − 2λ dt M + U_b⁺ U_b⁺ᵀ/η_b − u_a⁺ u_a⁺ᵀ/η_a with N = B U_bᵀ/η_b − a u_aᵀ/η_a."""
    ra, rb = layer_rates(rate_a, rate_b)
    mu = float(momentum)
    ua1 = mu * ua + dt * ka
    ub1 = mu * ub + dt * kb
    cross = mu * _mform(a, b, ua, ub, ra, rb)
    out = cross + cross.T
    if weight_decay:
        out -= 2.0 * weight_decay * dt * _mform(a, b, a, b, ra, rb)
    return out + _mform(ua1, ub1, ua1, ub1, ra, rb)


# ------------------------------------------------------------------------------- energy
def lyapunov_energy(risk, a, b, weights, weight_decay=0.0, rate_a=1.0, rate_b=1.0):
    """E = F(μ) + (λ/2) Σ_j w_j (a_j²/η_a + ‖b_j‖²/η_b): the functional the flow descends.

    With v = −η ∘ g − λθ the velocity is −η ∘ ∂E/∂θ_j / w_j (the decay λθ = η ∘ λθ/η), so
    dE/dt = −Σ_j w_j (v_a²/η_a + ‖v_b‖²/η_b) = −:func:`dissipation`.

    Parameters
    ----------
    risk : float
        F(μ).
    a : (m,) array
    b : (m, d) array
    weights : (m,) array
    weight_decay : float
    rate_a, rate_b : float

    Returns
    -------
    float
    """
    a, b = as_particles(a, b)
    w = _weights(weights, a.shape[0])
    ra, rb = layer_rates(rate_a, rate_b)
    reg = 0.5 * weight_decay * float(w @ charge_scale(a, b, ra, rb)) if weight_decay else 0.0
    return float(risk) + reg


def energy_residual(energy, diss, dt, integrator, t=None):
    """E_N − E_0 + (the integrator's quadrature of D over [0, N dt]), per recorded step.

    Quadrature: left Riemann sum for ``euler``, ``euler_projected`` and ``momentum`` (the
    discrete descent identity E_{n+1} = E_n − dt D_n + O(dt²)), trapezoid for ``heun``,
    Simpson for ``rk4`` (scipy's composite rule, odd N included), so the residual is
    O(dt^order) over a fixed horizon.

    Parameters
    ----------
    energy, diss : (N + 1,) arrays
        E_n and D_n at every step n = 0..N (record every step).

    Returns
    -------
    (N + 1,) array
        Residual at every step n (0 at n = 0).
    """
    from scipy.integrate import cumulative_simpson, cumulative_trapezoid

    e = np.asarray(energy, dtype=np.float64)
    dd = np.asarray(diss, dtype=np.float64)
    if e.ndim != 1 or dd.shape != e.shape or e.size < 1:
        raise ValueError("energy and diss must be 1-D arrays of one length N + 1 >= 1")
    if t is not None and INTEGRATORS.get(integrator) is not None \
            and INTEGRATORS[integrator].adaptive:
        # steps of varying size: the trapezoid over the step ends (order 2 in the step)
        quad = cumulative_trapezoid(dd, np.asarray(t, dtype=np.float64), initial=0.0)
    elif integrator in ("euler", "euler_projected", "momentum"):
        quad = np.concatenate([[0.0], dt * np.cumsum(dd[:-1])])
    elif integrator == "heun":
        quad = cumulative_trapezoid(dd, dx=dt, initial=0.0)
    elif integrator == "rk4":
        quad = cumulative_simpson(dd, dx=dt, initial=0.0) if dd.size >= 3 else \
            cumulative_trapezoid(dd, dx=dt, initial=0.0)
    else:
        raise ValueError(f"unknown integrator {integrator!r}")
    return e - e[0] + quad


def predicted_energy_residual(diss, dt, integrator, momentum=0.9):
    """Leading-order prediction of :func:`energy_residual` at the last step, or None.

    * ``euler``: E_{n+1} − E_n + dt D_n = ½dt² ⟨v, ∇²E v⟩ + O(dt³) and dD/dt = −2⟨v, ∇²E v⟩,
      so the sum is (dt/4)(D_0 − D_N) + O(dt²).
    * ``momentum`` (fixed μ, slowly varying velocity): the buffer is
      u_n ≈ dt v (1 − μ^{n+1})/(1 − μ), so E_N − E_0 ≈ −dt Σ_n D_n (1 − μ^{n+1})/(1 − μ) and
      the residual ≈ dt Σ_n D_n (1 − (1 − μ^{n+1})/(1 − μ)): O(1), the law is broken.
    * other integrators: None (only the order is predicted, see PREDICTED_ENERGY_SLOPE).
    """
    dd = np.asarray(diss, dtype=np.float64)
    if integrator == "euler":
        return 0.25 * dt * (dd[0] - dd[-1])
    if integrator == "momentum":
        n = np.arange(dd.size - 1)
        mu = float(momentum)
        return float(dt * np.sum(dd[:-1] * (1.0 - (1.0 - mu ** (n + 1)) / (1.0 - mu))))
    return None


def loglog_slope(x, y):
    """Least-squares slope of log y against log x (NaN if fewer than two positive points);
    the slope of :func:`meanfield.theory.rates.fit_power_law`."""
    from .rates import fit_power_law

    return fit_power_law(x, y).slope


# ------------------------------------------------------------------------------ reports
#: how a law row's measurement is judged against its prediction; each row names one.
#: ``slope``: |measured − predicted| ≤ tol (log–log slopes); ``ulps``: measured ≤ tol (a per-step
#: identity in ulps); ``relative``: |measured − predicted| ≤ tol·|predicted| (a leading-order
#: prediction with an O(dt) relative correction); ``roundoff``: measured ≤ tol (a relative
#: quantity that is zero in exact arithmetic); ``sum_of_steps``: |measured − predicted| ≤
#: tol + 1e-6·|predicted| (summed exact per-step identities); ``info``: reported, not judged
#: (a broken law, a control, or only an order is predicted).
CRITERIA = ("slope", "ulps", "relative", "roundoff", "sum_of_steps", "info")

#: the thresholds of :data:`CRITERIA` (what "agrees with the prediction" means)
VERDICT_TOLERANCES = {
    "slope": 0.2,          # fitted slope within this of the predicted one
    "ulps": 16,            # per-step identities: a few ulp of M_j
    "relative": 0.1,       # a leading-order prediction, O(dt) relative correction
    "roundoff": 1e-12,     # "zero to round-off" for relative quantities
    "sum_of_steps": 1e-10,  # summed per-step identities: ≤ 16·EPS per step, ≤ 10⁴ steps
}


@dataclass
class LawRow:
    """One line of a law table.

    ``measured`` and ``predicted`` are in the unit ``unit``; ``predicted`` is NaN when only
    a statement (``basis``) is predicted (e.g. "broken", "O(dt^3)"). ``criterion`` (one of
    :data:`CRITERIA`) says how the two are compared (:func:`law_verdict`); ``integrator`` is
    the time stepper of the measurement ("" when none applies).
    """

    law: str
    setting: str
    measured: float
    predicted: float
    unit: str
    basis: str
    note: str = ""
    criterion: str = "info"
    integrator: str = ""

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {self.criterion!r}")

    def as_dict(self):
        return {"law": self.law, "setting": self.setting, "measured": float(self.measured),
                "predicted": float(self.predicted), "unit": self.unit, "basis": self.basis,
                "note": self.note, "criterion": self.criterion, "integrator": self.integrator}

    def verdict(self):
        """The structured verdict of this row (see :func:`law_verdict`)."""
        return law_verdict(self.as_dict())


def law_verdict(row, tolerances=None):
    """Judge one law row: measured against predicted under the row's criterion.

    Parameters
    ----------
    row : dict or LawRow
        Needs ``law``, ``measured``, ``predicted``, ``criterion`` (one of :data:`CRITERIA`);
        ``integrator`` and ``setting`` are copied when present.
    tolerances : dict, optional
        Overrides of :data:`VERDICT_TOLERANCES`.

    Returns
    -------
    dict
        Plain JSON-able record: ``law``, ``integrator``, ``setting``, ``measured``,
        ``predicted``, ``criterion``, ``tolerance`` (the threshold used, None for info),
        ``ok`` (True / False; None when not judged: criterion ``info`` or a non-finite
        measurement or prediction) and ``verdict`` ("ok", "FAIL" or "info").
    """
    if isinstance(row, LawRow):
        row = row.as_dict()
    tol = {**VERDICT_TOLERANCES, **(tolerances or {})}
    crit = row["criterion"]
    if crit not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {crit!r}")
    m, p = float(row["measured"]), float(row["predicted"])
    ok = None
    if crit != "info" and np.isfinite(m) and np.isfinite(p):
        t = tol[crit]
        if crit == "slope":
            ok = abs(m - p) <= t
        elif crit in ("ulps", "roundoff"):
            ok = m <= t
        elif crit == "relative":
            ok = abs(m - p) <= t * abs(p)
        else:  # sum_of_steps
            ok = abs(m - p) <= t + 1e-6 * abs(p)
        ok = bool(ok)
    return {"law": row["law"], "integrator": row.get("integrator", ""),
            "setting": row.get("setting", ""), "measured": m, "predicted": p,
            "criterion": crit, "tolerance": None if ok is None else tol[crit], "ok": ok,
            "verdict": "info" if ok is None else ("ok" if ok else "FAIL")}


def _max_rel(x, scale):
    return float(np.max(np.abs(x)) / scale) if scale > 0 else float(np.max(np.abs(x)))


class LawMonitor:
    """Run a :class:`~meanfield.models.flow.Simulation` and check every conservation law per step.

    The monitor is an observer of the loop: after every accepted step it receives the stage
    points and stage velocities the integrator used (no extra gradient evaluations), then compares the measured change of Q_j (and of the
    balance matrix, for the linear activation) with the exact discrete prediction, follows
    the energy identity and the angular momentum of every rotation block of the problem.

    Parameters
    ----------
    sim : Simulation
        A fresh or partly run simulation (its current state is taken as time 0 of the laws).
    blocks : dict or "auto"
        name -> coordinate indices (or (d, k) basis) for the angular momentum;
        ``"auto"`` uses :func:`rotation_blocks`. ``cross`` pairs of blocks named
        ``"A×B"`` may be given as a tuple (block_A, block_B) (a control, not a law).
    balance : bool or "auto"
        Track the m × m balance matrix (default: for the linear activation and m ≤ 2000).
    check_tableau : bool
        Verify that the stage points match :data:`RK_TABLEAUS` (guards against an
        integrator that changed).

    Attributes
    ----------
    history : dict of arrays after :meth:`run`
        ``t`` (N+1,), ``q_drift`` (max_j |Q_j − e^{−κt}Q_j(0)|), ``q_pred_drift`` (same for
        the cumulative predicted increments), ``step_ulps`` (N,) (max_j |ΔQ_j − ΔQ̂_j|/(EPS M_j)),
        ``q_law_w1`` (W₁ of the law of Q), ``q_law_w1_pred`` (same for the predicted Q),
        ``energy``, ``dissipation``, ``angmom_<name>``,
        and for the balance matrix ``balance_drift``, ``balance_pred_drift``, ``balance_ulps``.
    """

    def __init__(self, sim, blocks="auto", balance="auto", check_tableau=True):
        from ..models.flow import Simulation

        if not isinstance(sim, Simulation):
            raise ValueError("LawMonitor needs a meanfield.models.flow.Simulation")
        self.sim = sim
        self.integrator = sim.integrator.name
        if self.integrator not in RK_TABLEAUS and self.integrator != "momentum":
            raise ValueError(f"no discrete identity for integrator {self.integrator!r}")
        self.lam, self.ra, self.rb = sim.weight_decay, sim.rate_a, sim.rate_b
        self.mu = sim.integrator.options.get("momentum", 0.9)
        self.law = charge_law(self.lam, self.ra, self.rb)
        self.linear = sim.problem.activation == "linear"
        if blocks == "auto":
            blocks = rotation_blocks(sim.problem)
        self.blocks = dict(blocks or {})
        if balance == "auto":
            balance = self.linear and sim.a.size <= MAX_BALANCE_M
        if balance and not self.linear:
            raise ValueError("the balance matrix is a law of the linear activation only; "
                             "use balance=False (the diagonal, −Q_j, is tracked anyway)")
        self.balance = bool(balance)
        self.check_tableau = check_tableau
        self.projected = bool(sim.integrator.project)
        self.adaptive = bool(sim.integrator.adaptive)
        self.exact_energy = sim.backend.name == "exact"
        self.t0 = sim.t
        self.a0, self.b0 = sim.a.copy(), sim.b.copy()
        self.q0 = rescaling_charge(self.a0, self.b0, self.ra, self.rb)
        self.scale0 = float(np.max(charge_scale(self.a0, self.b0, self.ra, self.rb)))
        self.q_pred = self.q0.copy()
        if self.balance:
            self.M0 = balance_matrix(self.a0, self.b0, self.ra, self.rb)
            self.M_pred = self.M0.copy()
        self._rec = {k: [] for k in ("t", "q_drift", "q_pred_drift", "q_law_w1",
                                     "q_law_w1_pred", "energy",
                                     "dissipation", "step_ulps", "balance_drift",
                                     "balance_pred_drift", "balance_ulps")}
        for name in self.blocks:
            self._rec["angmom_" + name] = []
        self._final_recorded = False
        self.history = {}

    # -- capture ------------------------------------------------------------------------
    def _decay(self, t):
        return np.exp(-self.law.decay_rate * (t - self.t0))

    def _record_state(self, a, b, t, va, vb, risk):
        rec = self._rec
        rec["t"].append(t)
        q = rescaling_charge(a, b, self.ra, self.rb)
        dec = self._decay(t)
        rec["q_drift"].append(float(np.max(np.abs(q - dec * self.q0))))
        rec["q_pred_drift"].append(float(np.max(np.abs(self.q_pred - dec * self.q0))))
        rec["q_law_w1"].append(charge_law_distance(self.q0, q, self.sim.weights, t - self.t0,
                                                   self.law.decay_rate))
        rec["q_law_w1_pred"].append(charge_law_distance(self.q0, self.q_pred, self.sim.weights,
                                                        t - self.t0, self.law.decay_rate))
        w = self.sim.weights
        rec["energy"].append(lyapunov_energy(risk, a, b, w, self.lam, self.ra, self.rb))
        rec["dissipation"].append(dissipation(va, vb, w, self.ra, self.rb))
        for name, blk in self.blocks.items():
            if isinstance(blk, tuple):
                r = angular_momentum_residual(b, vb, w, blk[0], blk[1])
            else:
                r = angular_momentum_residual(b, vb, w, blk)
            rec["angmom_" + name].append(r)
        if self.balance:
            M = balance_matrix(a, b, self.ra, self.rb)
            rec["balance_drift"].append(float(np.max(np.abs(M - dec * self.M0))))
            rec["balance_pred_drift"].append(float(np.max(np.abs(self.M_pred - dec * self.M0))))

    def _verify_tableau(self, a, b, stages, dt):
        alpha = RK_TABLEAUS[self.integrator][0]
        for i, (ya, yb, _, _, _) in enumerate(stages):
            ea, eb = a.copy(), b.copy()
            for l in range(i):
                if alpha[i, l]:
                    ea = ea + dt * alpha[i, l] * stages[l][2]
                    eb = eb + dt * alpha[i, l] * stages[l][3]
            size = 1.0 + np.max(np.abs(ea)) + np.max(np.abs(eb))
            err = max(np.max(np.abs(ya - ea)), np.max(np.abs(yb - eb)))
            if err > 1e-12 * size:
                raise RuntimeError(
                    f"stage {i} of integrator {self.integrator!r} does not match "
                    f"conservation.RK_TABLEAUS (error {err:.2e}); update the tableau")

    def on_step(self, sim, info):
        """Stage hook of the loop: called after every accepted step with the step's stage
        points and velocities (``info["stages"]``, the ones the integrator really used)."""
        a, b = info["y_old"]
        t, dt = info["t_old"], info["dt"]
        buffers = info["buffers_old"]
        stages = [(Y[0], Y[1], k[0], k[1], risk) for Y, k, risk in info["stages"]]
        a1, b1 = sim.a, sim.b
        va, vb, risk = stages[0][2], stages[0][3], stages[0][4]
        self._record_state(a, b, t, va, vb, risk)
        # predicted increment of Q (and of M)
        st4 = [s[:4] for s in stages]
        if self.integrator == "momentum":
            dq = momentum_charge_increment(a, b, buffers["u0"], buffers["u1"], va, vb, dt,
                                           self.mu, self.lam, self.ra, self.rb)
            dM = momentum_balance_increment(a, b, buffers["u0"], buffers["u1"], va, vb, dt,
                                            self.mu, self.lam, self.ra, self.rb) \
                if self.balance else None
        else:
            if self.check_tableau:
                self._verify_tableau(a, b, stages, dt)
            dq = predicted_charge_increment(st4, dt, self.integrator, self.lam, self.ra, self.rb)
            dM = predicted_balance_increment(st4, dt, self.integrator, self.lam, self.ra,
                                             self.rb) \
                if (self.balance and not self.projected) else None
        q_before = rescaling_charge(a, b, self.ra, self.rb)
        q_after = rescaling_charge(a1, b1, self.ra, self.rb)
        scale = np.maximum(charge_scale(a, b, self.ra, self.rb),
                           charge_scale(a1, b1, self.ra, self.rb))
        scale = np.where(scale > 0, scale, 1.0)
        if self.projected:
            # the projection puts Q exactly on the law: the prediction is the law itself
            target = self.q0 * self._decay(t + dt)
            ulps = np.max(np.abs(q_after - target) / (EPS * scale))
            self.q_pred = target
        else:
            ulps = np.max(np.abs((q_after - q_before) - dq) / (EPS * scale))
            self.q_pred = self.q_pred + dq
        self._rec["step_ulps"].append(float(ulps))
        if self.balance:
            M_before = balance_matrix(a, b, self.ra, self.rb)
            M_after = balance_matrix(a1, b1, self.ra, self.rb)
            size = np.sqrt(np.outer(charge_scale(a, b, self.ra, self.rb),
                                    charge_scale(a, b, self.ra, self.rb)))
            size = np.where(size > 0, size, 1.0)
            if dM is not None:
                self._rec["balance_ulps"].append(
                    float(np.max(np.abs((M_after - M_before) - dM) / (EPS * size))))
                self.M_pred = self.M_pred + dM
            else:  # projected steps restore only the diagonal: no matrix prediction
                self._rec["balance_ulps"].append(np.nan)
                self.M_pred = self.M_pred + np.nan

    # -- driving ------------------------------------------------------------------------
    def run(self, n_steps=None, stop=None):
        """Advance the simulation by ``n_steps`` accepted steps (default: to its end),
        checking every step; the monitor is one of the loop's observers.

        May be called repeatedly to continue; the history then covers the whole run.

        Returns
        -------
        dict
            :attr:`history`.
        """
        sim = self.sim
        if self._final_recorded:  # continuing: the last state is recorded again by its step
            for key, values in self._rec.items():
                if key not in ("step_ulps", "balance_ulps") and values:
                    values.pop()
            self._final_recorded = False
        if self not in sim.observers:
            sim.observers.append(self)
        try:
            sim.advance(n_steps, stop=stop)
        finally:
            sim.observers.remove(self)
        # the final state
        va, vb, risk = sim.velocity(sim.a, sim.b)
        self._record_state(sim.a, sim.b, sim.t, va, vb, risk)
        self._final_recorded = True
        self.history = {k: np.asarray(v, dtype=np.float64) for k, v in self._rec.items()}
        if not self.balance:
            for k in ("balance_drift", "balance_pred_drift", "balance_ulps"):
                self.history.pop(k)
        return self.history

    # -- summary ------------------------------------------------------------------------
    def report(self, label=None):
        """Law table rows (:class:`LawRow`) for what was run; relative quantities are
        divided by max_j M_j(0) (charge, balance) or by E(0) (energy)."""
        h = self.history
        if not h:
            raise ValueError("run() the monitor first")
        sim = self.sim
        step = (f"rtol={sim.rtol:g}, {sim.step_index} steps" if self.adaptive
                else f"dt={sim.dt:g}, N={sim.step_index}")
        setting = label or (f"{self.integrator}, {step}, "
                            f"m={sim.a.size}, {sim.backend.name}"
                            + (f", λ={self.lam:g}" if self.lam else "")
                            + (f", η=({self.ra:g},{self.rb:g})" if (self.ra, self.rb) != (1, 1)
                               else "")
                            + (f", μ={self.mu:g}" if self.integrator == "momentum" else ""))
        rows = []
        s = self.scale0
        name = "Q_j = a²/η_a − ‖b‖²/η_b" if (self.ra, self.rb) != (1.0, 1.0) else "Q_j = a² − ‖b‖²"
        if self.lam:
            name += " (law e^(−2λt))"
        basis = ("zero (projection onto the law)" if self.projected else
                 "Σ steps of 2μ⟨θ,u⟩_S − 2λdtQ + ⟨u⁺,u⁺⟩_S (broken)"
                 if self.integrator == "momentum" else
                 "Σ steps of exact RK identity −2λdtΣβQ(Y) + dt²Σc⟨k,k⟩_S")
        pred = 0.0 if self.projected else h["q_pred_drift"][-1] / s
        law = "roundoff" if self.projected else "sum_of_steps"
        integ = self.integrator
        rows.append(LawRow(name, setting, h["q_drift"][-1] / s, pred,
                           "max_j |drift| / max M_j(0)", basis, criterion=law, integrator=integ))
        rows.append(LawRow("per-step identity for Q_j", setting, np.nanmax(h["step_ulps"]), 0.0,
                           "ulps of M_j (max over steps)", "exact to rounding", criterion="ulps",
                           integrator=integ))
        rows.append(LawRow("law of Q under μ_t (W₁)", setting, h["q_law_w1"][-1] / s,
                           0.0 if self.projected
                           else h["q_law_w1_pred"][-1] / s, "W₁ / max M_j(0)",
                           "zero (projection onto the law)" if self.projected else "Σ steps: law of the predicted Q_j",
                           criterion=law, integrator=integ))
        if self.balance:
            rows.append(LawRow("balance matrix B Bᵀ − a aᵀ (linear σ)", setting,
                               h["balance_drift"][-1] / s,
                               h["balance_pred_drift"][-1] / s
                               if not self.projected else np.nan,
                               "max_ij |drift| / max M_j(0)",
                               "Σ steps of the matrix RK identity", criterion="sum_of_steps",
                               integrator=integ))
            if np.any(np.isfinite(h["balance_ulps"])):
                rows.append(LawRow("per-step identity for B Bᵀ − a aᵀ", setting,
                                   np.nanmax(h["balance_ulps"]), 0.0,
                                   "ulps of √(M_i M_j)", "exact to rounding", criterion="ulps",
                                   integrator=integ))
        for bname in self.blocks:
            r = h["angmom_" + bname]
            control = isinstance(self.blocks[bname], tuple)
            if control:
                basis = "not a law (no symmetry mixes two blocks): O(1)"
            elif sim.backend.name == "exact":
                basis = "0 to round-off (rotation invariance of the exact risk)"
            else:
                basis = "≠ 0: a finite batch is not rotation invariant"
            rows.append(LawRow(f"angular momentum in {bname}", setting, float(np.max(r)),
                               np.nan if control or sim.backend.name != "exact" else 0.0,
                               "max over steps of ‖L‖_F / Σw(‖Pb‖‖Pv‖+‖Pv‖‖Pb‖)", basis,
                               criterion="info" if control or sim.backend.name != "exact"
                               else "roundoff", integrator=integ))
        if self.exact_energy:
            res = energy_residual(h["energy"], h["dissipation"], sim.dt, self.integrator, h["t"])
            pred = None if self.adaptive else predicted_energy_residual(
                h["dissipation"], sim.dt, self.integrator, self.mu)
            e0 = abs(h["energy"][0]) or 1.0
            order = PREDICTED_ENERGY_SLOPE.get(self.integrator)
            basis = {"euler": "leading order (dt/4)(D₀ − D_N)",
                     "momentum": "broken: quasi-static buffer, dtΣD(1 − (1−μ^{n+1})/(1−μ))"}.get(
                self.integrator, f"O(dt^{order:g})" if order else "-")
            rows.append(LawRow("energy identity E(t) + ∫D = E(0)", setting, res[-1] / e0,
                               np.nan if pred is None else pred / e0, "residual / E(0)", basis,
                               criterion="relative" if self.integrator == "euler" else "info",
                               integrator=integ))
        return rows


def trajectory_laws(t, a, b, weights, activation="relu", weight_decay=0.0, rate_a=1.0,
                    rate_b=1.0, label=""):
    """Post-hoc law rows for stored snapshots (no velocities needed).

    Parameters
    ----------
    t : (s,) array
        Snapshot times (t[0] is the reference).
    a : (s, m) array
    b : (s, m, d) array
    weights : (m,) array
    activation : str
        The balance-matrix row is added for ``linear``.
    weight_decay, rate_a, rate_b : float
        λ, η_a, η_b of the run: Q_j = a²/η_a − ‖b‖²/η_b is compared with e^{−2λt} Q_j(0).

    Returns
    -------
    list of LawRow
        Charge drift, law of Q (W₁) and, for the linear activation, the balance matrix, at
        the last snapshot, relative to max_j M_j(0). Predicted values are those of the
        flow (0); the discrete prediction needs the stages (use :class:`LawMonitor`).
    """
    t = np.asarray(t, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 3 or b.shape[:2] != a.shape or t.shape != (a.shape[0],):
        raise ValueError(f"need t (s,), a (s, m), b (s, m, d); got {t.shape}, {a.shape}, {b.shape}")
    law = charge_law(weight_decay, rate_a, rate_b)
    q0 = rescaling_charge(a[0], b[0], rate_a, rate_b)
    q = rescaling_charge(a[-1], b[-1], rate_a, rate_b)
    s = float(np.max(charge_scale(a[0], b[0], rate_a, rate_b))) or 1.0
    rows = []
    dt_ = t[-1] - t[0]
    rows.append(LawRow("Q_j", label, np.max(np.abs(charge_drift(q0, q, dt_, law.decay_rate))) / s,
                       0.0, "max_j |drift| / max M_j(0)", law.statement, criterion="roundoff"))
    rows.append(LawRow("law of Q under μ_t (W₁)", label,
                       charge_law_distance(q0, q, weights, dt_, law.decay_rate) / s, 0.0,
                       "W₁ / max M_j(0)", "0 for the flow", criterion="roundoff"))
    if activation == "linear":
        M0 = balance_matrix(a[0], b[0], rate_a, rate_b)
        M = balance_matrix(a[-1], b[-1], rate_a, rate_b)
        rows.append(LawRow("balance matrix B Bᵀ − a aᵀ", label,
                           np.max(np.abs(M - np.exp(-law.decay_rate * dt_) * M0)) / s, 0.0,
                           "max_ij |drift| / max M_j(0)", "every entry conserved (linear σ)",
                           criterion="roundoff"))
    return rows
