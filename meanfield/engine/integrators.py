"""Time steppers for any field dy/dt = v(y, t), one registry for the library, the CLI and the
tests.

A state y is a tuple of float64 arrays (the particles (a, b), the reduced particles (a, z), the
1-D model's (c, θ), ...); a velocity function ``f(y, t) -> (k, risk)`` returns a tuple of the
same shapes and the risk at y. Every integrator reports the stages it used (stage points Y_i,
velocities k_i, risks) so the loop can record the risk from the first stage for free and the
conservation monitor can check the Runge–Kutta identities without extra evaluations.

Two kinds:

* **fixed-step** (``adaptive = False``): ``step(f, y, buffers, dt, t)`` advances by dt;
  ``euler`` (= gradient descent with learning rate m·dt for the particle flow), ``heun``,
  ``rk4``, ``euler_projected`` (Euler + the field's orbit rescaling after every step),
  ``momentum`` (heavy ball, the negative control of the conservation laws).
* **embedded pairs** (``adaptive = True``): ``attempt(f, y, k1, dt, t)`` takes one trial step
  from the velocity k1 = v(y) (first same as last: the last stage of an accepted step is
  v(y⁺), the next step's first stage) and returns the solution of order ``order``, the
  difference to the embedded solution of order ``error_order`` (the local error estimate)
  and the stages; ``dense(y, stages, dt, x)`` is the pair's continuous extension
  y(t + x dt), x ∈ [0, 1], so outputs fall at requested times without shortening steps.
  ``bosh3`` (Bogacki–Shampine 3(2)) and ``dopri5`` (Dormand–Prince 5(4)). The step-size
  controller lives in the loop (:mod:`meanfield.engine`).

``order`` is the global order of accuracy (tests fit it from log–log slopes), ``conservative``
says whether the particle flow's a_j² − ‖b_j‖² is kept to round-off, ``evaluations`` the
velocity evaluations per (accepted) step. Orbit rescaling is an option of every integrator
(``project=True``); ``euler_projected`` is Euler with it switched on.
"""
import numpy as np

__all__ = ["INTEGRATORS", "get_integrator", "Integrator", "EmbeddedPair",
           "FIXED_STEP", "ADAPTIVE", "integrator_table"]


def _combine(y, dt, coefs, ks):
    """y + dt Σ_i coefs_i k_i for every array of the state (zero coefficients skipped)."""
    out = []
    for n, yn in enumerate(y):
        acc = None
        for c, k in zip(coefs, ks):
            if c:
                term = c * k[n]
                acc = term if acc is None else acc + term
        out.append(yn + dt * acc if acc is not None else yn.copy())
    return tuple(out)


def _lincomb(dt, coefs, ks):
    """dt Σ_i coefs_i k_i for every array of the state."""
    out = []
    for n in range(len(ks[0])):
        acc = np.zeros_like(ks[0][n])
        for c, k in zip(coefs, ks):
            if c:
                acc += c * k[n]
        out.append(dt * acc)
    return tuple(out)


class Integrator:
    """Base class of the fixed-step integrators.

    ``step(f, y, buffers, dt, t)`` -> (y⁺, buffers⁺, stages) with ``stages`` the list of
    (Y_i, k_i, risk_i) the step evaluated, first stage first (Y_1 = y).
    """

    name = ""
    order = 1
    conservative = False
    stages = 1
    evaluations = 1
    adaptive = False
    project = False
    #: Butcher tableau (α (s, s), β (s,)) when the step is an explicit Runge–Kutta method
    tableau = None

    def __init__(self, **options):
        self.options = options
        self.project = bool(options.get("project", type(self).project))

    def new_buffers(self, y):
        return {}


class Euler(Integrator):
    """Explicit Euler: y⁺ = y + dt v(y). For the particle flow this is gradient descent on the
    m-particle network with learning rate m·dt (mean-field scaling)."""

    name, order = "euler", 1
    tableau = (np.zeros((1, 1)), np.array([1.0]))

    def step(self, f, y, buf, dt, t):
        k, risk = f(y, t)
        return tuple(yn + dt * kn for yn, kn in zip(y, k)), buf, [(y, k, risk)]


class Heun(Integrator):
    """Heun's method (explicit trapezoid), order 2, two evaluations per step."""

    name, order, stages, evaluations = "heun", 2, 2, 2
    tableau = (np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0.5, 0.5]))

    def step(self, f, y, buf, dt, t):
        k1, risk = f(y, t)
        y2 = tuple(yn + dt * kn for yn, kn in zip(y, k1))
        k2, risk2 = f(y2, t + dt)
        new = tuple(yn + 0.5 * dt * (a + b) for yn, a, b in zip(y, k1, k2))
        return new, buf, [(y, k1, risk), (y2, k2, risk2)]


class RK4(Integrator):
    """Classical Runge–Kutta, order 4, four evaluations per step."""

    name, order, stages, evaluations = "rk4", 4, 4, 4
    tableau = (np.array([[0.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0],
                         [0.0, 0.0, 1.0, 0.0]]), np.array([1.0, 2.0, 2.0, 1.0]) / 6.0)

    def step(self, f, y, buf, dt, t):
        k1, r1 = f(y, t)
        y2 = tuple(yn + 0.5 * dt * kn for yn, kn in zip(y, k1))
        k2, r2 = f(y2, t + 0.5 * dt)
        y3 = tuple(yn + 0.5 * dt * kn for yn, kn in zip(y, k2))
        k3, r3 = f(y3, t + 0.5 * dt)
        y4 = tuple(yn + dt * kn for yn, kn in zip(y, k3))
        k4, r4 = f(y4, t + dt)
        new = tuple(yn + dt / 6.0 * (a + 2 * b + 2 * c + e)
                    for yn, a, b, c, e in zip(y, k1, k2, k3, k4))
        return new, buf, [(y, k1, r1), (y2, k2, r2), (y3, k3, r3), (y4, k4, r4)]


class ProjectedEuler(Euler):
    """Euler followed by the field's orbit rescaling, which restores every particle's
    conserved quantity Q_j(t) = Q_j(0) e^{−2λt} (with per-layer rates, a²/η_a − ‖b‖²/η_b):
    exactly conservative, order 1 for the predictor. Same as ``euler`` with
    ``project=True``."""

    name, conservative, project = "euler_projected", True, True


class Momentum(Integrator):
    """Heavy-ball momentum: u⁺ = μ u + dt v(y), y⁺ = y + u⁺. Breaks the conservation laws
    (the negative control); ``momentum`` is μ (default 0.9). The buffers ``u0, u1, ...`` hold
    u for every array of the state."""

    name = "momentum"

    def step(self, f, y, buf, dt, t):
        mu = self.options.get("momentum", 0.9)
        k, risk = f(y, t)
        u = tuple(mu * buf[f"u{n}"] + dt * kn for n, kn in enumerate(k))
        return (tuple(yn + un for yn, un in zip(y, u)), {f"u{n}": un for n, un in enumerate(u)},
                [(y, k, risk)])

    def new_buffers(self, y):
        return {f"u{n}": np.zeros_like(yn) for n, yn in enumerate(y)}


class EmbeddedPair(Integrator):
    """An explicit Runge–Kutta pair with an embedded error estimate and dense output.

    Class attributes: ``C`` (s,) nodes, ``A`` (s, s) stage coefficients, ``B`` (s,) weights
    of the order-``order`` solution, ``E`` (s + 1,) the difference between the two solutions'
    weights (the last entry multiplies the FSAL stage v(y⁺)), ``P`` (s + 1, q) the dense
    output: y(t + x dt) = y + dt Σ_j (Σ_i P_ij k_i) x^{j+1}.
    """

    adaptive = True
    fsal = True
    C = A = B = E = P = None
    error_order = 1

    def attempt(self, f, y, k1, risk1, dt, t):
        """One trial step of size dt from y with k1 = v(y).

        Returns
        -------
        y_new : tuple of arrays
        err : tuple of arrays
            dt Σ_i E_i k_i, the local error estimate (difference of the two solutions).
        stages : list of (Y_i, k_i, risk_i), i = 1..s, then (y_new, v(y_new), risk(y_new))
        """
        stages = [(y, k1, risk1)]
        ks = [k1]
        for i in range(1, self.stages):
            yi = _combine(y, dt, self.A[i, :i], ks)
            ki, ri = f(yi, t + self.C[i] * dt)
            ks.append(ki)
            stages.append((yi, ki, ri))
        y_new = _combine(y, dt, self.B, ks)
        k_new, r_new = f(y_new, t + dt)
        ks.append(k_new)
        stages.append((y_new, k_new, r_new))
        err = _lincomb(dt, self.E, ks)
        return y_new, err, stages

    def dense(self, y, stages, dt, x):
        """y(t + x dt) from the stages of an accepted step, 0 <= x <= 1."""
        ks = [s[1] for s in stages]
        powers = x ** np.arange(1, self.P.shape[1] + 1)
        coefs = self.P @ powers
        return _combine(y, dt, coefs, ks)


class Bosh3(EmbeddedPair):
    """Bogacki–Shampine 3(2): order 3, error estimate of order 2, 3 new evaluations per
    step (FSAL), cubic Hermite dense output. Suits loose tolerances (rtol ≳ 1e-5)."""

    name, order, error_order, stages, evaluations = "bosh3", 3, 2, 3, 3
    C = np.array([0.0, 1 / 2, 3 / 4])
    A = np.array([[0.0, 0.0, 0.0], [1 / 2, 0.0, 0.0], [0.0, 3 / 4, 0.0]])
    B = np.array([2 / 9, 1 / 3, 4 / 9])
    E = np.array([5 / 72, -1 / 12, -1 / 9, 1 / 8])
    P = np.array([[1.0, -4 / 3, 5 / 9], [0.0, 1.0, -2 / 3], [0.0, 4 / 3, -8 / 9],
                  [0.0, -1.0, 1.0]])
    tableau = (A, B)


class Dopri5(EmbeddedPair):
    """Dormand–Prince 5(4): order 5, error estimate of order 4, 6 new evaluations per step
    (FSAL), Shampine's order-4 dense output. The default for flows at rtol 1e-6 … 1e-10."""

    name, order, error_order, stages, evaluations = "dopri5", 5, 4, 6, 6
    C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0])
    A = np.array([
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [1 / 5, 0.0, 0.0, 0.0, 0.0, 0.0],
        [3 / 40, 9 / 40, 0.0, 0.0, 0.0, 0.0],
        [44 / 45, -56 / 15, 32 / 9, 0.0, 0.0, 0.0],
        [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0.0, 0.0],
        [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0.0]])
    B = np.array([35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84])
    E = np.array([-71 / 57600, 0.0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40])
    P = np.array([
        [1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 131558114200 / 32700410799, -68118460800 / 10900136933,
         87487479700 / 32700410799],
        [0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
        [0.0, 127303824393 / 49829197408, -318862633887 / 49829197408,
         701980252875 / 199316789632],
        [0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
        [0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423]])
    tableau = (A, B)


#: name -> integrator class; iterate this in tests and the CLI.
INTEGRATORS = {cls.name: cls for cls in (Euler, Heun, RK4, ProjectedEuler, Momentum, Bosh3,
                                         Dopri5)}
#: names of the fixed-step and of the adaptive integrators, in registry order.
FIXED_STEP = tuple(n for n, c in INTEGRATORS.items() if not c.adaptive)
ADAPTIVE = tuple(n for n, c in INTEGRATORS.items() if c.adaptive)


def get_integrator(name, **options):
    """An integrator instance by name (see ``INTEGRATORS``)."""
    if name not in INTEGRATORS:
        raise ValueError(f"unknown integrator {name!r}; choose one of {', '.join(INTEGRATORS)}")
    return INTEGRATORS[name](**options)


def integrator_table():
    """Rows (name, order, evaluations per step, adaptive, conservative) of the registry."""
    return [(n, c.order, c.evaluations, c.adaptive, c.conservative)
            for n, c in INTEGRATORS.items()]


def __getattr__(name):
    # orbit_rescale moves particles along their rescaling orbit: a model's projection, now in
    # meanfield.models.particles (the loop knows no model); the old import path keeps working.
    if name == "orbit_rescale":
        from ..models.particles import orbit_rescale
        return orbit_rescale
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
