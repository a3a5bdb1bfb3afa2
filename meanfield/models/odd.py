"""Odd targets: the linear-predictor reduction of the mean-field flow and its diagnostics.

For an odd target f*, an input law ρ that is symmetric with E[xxᵀ] = v_ρ I, and a start μ_0
invariant under (a, b) ↦ (−a, −b), the predictor stays linear (MATH §4):

    f(μ_t; x) = ⟨w(t), x⟩,   w = ½ ∫ a b dμ_t,

because σ(z) − σ(−z) = z. Only X̄ = E[f* x] enters; w* = X̄/v_ρ is the best linear predictor,
F* = ½(E f*² − v_ρ‖w*‖²) and, with g = w − w*, S = ∫ b bᵀ dμ, s = ∫ a² dμ,

    w' = −(v_ρ/4)(S + s I) g,   S' = −v_ρ (g wᵀ + w gᵀ),   s' = −2 v_ρ ⟨w, g⟩.

This module holds that reduced model and the measurements that compare it with a particle run:

* :func:`odd_reduction` — the constants v_ρ, X̄, w*, F*, ½E f*² of a problem;
* :func:`moment_ode` — the closed (w, S, s) ODE from any symmetric start (``solve_ivp``);
* :func:`isotropic_solution` — the closed form for an isotropic start, and
  :func:`convergence_bound` ‖w*‖ e^{−V v_ρ t/4};
* :func:`discrete_reduced_flow` — the same reduction for a *time-stepped* flow: a symmetric
  particle run advanced by a Runge–Kutta-type integrator has moments that depend only on the
  initial second moments, so a set of 2(d+1) "moment particles" reproduces it exactly;
* diagnostics on any particles: :func:`moments`, :func:`linear_coefficient`, the even part of the
  predictor on probes (:func:`even_part_on_probes`) and exactly (:func:`even_part_norm_sq`),
  :func:`linear_risk` (the risk identity), :func:`pair_defect` and :func:`sign_flip_defect`.

The risk identity holds for *every* measure, symmetric or not: writing f = ⟨w, x⟩ + f_e with
f_e the even part (the odd part of any bias-free ReLU network is linear),

    F(μ) = F* + (v_ρ/2) ‖w − w*‖² + ½ E_ρ[f_e²],

so F* is a lower bound for every network, and a symmetric run has ``F − linear_risk = 0``.
"""
from dataclasses import dataclass
from math import pi

import numpy as np

from ..engine import Field, Solver
from ..engine.integrators import ADAPTIVE
from .targets import ODD

__all__ = [
    "OddReduction", "odd_reduction", "MomentTrajectory", "moment_ode", "isotropic_solution",
    "convergence_bound", "discrete_reduced_flow", "moment_particles", "moments",
    "linear_coefficient", "linear_risk", "even_part_on_probes", "even_part_norm_sq",
    "pair_defect", "sign_flip_defect", "REDUCIBLE_INTEGRATORS", "MomentField",
]

#: integrators whose per-particle update is linear in the particle (and its buffers) with
#: coefficients shared by all particles: the moments of their output depend only on the
#: moments of their input, so :func:`discrete_reduced_flow` reproduces them exactly.
#: (The adaptive pairs are explicit Runge–Kutta methods too, but choose their steps from the
#: state: :func:`discrete_reduced_flow` accepts them and gives the moment ODE to tolerance,
#: not a particle run step by step.)
REDUCIBLE_INTEGRATORS = ("euler", "heun", "rk4", "momentum")


# ------------------------------------------------------------------------------ constants
@dataclass(frozen=True, eq=False)
class OddReduction:
    """Constants of the linear-predictor reduction of an odd-target problem.

    Attributes
    ----------
    d : int
        Input dimension.
    v_rho : float
        E[xxᵀ] = v_ρ I.
    xbar : (d,) array
        X̄ = E[f*(x) x].
    w_star : (d,) array
        w* = X̄ / v_ρ, the best linear predictor.
    w_star_norm : float
        ‖w*‖.
    energy : float
        ½ E f*² (the risk of the zero predictor).
    F_star : float
        F* = ½(E f*² − v_ρ ‖w*‖²), the risk of the best linear predictor: a lower bound on
        the risk of every bias-free ReLU network when f* is odd.
    """

    d: int
    v_rho: float
    xbar: np.ndarray
    w_star: np.ndarray
    w_star_norm: float
    energy: float
    F_star: float


def odd_reduction(problem):
    """The constants of MATH §4 for an odd-target problem.

    Parameters
    ----------
    problem : Problem
        ReLU activation, Gaussian (or spherical) inputs, and a target made only of parts of
        parity ODD (e.g. :class:`~meanfield.models.targets.OddPowerTarget` and/or a linear
        :class:`~meanfield.models.targets.Teacher`: no units, ``beta`` given).

    Returns
    -------
    OddReduction

    Raises
    ------
    ValueError
        If the target has an even part, the activation is not ReLU, or the input law is not
        one with exact expectations.
    """
    if problem.activation != "relu":
        raise ValueError(f"the odd-target reduction is for activation 'relu', got "
                         f"{problem.activation!r}")
    if not problem.law.rotation_invariant:
        raise ValueError("the odd-target reduction needs a symmetric law with known v_ρ: use "
                         "GaussianLaw or SphereLaw")
    target = problem.target_sum
    for part in target.parts:
        if part.parity != ODD:
            raise ValueError(f"target part {type(part).__name__} is not odd; the reduction needs "
                             "odd parts only (OddPowerTarget, a linear Teacher: no units, beta "
                             "given, or any TargetPart with parity ODD)")
    target.check_law(problem.law)  # raises ValueError if a part has no closed form under ρ
    v = float(problem.v_rho)
    xbar = np.array(target.xbar(problem.law, problem.d), dtype=np.float64).reshape(problem.d)
    w_star = xbar / v
    w_norm = float(np.linalg.norm(w_star))
    energy = float(0.5 * target.second_moment(problem.law, problem.d))
    return OddReduction(d=problem.d, v_rho=v, xbar=xbar, w_star=w_star, w_star_norm=w_norm,
                        energy=energy, F_star=energy - 0.5 * v * w_norm ** 2)


def linear_risk(reduction, w):
    """F* + (v_ρ/2)‖w − w*‖²: the risk of the linear predictor ⟨w, x⟩.

    Equals F(μ) exactly when μ is symmetric; in general F(μ) − linear_risk = ½ E f_e² ≥ 0.

    Parameters
    ----------
    reduction : OddReduction
    w : (d,) or (n, d) array

    Returns
    -------
    float or (n,) array
    """
    g = np.asarray(w, dtype=np.float64) - reduction.w_star
    return reduction.F_star + 0.5 * reduction.v_rho * np.sum(g * g, axis=-1)


# ------------------------------------------------------------------------ moment ODE
@dataclass
class MomentTrajectory:
    """Moments of a (reduced) flow at times ``t``.

    Attributes
    ----------
    t : (n,) array
    w : (n, d) array
        w(t) = ½ ∫ a b dμ_t.
    s : (n,) array
        s(t) = ∫ a² dμ_t.
    S : (n, d, d) array or None
        S(t) = ∫ b bᵀ dμ_t (only when asked for).
    error : (n,) array
        ‖w(t) − w*‖.
    risk : (n,) array
        F* + (v_ρ/2)‖w − w*‖², the risk of the symmetric flow.
    """

    t: np.ndarray
    w: np.ndarray
    s: np.ndarray
    S: object
    error: np.ndarray
    risk: np.ndarray


def _check_moments(reduction, w0, S0, s0):
    d = reduction.d
    w0 = np.asarray(w0, dtype=np.float64)
    S0 = np.asarray(S0, dtype=np.float64)
    if w0.shape != (d,):
        raise ValueError(f"w0 must have shape ({d},), got {w0.shape}")
    if S0.shape != (d, d):
        raise ValueError(f"S0 must have shape ({d}, {d}), got {S0.shape}")
    if not (np.all(np.isfinite(w0)) and np.all(np.isfinite(S0)) and np.isfinite(s0)):
        raise ValueError("initial moments contain NaN or inf")
    if s0 < 0:
        raise ValueError(f"s0 = ∫a² dμ must be >= 0, got {s0}")
    if not np.allclose(S0, S0.T, rtol=0, atol=1e-12 * max(1.0, np.abs(S0).max())):
        raise ValueError("S0 = ∫ b bᵀ dμ must be symmetric")
    return w0, 0.5 * (S0 + S0.T), float(s0)


def _check_times(t):
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)):
        raise ValueError("t must be a non-empty 1-D array of finite times")
    if t[0] < 0 or np.any(np.diff(t) < 0):
        raise ValueError("t must be non-decreasing and start at t >= 0 (the start is t = 0)")
    return t


def moment_ode(reduction, w0, S0, s0, t, rtol=1e-12, atol=1e-12, method="DOP853",
               return_S=False):
    """Integrate the closed moment ODE of a symmetric start (MATH §4).

    State y = (w, S, s) ∈ R^{d + d² + 1} with g = w − w*:
    w' = −(v_ρ/4)(S + sI) g,  S' = −v_ρ(g wᵀ + w gᵀ),  s' = −2v_ρ⟨w, g⟩.

    Parameters
    ----------
    reduction : OddReduction
    w0 : (d,) array
        ½ ∫ a b dμ_0.
    S0 : (d, d) array
        ∫ b bᵀ dμ_0 (symmetric).
    s0 : float
        ∫ a² dμ_0.
    t : (n,) array
        Output times (≥ 0, non-decreasing); the moments are those at time 0.
    rtol, atol : float
        Tolerances of ``scipy.integrate.solve_ivp`` (tight by default: the ODE is the
        reference that particle runs are measured against).
    method : str
        ``solve_ivp`` method (the ODE is not stiff: the explicit order-8 DOP853 is default).
    return_S : bool
        Also return S(t), shape (n, d, d).

    Returns
    -------
    MomentTrajectory

    Raises
    ------
    RuntimeError
        If the integrator fails.
    """
    w0, S0, s0 = _check_moments(reduction, w0, S0, s0)
    t = _check_times(t)
    d, v, w_star = reduction.d, reduction.v_rho, reduction.w_star

    def rhs(_, y):
        w = y[:d]
        S = y[d:d + d * d].reshape(d, d)
        s = y[-1]
        g = w - w_star
        out = np.empty_like(y)
        out[:d] = -0.25 * v * (S @ g + s * g)
        wg = np.outer(w, g)
        out[d:d + d * d] = (-v * (wg + wg.T)).ravel()
        out[-1] = -2.0 * v * (w @ g)
        return out

    y0 = np.concatenate([w0, S0.ravel(), [s0]])
    if t[-1] == 0.0:
        ys = np.repeat(y0[:, None], t.size, axis=1)
    else:
        from scipy.integrate import solve_ivp  # imported when used (slow to load)

        sol = solve_ivp(rhs, (0.0, t[-1]), y0, method=method, t_eval=t, rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"moment ODE integration failed: {sol.message}")
        ys = sol.y
    w = ys[:d].T.copy()
    S = ys[d:d + d * d].T.reshape(t.size, d, d).copy() if return_S else None
    s = ys[-1].copy()
    error = np.linalg.norm(w - w_star, axis=1)
    return MomentTrajectory(t=t, w=w, s=s, S=S, error=error, risk=linear_risk(reduction, w))


# ------------------------------------------------------------------- isotropic closed form
def isotropic_solution(reduction, V, t, method="closed", rtol=1e-13, atol=1e-14):
    """Exact solution from an isotropic start: E[ab] = 0, E[a²] = v_a, E[bbᵀ] = v_b I.

    Then w(t) = ω(t) u with u = w*/‖w*‖, ω = (V/4) sinh 2Λ, V = v_a + v_b, and
    Λ' = (v_ρ/2)(‖w*‖ − (V/4) sinh 2Λ), Λ(0) = 0 (MATH §4).

    The Λ ODE integrates in closed form (derived here): with k = V/4, W = ‖w*‖, p = W/k,
    r = √(p² + 1), y± = p ± r and y = e^{2Λ},

        y' = −(v_ρ k/2)(y − y₊)(y − y₋),  so  R(y) := (y₊ − y)/(y − y₋) = R(1) e^{−v_ρ k r t},

    y(t) = (y₊ + q y₋)/(1 + q) with q = R(1) e^{−v_ρ k r t}, and the error without
    cancellation: W − ω = k r q/(1 + q) · (1 + 1/(y y₊)). The asymptotic rate v_ρ√(W² + V²/16)
    is faster than the bound's V v_ρ/4.

    Parameters
    ----------
    reduction : OddReduction
    V : float
        v_a + v_b > 0 (the seed paper's start a = ±1, b uniform on S^{d−1}: V = 1 + 1/d).
    t : (n,) array
        Times ≥ 0.
    method : {"closed", "ode"}
        The closed form, or ``solve_ivp`` on the Λ ODE (an independent check).

    Returns
    -------
    dict
        ``t`` (n,), ``Lambda`` (n,), ``omega`` (n,) = ⟨w, u⟩, ``w`` (n, d),
        ``error`` (n,) = ‖w − w*‖, ``risk`` (n,) = F* + (v_ρ/2)‖w − w*‖².
    """
    if not (np.isfinite(V) and V > 0):
        raise ValueError(f"V = v_a + v_b must be a positive number, got {V}")
    t = _check_times(t)
    v, W = reduction.v_rho, reduction.w_star_norm
    k = 0.25 * V
    if method == "closed":
        p = W / k
        r = np.hypot(p, 1.0)
        y_plus = p + r
        y_minus = -1.0 / y_plus  # = p − r without cancellation (y₊ y₋ = −1)
        R1 = (y_plus - 1.0) / (1.0 - y_minus)
        q = R1 * np.exp(-v * k * r * t)
        y = (y_plus + q * y_minus) / (1.0 + q)
        Lam = 0.5 * np.log(y)
        omega = 0.5 * k * (y - 1.0 / y)
        error = k * r * q / (1.0 + q) * (1.0 + 1.0 / (y * y_plus))
    elif method == "ode":
        if t[-1] == 0.0:
            Lam = np.zeros_like(t)
        else:
            from scipy.integrate import solve_ivp  # imported when used (slow to load)

            sol = solve_ivp(lambda _, L: 0.5 * v * (W - k * np.sinh(2.0 * L)), (0.0, t[-1]),
                            [0.0], method="DOP853", t_eval=t, rtol=rtol, atol=atol)
            if not sol.success:
                raise RuntimeError(f"Λ ODE integration failed: {sol.message}")
            Lam = sol.y[0]
        omega = k * np.sinh(2.0 * Lam)
        error = W - omega
    else:
        raise ValueError(f"unknown method {method!r}; choose 'closed' or 'ode'")
    u = reduction.w_star / W if W > 0 else np.zeros(reduction.d)
    w = omega[:, None] * u[None, :]
    return {"t": t, "Lambda": Lam, "omega": omega, "w": w, "error": error,
            "risk": reduction.F_star + 0.5 * v * error ** 2}


def convergence_bound(reduction, V, t):
    """The seed paper's bound ‖w(t) − w*‖ ≤ ‖w*‖ exp(−V v_ρ t/4) for an isotropic start.

    Proof sketch: e = ‖w*‖ − ω obeys e' = −(V v_ρ/4) cosh(2Λ) e and cosh ≥ 1. It is a theorem
    for the infinite-width isotropic flow only; a finite-m start is not exactly isotropic.
    """
    if not (np.isfinite(V) and V > 0):
        raise ValueError(f"V = v_a + v_b must be a positive number, got {V}")
    t = np.asarray(t, dtype=np.float64)
    return reduction.w_star_norm * np.exp(-0.25 * V * reduction.v_rho * t)


# ---------------------------------------------------------------- time-stepped reduction
def moment_particles(w, S, s):
    """A symmetric particle measure with prescribed second moments.

    With θ = (a, b) ∈ R^{d+1}, M = E[θθᵀ] = [[s, 2wᵀ], [2w, S]] = Σ_k λ_k q_k q_kᵀ, the
    2(d+1) particles ±√((d+1) λ_k) q_k, each of mass 1/(2(d+1)), have E[θθᵀ] = M, are
    invariant under θ ↦ −θ, and so have ½E[ab] = w, E[bbᵀ] = S, E[a²] = s.

    Parameters
    ----------
    w : (d,) array
    S : (d, d) array
    s : float

    Returns
    -------
    a : (2(d+1),) array
    b : (2(d+1), d) array
    weights : (2(d+1),) array

    Raises
    ------
    ValueError
        If M is not positive semi-definite (to round-off): no measure has these moments.
    """
    w = np.asarray(w, dtype=np.float64)
    d = w.shape[0]
    S = np.asarray(S, dtype=np.float64)
    M = np.empty((d + 1, d + 1))
    M[0, 0] = s
    M[0, 1:] = M[1:, 0] = 2.0 * w
    M[1:, 1:] = 0.5 * (S + S.T)
    lam, q = np.linalg.eigh(M)
    tol = 1e-12 * max(1.0, abs(lam).max())
    if lam.min() < -tol:
        raise ValueError(f"moments (w, S, s) are not those of a measure: [[s, 2wᵀ], [2w, S]] "
                         f"has eigenvalue {lam.min():.3g} < 0")
    n = d + 1
    theta = (np.sqrt(n * np.clip(lam, 0.0, None))[:, None] * q.T)  # rows ±√(nλ_k) q_k
    theta = np.concatenate([theta, -theta])
    return (np.ascontiguousarray(theta[:, 0]), np.ascontiguousarray(theta[:, 1:]),
            np.full(2 * n, 1.0 / (2 * n)))


class MomentField(Field):
    """Velocity of a symmetric measure as a field of the one loop (state (a, b) of the moment
    particles): a' = −(v_ρ/2)⟨b, g⟩, b' = −(v_ρ/2) a g, g = w − w*, w = ½ Σ_j w_j a_j b_j.

    The risk it reports is F* + (v_ρ/2)‖w − w*‖², the risk of the symmetric measure.
    """

    names = ("a", "b")
    state_label = "moment particles"

    def __init__(self, reduction, weights):
        super().__init__(weights)
        self.red = reduction

    def velocity(self, y, t=None):
        a, b = y
        red = self.red
        w = 0.5 * (self.weights * a) @ b
        g = w - red.w_star
        half_v = 0.5 * red.v_rho
        return (-half_v * (b @ g), -half_v * a[:, None] * g[None, :]), float(linear_risk(red, w))


def discrete_reduced_flow(reduction, w0, S0, s0, dt=None, n_steps=None, integrator="euler",
                          record_every=None, momentum=0.9, t_end=None, rtol=1e-7, atol=1e-9,
                          n_records=None):
    """Moments of a symmetric particle run advanced by a time stepper, computed exactly.

    For a symmetric measure every particle moves by a linear map θ ↦ L(w)θ shared by all
    particles; a step of any integrator in :data:`REDUCIBLE_INTEGRATORS` is a composition of
    such maps, so θ_n = A_n θ_0 with A_n depending only on the moment history and the
    moments at step n depend only on E[θ_0θ_0ᵀ]. The 2(d+1) particles of
    :func:`moment_particles` therefore reproduce *every* symmetric run with the same initial
    moments, step for step: this is the ∞-width reference at the same dt (no time error).
    With an adaptive pair the steps are chosen by the moment particles' own error estimate,
    so the result is the moment ODE to the tolerance (not step for step a particle run's).

    Parameters
    ----------
    reduction : OddReduction
    w0, S0, s0 : initial moments, shapes (d,), (d, d), scalar
    dt : float or None
        Step size (adaptive pairs: first trial step, automatic when None).
    n_steps : int or None
        Fixed-step runs (or ``t_end``).
    integrator : str
        One of :data:`REDUCIBLE_INTEGRATORS` or an adaptive pair.
    record_every : int or None
        Record every this many steps (and the last step), as the particle engine does.
    momentum : float
        μ for the ``momentum`` integrator.
    t_end, rtol, atol, n_records
        As for :class:`meanfield.engine.Solver`.

    Returns
    -------
    MomentTrajectory
        S is None.
    """
    if integrator not in REDUCIBLE_INTEGRATORS + ADAPTIVE:
        raise ValueError(f"integrator {integrator!r} does not reduce to moments (its update is "
                         f"not linear in the particle); choose one of "
                         f"{', '.join(REDUCIBLE_INTEGRATORS + ADAPTIVE)}")
    w0, S0, s0 = _check_moments(reduction, w0, S0, s0)
    a, b, weights = moment_particles(w0, S0, s0)
    field = MomentField(reduction, weights)
    kw = dict(record_every=record_every, n_records=n_records)
    solver = Solver(field, (a, b), integrator, dt=dt, n_steps=n_steps, t_end=t_end, rtol=rtol,
                    atol=atol, integrator_options={"momentum": momentum}, **kw)
    # the moments need the whole state at every record: snapshot exactly there
    if solver.adaptive:
        solver = Solver(field, (a, b), integrator, dt=dt, t_end=t_end, rtol=rtol, atol=atol,
                        snapshot_times=solver.record_times, **kw)
    else:
        solver = Solver(field, (a, b), integrator, dt=dt, n_steps=n_steps, t_end=t_end,
                        integrator_options={"momentum": momentum},
                        snapshot_steps=solver.record_steps, **kw)
    res = solver.run()
    if res.status != "ok":
        raise RuntimeError(f"the moment flow failed: {res.message}")
    sa, sb = res.snapshots["a"], res.snapshots["b"]
    w_rec = np.array([0.5 * (weights * a) @ b for a, b in zip(sa, sb)]).reshape(-1, reduction.d)
    s_rec = np.array([weights @ (a * a) for a in sa])
    error = np.linalg.norm(w_rec - reduction.w_star, axis=1)
    return MomentTrajectory(t=res.snapshots["t"], w=w_rec, s=s_rec, S=None, error=error,
                            risk=linear_risk(reduction, w_rec))


# ------------------------------------------------------------------ particle diagnostics
def _particle_arrays(a, b, weights):
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
    b = np.ascontiguousarray(np.asarray(b, dtype=np.float64))
    if a.ndim != 1 or b.ndim != 2 or b.shape[0] != a.shape[0]:
        raise ValueError(f"need a of shape (m,) and b of shape (m, d); got {a.shape}, {b.shape}")
    if weights is None:
        weights = np.full(a.shape[0], 1.0 / a.shape[0])
    weights = np.ascontiguousarray(np.asarray(weights, dtype=np.float64))
    if weights.shape != a.shape:
        raise ValueError(f"weights must have shape {a.shape}, got {weights.shape}")
    return a, b, weights


def linear_coefficient(a, b, weights=None):
    """w = ½ Σ_j w_j a_j b_j: the linear (odd) part of the predictor, f_odd(x) = ⟨w, x⟩.

    Parameters
    ----------
    a : (m,) array
    b : (m, d) array
    weights : (m,) array, optional
        Particle masses (uniform 1/m by default).

    Returns
    -------
    (d,) array
    """
    a, b, weights = _particle_arrays(a, b, weights)
    return 0.5 * (weights * a) @ b


def moments(a, b, weights=None):
    """(w, S, s) = (½ Σ w_j a_j b_j, Σ w_j b_j b_jᵀ, Σ w_j a_j²): shapes (d,), (d, d), scalar."""
    a, b, weights = _particle_arrays(a, b, weights)
    return 0.5 * (weights * a) @ b, b.T @ (weights[:, None] * b), float(weights @ (a * a))


def even_part_on_probes(a, b, weights, x, block=256):
    """Even part f_e(x) = ½(f(x) + f(−x)) = ½ Σ_j w_j a_j |⟨b_j, x⟩| on probe points.

    f(x) and f(−x) are evaluated as two predictions f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩) (dense
    products over blocks of ``block`` probes, no compiled kernel) and added, so a symmetric
    measure shows the cancellation a user would see. The second output is the size of the
    terms that cancel, ½ Σ_j w_j |a_j| |⟨b_j, x⟩|: |f_e| at round-off means |f_e| ≲ 1e-15 ×
    that scale.

    Parameters
    ----------
    a : (m,) array
    b : (m, d) array
    weights : (m,) array or None
    x : (n, d) array
        Probe inputs.
    block : int
        Probes per dense (block, m) product.

    Returns
    -------
    f_even : (n,) array
    scale : (n,) array
    """
    a, b, weights = _particle_arrays(a, b, weights)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != b.shape[1]:
        raise ValueError(f"probe inputs must have shape (n, {b.shape[1]}), got {x.shape}")
    c = weights * a
    f_even = np.empty(x.shape[0])
    scale = np.empty(x.shape[0])
    for lo in range(0, x.shape[0], int(block)):
        z = x[lo:lo + int(block)] @ b.T  # (block, m): ⟨b_j, x_n⟩
        f_plus = np.maximum(z, 0.0) @ c
        f_minus = np.maximum(-z, 0.0) @ c
        f_even[lo:lo + int(block)] = 0.5 * (f_plus + f_minus)
        scale[lo:lo + int(block)] = 0.5 * np.abs(z) @ np.abs(c)
    return f_even, scale


def even_part_norm_sq(a, b, weights, v_rho, block=512):
    """Exact E_ρ[f_e²] for Gaussian (or spherical) inputs with E[xxᵀ] = v_ρ I.

    f_e = ½ Σ_j c_j |⟨b_j, x⟩| with c_j = w_j a_j, and (derived here from the arcsine law)

        E|⟨u,x⟩||⟨v,x⟩| = v_ρ (2/π) (‖u‖‖v‖ sin γ + (π/2 − γ)⟨u, v⟩),

    γ = angle(u, v); the kernel is even in v, so a pair (a, b), (−a, −b) cancels term by term.
    Cost O(m² d) in row blocks of ``block`` (no m × m array).

    Parameters
    ----------
    a : (m,) array
    b : (m, d) array
    weights : (m,) array or None
    v_rho : float
    block : int

    Returns
    -------
    float
    """
    a, b, weights = _particle_arrays(a, b, weights)
    if not (np.isfinite(v_rho) and v_rho > 0):
        raise ValueError(f"v_rho must be a positive number, got {v_rho}")
    c = weights * a
    n2 = np.einsum("ij,ij->i", b, b)
    total = 0.0
    for lo in range(0, a.shape[0], int(block)):
        hi = min(lo + int(block), a.shape[0])
        dot = b[lo:hi] @ b.T
        cross = np.sqrt(np.maximum(n2[lo:hi, None] * n2[None, :] - dot * dot, 0.0))
        gamma = np.arctan2(cross, dot)
        kern = cross + (0.5 * pi - gamma) * dot
        total += c[lo:hi] @ kern @ c
    return float(0.25 * v_rho * (2.0 / pi) * total)


def pair_defect(a, b, partner=None):
    """Symmetry defect of a paired start: max_j ‖θ_j + θ_{π(j)}‖_∞ / max_j ‖θ_j‖_∞.

    Zero exactly when every particle's partner is its image (−a, −b).

    Parameters
    ----------
    a : (m,) array
    b : (m, d) array
    partner : (m,) int array, optional
        π(j); by default j ↔ j + m/2 (the layout of :func:`meanfield.models.particles.init_paired`).

    Returns
    -------
    float
    """
    a, b, _ = _particle_arrays(a, b, None)
    m = a.shape[0]
    if partner is None:
        if m % 2:
            raise ValueError(f"the default pairing j ↔ j + m/2 needs an even m, got m = {m}")
        partner = np.concatenate([np.arange(m // 2, m), np.arange(m // 2)])
    partner = np.asarray(partner)
    if partner.shape != (m,):
        raise ValueError(f"partner must have shape ({m},), got {partner.shape}")
    theta = np.column_stack([a, b])
    scale = np.abs(theta).max()
    if scale == 0.0:
        return 0.0
    return float(np.abs(theta + theta[partner]).max() / scale)


def sign_flip_defect(a, b, weights, direction):
    """W₁ between the laws of ψ = a + ⟨b, u⟩ under μ and under its image by (a, b) ↦ (−a, −b).

    ψ is odd under the action, so the distance is 0 for a symmetric μ and of order m^{−½}
    for m i.i.d. particles from a symmetric law.

    Parameters
    ----------
    a : (m,) array
    b : (m, d) array
    weights : (m,) array or None
    direction : (d,) array
        u (normalised here), e.g. w*.

    Returns
    -------
    float
    """
    from ..theory.distances import wasserstein_1d

    a, b, weights = _particle_arrays(a, b, weights)
    u = np.asarray(direction, dtype=np.float64)
    if u.shape != (b.shape[1],) or not np.linalg.norm(u) > 0:
        raise ValueError(f"direction must be a non-zero vector of shape ({b.shape[1]},)")
    psi = a + b @ (u / np.linalg.norm(u))
    return wasserstein_1d(psi, -psi, weights, weights)
