"""The particle flow as a field of the one loop: ``simulate_flow(...)`` for a whole run,
``init``/``Simulation.step`` for users who write their own loop.

Time is in units of the PDE: one Euler step of size dt advances time by dt, and equals
gradient descent on the m-neuron network f = (1/m) Σ_j a_j σ(⟨b_j, x⟩) with learning rate
m·dt. With a fixed-step integrator the risk history is recorded from the first stage of every
recorded step (free); with an adaptive pair (``bosh3``, ``dopri5``) records fall at requested
times by dense output. The per-particle conserved quantity Q_j = a_j² − ‖b_j‖² (its
weight-decay / per-layer-rate version) is checked after every step, and a run that produces a
non-finite state stops with ``status = "diverged"``, keeping the last finite state.
"""
import json
from dataclasses import dataclass

import numpy as np

from ..engine import DEFAULT_ATOL, DEFAULT_RTOL, Field, Result, Solver
from .backends import make_backend
from .particles import Particles, dissipation, orbit_rescale, rescaling_charge
from .problem import Problem

__all__ = ["ParticleField", "Simulation", "FlowResult", "simulate_flow", "init", "predict"]


class ParticleField(Field):
    """The mean-field particle flow θ_j' = −η ∘ ∇_θ V_μ(θ_j) − λθ_j as a :class:`Field`.

    Parameters
    ----------
    problem : Problem
    weights : (m,) array
    backend : str or backend object
        ``exact`` or ``sampled`` (see :func:`meanfield.models.backends.make_backend`).
    batch_size : int
    weight_decay, rate_a, rate_b : float
        λ ≥ 0 (decoupled from the rates) and the per-layer rates η_a, η_b > 0.
    seed : int
        Seeds the minibatch generator of the sampled backend.
    exact_risk_every : int or None
        With the sampled backend, evaluate the exact risk at every ``exact_risk_every``-th
        record when the problem allows it.
    q0 : (m,) array
        Q_j at t = 0 (the orbit rescaling restores Q_j(0) e^{−2λt}).
    """

    names = ("a", "b")
    state_label = "particles"
    record_keys = ("risk_exact", "dissipation", "q_drift")

    def __init__(self, problem, weights, backend="exact", batch_size=512, weight_decay=0.0,
                 rate_a=1.0, rate_b=1.0, seed=0, exact_risk_every=None, q0=None):
        super().__init__(weights)
        self.problem = problem
        self.backend = make_backend(problem, backend, batch_size)
        self.deterministic = self.backend.name == "exact"
        self.weight_decay, self.rate_a, self.rate_b = (float(weight_decay), float(rate_a),
                                                       float(rate_b))
        self.rng = np.random.default_rng(seed)
        self.exact_risk_every = exact_risk_every
        self.q0 = q0

    def charge(self, a, b):
        """Q_j = a_j²/η_a − ‖b_j‖²/η_b, (m,)."""
        return rescaling_charge(a, b, self.rate_a, self.rate_b)

    def velocity(self, y, t=None):
        """((v_a, v_b), risk): v = −η ∘ ∇_θ V − λθ at every particle.

        Weight decay is decoupled from the per-layer rates η = (rate_a, rate_b), so that
        a²/η_a − ‖b‖²/η_b decays exactly like e^{−2λt} for any rates (with the decay inside
        the rates, no such law exists when η_a ≠ η_b).
        """
        a, b = y
        ga, gb, risk = self.backend.gradients(a, b, self.weights, self.rng)
        lam = self.weight_decay
        va = -self.rate_a * ga - lam * a if lam else -self.rate_a * ga
        vb = -self.rate_b * gb - lam * b if lam else -self.rate_b * gb
        return (va, vb), risk

    def q_drift(self, a, b, t):
        """max_j |Q_j − Q_j(0) e^{−2λt}|."""
        q = self.charge(a, b)
        return float(np.max(np.abs(q - self.q0 * np.exp(-2.0 * self.weight_decay * t))))

    def project(self, y, t, rescale=False):
        if not rescale:
            return y, False
        decay = np.exp(-2.0 * self.weight_decay * t)
        return orbit_rescale(y[0], y[1], self.q0 * decay, self.rate_a, self.rate_b), True

    def record(self, y, t, k, risk, index):
        a, b = y
        va, vb = k
        w = self.weights
        out = {"risk_exact": np.nan,
               # Σ_j w_j (v_a²/η_a + ‖v_b‖²/η_b) = −dF/dt when λ = 0 (the energy identity)
               "dissipation": dissipation(va, vb, w, self.rate_a, self.rate_b),
               "q_drift": self.q_drift(a, b, t)}
        if self.backend.name == "exact":
            out["risk_exact"] = risk
        elif self.exact_risk_every and index % int(self.exact_risk_every) == 0 \
                and self.backend.exact is not None:
            out["risk_exact"] = self.backend.exact.risk(a, b, w)
        return out

    def state_dict(self):
        return {"q0": self.q0, "weights": self.weights,
                "rng_state": np.array(json.dumps(self.rng.bit_generator.state))}

    def load_state(self, state):
        if "q0" in state:
            self.q0 = np.array(state["q0"])
            self.weights = np.ascontiguousarray(state["weights"])
            self.rng.bit_generator.state = json.loads(str(state["rng_state"]))


@dataclass
class FlowResult(Result):
    """What a particle run produced (a :class:`~meanfield.engine.Result` with the particle
    flow's names).

    Attributes
    ----------
    t, risk : (r,) arrays
        Recorded times and risk F(μ_t) (exact for the exact backend, the batch estimate for
        the sampled one).
    risk_exact : (r,) array
        Exact risk at recorded times when the problem allows it (NaN otherwise).
    dissipation : (r,) array
        D = Σ_j w_j (v_a²/η_a + ‖v_b‖²/η_b) at recorded times: −dE/dt for
        E = F + (λ/2) Σ_j w_j (a_j²/η_a + ‖b_j‖²/η_b) (E = F without weight decay).
    q_drift : (r,) array
        max_j |Q_j(t) − Q_j(0) e^{−2λt}| at recorded times.
    snapshots : dict
        ``step`` (s,), ``t`` (s,), ``a`` (s, m), ``b`` (s, m, d).
    particles : Particles
        Final (or last finite) particles.
    status : str
        ``ok``, ``diverged``, ``max_steps`` or ``interrupted``.
    message : str
        What happened and, on failure, what to change.
    max_abs_Q_drift : float
        max over accepted steps of max_j |Q_j − Q_j(0) e^{−2λt}|.
    """

    max_abs_Q_drift: float = 0.0

    @property
    def risk_exact(self):
        return self.records["risk_exact"]

    @property
    def dissipation(self):
        return self.records["dissipation"]

    @property
    def q_drift(self):
        return self.records["q_drift"]

    @property
    def particles(self):
        return Particles(self.state["a"], self.state["b"], self.weights)


class Simulation(Solver):
    """A particle flow in progress (the :class:`~meanfield.engine.Solver` of a
    :class:`ParticleField`).

    Parameters
    ----------
    problem : Problem
    particles : Particles
        Initial particles (copied).
    dt : float or None
        Step size (> 0), in PDE time; with an adaptive integrator the first trial step
        (None: automatic).
    n_steps : int or None
        Total number of steps of a fixed-step run (or give ``t_end``).
    integrator : str
        A name from :data:`meanfield.engine.integrators.INTEGRATORS`.
    backend : str
        ``exact`` or ``sampled``.
    batch_size : int or None
        Inputs per evaluation for the sampled backend.
    weight_decay : float
        Weight decay λ ≥ 0: adds −λθ to the velocity, outside the per-layer rates.
    rate_a, rate_b : float
        Separate step scales η_a, η_b for a and b (they multiply the gradient, not the decay).
    momentum : float
        μ for the ``momentum`` integrator.
    seed : int
        Seeds the minibatch generator of the sampled backend.
    record_every : int or None
        Fixed-step: record risk, dissipation and Q drift every this many steps (and at the
        last step); default 1.
    n_snapshots : int
        Number of particle snapshots; ``snapshot_spacing`` is ``linear`` or ``log``.
    exact_risk_every : int or None
        With the sampled backend, evaluate the exact risk (O(m² d)) at every
        ``exact_risk_every``-th record when the problem allows it.
    t_end, rtol, atol, max_steps, n_records, record_times, snapshot_times, project, observers
        See :class:`~meanfield.engine.Solver`.
    """

    result_class = FlowResult

    def __init__(self, problem, particles, dt=None, n_steps=None, integrator="euler",
                 backend="exact", batch_size=512, weight_decay=0.0, rate_a=1.0, rate_b=1.0,
                 momentum=0.9, seed=0, record_every=None, n_snapshots=0,
                 snapshot_spacing="linear", exact_risk_every=None, t_end=None,
                 rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL, max_steps=None, n_records=None,
                 record_times=None, snapshot_times=None, project=None, observers=()):
        if not isinstance(problem, Problem):
            raise ValueError("problem must be a meanfield.Problem")
        if not isinstance(particles, Particles):
            raise ValueError("particles must be meanfield.Particles (a (m,), b (m, d))")
        if particles.d != problem.d:
            raise ValueError(f"particles have d = {particles.d} but the problem has d = {problem.d}")
        if weight_decay < 0 or rate_a <= 0 or rate_b <= 0:
            raise ValueError("weight_decay must be >= 0 and rate_a, rate_b > 0")
        self.problem = problem
        self.weight_decay, self.rate_a, self.rate_b = float(weight_decay), float(rate_a), float(rate_b)
        pfield = ParticleField(problem, particles.weights.copy(), backend, batch_size,
                               weight_decay, rate_a, rate_b, seed, exact_risk_every)
        pfield.q0 = pfield.charge(particles.a, particles.b)
        self.max_abs_q_drift = 0.0
        super().__init__(pfield, (particles.a, particles.b), integrator, dt=dt, n_steps=n_steps,
                         t_end=t_end, rtol=rtol, atol=atol, max_steps=max_steps,
                         record_every=record_every, n_records=n_records,
                         record_times=record_times, n_snapshots=n_snapshots,
                         snapshot_spacing=snapshot_spacing, snapshot_times=snapshot_times,
                         project=project, observers=observers,
                         integrator_options={"momentum": momentum})

    # -- the particle view of the state ---------------------------------------------------
    @property
    def a(self):
        return self.y[0]

    @property
    def b(self):
        return self.y[1]

    @property
    def weights(self):
        return self.field.weights

    @property
    def backend(self):
        return self.field.backend

    @property
    def rng(self):
        return self.field.rng

    @property
    def q0(self):
        return self.field.q0

    @property
    def particles(self):
        return Particles(self.a.copy(), self.b.copy(), self.weights.copy())

    @property
    def snap_a(self):
        return self.snap["a"]

    @property
    def snap_b(self):
        return self.snap["b"]

    def velocity(self, a, b):
        """(v_a, v_b, risk) at the given particles (one evaluation, not counted)."""
        (va, vb), risk = self.field.velocity((a, b), self.t)
        return va, vb, risk

    def q_drift(self, a=None, b=None, t=None):
        """max_j |Q_j − Q_j(0) e^{−2λt}| for the given (default: current) state."""
        return self.field.q_drift(self.a if a is None else a, self.b if b is None else b,
                                  self.t if t is None else t)

    def _after_accept(self, info):
        self.max_abs_q_drift = max(self.max_abs_q_drift, self.q_drift())
        super()._after_accept(info)

    def _result_kwargs(self):
        kw = super()._result_kwargs()
        kw["max_abs_Q_drift"] = self.max_abs_q_drift
        return kw

    def state_dict(self):
        state = super().state_dict()
        state["max_abs_q_drift"] = np.float64(self.max_abs_q_drift)
        return state

    def load_state(self, state):
        super().load_state(state)
        self.max_abs_q_drift = float(state["max_abs_q_drift"])


def init(problem, particles, dt, n_steps=None, **options):
    """A :class:`Simulation` for your own loop: ``sim = init(...); sim.step(); sim.a, sim.b``.

    ``n_steps`` defaults to effectively unbounded (fixed-step integrators).
    """
    if n_steps is None and "t_end" not in options:
        n_steps = 2 ** 62
        options.setdefault("record_every", 2 ** 62)
    return Simulation(problem, particles, dt, n_steps, **options)


def simulate_flow(problem, particles, dt=None, n_steps=None, integrator="euler", backend="exact",
             **options):
    """Run the particle flow and return a :class:`FlowResult` (never raises on divergence:
    check ``result.status`` and ``result.message``).

    Fixed-step integrators take ``dt`` and ``n_steps`` (or ``t_end``); adaptive ones
    (``bosh3``, ``dopri5``) take ``t_end``, ``rtol``, ``atol`` and optionally a first trial
    ``dt``. See :class:`Simulation` for the options.
    """
    sim = Simulation(problem, particles, dt, n_steps, integrator=integrator, backend=backend,
                     **options)
    sim.advance()
    return sim.result()


def predict(particles, x, activation="relu", leaky_slope=0.01):
    """Predictor f(μ; x) = Σ_j w_j a_j σ(⟨b_j, x⟩) at points x (n, d); returns (n,)."""
    from .problem import ACTIVATIONS
    from ..kernels.sampled import predict_batch

    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf")
    return predict_batch(x, particles.a, particles.b, particles.weights, ACTIVATIONS[activation],
                         leaky_slope)
