"""The particle simulation: ``simulate(...)`` for a whole run, ``init``/``Simulation.step`` for
users who write their own loop.

Time is in units of the PDE: one Euler step of size dt advances time by dt, and equals
gradient descent on the m-neuron network f = (1/m) Σ_j a_j σ(⟨b_j, x⟩) with learning rate
m·dt. The risk history is recorded from the first stage of every step (free), the
per-particle conserved quantity Q_j = a_j² − ‖b_j‖² (its weight-decay / per-layer-rate
version) is checked at every step, and a run that produces a non-finite state stops with
``status = "diverged"``, keeping the last finite state.
"""
import json
import time
from dataclasses import dataclass, field

import numpy as np

from .backends import make_backend
from .integrators import get_integrator
from .particles import Particles
from .problem import Problem

__all__ = ["Simulation", "FlowResult", "simulate", "init", "snapshot_steps", "predict"]


def snapshot_steps(n_steps, n_snapshots, spacing="linear"):
    """Step indices of ``n_snapshots`` snapshots in [0, n_steps], always including 0 and
    n_steps; ``spacing`` is ``linear`` or ``log`` (geometric from step 1)."""
    if n_snapshots <= 0:
        return np.zeros(0, dtype=np.int64)
    if n_snapshots == 1:
        return np.array([n_steps], dtype=np.int64)
    if spacing == "linear":
        steps = np.round(np.linspace(0, n_steps, n_snapshots))
    elif spacing == "log":
        steps = np.concatenate([[0], np.round(np.geomspace(1, max(n_steps, 1), n_snapshots - 1))])
    else:
        raise ValueError(f"unknown snapshot spacing {spacing!r}; choose linear or log")
    return np.unique(steps.astype(np.int64))


@dataclass
class FlowResult:
    """What a run produced.

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
        ``ok``, ``diverged`` or ``interrupted``.
    message : str
        What happened and, on failure, what to change.
    """

    t: np.ndarray
    risk: np.ndarray
    risk_exact: np.ndarray
    dissipation: np.ndarray
    q_drift: np.ndarray
    snapshots: dict
    particles: Particles
    status: str
    message: str
    wall_time_s: float
    steps_done: int
    max_abs_Q_drift: float = field(default=0.0)

    @property
    def risk_final(self):
        return float(self.risk[np.isfinite(self.risk)][-1]) if np.any(np.isfinite(self.risk)) \
            else float("nan")


class Simulation:
    """A particle flow in progress.

    Parameters
    ----------
    problem : Problem
    particles : Particles
        Initial particles (copied).
    dt : float
        Step size (> 0), in PDE time.
    n_steps : int
        Total number of steps of the run.
    integrator : str
        A name from :data:`meanfield.integrators.INTEGRATORS`.
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
    record_every : int
        Record risk, dissipation and Q drift every this many steps (and at the last step).
    n_snapshots : int
        Number of particle snapshots; ``snapshot_spacing`` is ``linear`` or ``log``.
    exact_risk_every : int or None
        With the sampled backend, evaluate the exact risk (O(m² d)) at every
        ``exact_risk_every``-th record when the problem allows it.
    """

    def __init__(self, problem, particles, dt, n_steps, integrator="euler", backend="exact",
                 batch_size=512, weight_decay=0.0, rate_a=1.0, rate_b=1.0, momentum=0.9, seed=0,
                 record_every=1, n_snapshots=0, snapshot_spacing="linear", exact_risk_every=None):
        if not isinstance(problem, Problem):
            raise ValueError("problem must be a meanfield.Problem")
        if not isinstance(particles, Particles):
            raise ValueError("particles must be meanfield.Particles (a (m,), b (m, d))")
        if particles.d != problem.d:
            raise ValueError(f"particles have d = {particles.d} but the problem has d = {problem.d}")
        if not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive number, got {dt}")
        if int(n_steps) != n_steps or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative integer, got {n_steps}")
        if weight_decay < 0 or rate_a <= 0 or rate_b <= 0:
            raise ValueError("weight_decay must be >= 0 and rate_a, rate_b > 0")
        if int(record_every) < 1:
            raise ValueError(f"record_every must be >= 1, got {record_every}")
        self.problem = problem
        self.dt = float(dt)
        self.n_steps = int(n_steps)
        self.weight_decay, self.rate_a, self.rate_b = float(weight_decay), float(rate_a), float(rate_b)
        self.integrator = get_integrator(integrator, weight_decay=self.weight_decay,
                                         rate_a=self.rate_a, rate_b=self.rate_b, momentum=momentum)
        self.backend = make_backend(problem, backend, batch_size)
        self.rng = np.random.default_rng(seed)
        self.exact_risk_every = exact_risk_every
        self.a = particles.a.copy()
        self.b = particles.b.copy()
        self.weights = particles.weights.copy()
        self.q0 = self.a ** 2 / self.rate_a - np.einsum("ij,ij->i", self.b, self.b) / self.rate_b
        self.buffers = self.integrator.new_buffers(self.a, self.b)
        self.step_index = 0
        self.status = "running"
        self.message = ""
        self.wall_time_s = 0.0
        self.max_abs_q_drift = 0.0
        # records
        steps = np.arange(0, self.n_steps + 1, int(record_every))
        if steps[-1] != self.n_steps:
            steps = np.append(steps, self.n_steps)
        self.record_steps = steps
        r = steps.size
        self.rec = {k: np.full(r, np.nan) for k in ("risk", "risk_exact", "dissipation", "q_drift")}
        self.snap_steps = snapshot_steps(self.n_steps, n_snapshots, snapshot_spacing)
        self.snap_a = np.zeros((self.snap_steps.size, self.a.size))
        self.snap_b = np.zeros((self.snap_steps.size,) + self.b.shape)
        self._rec_pos = 0
        self._snap_pos = 0

    # -- the velocity field --------------------------------------------------------------
    def velocity(self, a, b):
        """(v_a, v_b, risk): v = −η ∘ ∇_θ V − λθ at every particle.

        Weight decay is decoupled from the per-layer rates η = (rate_a, rate_b), so that
        a²/η_a − ‖b‖²/η_b decays exactly like e^{−2λt} for any rates (with the decay inside
        the rates, no such law exists when η_a ≠ η_b).
        """
        ga, gb, risk = self.backend.gradients(a, b, self.weights, self.rng)
        lam = self.weight_decay
        va = -self.rate_a * ga - lam * a if lam else -self.rate_a * ga
        vb = -self.rate_b * gb - lam * b if lam else -self.rate_b * gb
        return va, vb, risk

    @property
    def t(self):
        return self.step_index * self.dt

    @property
    def particles(self):
        return Particles(self.a.copy(), self.b.copy(), self.weights.copy())

    def q_drift(self, a=None, b=None, t=None):
        """max_j |Q_j − Q_j(0) e^{−2λt}| for the given (default: current) state."""
        a = self.a if a is None else a
        b = self.b if b is None else b
        t = self.t if t is None else t
        q = a * a / self.rate_a - np.einsum("ij,ij->i", b, b) / self.rate_b
        return float(np.max(np.abs(q - self.q0 * np.exp(-2.0 * self.weight_decay * t))))

    def _record(self, risk, va, vb):
        k = self.step_index
        while self._snap_pos < self.snap_steps.size and self.snap_steps[self._snap_pos] == k:
            self.snap_a[self._snap_pos] = self.a
            self.snap_b[self._snap_pos] = self.b
            self._snap_pos += 1
        if self._rec_pos < self.record_steps.size and self.record_steps[self._rec_pos] == k:
            i = self._rec_pos
            self.rec["risk"][i] = risk
            w = self.weights
            # Σ_j w_j (v_a²/η_a + ‖v_b‖²/η_b) = −dF/dt when λ = 0 (the energy identity)
            self.rec["dissipation"][i] = (w @ (va * va) / self.rate_a
                                          + w @ np.einsum("ij,ij->i", vb, vb) / self.rate_b)
            self.rec["q_drift"][i] = self.q_drift()
            if self.backend.name == "exact":
                self.rec["risk_exact"][i] = risk
            elif self.exact_risk_every and i % int(self.exact_risk_every) == 0 \
                    and self.backend.exact is not None:
                self.rec["risk_exact"][i] = self.backend.exact.risk(self.a, self.b, self.weights)
            self._rec_pos += 1

    # -- stepping ------------------------------------------------------------------------
    def step(self):
        """Advance one step. Returns False (and sets ``status``) if the step was refused
        because it produced a non-finite state; the last finite state is kept."""
        if self.step_index >= self.n_steps:
            return False
        # a diverging flow overflows before it turns non-finite: detect it, don't raise
        with np.errstate(over="ignore", invalid="ignore"):
            a_new, b_new, buf, risk, va, vb = self.integrator.step(
                self.velocity, self.a, self.b, self.buffers, self.dt, self.t)
        if not np.isfinite(risk):
            self._diverged(f"non-finite risk at step {self.step_index}")
            return False
        with np.errstate(over="ignore", invalid="ignore"):
            self._record(risk, va, vb)
        if not (np.all(np.isfinite(a_new)) and np.all(np.isfinite(b_new))):
            self._diverged(f"non-finite particles after step {self.step_index}")
            return False
        self.a, self.b, self.buffers = a_new, b_new, buf
        self.step_index += 1
        with np.errstate(over="ignore", invalid="ignore"):
            self.max_abs_q_drift = max(self.max_abs_q_drift, self.q_drift())
        return True

    def _diverged(self, what):
        self.status = "diverged"
        self.message = (f"{what} (t = {self.t:.6g}): the flow diverged; reduce dt "
                        f"(now {self.dt:g}) or use a more stable integrator")

    def finish(self):
        """Record the final state (risk at the last step) once all steps are done."""
        if self.step_index == self.n_steps and self.status == "running":
            with np.errstate(over="ignore", invalid="ignore"):
                va, vb, risk = self.velocity(self.a, self.b)
            if not np.isfinite(risk):
                self._diverged(f"non-finite risk at step {self.step_index}")
                return
            with np.errstate(over="ignore", invalid="ignore"):
                self._record(risk, va, vb)
            self.status = "ok"
            self.message = f"completed {self.n_steps} steps (t = {self.t:.6g})"

    def advance(self, n=None, stop=None, on_step=None):
        """Run up to ``n`` more steps (default: to the end). ``stop()`` is polled each step
        (e.g. Ctrl-C); ``on_step(sim)`` is called after each step. Returns True when done."""
        start = time.perf_counter()
        target = self.n_steps if n is None else min(self.n_steps, self.step_index + int(n))
        try:
            while self.step_index < target and self.status == "running":
                if stop is not None and stop():
                    break
                if not self.step():
                    break
                if on_step is not None:
                    on_step(self)
            if self.step_index == self.n_steps:
                self.finish()
        finally:
            self.wall_time_s += time.perf_counter() - start
        return self.status != "running"

    def result(self):
        """A :class:`FlowResult` of what has been computed so far."""
        n = self._rec_pos
        status = self.status if self.status != "running" else "interrupted"
        return FlowResult(
            t=self.record_steps[:n] * self.dt, risk=self.rec["risk"][:n].copy(),
            risk_exact=self.rec["risk_exact"][:n].copy(),
            dissipation=self.rec["dissipation"][:n].copy(), q_drift=self.rec["q_drift"][:n].copy(),
            snapshots={"step": self.snap_steps[: self._snap_pos],
                       "t": self.snap_steps[: self._snap_pos] * self.dt,
                       "a": self.snap_a[: self._snap_pos].copy(),
                       "b": self.snap_b[: self._snap_pos].copy()},
            particles=self.particles, status=status,
            message=self.message or f"stopped after {self.step_index} of {self.n_steps} steps",
            wall_time_s=self.wall_time_s, steps_done=self.step_index,
            max_abs_Q_drift=self.max_abs_q_drift)

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self):
        """Everything needed to continue bit for bit (arrays and scalars for an .npz)."""
        state = {"a": self.a, "b": self.b, "weights": self.weights, "q0": self.q0,
                 "step_index": np.int64(self.step_index), "rec_pos": np.int64(self._rec_pos),
                 "snap_pos": np.int64(self._snap_pos), "snap_a": self.snap_a, "snap_b": self.snap_b,
                 "wall_time_s": np.float64(self.wall_time_s),
                 "max_abs_q_drift": np.float64(self.max_abs_q_drift),
                 "rng_state": np.array(json.dumps(self.rng.bit_generator.state))}
        for k, v in self.rec.items():
            state["rec_" + k] = v
        for k, v in self.buffers.items():
            state["buf_" + k] = v
        return state

    def load_state(self, state):
        """Restore a :meth:`state_dict` written by a run with the same settings."""
        if state["a"].shape != self.a.shape or state["b"].shape != self.b.shape:
            raise ValueError("checkpoint does not match this run's particle shapes")
        self.a = np.ascontiguousarray(state["a"])
        self.b = np.ascontiguousarray(state["b"])
        self.weights = np.ascontiguousarray(state["weights"])
        self.q0 = state["q0"]
        self.step_index = int(state["step_index"])
        self._rec_pos = int(state["rec_pos"])
        self._snap_pos = int(state["snap_pos"])
        self.snap_a, self.snap_b = state["snap_a"].copy(), state["snap_b"].copy()
        self.wall_time_s = float(state["wall_time_s"])
        self.max_abs_q_drift = float(state["max_abs_q_drift"])
        self.rng.bit_generator.state = json.loads(str(state["rng_state"]))
        for k in self.rec:
            self.rec[k] = state["rec_" + k].copy()
        for k in list(self.buffers):
            self.buffers[k] = state["buf_" + k].copy()


def init(problem, particles, dt, n_steps=None, **options):
    """A :class:`Simulation` for your own loop: ``sim = init(...); sim.step(); sim.a, sim.b``.

    ``n_steps`` defaults to effectively unbounded.
    """
    return Simulation(problem, particles, dt, 2 ** 62 if n_steps is None else n_steps,
                      record_every=1 if n_steps is not None else 2 ** 62, **options)


def simulate(problem, particles, dt, n_steps, integrator="euler", backend="exact", **options):
    """Run the particle flow and return a :class:`FlowResult` (never raises on divergence:
    check ``result.status`` and ``result.message``).

    See :class:`Simulation` for the options.
    """
    sim = Simulation(problem, particles, dt, n_steps, integrator=integrator, backend=backend,
                     **options)
    sim.advance()
    return sim.result()


def predict(particles, x, activation="relu", leaky_slope=0.01):
    """Predictor f(μ; x) = Σ_j w_j a_j σ(⟨b_j, x⟩) at points x (n, d); returns (n,)."""
    from .problem import ACTIVATIONS
    from .sampled import predict_batch

    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf")
    return predict_batch(x, particles.a, particles.b, particles.weights, ACTIVATIONS[activation],
                         leaky_slope)
