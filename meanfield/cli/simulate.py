"""``python -m meanfield.simulate``: run an experiment from a config, with progress,
provenance, checkpoints and resume.

Exit status: 0 success; 1 the run itself failed (summary.json says why, the last good state
is kept); 2 invalid input (one line on stderr naming the key and what to change; nothing
written), including a run that would not fit in memory, an occupied folder and a resume
that would change settings; 130 interrupted by Ctrl-C and 143 by SIGTERM (a checkpoint is
written; ``--resume DIR`` continues).
"""
import argparse
import json
import os
import platform
import re
import signal
import sys
import time
from pathlib import Path

from .. import experiments
from .config import (OneLineParser, ConfigError, check_applies, check_generic, load_toml, parse_set,
                     resolve_config)
from ..io import atomic_write_json, file_mode
from .runctx import Interrupted, RunContext, RunFailed

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def _parser():
    p = OneLineParser(
        prog="python -m meanfield.simulate",
        description="Run a meanfield experiment. Without arguments, runs the default "
                    f"experiment ({experiments.DEFAULT_EXPERIMENT}) on its built-in config.",
        epilog="Examples:\n"
               "  python -m meanfield.simulate --list\n"
               "  python -m meanfield.simulate flow --set n_particles=512 --set dt=0.02\n"
               "  python -m meanfield.simulate flow --config my.toml --out runs/my-run\n"
               "  python -m meanfield.simulate --resume runs/my-run\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", nargs="?", help="experiment name (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file of config keys")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override one config key (repeatable; wins over --config)")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/EXPERIMENT-TIME)")
    p.add_argument("--resume", metavar="DIR", help="continue an interrupted run in DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary lines")
    p.add_argument("--threads", type=int, default=None,
                   help="Numba threads (default: all cores); recorded in config.json")
    p.add_argument("--show-config", action="store_true",
                   help="print the resolved config as JSON and exit without running")
    p.add_argument("--workers", type=int, default=None,
                   help="experiments made of sub-runs (" + ", ".join(_with_sub_runs()) + "): "
                        "run them on N local worker processes (a Dask LocalCluster); 1 runs "
                        "them here, one after the other (the default)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="as --workers, on a running Dask scheduler (tcp://host:8786); its "
                            "workers need meanfield installed and must see the run folder")
    where.add_argument("--scheduler-file", metavar="FILE",
                       help="as --scheduler, with the file `dask scheduler --scheduler-file` "
                            "wrote")
    return p


def _with_sub_runs():
    """Names of the experiments whose sub-runs can go to Dask workers (``SUB_RUNS``)."""
    return [n for n, m in experiments.available().items() if getattr(m, "SUB_RUNS", False)]


def _plan_executor(args, name, module):
    """The executor ``--workers`` / ``--scheduler`` ask for, not yet started, and the Numba
    threads of each sub-run; (None, None) without them. Raises ConfigError."""
    from .executor import Executor, plan_workers, scheduler_address, worker_env

    remote = args.scheduler is not None or args.scheduler_file is not None
    if args.workers is None and not remote:
        return None, None
    key = "--workers" if args.workers is not None else (
        "--scheduler" if args.scheduler is not None else "--scheduler-file")
    if not getattr(module, "SUB_RUNS", False):
        raise ConfigError(key, f"{name} is one run with no sub-runs to spread over workers; "
                               "drop " + key + " (experiments with sub-runs: "
                               + ", ".join(_with_sub_runs()) + ")")
    if remote:
        if args.workers is not None:
            raise ConfigError("--workers", "sets local workers; with --scheduler the "
                                           "scheduler's workers run the sub-runs")
        if args.scheduler is not None and not args.scheduler.strip():
            raise ConfigError("--scheduler", "is empty; give the address tcp://host:port")
        address = args.scheduler or scheduler_address(args.scheduler_file)
        return Executor(scheduler=address), args.threads
    workers, threads = plan_workers(1 << 20, args.workers, args.threads)
    return Executor(workers=workers, env=worker_env()), threads


def _versions():
    from importlib.metadata import PackageNotFoundError, version

    import numba
    import numpy
    import scipy

    from .. import __version__

    try:  # its metadata: importing matplotlib here would cost this process 0.5–1 s
        mpl = version("matplotlib")
    except PackageNotFoundError:  # pragma: no cover - an install without metadata
        import matplotlib

        mpl = matplotlib.__version__
    return {"meanfield": __version__, "python": platform.python_version(),
            "numpy": numpy.__version__, "scipy": scipy.__version__, "numba": numba.__version__,
            "matplotlib": mpl}


def _list(out):
    for name, module in experiments.available().items():
        out.write(f"{name:26s} {module.SUMMARY}\n")


LOCK = ".lock"
#: numerical failures that mean the computation diverged (a failed run, exit 1), not a bug
_NUMERICAL = (FloatingPointError, OverflowError, ZeroDivisionError)
_NON_FINITE = re.compile(r"\bNaN\b|\binf\b|non-finite|invalid numeric|not finite", re.I)


def _read_saved(run_dir):
    """config.json of a run folder, checked; raises ConfigError naming --resume."""
    cfg_file = run_dir / "config.json"
    if not run_dir.is_dir():
        raise ConfigError("--resume", f"{run_dir} is not a folder")
    if not cfg_file.is_file():
        raise ConfigError("--resume", f"{run_dir} is not a run folder (no config.json)")
    try:
        saved = json.loads(cfg_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError("--resume", f"{cfg_file} is not readable JSON ({exc}); restore it "
                                      "from the run's start") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("experiment"), str) \
            or not isinstance(saved.get("config"), dict):
        raise ConfigError("--resume", f"{cfg_file} lacks 'experiment' or 'config'; it was not "
                                      "written by python -m meanfield.simulate")
    return saved


def _stamped_files(run_dir):
    """Checkpoints and parts of a run folder (the files a resume continues from)."""
    files = [run_dir / "checkpoint.npz"] if (run_dir / "checkpoint.npz").exists() else []
    for sub in ("parts", "checkpoints"):
        files += sorted((run_dir / sub).glob("*.npz"))
    return files


def _diff_keys(old, new):
    keys = sorted(set(old) | set(new))
    return [f"{k} ({old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r})" for k in keys
            if old.get(k, "<absent>") != new.get(k, "<absent>")]


def _verify_resume(run_dir, saved):
    """Refuse a resume that would mix settings or continue from a damaged state.

    Every checkpoint and part must be readable and finite, and must have been made with the
    config now in config.json; config.json itself must match the hash written at the start.
    """
    import numpy as np

    from .config import config_hash
    from ..io import CONFIG_ARRAY

    summary = run_dir / "summary.json"
    if summary.exists():
        try:
            status = json.loads(summary.read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            status = None
        if status in ("ok", "failed"):
            raise ConfigError("--resume", f"{run_dir} holds a finished run (status {status}); "
                                          "its results are kept: start a new run with --out")
    config = saved["config"]
    for path in _stamped_files(run_dir):
        rel = path.relative_to(run_dir)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # truncated, zeroed, empty: zipfile, OSError, ValueError...
            raise ConfigError("--resume", f"{rel} is unreadable ({type(exc).__name__}); the "
                                          f"folder is left as it was: delete {rel} to redo "
                                          "that part from its start") from None
        # the state the run continues from: particle arrays of parts, y_<name> of the loop
        state_keys = [k for k in arrays if k in ("a", "b", "weights") or k.startswith("y_")]
        for k in state_keys:
            if not (arrays[k].dtype.kind == "f" and np.all(np.isfinite(arrays[k]))):
                raise ConfigError("--resume", f"{rel} holds a non-finite state ({k}); the "
                                              f"folder is left as it was: delete {rel} to "
                                              "redo that part from its start")
        if CONFIG_ARRAY in arrays:
            made_with = json.loads(str(arrays[CONFIG_ARRAY]))
            diff = _diff_keys(made_with, config)
            if diff:
                raise ConfigError("--resume", f"config.json differs from the config {rel} was "
                                              f"made with: {'; '.join(diff)}. Only --threads may "
                                              "change on resume: restore config.json or start a "
                                              "new run")
    if "config_sha256" in saved and config_hash(config) != saved["config_sha256"]:
        raise ConfigError("--resume", "config.json was edited after the run started (its "
                                      "config no longer matches config_sha256); only --threads "
                                      "may change on resume: restore it or start a new run")


def validate_config(module, config, user_keys):
    """Every check that can refuse a config, in order: generic, applicability, experiment."""
    check_generic(config, module.DEFAULTS)
    check_applies(config, user_keys, getattr(module, "APPLIES", None),
                  getattr(module, "IMPLIES", None))
    if hasattr(module, "resolve"):
        module.resolve(config, user_keys)
    # sizes first: an experiment's own checks may build the problem, which for a hopeless
    # size would already exhaust the memory; an estimate that cannot be computed before the
    # range checks (say a zero divisor) is computed after them
    try:
        estimate = _estimate(module, config)
    except ConfigError:
        raise
    except (ArithmeticError, ValueError, TypeError, KeyError, IndexError):
        estimate = None
    if hasattr(module, "check"):
        module.check(config)
    if estimate is None:
        try:
            estimate = _estimate(module, config)
        except ConfigError:
            raise
        except (ArithmeticError, ValueError, TypeError, KeyError, IndexError):
            estimate = (None, None)  # no estimate for this config: run without one
    return estimate


def _prepare(args):
    """Resolve experiment, config and output folder; raises ConfigError, writes nothing."""
    if args.resume is not None:
        if not args.resume:
            raise ConfigError("--resume", "is empty; give the run folder to continue")
        run_dir = Path(args.resume)
        if args.experiment or args.config or args.set or args.out is not None:
            raise ConfigError("--resume", "takes no experiment, --config, --set or --out: the "
                                          "run's own config.json and folder are used")
        saved = _read_saved(run_dir)
        name = saved["experiment"]
        try:
            module = experiments.get(name)
        except KeyError:
            raise ConfigError("--resume", f"unknown experiment {name!r} in "
                                          f"{run_dir / 'config.json'}") from None
        _verify_resume(run_dir, saved)
        # a run made before a key existed continues with what it did then, not the default
        older = {k: f(saved["config"]) for k, f in getattr(module, "ADDED_KEYS", {}).items()
                 if k not in saved["config"]}
        config = resolve_config(module.DEFAULTS, getattr(module, "CHOICES", {}), saved["config"],
                                older, types=getattr(module, "TYPES", None))
        estimate = validate_config(module, config, set())
        return name, module, config, run_dir, saved, estimate
    name = args.experiment or experiments.DEFAULT_EXPERIMENT
    available = experiments.available()
    if name not in available:
        raise ConfigError("experiment", f"unknown experiment {name!r}; accepted values are: "
                                        + ", ".join(available))
    module = available[name]
    layers = []
    if args.config:
        layers.append(load_toml(args.config))
    layers.append(parse_set(args.set))
    user_keys = {k for layer in layers for k in layer}
    config = resolve_config(module.DEFAULTS, getattr(module, "CHOICES", {}), *layers,
                            types=getattr(module, "TYPES", None))
    estimate = validate_config(module, config, user_keys)
    if args.out is not None:
        if not args.out.strip():
            raise ConfigError("--out", "is empty; give a folder name, or leave --out out for "
                                       "runs/EXPERIMENT-TIME")
        run_dir = Path(args.out)
        _check_out(run_dir)
    else:
        run_dir = None  # chosen when the folder is claimed
    return name, module, config, run_dir, None, estimate


def _busy(run_dir):
    """True when ``run_dir`` holds anything but a lock file."""
    return any(p.name != LOCK for p in run_dir.iterdir())


def _check_out(run_dir):
    try:
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError("--out", f"{run_dir} exists and is not a folder; choose a folder "
                                       "name")
        if run_dir.is_dir() and _busy(run_dir):
            raise ConfigError("--out", f"{run_dir} already exists and is not empty; choose "
                                       "another folder, or use --resume to continue a run there")
    except OSError as exc:  # name too long, permission denied, ...
        raise ConfigError("--out", f"cannot use {str(run_dir)[:60]} as the run folder "
                                   f"({exc.strerror}); choose another folder") from None


def _lock(run_dir, new):
    """Claim ``run_dir`` for this process: an exclusive ``flock`` on ``run_dir/.lock`` (released
    by the kernel when the process ends, even by SIGKILL). For a new run the folder must still
    be empty once the lock is held, so of two runs started on one folder exactly one runs.
    Returns the open lock file descriptor; raises ConfigError."""
    import errno

    key = "--out" if new else "--resume"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, file_mode())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENAMETOOLONG:
            reason = "name too long"
        raise ConfigError(key, f"cannot use {str(run_dir)[:60]} as the run folder ({reason}); "
                               "choose another folder") from None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): the emptiness check remains
        fcntl = None
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(key, f"{run_dir} is in use by another run; wait for it to end "
                                   "or choose another folder") from None
    if new and _busy(run_dir):
        os.close(fd)
        raise ConfigError(key, f"{run_dir} already exists and is not empty; choose another "
                               "folder, or use --resume to continue a run there")
    return fd


def _claim_default(name):
    """Claim a fresh ``runs/NAME-TIME[-i]`` folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        run_dir = Path("runs") / (f"{name}-{stamp}" + (f"-{i}" if i else ""))
        if run_dir.exists():
            continue
        try:
            return run_dir, _lock(run_dir, new=True)
        except ConfigError as exc:
            if "in use" not in str(exc) and "not empty" not in str(exc):
                raise
    raise ConfigError("--out", "no free folder under runs/; give --out")


def _available_memory():
    """Bytes of memory available to a new computation (MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} EiB"


def _estimate(module, config):
    """(memory bytes, work, key using most memory) from the experiment's ``estimate``;
    raises ConfigError when the run cannot fit in the available memory."""
    if not hasattr(module, "estimate"):
        return None, None
    est = module.estimate(config)
    parts = {k: float(v) for k, v in est.get("memory", {}).items()}
    total = sum(parts.values())
    avail = _available_memory()
    if avail is not None and total > avail:
        key = max(parts, key=parts.get)
        raise ConfigError(key, f"this run needs about {_bytes(total)} of memory (records, "
                               f"snapshots, buffers) but {_bytes(avail)} is available; "
                               f"reduce {key}")
    return total, est.get("work")


def _print_summary(name, summary, run_dir, out):
    out.write(f"{name}: {summary.get('status')} in {summary.get('wall_time_s', 0):.2f} s -> {run_dir}\n")
    for key, value in summary.items():
        if key in ("status", "wall_time_s", "experiment"):
            continue
        if isinstance(value, float):
            out.write(f"  {key:28s} {value:.6g}\n")
        else:
            out.write(f"  {key:28s} {value}\n")


class _Terminated(Exception):
    """SIGTERM arrived before the run started."""


def _git_commit():
    """``<sha>[-dirty]`` of the checkout the package runs from, or None when not a checkout."""
    import subprocess

    import meanfield

    root = Path(meanfield.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--",
                                "meanfield"], capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


class _WarningLog:
    """Collects warnings raised during a run (counted by message) instead of printing them."""

    def __init__(self):
        self.counts = {}

    def __call__(self, message, category, filename, lineno, file=None, line=None):
        key = f"{category.__name__}: {message}"
        if key in self.counts or len(self.counts) < 50:
            self.counts[key] = self.counts.get(key, 0) + 1

    def lines(self):
        return [f"{k} ({n} times)" if n > 1 else k for k, n in self.counts.items()]


def main(argv=None, stdout=None, stderr=None, figure_process=False):
    """Entry point; returns the exit status (0, 1, 2, 130 or 143; see the module docstring).

    With ``figure_process`` (what ``python -m meanfield.simulate`` passes) a run's figures
    are drawn by a second process started with the run (:mod:`meanfield.plots.process`):
    its matplotlib import overlaps the run instead of following it. Without it (the
    default, for callers that make many short runs in one process: the tests, ``verify``)
    they are drawn in this process."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    previous = {}

    def _early(signum, frame):
        raise _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    from . import _startup

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _early)
    except ValueError:  # not the main thread: no signal handling
        previous = {}
    if _startup.HANDLER is not None and previous.get(signal.SIGINT) is _startup.HANDLER:
        previous[signal.SIGINT] = signal.default_int_handler
    try:
        return _main(argv, stdout, stderr, previous, figure_process)
    except KeyboardInterrupt:
        stderr.write("interrupted during start-up; nothing was run\n")
        return EXIT_INTERRUPTED
    except _Terminated:
        stderr.write("terminated during start-up; nothing was run\n")
        return EXIT_TERMINATED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(argv, stdout, stderr, previous, figure_process=False):
    lock_fd = None
    try:
        args = _parser().parse_args(argv)
        if args.list:
            _list(stdout)
            return EXIT_OK
        if args.threads is not None:
            import numba

            # with --scheduler, --threads is what each sub-run uses on the (other) machines
            # that run it; this process uses as many of its own cores as it has
            most = numba.config.NUMBA_NUM_THREADS
            remote = args.scheduler is not None or args.scheduler_file is not None
            if args.threads < 1 or (args.threads > most and not remote):
                raise ConfigError("--threads", f"must be between 1 and {most}")
            numba.set_num_threads(min(args.threads, most))
        name, module, config, run_dir, saved, (memory, work) = _prepare(args)
        executor, sub_run_threads = _plan_executor(args, name, module)
        if args.show_config:
            stdout.write(json.dumps(config, indent=2) + "\n")
            return EXIT_OK
    except ConfigError as exc:
        stderr.write(f"error: {exc}\n")
        return EXIT_INVALID
    if executor is not None:  # the cluster starts, or the scheduler answers, before any file
        try:
            executor.__enter__()
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the user's address
            if executor.in_process or not executor.scheduler:
                raise
            where = "--scheduler-file" if args.scheduler_file else "--scheduler"
            stderr.write(f"error: {where}: cannot reach the Dask scheduler "
                         f"{executor.scheduler} ({type(exc).__name__}); check that it is "
                         "running\n")
            return EXIT_INVALID
    try:
        try:
            if run_dir is None:
                run_dir, lock_fd = _claim_default(name)
            else:
                lock_fd = _lock(run_dir, new=saved is None)
        except ConfigError as exc:
            stderr.write(f"error: {exc}\n")
            return EXIT_INVALID
        try:
            # started first, so that its imports overlap all of this process's work
            with _figures_ahead(module, figure_process) as process:
                return _run(args, argv, name, module, config, run_dir, saved, memory, work,
                            stdout, stderr, previous, executor, sub_run_threads, process)
        finally:
            os.close(lock_fd)
    finally:
        if executor is not None:
            executor.__exit__(None, None, None)


def _figures_ahead(module, figure_process):
    """The run's :class:`~meanfield.plots.process.FigureProcess` (a context manager) when
    ``figure_process`` is asked for and the experiment has figures; else one giving None."""
    from contextlib import nullcontext

    figures = getattr(module, "FIGURES_MODULE", None)
    if not (figure_process and figures):
        return nullcontext()
    from ..plots.process import FigureProcess

    return FigureProcess([figures])


def _run(args, argv, name, module, config, run_dir, saved, memory, work, stdout, stderr,
         previous, executor=None, sub_run_threads=None, figure_process=None):
    import numba

    from .config import config_hash
    from ..io import remove_stale_temporaries

    threads = numba.get_num_threads()
    where = None
    if executor is not None:  # provenance: where the sub-runs ran
        where = executor.describe() + (f", {sub_run_threads} Numba thread(s) per sub-run"
                                       if sub_run_threads else "")
    if saved is None:
        versions = _versions()
        commit = _git_commit()
        if commit:
            versions["meanfield_git"] = commit
        atomic_write_json(run_dir / "config.json", {
            "experiment": name, "config": config, "seed": config.get("seed"),
            "config_sha256": config_hash(config),
            "versions": versions, "threads": threads,
            "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
            "command": ["python", "-m", "meanfield.simulate"] + list(argv if argv is not None
                                                                      else sys.argv[1:]),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **({"sub_runs": where} if where else {})})
    else:
        remove_stale_temporaries(run_dir)
        saved["threads"] = threads
        saved.setdefault("resumed", []).append(
            {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "threads": threads,
             **({"sub_runs": where} if where else {})})
        atomic_write_json(run_dir / "config.json", saved)
    log = (lambda msg: stdout.write(msg + "\n"))
    ctx = RunContext(run_dir, quiet=args.quiet, resuming=saved is not None, log=log,
                     config=saved["config"] if saved is not None else config,
                     progress_stream=stderr, executor=executor, sub_run_threads=sub_run_threads)
    ctx.figure_process = figure_process
    if work is not None:
        ctx.log(f"{name}: estimated work {work:.3g} pair evaluations x steps, memory about "
                f"{_bytes(memory)}, {threads} threads -> {run_dir}")
    if where:
        ctx.log(f"{name}: sub-runs {where}")
    signals = {}

    def _on_signal(signum, frame):
        if ctx.stop_requested():  # a second signal: give up at once
            raise KeyboardInterrupt
        signals.setdefault("first", signum)
        ctx.request_stop()

    for sig in previous:
        signal.signal(sig, _on_signal)
    start = time.perf_counter()
    status, code, extra = "ok", EXIT_OK, {}
    caught = _WarningLog()
    try:
        import warnings

        import numpy as np

        with warnings.catch_warnings(), np.errstate(divide="warn", over="warn",
                                                    invalid="warn", under="ignore"):
            warnings.simplefilter("always")
            # raised when the garbage collector finds an unclosed file or socket, whoever
            # opened it (another test, a library's pipe): nothing about this run
            warnings.simplefilter("ignore", ResourceWarning)
            warnings.showwarning = caught
            results = module.run(config, ctx) or {}
    except RunFailed as exc:
        status, code = "failed", EXIT_FAILED
        results = {"reason": str(exc), **exc.details}
    except (Interrupted, KeyboardInterrupt) as exc:
        status, code = "interrupted", EXIT_INTERRUPTED
        results = {"reason": str(exc) or "interrupted; continue with --resume " + str(run_dir)}
    except _NUMERICAL as exc:
        status, code = "failed", EXIT_FAILED
        results = {"reason": f"the computation diverged ({type(exc).__name__}: {exc}); reduce "
                             "the step size (dt, lr) or the scale of the start"}
    except Exception as exc:
        if isinstance(exc, ValueError) and _NON_FINITE.search(str(exc)):
            # a library function refused non-finite numbers: the computation diverged
            status, code = "failed", EXIT_FAILED
            results = {"reason": f"the computation diverged ({exc}); reduce the step size "
                                 "(dt, lr) or the scale of the start"}
        else:  # a bug or an unexpected failure: keep the reason on disk
            status, code = "error", EXIT_FAILED
            import traceback

            results = {"reason": f"{type(exc).__name__}: {exc}"}
            extra["traceback"] = traceback.format_exc()
    finally:
        for sig in previous:
            signal.signal(sig, _ignore_until_return)
    if code == EXIT_INTERRUPTED and signals.get("first") == signal.SIGTERM:
        code = EXIT_TERMINATED
    wall = time.perf_counter() - start
    summary = {"experiment": name, "status": results.pop("status", status)
               if status == "ok" else status, "wall_time_s": wall, **results}
    if caught.counts:
        summary["warnings"] = caught.lines()
    if status == "ok" and summary["status"] not in ("ok",):
        code = EXIT_FAILED
    atomic_write_json(run_dir / "summary.json", summary)
    if extra.get("traceback"):
        stderr.write(extra["traceback"])
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        stderr.write(f"{'terminated' if code == EXIT_TERMINATED else 'interrupted'}: checkpoint "
                     f"kept; continue with python -m meanfield.simulate --resume {run_dir}\n")
    elif code != EXIT_OK:
        stderr.write(f"run failed: {summary.get('reason', summary['status'])}\n")
    if not args.quiet:
        _print_summary(name, summary, run_dir, stdout)
    return code


def _ignore_until_return(signum, frame):
    """Between the end of the run and the return of ``main``: the summary is being written,
    and a signal must not tear it."""
