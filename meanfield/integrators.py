"""Time steppers for the particle flow dθ_j/dt = v(θ_j), one registry for the library, the CLI
and the tests.

Each integrator maps the state (a, b, buffers) at time t to time t + dt and returns the
risk and the velocities evaluated at the start of the step (its first stage), so recording
the risk history costs nothing extra. ``order`` is the global order of accuracy in dt
(tests fit it from a log–log slope); ``conservative`` says whether a_j² − ‖b_j‖² (or its
weight-decay / per-layer-rate version) is kept to round-off.
"""
import numpy as np

__all__ = ["INTEGRATORS", "get_integrator", "orbit_rescale", "Integrator"]


class Integrator:
    """Base class: ``step(field, a, b, buffers, dt, t)`` -> (a⁺, b⁺, buffers⁺, risk, va, vb)."""

    name = ""
    order = 1
    conservative = False
    stages = 1

    def __init__(self, **options):
        self.options = options

    def new_buffers(self, a, b):
        return {}


class Euler(Integrator):
    """Explicit Euler: θ⁺ = θ + dt v(θ). For the flow this is gradient descent on the m-particle
    network with learning rate m·dt (mean-field scaling)."""

    name, order = "euler", 1

    def step(self, field, a, b, buf, dt, t):
        va, vb, risk = field(a, b)
        return a + dt * va, b + dt * vb, buf, risk, va, vb


class Heun(Integrator):
    """Heun's method (explicit trapezoid), order 2, two evaluations per step."""

    name, order, stages = "heun", 2, 2

    def step(self, field, a, b, buf, dt, t):
        va, vb, risk = field(a, b)
        va2, vb2, _ = field(a + dt * va, b + dt * vb)
        return a + 0.5 * dt * (va + va2), b + 0.5 * dt * (vb + vb2), buf, risk, va, vb


class RK4(Integrator):
    """Classical Runge–Kutta, order 4, four evaluations per step."""

    name, order, stages = "rk4", 4, 4

    def step(self, field, a, b, buf, dt, t):
        ka1, kb1, risk = field(a, b)
        ka2, kb2, _ = field(a + 0.5 * dt * ka1, b + 0.5 * dt * kb1)
        ka3, kb3, _ = field(a + 0.5 * dt * ka2, b + 0.5 * dt * kb2)
        ka4, kb4, _ = field(a + dt * ka3, b + dt * kb3)
        a_new = a + dt / 6.0 * (ka1 + 2 * ka2 + 2 * ka3 + ka4)
        b_new = b + dt / 6.0 * (kb1 + 2 * kb2 + 2 * kb3 + kb4)
        return a_new, b_new, buf, risk, ka1, kb1


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
    A = a * a / rate_a
    C = np.einsum("ij,ij->i", b, b) / rate_b
    Q = q_target
    disc = np.sqrt(Q * Q + 4.0 * A * C)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(Q >= 0, (Q + disc) / (2.0 * A), 2.0 * C / (disc - Q))
    # a = 0 and b = 0 are fixed points of the orbit: leave them alone
    y = np.where(np.isfinite(y) & (y > 0), y, 1.0)
    s = np.sqrt(y)
    return a * s, b / s[:, None]


class ProjectedEuler(Euler):
    """Euler followed by the orbit rescaling that restores every particle's conserved
    quantity Q_j(t) = Q_j(0) e^{−2λt} (with per-layer rates, a²/η_a − ‖b‖²/η_b): exactly
    conservative, order 1 for the predictor."""

    name, conservative = "euler_projected", True

    def step(self, field, a, b, buf, dt, t):
        a1, b1, buf, risk, va, vb = super().step(field, a, b, buf, dt, t)
        q0 = buf["q0"]
        decay = np.exp(-2.0 * self.options.get("weight_decay", 0.0) * (t + dt))
        a2, b2 = orbit_rescale(a1, b1, q0 * decay, self.options.get("rate_a", 1.0),
                               self.options.get("rate_b", 1.0))
        return a2, b2, buf, risk, va, vb

    def new_buffers(self, a, b):
        ra, rb = self.options.get("rate_a", 1.0), self.options.get("rate_b", 1.0)
        return {"q0": a * a / ra - np.einsum("ij,ij->i", b, b) / rb}


class Momentum(Integrator):
    """Heavy-ball momentum: u⁺ = μ u + dt v(θ), θ⁺ = θ + u⁺. Breaks the conservation laws
    (the negative control); ``momentum`` is μ (default 0.9)."""

    name = "momentum"

    def step(self, field, a, b, buf, dt, t):
        mu = self.options.get("momentum", 0.9)
        va, vb, risk = field(a, b)
        ua = mu * buf["ua"] + dt * va
        ub = mu * buf["ub"] + dt * vb
        return a + ua, b + ub, {"ua": ua, "ub": ub}, risk, va, vb

    def new_buffers(self, a, b):
        return {"ua": np.zeros_like(a), "ub": np.zeros_like(b)}


#: name -> integrator class; iterate this in tests and the CLI.
INTEGRATORS = {cls.name: cls for cls in (Euler, Heun, RK4, ProjectedEuler, Momentum)}


def get_integrator(name, **options):
    """An integrator instance by name (see ``INTEGRATORS``)."""
    if name not in INTEGRATORS:
        raise ValueError(f"unknown integrator {name!r}; choose one of {', '.join(INTEGRATORS)}")
    return INTEGRATORS[name](**options)
