"""``python -m meanfield.simulate``: run an experiment from a config, with progress,
provenance, checkpoints and resume.

Exit status: 0 success; 1 the run itself failed (summary.json says why, the last good state
is kept); 2 invalid input (one line on stderr naming the key and the accepted values;
nothing written); 130 interrupted by Ctrl-C (a checkpoint is written; ``--resume DIR``
continues).
"""
import argparse
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

from . import experiments
from .config import ConfigError, load_toml, parse_set, resolve_config
from .io import atomic_write_json
from .runctx import Interrupted, RunContext, RunFailed

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise ConfigError(None, f"{message} (see python -m meanfield.simulate --help)")


def _parser():
    p = _Parser(
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
    return p


def _versions():
    import matplotlib
    import numba
    import numpy
    import scipy

    from . import __version__

    return {"meanfield": __version__, "python": platform.python_version(),
            "numpy": numpy.__version__, "scipy": scipy.__version__, "numba": numba.__version__,
            "matplotlib": matplotlib.__version__}


def _list(out):
    for name, module in experiments.available().items():
        out.write(f"{name:26s} {module.SUMMARY}\n")


def _prepare(args):
    """Resolve experiment, config and output folder; raises ConfigError, writes nothing."""
    if args.resume:
        run_dir = Path(args.resume)
        cfg_file = run_dir / "config.json"
        if not cfg_file.exists():
            raise ConfigError("--resume", f"{run_dir} is not a run folder (no config.json)")
        if args.experiment or args.config or args.set:
            raise ConfigError("--resume", "takes no experiment, --config or --set: the run's "
                                          "own config.json is used")
        saved = json.loads(cfg_file.read_text())
        name = saved["experiment"]
        try:
            module = experiments.get(name)
        except KeyError:
            raise ConfigError("--resume", f"unknown experiment {name!r} in {cfg_file}") from None
        config = resolve_config(module.DEFAULTS, getattr(module, "CHOICES", {}), saved["config"])
        return name, module, config, run_dir, saved
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
    config = resolve_config(module.DEFAULTS, getattr(module, "CHOICES", {}), *layers)
    if hasattr(module, "check"):
        module.check(config)
    if args.out:
        run_dir = Path(args.out)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ConfigError("--out", f"{run_dir} already exists and is not empty; choose "
                                       "another folder, or use --resume to continue a run there")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path("runs") / f"{name}-{stamp}"
        i = 1
        while run_dir.exists():
            run_dir = Path("runs") / f"{name}-{stamp}-{i}"
            i += 1
    return name, module, config, run_dir, None


def _print_summary(name, summary, run_dir, out):
    out.write(f"{name}: {summary.get('status')} in {summary.get('wall_time_s', 0):.2f} s -> {run_dir}\n")
    for key, value in summary.items():
        if key in ("status", "wall_time_s", "experiment"):
            continue
        if isinstance(value, float):
            out.write(f"  {key:28s} {value:.6g}\n")
        else:
            out.write(f"  {key:28s} {value}\n")


def main(argv=None, stdout=None, stderr=None):
    """Entry point; returns the exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = _parser().parse_args(argv)
        if args.list:
            _list(stdout)
            return EXIT_OK
        if args.threads is not None:
            import numba

            if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
                raise ConfigError("--threads", f"must be between 1 and "
                                               f"{numba.config.NUMBA_NUM_THREADS}")
            numba.set_num_threads(args.threads)
        name, module, config, run_dir, saved = _prepare(args)
    except ConfigError as exc:
        stderr.write(f"error: {exc}\n")
        return EXIT_INVALID
    if args.show_config:
        stdout.write(json.dumps(config, indent=2) + "\n")
        return EXIT_OK

    import numba

    run_dir.mkdir(parents=True, exist_ok=True)
    if saved is None:
        atomic_write_json(run_dir / "config.json", {
            "experiment": name, "config": config, "seed": config.get("seed"),
            "versions": _versions(), "threads": numba.get_num_threads(),
            "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
            "command": ["python", "-m", "meanfield.simulate"] + list(argv if argv is not None
                                                                      else sys.argv[1:]),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    log = (lambda msg: stdout.write(msg + "\n"))
    ctx = RunContext(run_dir, quiet=args.quiet, resuming=saved is not None, log=log)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _on_signal(signum, frame):
        if ctx.stop_requested():  # second Ctrl-C: give up at once
            signal.signal(signum, previous[signum])
            raise KeyboardInterrupt
        ctx.request_stop()

    for sig in previous:
        signal.signal(sig, _on_signal)
    start = time.perf_counter()
    status, code, extra = "ok", EXIT_OK, {}
    try:
        results = module.run(config, ctx) or {}
    except RunFailed as exc:
        status, code = "failed", EXIT_FAILED
        results = {"reason": str(exc), **exc.details}
    except Interrupted as exc:
        status, code = "interrupted", EXIT_INTERRUPTED
        results = {"reason": str(exc) or "interrupted; continue with --resume " + str(run_dir)}
    except Exception as exc:  # a bug or an unexpected failure: keep the reason on disk
        status, code = "error", EXIT_FAILED
        import traceback

        results = {"reason": f"{type(exc).__name__}: {exc}"}
        extra["traceback"] = traceback.format_exc()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    wall = time.perf_counter() - start
    summary = {"experiment": name, "status": results.pop("status", status)
               if status == "ok" else status, "wall_time_s": wall, **results}
    if status == "ok" and summary["status"] not in ("ok",):
        code = EXIT_FAILED
    atomic_write_json(run_dir / "summary.json", summary)
    if extra.get("traceback"):
        stderr.write(extra["traceback"])
    if code == EXIT_INTERRUPTED:
        stderr.write(f"interrupted: checkpoint kept; continue with "
                     f"python -m meanfield.simulate --resume {run_dir}\n")
    elif code != EXIT_OK:
        stderr.write(f"run failed: {summary.get('reason', summary['status'])}\n")
    if not args.quiet:
        _print_summary(name, summary, run_dir, stdout)
    return code
