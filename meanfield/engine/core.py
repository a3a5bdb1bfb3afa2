"""The one loop: any field, any integrator of the registry, observers, one result type.

A **field** (:class:`Field`) is a model: its state is a tuple of float64 arrays whose first
axis runs over particles (the full particles (a, b), the block-reduced (a, z), the 1-D model's
(c, θ), the moment particles of the odd-target reduction), ``velocity(y, t) -> (k, risk)``
gives dy/dt and the risk at y, ``project`` is applied after every accepted step (reflection
r ↦ |r|, angle folding and, on request, orbit rescaling), ``record`` adds the field's own
quantities to every record, ``weights`` weigh the particles in the error norm.

The **loop** (:class:`Solver`) integrates a field with any integrator of
:data:`meanfield.engine.integrators.INTEGRATORS`:

* fixed-step integrators advance by dt for ``n_steps`` steps (t = k·dt exactly); records and
  snapshots fall on steps (``record_every``, or ``n_records`` / ``record_times`` rounded to the
  nearest step) and take the risk and velocity from the step's first stage (free);
* embedded pairs (``bosh3``, ``dopri5``) advance to ``t_end`` with steps chosen by a PI
  controller so that the local error estimate, scaled per coordinate by
  atol + rtol·max(|y|, |y⁺|) and averaged over particles with their weights (a weighted RMS
  norm), stays below 1; a rejected step is retried with a smaller dt; records and snapshots
  fall exactly at the requested times by the pair's dense output (steps are not shortened;
  a record between step ends costs one velocity evaluation for its risk).

What happens during a run is told to **observers**: every record is passed to
``observer.on_record(solver, index, y, t)`` (with the state at the record time, e.g. for
diagnostics that need more than a scalar), each accepted step (with its stages, so a
conservation monitor checks the Runge–Kutta identities without extra evaluations) is passed to
``observer.on_step(solver, info)``; checkpoints (:class:`Checkpointer`), progress
(:class:`ProgressObserver`) and stop requests (``advance(stop=...)``) are observers of the
same loop. Divergence is the loop's own business: a non-finite risk or state stops a
fixed-step run with status ``diverged`` keeping the last finite state; an adaptive run rejects
such a step and shrinks dt, and reports ``diverged`` when dt underflows.

Every run returns a :class:`Result`; :meth:`Solver.state_dict` / :meth:`Solver.load_state`
hold everything (controller state and first-same-as-last velocity included) so a run killed
at any moment and resumed from its last checkpoint is bit-identical to an uninterrupted one.
"""
import time
from dataclasses import dataclass, field as dc_field

import numpy as np

from .integrators import INTEGRATORS, get_integrator

__all__ = ["Field", "Solver", "Result", "integrate", "snapshot_steps", "snapshot_times",
           "Checkpointer", "ProgressObserver", "DEFAULT_RTOL", "DEFAULT_ATOL",
           "DEFAULT_MAX_STEPS"]

DEFAULT_RTOL = 1e-7
DEFAULT_ATOL = 1e-9
#: attempted steps (accepted + rejected) after which an adaptive run gives up
DEFAULT_MAX_STEPS = 100_000
#: default number of records of an adaptive run (both ends included)
DEFAULT_N_RECORDS = 101

# PI controller (Gustafsson; Hairer–Wanner's DOPRI5 defaults for k = 5)
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0


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


def snapshot_times(t_end, n_snapshots, spacing="linear", t_first=None):
    """Times of ``n_snapshots`` snapshots in [0, t_end], both ends included; ``log`` spacing
    is geometric from ``t_first`` (default t_end/1000) to t_end after t = 0."""
    if n_snapshots <= 0:
        return np.zeros(0)
    if n_snapshots == 1:
        return np.array([float(t_end)])
    if spacing == "linear":
        times = np.linspace(0.0, t_end, n_snapshots)
    elif spacing == "log":
        t_first = t_end / 1000.0 if t_first is None else min(t_first, t_end)
        times = np.concatenate([[0.0], np.geomspace(t_first, t_end, n_snapshots - 1)]) \
            if t_end > 0 else np.zeros(1)
        times[-1] = t_end
    else:
        raise ValueError(f"unknown snapshot spacing {spacing!r}; choose linear or log")
    return np.unique(times)


# ------------------------------------------------------------------------------- fields
class Field:
    """A model the loop can integrate (subclass and override :meth:`velocity`).

    Attributes
    ----------
    names : tuple of str
        Names of the state arrays (e.g. ``("a", "b")``); they name snapshot arrays and
        checkpoint entries.
    weights : (m,) array
        Particle weights (sum 1): the error norm of adaptive steps is a weighted RMS over
        particles, so a particle counts as much as its mass.
    deterministic : bool
        False when the velocity draws random numbers (minibatches, Monte Carlo estimators):
        such fields take fixed steps only (an error estimate of noise is meaningless).
    state_label : str
        What the state is called in messages ("particles").
    """

    names = ("y",)
    deterministic = True
    state_label = "state"
    #: keys that :meth:`record` adds to every record (besides ``risk``)
    record_keys = ()

    def __init__(self, weights):
        self.weights = np.ascontiguousarray(weights, dtype=np.float64)

    def velocity(self, y, t):
        """(dy/dt as a tuple of arrays shaped like y, risk at y)."""
        raise NotImplementedError

    def project(self, y, t, rescale=False):
        """Map a state back onto the model's domain after an accepted step (and at dense
        outputs): symmetries such as r ↦ |r|, and orbit rescaling when ``rescale``. Returns
        (y, changed)."""
        return y, False

    def invalid(self, y):
        """None, or a message saying why the finite state y is outside the model."""
        return None

    def record(self, y, t, k, risk, index):
        """Extra scalars recorded with the risk (keys :attr:`record_keys`)."""
        return {}

    def state_dict(self):
        """The field's own state for checkpoints (random generators, reference values)."""
        return {}

    def load_state(self, state):
        pass


# ------------------------------------------------------------------------------- result
@dataclass
class Result:
    """What a run produced, for every field.

    Attributes
    ----------
    t : (r,) array
        Record times.
    records : dict of (r,) arrays
        ``risk`` (what the velocity reported at the recorded state), ``n_evaluations``
        (velocity evaluations so far) and the field's :attr:`Field.record_keys`.
    snapshots : dict
        ``t`` (s,), ``step`` (s,) (accepted steps before the snapshot) and one array
        (s, ...) per state name.
    state : dict
        Final (or last good) state arrays by name.
    weights : (m,) array
    status : str
        ``ok``, ``diverged``, ``max_steps`` or ``interrupted``.
    message : str
        What happened and, on failure, what to change.
    wall_time_s : float
    n_evaluations, n_steps_accepted, n_steps_rejected : int
    integrator : str
    t_final : float
        Time reached.
    """

    t: np.ndarray
    records: dict
    snapshots: dict
    state: dict
    weights: np.ndarray
    status: str
    message: str
    wall_time_s: float
    n_evaluations: int = 0
    n_steps_accepted: int = 0
    n_steps_rejected: int = 0
    integrator: str = ""
    t_final: float = 0.0
    extras: dict = dc_field(default_factory=dict)

    @property
    def risk(self):
        return self.records["risk"]

    @property
    def steps_done(self):
        return self.n_steps_accepted

    @property
    def risk_final(self):
        r = self.risk
        return float(r[np.isfinite(r)][-1]) if np.any(np.isfinite(r)) else float("nan")

    def stats(self):
        """Counts for a summary: evaluations, accepted and rejected steps, wall time."""
        return {"n_evaluations": int(self.n_evaluations),
                "n_steps_accepted": int(self.n_steps_accepted),
                "n_steps_rejected": int(self.n_steps_rejected)}


# ----------------------------------------------------------------------------- observers
class Checkpointer:
    """Observer that saves ``solver.state_dict()`` (plus ``extra()``) with ``save(dict)``
    every ``every_steps`` accepted steps and every ``every_s`` seconds (atomic writes are
    the ``save`` function's job, e.g. :meth:`meanfield.cli.runctx.RunContext.save_arrays`)."""

    def __init__(self, save, every_steps=None, every_s=30.0, extra=None):
        self.save = save
        self.every_steps = every_steps
        self.every_s = every_s
        self.extra = extra
        self._last = time.monotonic()

    def __call__(self, solver):
        state = solver.state_dict()
        if self.extra is not None:
            state.update(self.extra())
        self.save(state)
        self._last = time.monotonic()

    def on_step(self, solver, info):
        due = self.every_steps and solver.step_index % int(self.every_steps) == 0
        if due or (self.every_s is not None and time.monotonic() - self._last >= self.every_s):
            self(solver)


class ProgressObserver:
    """Observer that moves a :class:`meanfield.cli.progress.Progress` bar (of ``total`` units)
    with the fraction of the run done (time for adaptive runs, steps for fixed ones)."""

    def __init__(self, bar, total=None):
        self.bar = bar
        self.total = bar.total if total is None else total
        self._done = 0

    def sync(self, solver):
        target = int(self.total * solver.fraction_done())
        if target > self._done:
            self.bar.update(target - self._done)
            self._done = target

    def on_step(self, solver, info):
        self.sync(solver)


# ------------------------------------------------------------------------------ the loop
def _as_state(y, names):
    if isinstance(y, np.ndarray):
        y = (y,)
    y = tuple(np.array(v, dtype=np.float64, copy=True) for v in y)
    if len(y) != len(names):
        raise ValueError(f"the state must have {len(names)} arrays ({', '.join(names)}), got "
                         f"{len(y)}")
    m = y[0].shape[0] if y[0].ndim else None
    for name, v in zip(names, y):
        if v.ndim == 0 or v.shape[0] != m:
            raise ValueError(f"state array {name!r} must have the particles on its first axis "
                             f"({m}), got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"state array {name!r} contains NaN or inf")
    return y


def _finite(y):
    # ndarray.all, not np.all: this runs at every step, and np.all's Python wrapper costs
    # more than the check on a few hundred particles
    return all(np.isfinite(v).all() for v in y)


class Solver:
    """A run of ``field`` from ``y0`` in progress: ``step()``, ``advance()``, ``result()``,
    ``state_dict()`` / ``load_state()``.

    Parameters
    ----------
    field : Field
    y0 : tuple of arrays
        Initial state (copied).
    integrator : str
        A name from :data:`meanfield.engine.integrators.INTEGRATORS`.
    dt : float or None
        Fixed-step integrators: the step (required). Adaptive: the first trial step
        (None: chosen from the field by Hairer's rule, one extra evaluation).
    n_steps : int or None
        Fixed-step integrators: number of steps (or give ``t_end``; if both, they must agree).
        An error for adaptive ones.
    t_end : float or None
        End time (required for adaptive integrators).
    rtol, atol : float
        Tolerances of the error norm (adaptive integrators).
    max_steps : int or None
        Attempted steps (accepted + rejected) after which an adaptive run stops with status
        ``max_steps`` (default :data:`DEFAULT_MAX_STEPS`).
    record_every : int or None
        Fixed-step integrators: record every this many steps (and the last); default 1.
    n_records : int or None
        Records at ``n_records`` equally spaced times in [0, t_end], both ends included
        (fixed-step: the nearest steps). Default for adaptive integrators: 101.
    record_times : array or None
        Explicit record times (fixed-step: rounded to steps).
    n_snapshots, snapshot_spacing : int, str
        Snapshots of the state, ``linear`` or ``log`` spacing (see :func:`snapshot_steps`,
        :func:`snapshot_times`).
    snapshot_times, snapshot_steps : array or None
        Explicit snapshot times (any integrator) or steps (fixed-step only).
    project : bool or None
        Orbit rescaling after every step (None: the integrator's default, True for
        ``euler_projected``).
    observers : sequence
        Objects with ``on_step(solver, info)``, called after each accepted step.
    integrator_options : dict
        Passed to the integrator (e.g. ``momentum``).
    """

    result_class = Result

    def __init__(self, field, y0, integrator="euler", dt=None, n_steps=None, t_end=None,
                 rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL, max_steps=None, record_every=None,
                 n_records=None, record_times=None, n_snapshots=0, snapshot_spacing="linear",
                 snapshot_times=None, snapshot_steps=None, project=None, observers=(),
                 integrator_options=None):
        if not isinstance(field, Field):
            raise ValueError("field must be a meanfield.engine.Field")
        self.field = field
        self.names = tuple(field.names)
        self.y = _as_state(y0, self.names)
        opts = dict(integrator_options or {})
        if project is not None:
            opts["project"] = bool(project)
        self.integrator = get_integrator(integrator, **opts)
        self.adaptive = self.integrator.adaptive
        if self.adaptive and not field.deterministic:
            raise ValueError(f"integrator {integrator!r} is adaptive, but this field's velocity "
                             "is random (minibatches / Monte Carlo): an error estimate of noise "
                             "is meaningless; choose a fixed-step integrator ("
                             + ", ".join(n for n, c in INTEGRATORS.items() if not c.adaptive)
                             + ")")
        self.observers = list(observers)
        self._setup_time(dt, n_steps, t_end, rtol, atol, max_steps)
        self._setup_outputs(record_every, n_records, record_times, n_snapshots, snapshot_spacing,
                            snapshot_times, snapshot_steps)
        self.buffers = self.integrator.new_buffers(self.y)
        self.step_index = 0
        self.n_rejected = 0
        self.n_evaluations = 0
        self.status = "running"
        self.message = ""
        self.wall_time_s = 0.0
        self._k = None       # velocity and risk at the current state (adaptive: FSAL)
        self._risk = None
        self._err_prev = 1e-4

    # -- set-up ------------------------------------------------------------------------
    def _setup_time(self, dt, n_steps, t_end, rtol, atol, max_steps):
        name = self.integrator.name
        if dt is not None and not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive number, got {dt}")
        if t_end is not None and not (np.isfinite(t_end) and t_end >= 0):
            raise ValueError(f"t_end must be a finite number >= 0, got {t_end}")
        if n_steps is not None and (int(n_steps) != n_steps or n_steps < 0):
            raise ValueError(f"n_steps must be a non-negative integer, got {n_steps}")
        if self.adaptive:
            if n_steps is not None:
                raise ValueError(f"n_steps does not apply to the adaptive integrator {name!r} "
                                 "(it chooses its steps): give t_end instead")
            if t_end is None:
                raise ValueError(f"the adaptive integrator {name!r} needs t_end")
            if not (np.isfinite(rtol) and rtol > 0) or not (np.isfinite(atol) and atol >= 0):
                raise ValueError(f"need rtol > 0 and atol >= 0, got rtol = {rtol}, "
                                 f"atol = {atol}")
            if max_steps is not None and (int(max_steps) != max_steps or max_steps < 1):
                raise ValueError(f"max_steps must be an integer >= 1, got {max_steps}")
            self.t_end = float(t_end)
            self.dt = None if dt is None else float(dt)
            self.n_steps = None
            self.rtol, self.atol = float(rtol), float(atol)
            self.max_steps = DEFAULT_MAX_STEPS if max_steps is None else int(max_steps)
            self._h = self.dt
            self.t = 0.0
        else:
            if dt is None:
                raise ValueError(f"the fixed-step integrator {name!r} needs dt")
            self.dt = float(dt)
            if n_steps is None:
                if t_end is None:
                    raise ValueError("give n_steps or t_end")
                n = t_end / self.dt
                if abs(n - round(n)) > 1e-9 * max(1.0, n):
                    raise ValueError(f"t_end / dt = {n:.12g} is not an integer: choose dt so "
                                     "that it divides t_end, or give n_steps")
                n_steps = int(round(n))
            elif t_end is not None and abs(n_steps * self.dt - t_end) > 1e-9 * max(1.0, t_end):
                raise ValueError(f"t_end = {t_end:g} and n_steps × dt = {n_steps * self.dt:g} "
                                 "disagree: give one of them, or make them agree")
            self.n_steps = int(n_steps)
            self.t_end = self.n_steps * self.dt
            self.rtol, self.atol, self.max_steps = float(rtol), float(atol), None
            self.t = 0.0

    def _setup_outputs(self, record_every, n_records, record_times, n_snapshots, spacing,
                       snap_times, snap_steps):
        given = [x is not None for x in (record_every, n_records, record_times)]
        if sum(given) > 1:
            raise ValueError("give at most one of record_every, n_records and record_times")
        if n_records is not None and int(n_records) < 2:
            raise ValueError(f"n_records must be >= 2 (both ends are recorded), got {n_records}")
        if snap_times is not None and snap_steps is not None:
            raise ValueError("give snapshot_times or snapshot_steps, not both")
        if self.adaptive:
            if record_every is not None:
                raise ValueError(f"record_every counts steps, which the adaptive integrator "
                                 f"{self.integrator.name!r} chooses itself: give n_records "
                                 "or record_times")
            if snap_steps is not None:
                raise ValueError("snapshot_steps needs a fixed-step integrator: give "
                                 "snapshot_times")
            if record_times is not None:
                rt = self._check_times(record_times, "record_times")
            else:
                rt = np.linspace(0.0, self.t_end, DEFAULT_N_RECORDS if n_records is None
                                 else int(n_records))
                rt = np.unique(rt)
            self.record_times = rt
            self.record_steps = None
            if snap_times is not None:
                st = self._check_times(snap_times, "snapshot_times")
            else:
                st = snapshot_times(self.t_end, n_snapshots, spacing, t_first=self.dt)
            self.snap_times = st
            self.snap_steps = None
        else:
            n = self.n_steps
            if record_times is not None:
                steps = self._times_to_steps(record_times, "record_times")
            elif n_records is not None:
                steps = np.unique(np.round(np.linspace(0, n, int(n_records))).astype(np.int64))
            else:
                every = 1 if record_every is None else int(record_every)
                if every < 1:
                    raise ValueError(f"record_every must be >= 1, got {record_every}")
                steps = np.arange(0, n + 1, every, dtype=np.int64)
                if steps[-1] != n:
                    steps = np.append(steps, n)
            self.record_steps = steps
            self.record_times = steps * self.dt
            if snap_steps is not None:
                ss = np.unique(np.asarray(snap_steps, dtype=np.int64))
                if ss.size and (ss[0] < 0 or ss[-1] > n):
                    raise ValueError(f"snapshot steps must lie in [0, {n}]")
            elif snap_times is not None:
                ss = self._times_to_steps(snap_times, "snapshot_times")
            else:
                ss = snapshot_steps(n, n_snapshots, spacing)
            self.snap_steps = ss
            self.snap_times = ss * self.dt
        r, s = self.record_times.size, self.snap_times.size
        self.rec = {k: np.full(r, np.nan) for k in ("risk", "n_evaluations")
                    + tuple(self.field.record_keys)}
        self.snap = {name: np.zeros((s,) + v.shape) for name, v in zip(self.names, self.y)}
        self.snap_step_taken = np.zeros(s, dtype=np.int64)
        self._rec_pos = 0
        self._snap_pos = 0

    def _check_times(self, times, key):
        t = np.unique(np.asarray(times, dtype=np.float64).ravel())
        if t.size and (t[0] < 0 or t[-1] > self.t_end * (1 + 1e-12) or not np.all(np.isfinite(t))):
            raise ValueError(f"{key} must lie in [0, t_end = {self.t_end:g}]")
        return np.minimum(t, self.t_end)

    def _times_to_steps(self, times, key):
        t = self._check_times(times, key)
        return np.unique(np.round(t / self.dt).astype(np.int64))

    # -- the velocity -------------------------------------------------------------------
    def _f(self, y, t):
        self.n_evaluations += 1
        return self.field.velocity(y, t)

    def fraction_done(self):
        if self.adaptive:
            return 1.0 if self.t_end == 0 else min(self.t / self.t_end, 1.0)
        return 1.0 if self.n_steps == 0 else self.step_index / self.n_steps

    @property
    def done(self):
        return self.t >= self.t_end if self.adaptive else self.step_index >= self.n_steps

    # -- outputs ------------------------------------------------------------------------
    def _record(self, y, t, k, risk):
        i = self._rec_pos
        self.rec["risk"][i] = risk
        self.rec["n_evaluations"][i] = self.n_evaluations
        for key, value in self.field.record(y, t, k, risk, i).items():
            self.rec[key][i] = value
        self._rec_pos += 1
        for obs in self.observers:
            if hasattr(obs, "on_record"):
                obs.on_record(self, i, y, t)

    def _snapshot(self, y):
        j = self._snap_pos
        for name, v in zip(self.names, y):
            self.snap[name][j] = v
        self.snap_step_taken[j] = self.step_index
        self._snap_pos += 1

    def _outputs_at_step(self, y, k, risk):
        """Fixed-step outputs due at the current step (state y, first-stage k and risk)."""
        s = self.step_index
        while self._snap_pos < self.snap_steps.size and self.snap_steps[self._snap_pos] == s:
            self._snapshot(y)
        if self._rec_pos < self.record_steps.size and self.record_steps[self._rec_pos] == s:
            self._record(y, self.t, k, risk)

    def _outputs_until(self, t_new, y_end, k_end, risk_end, dense=None):
        """Adaptive outputs with time <= t_new: at t_new from the step's end values, before
        it from ``dense(τ)`` (the pair's continuous extension, projected)."""
        while self._snap_pos < self.snap_times.size and self.snap_times[self._snap_pos] <= t_new:
            tau = self.snap_times[self._snap_pos]
            self._snapshot(y_end if (tau == t_new or dense is None) else dense(tau))
        while self._rec_pos < self.record_times.size and self.record_times[self._rec_pos] <= t_new:
            tau = self.record_times[self._rec_pos]
            if tau == t_new or dense is None:
                self._record(y_end, tau, k_end, risk_end)
            else:
                y_tau = dense(tau)
                k_tau, risk_tau = self._f(y_tau, tau)
                self._record(y_tau, tau, k_tau, risk_tau)

    # -- stepping -----------------------------------------------------------------------
    def step(self):
        """Advance one accepted step. Returns False (and sets ``status``) when the run is
        over or the step failed; the last good state is kept."""
        if self.status != "running" or self.done:
            return False
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._adaptive_step() if self.adaptive else self._fixed_step()

    def _fail(self, status, what):
        self.status = status
        if status == "diverged" and not self.adaptive:
            what += (f": the flow diverged; reduce dt (now {self.dt:g}) or use a more stable "
                     "integrator")
        self.message = what

    def _fixed_step(self):
        y, t, dt, k_index = self.y, self.t, self.dt, self.step_index
        y_new, buf, stages = self.integrator.step(self._f, y, self.buffers, dt, t)
        k0, risk0 = stages[0][1], stages[0][2]
        if not np.isfinite(risk0):
            self._fail("diverged", f"non-finite risk at step {k_index} (t = {t:.6g})")
            return False
        self._outputs_at_step(y, k0, risk0)
        if not _finite(y_new):
            self._fail("diverged", f"non-finite {self.field.state_label} after step {k_index} "
                                   f"(t = {t:.6g})")
            return False
        bad = self.field.invalid(y_new)
        if bad:
            self._fail("diverged", f"{bad} at step {k_index} (t = {t:.6g})")
            return False
        t_new = (k_index + 1) * dt
        y_new, _ = self.field.project(y_new, t_new, rescale=self.integrator.project)
        info = {"y_old": y, "t_old": t, "dt": dt, "stages": stages, "buffers_old": self.buffers}
        self.y, self.buffers = y_new, buf
        self.step_index += 1
        self.t = t_new
        self._after_accept(info)
        return True

    def finish(self):
        """Record the final state once the run reached its end (fixed-step: the risk at the
        last step costs one evaluation)."""
        if self.status != "running" or not self.done:
            return
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.adaptive:
                if self._k is None:  # t_end = 0
                    self._k, self._risk = self._f(self.y, self.t)
                self._outputs_until(self.t, self.y, self._k, self._risk)
                self.status = "ok"
                self.message = (f"reached t = {self.t:.6g} in {self.step_index} steps "
                                f"({self.n_rejected} rejected, {self.n_evaluations} evaluations)")
                return
            k, risk = self._f(self.y, self.t)
            if not np.isfinite(risk):
                self._fail("diverged", f"non-finite risk at step {self.step_index} "
                                       f"(t = {self.t:.6g})")
                return
            self._outputs_at_step(self.y, k, risk)
        self.status = "ok"
        self.message = f"completed {self.n_steps} steps (t = {self.t:.6g})"

    # -- adaptive stepping -------------------------------------------------------------
    def _norm(self, e, y, y_new):
        """Weighted RMS over particles of e / (atol + rtol max(|y|, |y⁺|))."""
        total = None
        n_coords = 0
        for en, yn, zn in zip(e, y, y_new):
            sc = self.atol + self.rtol * np.maximum(np.abs(yn), np.abs(zn))
            r = (en / sc) ** 2
            per = r.reshape(r.shape[0], -1).sum(axis=1)
            n_coords += int(np.prod(r.shape[1:], dtype=np.int64))
            total = per if total is None else total + per
        return float(np.sqrt(self.field.weights @ total / n_coords))

    def _initial_step(self):
        """Hairer–Nørsett–Wanner's starting step from the size of y, v(y) and v's change."""
        y, k = self.y, self._k
        zero = tuple(np.zeros_like(v) for v in y)
        d0 = self._norm(y, y, zero)
        d1 = self._norm(k, y, zero)
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        h0 = min(h0, self.t_end) if self.t_end > 0 else h0
        y1 = tuple(v + h0 * kv for v, kv in zip(y, k))
        k1, _ = self._f(y1, self.t + h0)
        d2 = self._norm(tuple(a - b for a, b in zip(k1, k)), y, zero) / h0
        if not np.isfinite(d2):
            return h0
        p = self.integrator.order
        h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1.0 / (p + 1))
        return min(100.0 * h0, h1)

    def _adaptive_step(self):
        integ = self.integrator
        if self._k is None:
            self._k, self._risk = self._f(self.y, self.t)
            if not (np.isfinite(self._risk) and _finite(self._k)):
                self._fail("diverged", f"non-finite velocity or risk at t = {self.t:.6g}")
                return False
            self._outputs_until(self.t, self.y, self._k, self._risk)
            if self._h is None:
                self._h = self._initial_step()
        y, t = self.y, self.t
        k_exp = integ.error_order + 1
        rejected = False
        while True:
            if self.step_index + self.n_rejected >= self.max_steps:
                self._fail("max_steps", f"reached max_steps = {self.max_steps} attempted steps "
                                        f"at t = {t:.6g} of t_end = {self.t_end:g}; raise "
                                        "max_steps or loosen rtol/atol")
                return False
            h = self._h
            last = t + h >= self.t_end
            if last:
                h = self.t_end - t
            y_new, err, stages = integ.attempt(self._f, y, self._k, self._risk, h, t)
            bad = None
            if not (_finite(y_new) and np.isfinite(stages[-1][2]) and _finite(stages[-1][1])):
                enorm = np.inf
                bad = f"non-finite {self.field.state_label}"
            else:
                bad = self.field.invalid(y_new)
                enorm = np.inf if bad else self._norm(err, y, y_new)
            if enorm <= 1.0:
                break
            self.n_rejected += 1
            rejected = True
            factor = _MIN_FACTOR if not np.isfinite(enorm) else \
                max(_MIN_FACTOR, _SAFETY * enorm ** (-1.0 / k_exp))
            self._h = h * factor
            if self._h < 1e-13 * max(1.0, abs(t)):
                self._fail("diverged", f"step size underflow at t = {t:.6g} "
                                       f"({bad or 'error estimate too large'}): the flow is "
                                       "singular or diverging there")
                return False
        t_new = self.t_end if last else t + h
        k_new, risk_new = stages[-1][1], stages[-1][2]
        y_proj, changed = self.field.project(y_new, t_new, rescale=integ.project)
        if changed:  # first same as last holds for the projected state only after this
            k_new, risk_new = self._f(y_proj, t_new)

        def dense(tau):
            out = integ.dense(y, stages, h, (tau - t) / h)
            return self.field.project(out, tau, rescale=integ.project)[0]

        self._outputs_until(t_new, y_proj, k_new, risk_new, dense)
        # PI controller on the accepted step; no growth right after a rejection
        beta = 0.2 / k_exp
        alpha = 1.0 / k_exp - 0.75 * beta
        if enorm == 0.0:
            factor = _MAX_FACTOR
        else:
            factor = _SAFETY * enorm ** (-alpha) * self._err_prev ** beta
            factor = min(_MAX_FACTOR, max(_MIN_FACTOR, factor))
        if rejected:
            factor = min(factor, 1.0)
        if not last or h >= self._h:
            self._h = h * factor
        self._err_prev = max(enorm, 1e-4)
        info = {"y_old": y, "t_old": t, "dt": h, "stages": stages[:-1], "buffers_old": {},
                "error_norm": enorm}
        self.y = y_proj
        self._k, self._risk = k_new, risk_new
        self.t = t_new
        self.step_index += 1
        self._after_accept(info)
        return True

    def _after_accept(self, info):
        for obs in self.observers:
            obs.on_step(self, info)

    # -- driving ------------------------------------------------------------------------
    def advance(self, n=None, stop=None, on_step=None):
        """Run up to ``n`` more accepted steps (default: to the end). ``stop()`` is polled
        before each step (e.g. Ctrl-C); ``on_step(solver)`` is called after each step.
        Returns True when the run is over (finished or failed)."""
        start = time.perf_counter()
        target = None if n is None else self.step_index + int(n)
        try:
            while self.status == "running" and not self.done:
                if target is not None and self.step_index >= target:
                    break
                if stop is not None and stop():
                    break
                if not self.step():
                    break
                if on_step is not None:
                    on_step(self)
            if self.done:
                self.finish()
        finally:
            self.wall_time_s += time.perf_counter() - start
        return self.status != "running"

    def run(self, stop=None):
        """Advance to the end and return :meth:`result`."""
        self.advance(stop=stop)
        return self.result()

    def _result_kwargs(self):
        n, s = self._rec_pos, self._snap_pos
        status = self.status if self.status != "running" else "interrupted"
        total = (f"{self.n_steps} steps" if not self.adaptive else f"t_end = {self.t_end:g}")
        snaps = {"t": self.snap_times[:s].copy(), "step": self.snap_step_taken[:s].copy()}
        for name in self.names:
            snaps[name] = self.snap[name][:s].copy()
        return dict(t=self.record_times[:n].copy(),
                    records={k: v[:n].copy() for k, v in self.rec.items()},
                    snapshots=snaps,
                    state={name: v.copy() for name, v in zip(self.names, self.y)},
                    weights=self.field.weights.copy(), status=status,
                    message=self.message or f"stopped after {self.step_index} steps "
                                            f"(t = {self.t:.6g}) of {total}",
                    wall_time_s=self.wall_time_s, n_evaluations=self.n_evaluations,
                    n_steps_accepted=self.step_index, n_steps_rejected=self.n_rejected,
                    integrator=self.integrator.name, t_final=self.t)

    def result(self):
        """A :class:`Result` of what has been computed so far."""
        return self.result_class(**self._result_kwargs())

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self):
        """Everything needed to continue bit for bit (arrays and scalars for an .npz)."""
        state = {"step_index": np.int64(self.step_index), "t_now": np.float64(self.t),
                 "n_rejected": np.int64(self.n_rejected),
                 "n_evaluations": np.int64(self.n_evaluations),
                 "rec_pos": np.int64(self._rec_pos), "snap_pos": np.int64(self._snap_pos),
                 "wall_time_s": np.float64(self.wall_time_s),
                 "snap_step_taken": self.snap_step_taken,
                 "integrator": np.array(self.integrator.name)}
        for name, v in zip(self.names, self.y):
            state["y_" + name] = v
            state["snap_" + name] = self.snap[name]
        for k, v in self.rec.items():
            state["rec_" + k] = v
        for k, v in self.buffers.items():
            state["buf_" + k] = v
        if self.adaptive:
            state["h_next"] = np.float64(np.nan if self._h is None else self._h)
            state["err_prev"] = np.float64(self._err_prev)
            state["has_k"] = np.bool_(self._k is not None)
            if self._k is not None:
                state["k_risk"] = np.float64(self._risk)
                for name, v in zip(self.names, self._k):
                    state["k_" + name] = v
        for k, v in self.field.state_dict().items():
            state["field_" + k] = v
        return state

    def load_state(self, state):
        """Restore a :meth:`state_dict` written by a run with the same settings."""
        if "integrator" in state and str(state["integrator"]) != self.integrator.name:
            raise ValueError(f"checkpoint was written by integrator {str(state['integrator'])!r}, "
                             f"this run uses {self.integrator.name!r}")
        for name, v in zip(self.names, self.y):
            if state["y_" + name].shape != v.shape:
                raise ValueError(f"checkpoint does not match this run's state shapes "
                                 f"({name}: {state['y_' + name].shape} vs {v.shape})")
        self.y = tuple(np.array(state["y_" + name]) for name in self.names)
        self.step_index = int(state["step_index"])
        self.t = float(state["t_now"])
        self.n_rejected = int(state["n_rejected"])
        self.n_evaluations = int(state["n_evaluations"])
        self._rec_pos = int(state["rec_pos"])
        self._snap_pos = int(state["snap_pos"])
        self.wall_time_s = float(state["wall_time_s"])
        self.snap_step_taken = np.array(state["snap_step_taken"])
        for name in self.names:
            self.snap[name] = np.array(state["snap_" + name])
        for k in self.rec:
            self.rec[k] = np.array(state["rec_" + k])
        for k in list(self.buffers):
            self.buffers[k] = np.array(state["buf_" + k])
        if self.adaptive:
            h = float(state["h_next"])
            self._h = None if np.isnan(h) else h
            self._err_prev = float(state["err_prev"])
            if bool(state["has_k"]):
                self._risk = float(state["k_risk"])
                self._k = tuple(np.array(state["k_" + name]) for name in self.names)
            else:
                self._k = self._risk = None
        self.field.load_state({k[len("field_"):]: v for k, v in state.items()
                               if k.startswith("field_")})


def integrate(field, y0, integrator="dopri5", **options):
    """Integrate ``field`` from ``y0`` and return a :class:`Result` (see :class:`Solver` for
    the options). Never raises on divergence: check ``result.status``."""
    return Solver(field, y0, integrator, **options).run()
