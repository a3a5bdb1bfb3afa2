"""``python -m meanfield.sweep``: run one experiment over a grid of config values, in this
process, on a local Dask cluster or on a running Dask scheduler.

Every grid point is an ordinary run of the experiment (``python -m meanfield.simulate``) with
the grid keys set, in its own folder. Layout of the output folder ``DIR``::

    DIR/sweep.json          the resolved spec (experiment, grid, fixed config, point names)
    DIR/points/<name>/      one run folder per point; <name> is made from the grid values
    DIR/sweep.csv           one row per point: grid keys, status, reason, summary scalars
    DIR/sweep_<KEY>.png     summary value KEY against the first grid key

Running the same command again continues: finished points are skipped, interrupted ones
resume from their checkpoints. A failed point (status failed or error) is kept as it is;
delete its folder to run it again.

Exit status: 0 every point ok; 1 some points failed (their reasons are on stderr and in
sweep.csv; the other points still ran to the end); 2 invalid input (one line on stderr,
nothing written); 130 interrupted (rerun the same command to continue).
"""
import argparse
import csv
import io
import itertools
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import experiments
from .config import OneLineParser, ConfigError, coerce, load_toml, parse_set, resolve_config
from .executor import Executor, plan_workers, scheduler_address, worker_env
from ..io import atomic_write_bytes, atomic_write_json

__all__ = ["main", "plan", "run_point", "Point"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
SPEC_FILE, TABLE_FILE, LOG_FILE, POINTS = "sweep.json", "sweep.csv", "sweep.log", "points"
#: the parts of sweep.json that must match for a rerun to continue in the same folder.
SPEC_KEYS = ("experiment", "grid", "config")
#: the summary value plotted when --plot is not given (where the experiment reports it).
DEFAULT_PLOT = "risk_final"
#: summary scalars never chosen as the default plot (times say nothing about the science).
_NOT_PLOTTED = {"wall_time_s", "simulation_wall_time_s"}


def _parser():
    p = OneLineParser(
        prog="python -m meanfield.sweep",
        description="Run an experiment at every point of a grid of config values; each point "
                    "is an ordinary run in DIR/points/<name>. Rerunning the same command "
                    "continues an interrupted sweep.",
        epilog="Examples:\n"
               "  python -m meanfield.sweep flow --grid n_particles=64,256 --grid seed=0,1,2 "
               "--out runs/s\n"
               "  python -m meanfield.sweep flow --config sweep.toml --out runs/s --workers 2\n"
               "  python -m meanfield.sweep flow --grid seed=0,1 --out runs/s "
               "--scheduler-file scheduler.json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", help="experiment name (python -m meanfield.simulate --list)")
    p.add_argument("--grid", metavar="KEY=V1,V2,...", action="append", default=[],
                   help="sweep KEY over these values (repeatable: the grid is the product; "
                        "a JSON list such as 'widths=[[10,50],[128]]' for list values)")
    p.add_argument("--config", metavar="FILE.toml",
                   help="TOML file of fixed config keys, and optionally a [grid] table of lists")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="fix one config key for every point (wins over --config)")
    p.add_argument("--out", metavar="DIR", required=True, help="the sweep's folder")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: one per core, at most one per "
                        "point); 1 runs the points in this process")
    p.add_argument("--threads", type=int, default=None,
                   help="Numba threads per point (default: the cores divided by the workers; "
                        "on a --scheduler, the workers' own default)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on a running Dask scheduler (tcp://host:8786); its workers need "
                            "meanfield installed and must see DIR")
    where.add_argument("--scheduler-file", metavar="FILE",
                       help="as --scheduler, with the file `dask scheduler --scheduler-file` wrote")
    p.add_argument("--plot", metavar="KEY", default=None,
                   help=f"summary value to plot against the first grid key (default "
                        f"{DEFAULT_PLOT} where it exists); {{KEY}} stands for the point's "
                        "value of grid key KEY, as in gap_ode_sphere_m{widths}_mean")
    p.add_argument("--quiet", action="store_true", help="no progress lines (failures still shown)")
    return p


# --------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Point:
    """One grid point: ``name`` (folder name), ``values`` (grid key -> value), ``config`` (the
    full resolved config) and ``sets`` (the ``--set KEY=VALUE`` strings that reproduce it)."""

    name: str
    values: dict
    config: dict
    sets: list


def _value_text(value):
    """A config value as ``--set`` accepts it back, exactly (floats by repr)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def _name_part(value):
    if isinstance(value, list):
        text = ",".join(_value_text(v) for v in value)
    else:
        text = _value_text(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "_", text)


def point_names(grid, combos):
    """Folder names for the grid points: ``key-value`` pairs joined by ``__``, limited to the
    characters ``A-Za-z0-9.+-_`` and made unique (a suffix ``-2``, ``-3`` ... on clashes)."""
    import hashlib

    names, used = [], set()
    for combo in combos:
        name = "__".join(f"{key}-{_name_part(v)}" for key, v in zip(grid, combo))
        if len(name) > 100:  # file systems limit names to 255 bytes; keep them readable
            digest = hashlib.sha1(name.encode()).hexdigest()[:10]
            name = f"{name[:80]}-{digest}"
        base, k = name, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        names.append(name)
    return names


def _parse_grid_option(text):
    if "=" not in text:
        raise ConfigError(text, "--grid expects KEY=V1,V2,...")
    key, raw = (part.strip() for part in text.split("=", 1))
    if raw.startswith("["):
        try:
            values = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(key, f"--grid {key}= is not a JSON list: {raw!r}") from None
        if not isinstance(values, list):
            raise ConfigError(key, f"--grid {key}= is not a JSON list: {raw!r}")
    else:
        values = [v.strip() for v in raw.split(",")] if raw else []
        if any(v == "" for v in values):
            raise ConfigError(key, f"--grid {key}= has an empty value in {raw!r}")
    return key, values


def _grid_values(key, values, defaults, types):
    """Coerce a grid list to the key's type; one list per point for list-valued keys."""
    if key not in defaults:
        raise ConfigError(key, "unknown key; accepted keys are: " + ", ".join(sorted(defaults)))
    if not values:
        raise ConfigError(key, "the grid list is empty; give at least one value")
    default = defaults[key]
    out = []
    for value in values:
        if isinstance(default, list) and not isinstance(value, list):
            value = [value]  # one width per point: widths=10,50 -> [10], [50]
        value = coerce(key, value, default, types.get(key))
        if value in out:
            raise ConfigError(key, f"the grid lists {_value_text(value)} twice")
        out.append(value)
    return out


def plan(experiment, grid_options=(), sets=(), config_file=None):
    """Resolve and validate a sweep without writing anything.

    Parameters
    ----------
    experiment : str
        Experiment name.
    grid_options : sequence of str
        ``KEY=V1,V2,...`` strings (``--grid``); they replace the same key of the config
        file's ``[grid]`` table.
    sets : sequence of str
        ``KEY=VALUE`` strings (``--set``) fixed for every point.
    config_file : str, optional
        TOML file: fixed keys at the top level, an optional ``[grid]`` table of lists.

    Returns
    -------
    (dict, list of Point)
        The spec (``experiment``, ``grid`` {key: [values]}, ``config`` the fixed keys
        resolved, ``points`` the names) and the points in grid order (last key fastest).

    Raises
    ------
    ConfigError
        On any bad key or value, in any point (the message names the point).
    """
    available = experiments.available()
    if experiment not in available:
        raise ConfigError("experiment", f"unknown experiment {experiment!r}; accepted values "
                                        "are: " + ", ".join(available))
    module = available[experiment]
    defaults, choices = module.DEFAULTS, getattr(module, "CHOICES", {})
    base, raw_grid = {}, {}
    if config_file:
        base = dict(load_toml(config_file, tables=("grid",)))
        table = base.pop("grid", {})
        if not isinstance(table, dict):
            raise ConfigError("grid", f"in {config_file} must be a table [grid] of lists")
        for key, values in table.items():
            if not isinstance(values, list):
                raise ConfigError(f"grid.{key}", f"in {config_file} must be a list such as "
                                                 f"{key} = [1, 2]")
            raw_grid[key] = values
    given = set()
    for text in grid_options:
        key, values = _parse_grid_option(text)
        if key in given:
            raise ConfigError(key, "--grid given twice for this key; list all values in one")
        given.add(key)
        raw_grid[key] = values
    if not raw_grid:
        raise ConfigError("--grid", "no grid: give --grid KEY=V1,V2,... or a [grid] table in "
                                    "--config")
    fixed = parse_set(sets)
    for key in raw_grid:
        if key in fixed:
            raise ConfigError(key, "is both swept (--grid) and fixed (--set); drop one")
        base.pop(key, None)  # the grid wins over the config file's fixed value
    types = getattr(module, "TYPES", None) or {}
    grid = {key: _grid_values(key, values, defaults, types) for key, values in raw_grid.items()}
    fixed_config = resolve_config(defaults, choices, base, fixed, types=types)
    combos = list(itertools.product(*grid.values()))
    names = point_names(grid, combos)
    points = []
    from .simulate import validate_config  # the very checks a run makes, in the same order

    for name, combo in zip(names, combos):
        values = dict(zip(grid, combo))
        user = {**base, **fixed, **values}
        try:
            given = resolve_config(defaults, choices, user, types=types)
            config = dict(given)
            validate_config(module, config, set(user))  # may fill keys the user left unset
        except ConfigError as exc:
            where = ", ".join(f"{k}={_value_text(v)}" for k, v in values.items())
            raise ConfigError(None, f"point {where}: {exc}") from None
        # the run gets exactly the keys the user gave (its checks depend on which were
        # given), as strings; make sure they parse back to the same values
        sets_ = [f"{k}={_value_text(given[k])}" for k in user]
        if resolve_config(defaults, choices, parse_set(sets_), types=types) != given:
            raise ConfigError(None, f"point {name}: its config does not survive --set; use "
                                    "simpler values")  # pragma: no cover
        points.append(Point(name=name, values=values, config=config, sets=sets_))
    spec = {"experiment": experiment, "grid": grid,
            "config": {k: v for k, v in fixed_config.items() if k not in grid},
            "points": names}
    return spec, points


def _spec_difference(stored, spec):
    """The first part of ``spec`` that differs from ``stored``, as text, or None."""
    spec = json.loads(json.dumps(spec))  # compare as stored (tuples -> lists ...)
    for key in SPEC_KEYS:
        a, b = stored.get(key), spec.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for k in list(dict.fromkeys(list(a) + list(b))):
                if a.get(k) != b.get(k):
                    return f"{key}.{k} was {json.dumps(a.get(k))}, now {json.dumps(b.get(k))}"
            return f"{key} order differs"
        return f"{key} was {json.dumps(a)}, now {json.dumps(b)}"
    return None


def _check_out_dir(out, spec):
    """ConfigError unless ``out`` is new, empty, or a folder of this very sweep."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise ConfigError("--out", f"{out} is a file; choose a folder")
    spec_file = out / SPEC_FILE
    if spec_file.exists():
        try:
            stored = json.loads(spec_file.read_text())
        except json.JSONDecodeError:
            raise ConfigError("--out", f"{spec_file} is not valid JSON; choose another "
                                       "folder") from None
        diff = _spec_difference(stored, spec)
        if diff:
            raise ConfigError("--out", f"{out} holds a different sweep ({diff}); choose another "
                                       "folder or rerun with its own spec")
        return True
    if any(out.iterdir()):
        raise ConfigError("--out", f"{out} exists, is not empty and is not a sweep folder (no "
                                   f"{SPEC_FILE}); choose another folder")
    return False


# ------------------------------------------------------------------------- one point (worker)
def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def point_state(point_dir):
    """``"new"`` (nothing there), ``"ok"``, ``"failed"`` (finished, not ok: kept as it is) or
    ``"resume"`` (started: config.json but no final summary, or interrupted)."""
    point_dir = Path(point_dir)
    summary = _read_json(point_dir / "summary.json")
    if summary is not None and summary.get("status") != "interrupted":
        return "ok" if summary.get("status") == "ok" else "failed"
    if (point_dir / "config.json").exists():
        return "resume"
    return "new"


def run_point(experiment, point_dir, sets, config, threads=None):
    """Run (or continue) one grid point through the command line's own entry point.

    Called on a worker; everything it needs is in its arguments, so where it runs changes
    nothing in its results. A point that already finished is not run again; one that was
    started (a killed worker, Ctrl-C) resumes from its checkpoint with ``--resume``.

    Parameters
    ----------
    experiment : str
    point_dir : str
        Absolute path of the point's run folder.
    sets : list of str
        ``KEY=VALUE`` strings giving the point's config.
    config : dict
        The resolved config the folder must hold (a resumed folder with another config is
        not touched).
    threads : int, optional
        Numba threads for the run (``--threads``).

    Returns
    -------
    dict
        ``status`` (ok, failed, error, interrupted), ``code`` (the run's exit status),
        ``reason`` (why it did not succeed, else ""), ``run_s`` (seconds in the run),
        ``action`` (ran, resumed, skipped), ``host`` and ``pid`` of the worker.
    """
    import socket

    from .simulate import main as cli_main

    point_dir = Path(point_dir)
    info = {"host": socket.gethostname(), "pid": os.getpid(), "run_s": 0.0}
    state = point_state(point_dir)
    if state in ("ok", "failed"):
        summary = _read_json(point_dir / "summary.json")
        return {**info, "status": summary["status"], "code": 0 if state == "ok" else 1,
                "reason": summary.get("reason", "") if state == "failed" else "",
                "action": "skipped"}
    if state == "resume":
        saved = _read_json(point_dir / "config.json") or {}
        if saved.get("experiment") != experiment or saved.get("config") != config:
            return {**info, "status": "failed", "code": 1, "action": "skipped",
                    "reason": f"{point_dir} holds a run of another config; move it away to "
                              "run this point"}
        argv = ["--resume", str(point_dir)]
    else:
        argv = [experiment, "--out", str(point_dir)]
        for s in sets:
            argv += ["--set", s]
    argv.append("--quiet")
    if threads:
        argv += ["--threads", str(threads)]
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    code = cli_main(argv, stdout=out, stderr=err)
    info["run_s"] = time.perf_counter() - start
    summary = _read_json(point_dir / "summary.json") or {}
    status = summary.get("status") or ("ok" if code == 0 else "error")
    reason = ""
    if code != 0:
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        reason = summary.get("reason") or (lines[-1] if lines else f"exit status {code}")
    return {**info, "status": status, "code": code, "reason": str(reason),
            "action": "resumed" if state == "resume" else "ran"}


# ------------------------------------------------------------------------ results and figure
def _scalar(value):
    return value is None or isinstance(value, (bool, int, float, str))


def collect(out, spec, points, outcomes):
    """Rows of sweep.csv: grid values, ``point``, ``status``, ``reason`` and every scalar of
    the point's summary.json (a point with no summary gets its status from ``outcomes``)."""
    rows, columns = [], list(spec["grid"]) + ["point", "status", "reason"]
    for p in points:
        summary = _read_json(out / POINTS / p.name / "summary.json") or {}
        outcome = outcomes.get(p.name, {})
        row = {k: (json.dumps(v) if isinstance(v, list) else v) for k, v in p.values.items()}
        row["point"] = p.name
        row["status"] = summary.get("status") or outcome.get("status") or "not run"
        row["reason"] = summary.get("reason") or outcome.get("reason") or ""
        for key, value in summary.items():
            if key in row or key in spec["grid"] or not _scalar(value):
                continue
            row[key] = value
            if key not in columns:
                columns.append(key)
        rows.append(row)
    return columns, rows


def write_table(path, columns, rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    atomic_write_bytes(path, buf.getvalue().encode())


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _unwrap(value):
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _summary_key(template, point):
    """The summary key ``template`` names at ``point``: ``{KEY}`` is replaced by the point's
    grid value of KEY (one-element lists by their element), so that experiments whose keys
    carry a grid value (``gap_ode_sphere_m{widths}_mean``) can be plotted."""
    if "{" not in template:
        return template
    values = {k: _unwrap(v) for k, v in point.values.items()}
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError):
        return None


def _plot_key(rows, requested, points):
    """``requested`` if some point reports it as a number; else ``risk_final`` if reported;
    else the first number that every ok point reports and that varies between points (times
    excepted); else None."""
    numeric = list(dict.fromkeys(k for row in rows for k, v in row.items() if _is_number(v)))
    if requested:
        found = any(_is_number(row.get(_summary_key(requested, p)))
                    for p, row in zip(points, rows))
        return requested if found else None
    if DEFAULT_PLOT in numeric:
        return DEFAULT_PLOT
    ok = [row for row in rows if row["status"] == "ok"]
    grid_keys = set(points[0].values) if points else set()
    for key in numeric:
        if (key in _NOT_PLOTTED or key in grid_keys or "wall_time" in key
                or key.endswith("_s")):
            continue
        values = [row.get(key) for row in ok]
        if ok and all(_is_number(v) for v in values) and len(set(values)) > 1:
            return key
    return None


def plot(out, spec, points, rows, key):
    """``DIR/sweep_<key>.png``: ``key`` against the first grid key, one line per combination
    of the other grid keys; failed points are left out. Returns the path (or None)."""
    from ..plots import pyplot, savefig

    plt = pyplot()

    grid = list(spec["grid"])
    first, others = grid[0], grid[1:]
    # one-element lists (widths=10,50 gives [10], [50]) are plotted as their element
    unwrap = all(isinstance(x, list) and len(x) == 1 for x in spec["grid"][first])
    xs_all = [x[0] if unwrap else x for x in spec["grid"][first]]
    numeric_x = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs_all)
    series = {}
    for p, row in zip(points, rows):
        y = row.get(_summary_key(key, p))
        if row["status"] != "ok" or not isinstance(y, (int, float)) or not math.isfinite(y):
            continue
        label = ", ".join(f"{k} = {_value_text(_unwrap(p.values[k]))}" for k in others)
        x = p.values[first][0] if unwrap else p.values[first]
        x = x if numeric_x else xs_all.index(x)
        series.setdefault(label, []).append((x, y))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, pts in series.items():
        pts.sort()
        ax.plot([x for x, _ in pts], [y for _, y in pts], "o-", ms=4, label=label or None)
    ys = [y for pts in series.values() for _, y in pts]
    if min(ys) > 0 and max(ys) > 20 * min(ys):
        ax.set_yscale("log")
    if numeric_x and min(xs_all) > 0 and max(xs_all) > 20 * min(xs_all):
        ax.set_xscale("log")
    if not numeric_x:
        ax.set_xticks(range(len(xs_all)), [_value_text(x) for x in xs_all])
    ax.set_xlabel(first)
    ax.set_ylabel(key)
    ax.set_title(f"{spec['experiment']}: {key} over the sweep", fontsize=9)
    if others:
        ax.legend(fontsize=7)
    return savefig(fig, out / f"sweep_{re.sub(r'[^A-Za-z0-9._-]', '_', key)}.png")


# ---------------------------------------------------------------------------------- progress
class _Progress:
    """Points done / total, failures and time left, on stderr: one redrawn line on a
    terminal, one line per finished point otherwise."""

    def __init__(self, total, already, stream, quiet):
        self.total, self.done, self.failed = total, already, 0
        self.ran, self.stream, self.quiet = 0, stream, quiet
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.start = time.perf_counter()

    def update(self, name, outcome):
        self.done += 1
        if outcome["action"] != "skipped":
            self.ran += 1
        if outcome["status"] != "ok":
            self.failed += 1
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.start
        left = self.total - self.done
        eta = f"~{elapsed / self.ran * left:.0f} s left" if self.ran and left else ""
        line = (f"sweep: {self.done}/{self.total} points done, {self.failed} failed, "
                f"{elapsed:.1f} s elapsed{', ' + eta if eta else ''}")
        if self.tty:
            self.stream.write("\r" + line.ljust(78))
        else:
            self.stream.write(f"{line} [{name}: {outcome['status']}]\n")
        self.stream.flush()

    def say(self, line):
        """A line that stays (failures), also when quiet."""
        if self.tty and not self.quiet:
            self.stream.write("\n")
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------------- the CLI
def _log(out, name, result):
    """Append one line per finished task to DIR/sweep.log: what ran where, for how long."""
    where = f"{result.get('host', '?')}:{result.get('pid', '?')}"
    line = (f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {name} {result['status']} "
            f"{result.get('action', 'ran')} {result.get('run_s', 0.0):.3f} s on {where}")
    if result.get("reason"):
        line += f" reason: {result['reason']}"
    with open(out / LOG_FILE, "a") as fh:
        fh.write(line.replace("\n", " ") + "\n")


def _worker_env(threads):
    """Environment of local worker processes (see :func:`meanfield.cli.executor.worker_env`)."""
    return worker_env()


def summarise(out, spec, points, outcomes, requested=None, executor=None):
    """Write ``DIR/sweep.csv`` and draw ``DIR/sweep_<key>.png``; returns ``(rows, key,
    figure path or None)``.

    With an ``executor`` of worker processes the figure is drawn by a worker: every worker
    has matplotlib loaded already (each point draws its own figures), while this process
    would spend about a second importing it, time the sweep spends on one core only
    (``benchmarks/bench_sweep.py --cases speedup``). A worker that cannot draw it (an error,
    a lost connection) leaves the figure to this process.
    """
    columns, rows = collect(out, spec, points, outcomes)
    write_table(out / TABLE_FILE, columns, rows)
    key = _plot_key(rows, requested, points)
    if not key:
        return rows, key, None
    if executor is not None and not executor.in_process:
        try:
            (_, figure, error), = executor.map_unordered(
                plot, [(out, spec, points, rows, key)], ["figure"], retries=0)
        except Exception as exc:  # noqa: BLE001 - drawn below instead
            error = exc
        if error is None:
            return rows, key, figure
    return rows, key, plot(out, spec, points, rows, key)


def main(argv=None, stdout=None, stderr=None):
    """Entry point; returns the exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = _parser().parse_args(argv)
        spec, points = plan(args.experiment, args.grid, args.set, args.config)
        out = Path(args.out).resolve()
        existing = _check_out_dir(out, spec)
        scheduler = args.scheduler
        if args.scheduler_file:
            scheduler = scheduler_address(args.scheduler_file)
        states = {p.name: point_state(out / POINTS / p.name) if existing else "new"
                  for p in points}
        todo = [p for p in points if states[p.name] in ("new", "resume")]
        remote = bool(args.scheduler or args.scheduler_file)
        if remote:
            if args.workers is not None:
                raise ConfigError("--workers", "sets local workers; with --scheduler the "
                                               "scheduler's workers run the points")
            workers, threads = None, args.threads
        else:
            workers, threads = plan_workers(len(todo), args.workers, args.threads)
    except ConfigError as exc:
        stderr.write(f"error: {exc}\n")
        return EXIT_INVALID

    outcomes = {p.name: {"status": states[p.name], "action": "skipped"} for p in points
                if states[p.name] in ("ok", "failed")}
    code = EXIT_OK
    if todo:
        executor = Executor(workers=workers or 1, scheduler=scheduler,
                            env=_worker_env(threads) if threads else None)
        try:
            executor.__enter__()
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the user's address
            if not remote:
                raise
            where = "--scheduler-file" if args.scheduler_file else "--scheduler"
            stderr.write(f"error: {where}: cannot reach the Dask scheduler ({exc}); check "
                         "that it is running\n")
            return EXIT_INVALID
        try:
            if not existing:
                atomic_write_json(out / SPEC_FILE, {**spec, "created": time.strftime(
                    "%Y-%m-%dT%H:%M:%S%z")})
            (out / POINTS).mkdir(parents=True, exist_ok=True)
            if not args.quiet:
                stderr.write(f"sweep: {len(points)} points of {args.experiment}, "
                             f"{len(points) - len(todo)} already finished; running "
                             f"{len(todo)} {executor.describe()}"
                             f"{f', {threads} Numba thread(s) per point' if threads else ''} "
                             f"-> {out}\n")
                if remote and executor.n_workers() == 0:
                    stderr.write("sweep: no worker is connected to the scheduler yet; waiting\n")
            progress = _Progress(len(points), len(points) - len(todo), stderr, args.quiet)
            tasks = [(args.experiment, str(out / POINTS / p.name), p.sets, p.config, threads)
                     for p in todo]
            try:
                for i, result, error in executor.map_unordered(run_point, tasks,
                                                               [p.name for p in todo]):
                    name = todo[i].name
                    if error is not None:
                        result = {"status": "error", "code": EXIT_FAILED, "action": "ran",
                                  "reason": f"{type(error).__name__}: {error}"}
                    outcomes[name] = result
                    _log(out, name, result)
                    progress.update(name, result)
                    if result["status"] != "ok":
                        if result["code"] == EXIT_INTERRUPTED:
                            raise KeyboardInterrupt
                        progress.say(f"point {name}: {result['status']}: {result['reason']}")
            except KeyboardInterrupt:
                code = EXIT_INTERRUPTED
            finally:
                progress.close()
            rows, key, figure = summarise(out, spec, points, outcomes, args.plot,
                                          None if code == EXIT_INTERRUPTED else executor)
        finally:
            executor.__exit__(None, None, None)
    else:
        if not existing:  # pragma: no cover - a grid has at least one point
            atomic_write_json(out / SPEC_FILE, spec)
        rows, key, figure = summarise(out, spec, points, outcomes, args.plot)
    if args.plot and key is None:
        stderr.write(f"warning: --plot: no point's summary has a number {args.plot!r}; "
                     "no figure drawn\n")
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:  # failures of earlier invocations, kept in their folders
        if outcomes.get(r["point"], {}).get("action") == "skipped":
            stderr.write(f"point {r['point']}: {r['status']}: {r['reason']}\n")
    if code == EXIT_INTERRUPTED:
        stderr.write("interrupted: finished points are kept; rerun the same command to "
                     "continue\n")
        return code
    if failed:
        stderr.write(f"{len(failed)} of {len(rows)} points did not finish ok "
                     f"({', '.join(r['point'] for r in failed[:5])}"
                     f"{', ...' if len(failed) > 5 else ''}); see {out / TABLE_FILE}\n")
        code = EXIT_FAILED
    if not args.quiet:
        stdout.write(f"sweep: {len(rows) - len(failed)}/{len(rows)} points ok -> "
                     f"{out / TABLE_FILE}{f', {figure.name}' if figure else ''}\n")
    return code

