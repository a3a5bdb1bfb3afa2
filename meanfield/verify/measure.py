"""What produces the measurements: runs of the experiments (through the command line's own
entry point, exactly as ``python -m meanfield.simulate`` or a sweep point) and three small
measurement tasks that no experiment makes (exactness of the kernels and of the velocity,
the reduced models' velocities, the equivalent-minima counts).

Every run writes one folder under ``DIR/runs/<name>``; a run that finished is not run again
when the command is repeated on the same folder (a killed one resumes from its checkpoint).
:func:`run_task` is the one function the executor ships to workers.
"""
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Run", "run_task", "resolve_experiment", "TASKS"]


@dataclass
class Run:
    """One run of the report.

    ``kind`` is ``"experiment"`` (``target`` an experiment name, ``settings`` its config keys)
    or ``"task"`` (``target`` a name in :data:`TASKS`, ``settings`` its parameters).
    """

    name: str
    kind: str
    target: str
    settings: dict = field(default_factory=dict)


def _set_text(value):
    """A config value as ``--set`` reads it back (lists as JSON, floats by repr)."""
    if isinstance(value, (list, tuple, bool)) or value is None:
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def resolve_experiment(run):
    """The ``--set`` strings and the resolved config of an experiment run (validated with the
    run's own checks, so a bad profile fails here, before anything is written).

    Raises
    ------
    meanfield.config.ConfigError
    """
    from .. import experiments
    from ..cli.config import parse_set, resolve_config
    from ..cli.simulate import validate_config  # the checks a run makes, as sweeps use them

    module = experiments.get(run.target)
    types = getattr(module, "TYPES", None) or {}
    sets = [f"{k}={_set_text(v)}" for k, v in run.settings.items()]
    user = parse_set(sets)
    config = dict(resolve_config(module.DEFAULTS, getattr(module, "CHOICES", {}), user,
                                 types=types))
    validate_config(module, config, set(user))
    return sets, config


def run_task(run, run_dir, threads=None):
    """Run (or skip, when finished) one :class:`Run` into ``run_dir``; called on a worker.

    Returns
    -------
    dict
        ``status`` (ok, failed, error), ``reason``, ``run_s``, ``action`` (ran, resumed,
        skipped).
    """
    run_dir = Path(run_dir)
    if run.kind == "experiment":
        from ..cli.sweep import run_point

        sets, config = resolve_experiment(run)
        return run_point(run.target, str(run_dir), sets, config, threads)
    summary_path = run_dir / "summary.json"
    config = {"task": run.target, "params": run.settings}
    if summary_path.exists():
        saved = json.loads((run_dir / "config.json").read_text())
        summary = json.loads(summary_path.read_text())
        if saved.get("config") == config:
            return {"status": summary.get("status", "error"), "reason": summary.get("reason", ""),
                    "run_s": 0.0, "action": "skipped"}
        return {"status": "failed", "action": "skipped", "run_s": 0.0,
                "reason": f"{run_dir} holds a run of another config; move it away"}
    from .. import __version__
    from ..io import atomic_write_json

    if threads:
        import numba

        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", {"config": config, "version": __version__,
                                                "threads": threads, "pid": os.getpid()})
    start = time.perf_counter()
    try:
        data = TASKS[run.target](**run.settings)
        status, reason = "ok", ""
    except Exception as exc:  # noqa: BLE001 - reported in the folder and the report
        data, status, reason = {}, "error", f"{type(exc).__name__}: {exc}"
    run_s = time.perf_counter() - start
    if data:
        np.savez(run_dir / "measurements.npz", **data)
    atomic_write_json(summary_path, {"status": status, "reason": reason, "wall_time_s": run_s})
    return {"status": status, "reason": reason, "run_s": run_s, "action": "ran"}


# ------------------------------------------------------------------------ measurement tasks
def _fd_gradient(risk, a, b, h):
    """Central finite differences of risk(a, b) in every entry of a (m,) and b (m, d)."""
    ga, gb = np.zeros_like(a), np.zeros_like(b)
    for j in range(a.size):
        ap, am_ = a.copy(), a.copy()
        ap[j] += h
        am_[j] -= h
        ga[j] = (risk(ap, b) - risk(am_, b)) / (2 * h)
        for k in range(b.shape[1]):
            bp, bm = b.copy(), b.copy()
            bp[j, k] += h
            bm[j, k] -= h
            gb[j, k] = (risk(a, bp) - risk(a, bm)) / (2 * h)
    return ga, gb


def exactness(d=5, m=6, d_H=2, teacher_units=3, seed=0, mc_batches=200, mc_batch_size=5000,
              fd_step=1e-5, gd_dt=0.01, gd_steps=20):
    """Exact kernels against Monte Carlo, the velocity against finite differences of the
    exact risk, and Euler against a plain gradient-descent loop.

    The problem is a ReLU teacher plus ‖x_H‖ (both kernels of MATH §2), x ∼ N(0, I).
    Monte Carlo: ``mc_batches`` independent minibatch estimates (the sampled backend) of the
    potential gradients and the risk; their mean and standard error of the mean.
    Gradient descent: θ ← θ − m·dt·∇F with ∇F by central differences of the exact risk.

    Returns
    -------
    dict of arrays: ``exact``, ``mc_mean``, ``mc_se`` (n,), ``velocity``, ``fd_gradient``
    (m, 1 + d), ``weights`` (m,), ``theta_euler``, ``theta_gd`` (m, 1 + d)
    """
    import meanfield as mf
    from meanfield import ExactBackend, SampledBackend

    rng = np.random.default_rng(seed)
    teacher = mf.Teacher(rng.standard_normal(teacher_units), rng.standard_normal((teacher_units, d)))
    problem = mf.Problem(d, target=(teacher, mf.NormTarget(d_H)))
    mu = mf.init_gaussian(m, d, rng)
    a, b, w = mu.a.copy(), mu.b.copy(), mu.weights.copy()
    exact_backend = ExactBackend(problem)
    ga, gb, risk = exact_backend.gradients(a, b, w)
    exact = np.concatenate([ga, gb.ravel(), [risk]])
    sampled = SampledBackend(problem, batch_size=mc_batch_size)
    draws = np.empty((mc_batches, exact.size))
    for i in range(mc_batches):
        sa, sb, sr = sampled.gradients(a, b, w, rng)
        draws[i] = np.concatenate([sa, sb.ravel(), [sr]])
    mc_mean = draws.mean(axis=0)
    mc_se = draws.std(axis=0, ddof=1) / np.sqrt(mc_batches)

    def F(a_, b_):
        return exact_backend.risk(a_, b_, w)

    fa, fb = _fd_gradient(F, a, b, fd_step)
    velocity = -np.column_stack([ga, gb])
    fd = np.column_stack([fa, fb])

    res = mf.simulate_flow(problem, mu, dt=gd_dt, n_steps=gd_steps, integrator="euler")
    theta_euler = np.column_stack([res.particles.a, res.particles.b])
    lr = m * gd_dt
    ta, tb = a.copy(), b.copy()
    for _ in range(gd_steps):
        fa, fb = _fd_gradient(F, ta, tb, fd_step)
        ta, tb = ta - lr * fa, tb - lr * fb
    theta_gd = np.column_stack([ta, tb])
    return {"exact": exact, "mc_mean": mc_mean, "mc_se": mc_se, "velocity": velocity,
            "fd_gradient": fd, "weights": w, "theta_euler": theta_euler, "theta_gd": theta_gd,
            "risk": np.float64(risk), "n_samples": np.int64(mc_batches * mc_batch_size)}


def reduction(d=12, d_H=3, m=24, seed=0, n_terms=64, table_nodes=64, n_nodes=48):
    """Velocities and risk of the same balanced state in the 1-D model (ε, c, θ) and in the
    block-reduced (a, ‖b_H‖, ‖b⊥‖) model, mapped to (c, θ) coordinates.

    Returns
    -------
    dict: ``diff`` = max over risk, ċ and θ̇ of the absolute differences, and the parts.
    """
    import meanfield as mf
    from meanfield import BlockReduction, RadialKernel, ReducedBackend
    from meanfield.models.lowdim import reduced_from_radial, sample_radial_init

    rng = np.random.default_rng(seed)
    eps, _, theta = sample_radial_init(m, d, d_H, rng)
    c = rng.uniform(0.2, 2.0, m)
    w = rng.dirichlet(np.ones(m))
    kernel = RadialKernel(d_H, d - d_H, n_terms=n_terms, table_nodes=table_nodes)
    g, dg, risk1 = kernel.field(eps, c, theta, w)
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)),
                             BlockReduction.subspace(d, d_H, reduce_H=True), n_nodes=n_nodes)
    a, z = reduced_from_radial(eps, c, theta)
    ga, gz, risk2 = backend.gradients(a, z, w)
    va, vz = -ga, -gz
    rho = np.linalg.norm(z, axis=1)
    # (c, θ) velocities of the reduced state: c = |a|ρ, θ = atan2(z₂, z₁)
    vc = np.sign(a) * va * rho + np.abs(a) * np.einsum("ij,ij->i", z, vz) / rho
    vtheta = (z[:, 0] * vz[:, 1] - z[:, 1] * vz[:, 0]) / rho ** 2
    diffs = np.array([abs(risk1 - risk2), np.max(np.abs(2 * eps * c * g - vc)),
                      np.max(np.abs(eps * dg - vtheta))])
    return {"diff": np.float64(diffs.max()), "diffs": diffs, "risk_1d": np.float64(risk1),
            "risk_reduced": np.float64(risk2)}


def equivalent(cases=(("tanh", 4, True, 2), ("relu", 4, True, 2), ("tanh", 4, False, 0),
                      ("relu", 4, False, 0)), seed=1, d=3):
    """Equivalent minima: for one random network per case (activation, units k, bias, outputs
    p), the closed-form count against the number of distinct networks in its enumerated
    discrete orbit (permutations, and sign flips for odd activations).

    Returns
    -------
    dict: ``counted``, ``enumerated`` (cases,) int arrays; ``cases`` as JSON.
    """
    from meanfield import count_equivalent_minima
    from meanfield.systems.equivalent import discrete_orbit

    rng = np.random.default_rng(seed)
    counted, enumerated = [], []
    for activation, k, bias, p in cases:
        A = rng.standard_normal((p, k)) if p else rng.standard_normal(k)
        W = rng.standard_normal((k, d))
        c = rng.standard_normal(k) if bias else None
        points = set()
        for image in discrete_orbit(A, W, c, activation, max_units=k):
            parts = [np.ravel(image[0]), np.ravel(image[1])] + \
                ([] if image[2] is None else [image[2]])
            points.add(np.concatenate(parts).tobytes())
        enumerated.append(len(points))
        counted.append(count_equivalent_minima([k], activation).count)
    return {"counted": np.array(counted, dtype=np.int64),
            "enumerated": np.array(enumerated, dtype=np.int64),
            "cases": np.array(json.dumps([list(cs) for cs in cases]))}


#: the measurement tasks by name
TASKS = {"exactness": exactness, "reduction": reduction, "equivalent": equivalent}
