"""What flow experiments share: time-stepping keys, running a solver of the one loop with
progress, checkpoints and Ctrl-C, independent sub-runs in this process or on Dask workers
(:func:`map_sub_runs`), and the run-folder layout of trajectories.

Time keys (every experiment whose runs are flows): ``integrator`` (any name of the registry
its subject allows), ``dt`` (fixed-step: the step, with the experiment's default when unset;
adaptive: the first trial step, automatic when unset), ``n_steps`` (fixed-step only), ``t_end``
(adaptive: required, default the fixed-step default's dt × n_steps; fixed-step: optional, must
agree with n_steps × dt), ``rtol``, ``atol``, ``max_steps`` (adaptive), ``n_records``.
"""
import numpy as np

from ..cli.config import ConfigError, require
from ..engine import DEFAULT_ATOL, DEFAULT_MAX_STEPS, DEFAULT_RTOL, Checkpointer, ProgressObserver
from ..engine.integrators import INTEGRATORS

__all__ = ["TIME_DEFAULTS", "TIME_TYPES", "check_time", "time_options", "run_solver",
           "map_sub_runs",
           "trajectory_arrays", "is_adaptive", "check_horizon", "horizon_options"]

#: keys every flow experiment gains (None = unset; their types are in TIME_TYPES)
TIME_DEFAULTS = {"t_end": None, "rtol": DEFAULT_RTOL, "atol": DEFAULT_ATOL,
                 "max_steps": DEFAULT_MAX_STEPS, "n_records": None}
TIME_TYPES = {"dt": float, "n_steps": int, "t_end": float, "n_records": int}


def is_adaptive(config):
    return INTEGRATORS[config["integrator"]].adaptive


def check_time(config, dt_default, n_steps_default, prefix=""):
    """Raise ConfigError unless the time keys make sense for the chosen integrator."""
    integ = config["integrator"]
    dt, n, t_end = config[prefix + "dt"], config[prefix + "n_steps"], config.get("t_end")
    if dt is not None:
        require(np.isfinite(dt) and dt > 0, prefix + "dt", f"must be a positive number, got {dt}")
    if t_end is not None:
        require(np.isfinite(t_end) and t_end > 0, "t_end", f"must be a positive number, got {t_end}")
    require(config["rtol"] > 0, "rtol", f"must be > 0, got {config['rtol']}")
    require(config["atol"] >= 0, "atol", f"must be >= 0, got {config['atol']}")
    require(config["max_steps"] >= 1, "max_steps", f"must be >= 1, got {config['max_steps']}")
    if config.get("n_records") is not None:
        require(config["n_records"] >= 2, "n_records",
                f"must be >= 2 (both ends are recorded), got {config['n_records']}")
    if INTEGRATORS[integ].adaptive:
        if n is not None:
            raise ConfigError(prefix + "n_steps", f"does not apply to the adaptive integrator "
                                                  f"{integ!r} (it chooses its steps); remove it "
                                                  "and give t_end")
        return
    if n is not None:
        require(n >= 1, prefix + "n_steps", f"must be >= 1, got {n}")
    step = dt if dt is not None else dt_default
    if t_end is not None:
        if n is not None:
            require(abs(n * step - t_end) <= 1e-9 * t_end, "t_end",
                    f"t_end = {t_end:g} disagrees with n_steps × dt = {n * step:g}; give one of "
                    "them, or make them agree")
        else:
            ratio = t_end / step
            require(abs(ratio - round(ratio)) <= 1e-9 * max(1.0, ratio), "t_end",
                    f"t_end / dt = {ratio:.6g} is not an integer; choose dt dividing t_end")


def time_options(config, dt_default, n_steps_default, prefix=""):
    """Keyword arguments (dt, n_steps, t_end, rtol, atol, max_steps) for a Solver."""
    dt, n, t_end = config[prefix + "dt"], config[prefix + "n_steps"], config.get("t_end")
    if INTEGRATORS[config["integrator"]].adaptive:
        return {"dt": dt, "t_end": t_end if t_end is not None else dt_default * n_steps_default,
                "rtol": config["rtol"], "atol": config["atol"], "max_steps": config["max_steps"]}
    step = dt if dt is not None else dt_default
    if n is None:
        n = n_steps_default if t_end is None else int(round(t_end / step))
    return {"dt": step, "n_steps": n}


def check_horizon(config, dt_key="dt", n_key="n_steps"):
    """Checks for experiments whose ``dt`` and ``n_steps`` keep numeric defaults: they set the
    fixed-step runs and the horizon T = dt × n_steps, which ``t_end`` (when set) replaces;
    adaptive runs choose their own steps (first trial step automatic)."""
    require(np.isfinite(config[dt_key]) and config[dt_key] > 0, dt_key,
            f"must be a positive number, got {config[dt_key]}")
    require(config[n_key] >= 1, n_key, f"must be >= 1, got {config[n_key]}")
    require(config["rtol"] > 0, "rtol", f"must be > 0, got {config['rtol']}")
    require(config["atol"] >= 0, "atol", f"must be >= 0, got {config['atol']}")
    require(config["max_steps"] >= 1, "max_steps", f"must be >= 1, got {config['max_steps']}")
    if config.get("n_records") is not None:
        require(config["n_records"] >= 2, "n_records", "must be >= 2 (both ends are recorded)")
    t_end = config.get("t_end")
    if t_end is not None:
        require(np.isfinite(t_end) and t_end > 0, "t_end", f"must be a positive number, got {t_end}")
        if not is_adaptive(config):
            ratio = t_end / config[dt_key]
            require(abs(ratio - round(ratio)) <= 1e-9 * max(1.0, ratio), "t_end",
                    f"t_end / {dt_key} = {ratio:.6g} is not an integer; choose {dt_key} "
                    "dividing t_end")


def horizon(config, dt_key="dt", n_key="n_steps"):
    """T: ``t_end`` when set, else dt × n_steps."""
    t_end = config.get("t_end")
    return t_end if t_end is not None else config[dt_key] * config[n_key]


def horizon_options(config, dt_key="dt", n_key="n_steps", integrator=None):
    """Solver time options for :func:`check_horizon`'s convention (``integrator`` overrides
    the config's, e.g. Euler for SGD runs)."""
    integ = integrator or config["integrator"]
    T = horizon(config, dt_key, n_key)
    if INTEGRATORS[integ].adaptive:
        return {"t_end": T, "rtol": config["rtol"], "atol": config["atol"],
                "max_steps": config["max_steps"]}
    dt = config[dt_key]
    n = config[n_key] if config.get("t_end") is None else int(round(T / dt))
    return {"dt": dt, "n_steps": n}


def run_solver(solver, ctx, checkpoint, checkpoint_every=None, desc="", extra=None,
               restore_extra=None):
    """Advance ``solver`` to its end with a progress bar, periodic atomic checkpoints (every
    ``checkpoint_every`` accepted steps and every ctx.checkpoint_every_s seconds) and Ctrl-C
    handling (checkpoint, then :class:`~meanfield.cli.runctx.Interrupted`).

    ``checkpoint`` is a file name relative to the run folder; if it exists, the solver is
    restored from it first (a killed or interrupted run continues bit for bit).
    ``extra()`` adds arrays to every checkpoint, ``restore_extra(state)`` reads them back.
    """
    from ..cli.runctx import Interrupted

    state = ctx.load_checkpoint(checkpoint)  # stamped with the run's config
    if state is not None:
        solver.load_state(state)
        if restore_extra is not None:
            restore_extra(state)
        ctx.log(f"{desc or checkpoint}: resumed at t = {solver.t:.6g} "
                f"({solver.step_index} steps)")

    def save(state):
        ctx.save_checkpoint(checkpoint, **state)

    saver = Checkpointer(save, every_steps=checkpoint_every, every_s=ctx.checkpoint_every_s,
                         extra=extra)
    bar = ctx.progress(1000, desc)
    progress = ProgressObserver(bar)
    progress.sync(solver)
    solver.observers += [progress, saver]
    try:
        solver.advance(stop=ctx.stop_requested)
    finally:
        solver.observers.remove(progress)
        solver.observers.remove(saver)
        bar.close()
    saver(solver)
    if solver.status == "running":
        raise Interrupted(f"{desc or 'run'} stopped at t = {solver.t:.6g} "
                          f"({solver.step_index} steps); checkpoint saved")
    return solver.result()


def trajectory_arrays(result, model, **extra):
    """The run-folder layout of one trajectory (what ``python -m meanfield.film`` reads):
    ``model``, ``t`` and the records, final state arrays by name, ``weights``,
    ``snapshot_t``, ``snapshot_step`` and ``snapshot_<name>`` per state array."""
    out = {"model": np.array(model), "t": result.t, "weights": result.weights}
    for k, v in result.records.items():
        out[k] = v
    for name, v in result.state.items():
        out[name] = v
    snaps = result.snapshots
    out["snapshot_t"] = snaps["t"]
    out["snapshot_step"] = snaps["step"]
    for name in result.state:
        out["snapshot_" + name] = snaps[name]
    out.update(extra)
    return out


# --------------------------------------------------------------------------- sub-runs
def map_sub_runs(ctx, fn, jobs, args=(), bar=None, cost=None, label="sub-run"):
    """Run the independent sub-runs ``fn(job, *args, ctx)`` of an experiment and return their
    results in the order of ``jobs``.

    Without an executor (``ctx.executor`` None, or ``--workers 1``) the sub-runs run here
    one after the other, exactly as a loop would. With ``--workers N`` or ``--scheduler``
    each is a Dask task: it gets a :class:`~meanfield.cli.runctx.RunContext` of the same run
    folder (shared file system) and config, so its checkpoints and parts are the ones a
    resumed run looks for, and its result travels back by pickling (arrays bit for bit).
    A sub-run's result depends only on ``job`` and ``args`` (seeds come from the config and
    the job, never from the worker), so the results do not depend on where they ran.

    Parameters
    ----------
    ctx : RunContext
    fn : callable
        A module-level function (importable on the workers) ``fn(job, *args, ctx)``; it
        should load its part when one exists and save it when done, so that ``--resume``
        skips it.
    jobs : sequence
        One picklable item per sub-run.
    args : tuple
        Further arguments, the same for every sub-run (pickled once per task).
    bar : Progress, optional
        Advanced by ``cost(job)`` (default 1) as each sub-run finishes.
    label : str
        Names the tasks on the Dask dashboard.

    Returns
    -------
    list
        ``fn``'s results, in the order of ``jobs``.

    Raises
    ------
    Exception
        The first exception a sub-run raised (:class:`~meanfield.cli.runctx.RunFailed` keeps its
        details); the sub-runs not yet finished are cancelled (their checkpoints remain).
    Interrupted
        After Ctrl-C: the finished sub-runs have saved their parts.
    """
    import warnings

    from ..cli.runctx import Interrupted

    jobs = list(jobs)
    executor = getattr(ctx, "executor", None)
    results = [None] * len(jobs)
    if executor is None or executor.in_process:
        for i, job in enumerate(jobs):
            results[i] = fn(job, *args, ctx)
            if bar is not None:
                bar.update(cost(job) if cost else 1)
        return results
    spec = {"out_dir": str(ctx.out_dir.resolve()), "quiet": ctx.quiet,
            "resuming": ctx.resuming, "checkpoint_every_s": ctx.checkpoint_every_s,
            "config": ctx.config, "threads": ctx.sub_run_threads}
    names = [f"{label}-{_job_name(job)}" for job in jobs]
    tasks = [(fn, job, tuple(args), spec) for job in jobs]
    finished = 0
    for i, result, error in executor.map_unordered(_sub_run_task, tasks, names, retries=0,
                                                   stop=ctx.stop_requested):
        if error is not None:
            raise error
        results[i], lines, caught = result
        finished += 1
        for line in lines:
            ctx.log(line)
        for category, message in caught:  # the run's warning log counts them as here
            warnings.warn(message, category)
        if bar is not None:
            bar.update(cost(jobs[i]) if cost else 1)
    if finished < len(jobs):
        raise Interrupted(f"stopped with {finished} of {len(jobs)} {label}s finished (saved); "
                          "the others continue from their checkpoints on --resume")
    return results


def _job_name(job):
    import re

    text = "_".join(map(str, job)) if isinstance(job, (tuple, list)) else str(job)
    return re.sub(r"[^A-Za-z0-9.+-]", "_", text)[:60]


def _sub_run_task(fn, job, args, spec):
    """One sub-run on a Dask worker: ``fn(job, *args, ctx)`` with a context of the run's
    folder; returns ``(result, log lines, warnings as (category, message))``."""
    import io
    import warnings

    import numba

    from ..cli.runctx import RunContext

    if spec["threads"]:  # per task thread: Numba's thread count is thread-local
        numba.set_num_threads(min(int(spec["threads"]), numba.config.NUMBA_NUM_THREADS))
    lines = []
    ctx = RunContext(spec["out_dir"], quiet=spec["quiet"], resuming=spec["resuming"],
                     checkpoint_every_s=spec["checkpoint_every_s"], log=lines.append,
                     config=spec["config"], progress_stream=io.StringIO())
    # the same floating-point warning policy as a run of the command line
    with warnings.catch_warnings(record=True) as caught, np.errstate(
            divide="warn", over="warn", invalid="warn", under="ignore"):
        warnings.simplefilter("always")
        result = fn(job, *args, ctx)
    return result, lines, [(w.category, str(w.message)) for w in caught]
