"""``python -m meanfield.verify``: run every claim check and write one report.

    python -m meanfield.verify [--profile quick|paper] [--only PATTERN] [--out DIR]
                               [--workers N | --scheduler ADDRESS] [--quiet]

Exit status: 0 every claim holds, 1 some claim fails (or a run behind it failed), 2 invalid
input (one line naming the key, nothing written), 130 interrupted (finished runs are kept;
the same command continues).
"""
import argparse
import fnmatch
import os
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
SPEC_FILE = "verify-spec.json"
RUNS = "runs"
#: relative cost of the runs (quick profile, measured), to start the long ones first
COST_RANK = {"odd": 9, "lowdim-1d": 8, "lowdim-full-vs-reduced": 7, "noether": 6, "moments": 5,
             "orthogonal-dependence": 4, "symmetric-boolean": 3, "exactness": 2, "reduction": 1}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise _InvalidInput(message)


class _InvalidInput(Exception):
    pass


def _parser():
    p = _Parser(prog="python -m meanfield.verify",
                description="Check every claim of the papers against measurements and write "
                            "DIR/verify.json, DIR/verify.md and the run folders behind them.")
    p.add_argument("--profile", default="quick", choices=["quick", "paper"],
                   help="quick (default, minutes) or paper (the seed papers' scales)")
    p.add_argument("--only", default=None, metavar="PATTERN",
                   help="claims whose id matches: a glob (odd.*) or a substring (rate); "
                        "several separated by commas")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default runs/verify-PROFILE)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="local worker processes (default: one per core, at most one per run)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="a running Dask scheduler (tcp://host:8786) whose workers run the runs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _matches(pattern, claim_id):
    """True when one of the comma-separated patterns (globs with * ? [, otherwise substrings)
    matches ``claim_id`` or one of its dotted prefixes, or names a claim inside it (a family
    declares ``equivalent.count``; ``equivalent.count.tanh`` selects it)."""
    parts = claim_id.split(".")
    candidates = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pat in (p.strip() for p in pattern.split(",")):
        if not pat:
            continue
        glob = any(ch in pat for ch in "*?[")
        if any(fnmatch.fnmatchcase(c, pat) if glob else pat in c for c in candidates):
            return True
        if pat.startswith(claim_id + "."):
            return True
    return False


def _load_average():
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # pragma: no cover
        return "n/a"


def _read_json(path):
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _check_out(out, spec):
    """Refuse an --out that holds something else (exit 2 before writing)."""
    from ..cli.config import ConfigError

    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError("--out", f"{out} is a file; give a folder")
    saved = _read_json(out / SPEC_FILE)
    if saved is None:
        if any(out.iterdir()):
            raise ConfigError("--out", f"{out} is not empty and holds no verify report; give "
                                       "a new or empty folder")
        return
    if saved.get("profile") != spec["profile"]:
        raise ConfigError("--out", f"{out} holds a verify report of profile "
                                   f"{saved.get('profile')!r}, not {spec['profile']!r}; give "
                                   "another folder")


def main(argv=None, stdout=None, stderr=None):
    """Entry point; returns the exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    from ..cli.config import ConfigError

    started = time.perf_counter()
    load_start = _load_average()
    try:
        args = _parser().parse_args(argv)
        from .families import FAMILIES
        from .measure import resolve_experiment

        profile = args.profile
        families = FAMILIES
        if args.only is not None:
            if not args.only.strip(","):
                raise ConfigError("--only", "is empty; give a claim id pattern such as odd.*")
            families = [f for f in FAMILIES if any(_matches(args.only, i) for i in f.ids)]
            if not families:
                known = ", ".join(i for f in FAMILIES for i in f.ids)
                raise ConfigError("--only", f"{args.only!r} matches no claim; claim ids: {known}")
        if args.workers is not None and args.workers < 1:
            raise ConfigError("--workers", f"must be >= 1, got {args.workers}")
        runs = {}
        for fam in families:
            for run in fam.runs[profile]:
                if run.kind == "experiment":
                    try:
                        resolve_experiment(run)
                    except ConfigError as exc:  # pragma: no cover - the profiles are fixed
                        raise ConfigError(None, f"profile {profile}, run {run.name}: {exc}")
                runs[run.name] = run
        out = Path(args.out or f"runs/verify-{profile}").resolve()
        spec = {"profile": profile}
        _check_out(out, spec)
    except (ConfigError, _InvalidInput) as exc:
        text = str(exc)
        stderr.write(f"error: {text}\n")
        return EXIT_INVALID
    return _run(args, profile, families, runs, out, spec, started, load_start, stdout, stderr)


def _run(args, profile, families, runs, out, spec, started, load_start, stdout, stderr):
    from .. import __version__
    from ..cli.executor import Executor, plan_workers
    from ..io import atomic_write_json
    from . import report
    from .claims import Verdict
    from .measure import run_task

    dirs = {name: out / RUNS / name for name in runs}
    remote = bool(args.scheduler)
    if remote:
        workers, threads = 1, 1
    else:
        from ..cli.config import ConfigError

        try:
            workers, threads = plan_workers(len(runs), args.workers)
        except ConfigError as exc:
            stderr.write(f"error: {exc}\n")
            return EXIT_INVALID
    executor = Executor(workers=workers, scheduler=args.scheduler,
                        env={k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                              "MKL_NUM_THREADS")})
    try:
        executor.__enter__()
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the user's address
        if not remote:
            raise
        stderr.write(f"error: --scheduler: cannot reach the Dask scheduler ({exc}); check "
                     "that it is running\n")
        return EXIT_INVALID
    outcomes = {}
    code = EXIT_OK
    try:
        (out / RUNS).mkdir(parents=True, exist_ok=True)
        if not (out / SPEC_FILE).exists():
            atomic_write_json(out / SPEC_FILE, spec)
        where = executor.describe()
        if not args.quiet:
            stderr.write(f"verify: profile {profile}, {len(runs)} runs {where}, "
                         f"{threads} Numba thread(s) each -> {out}\n")
        # the longest runs first, so that the workers finish together
        names = sorted(runs, key=lambda n: -COST_RANK.get(n, 0))
        tasks = [(runs[n], str(dirs[n]), threads) for n in names]
        t0 = time.perf_counter()
        try:
            for i, result, error in executor.map_unordered(run_task, tasks, names):
                name = names[i]
                if error is not None:
                    result = {"status": "error", "action": "ran", "run_s": 0.0,
                              "reason": f"{type(error).__name__}: {error}"}
                outcomes[name] = result
                if result.get("code") == EXIT_INTERRUPTED:
                    raise KeyboardInterrupt
                if not args.quiet:
                    stderr.write(f"verify: {name}: {result['status']} ({result['action']}, "
                                 f"{result.get('run_s', 0.0):.0f} s; "
                                 f"{time.perf_counter() - t0:.0f} s elapsed)"
                                 f"{': ' + result['reason'] if result.get('reason') else ''}\n")
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
    finally:
        executor.__exit__(None, None, None)
    if code == EXIT_INTERRUPTED:
        stderr.write("interrupted: finished runs are kept; rerun the same command to continue\n")
        return code

    verdicts = []
    for fam in families:
        bad = [r.name for r in fam.runs[profile] if outcomes[r.name]["status"] != "ok"]
        if bad:
            reason = "; ".join(f"{n}: {outcomes[n].get('reason', '')}" for n in bad)
            found = [Verdict(id=i, source="", statement=f"run {', '.join(bad)} did not finish",
                             measured={"value": None, "se": None, "unit": ""},
                             expected={"value": None, "basis": ""},
                             criterion={"kind": "run", "text": "run finishes"}, ok=False,
                             run=str(dirs[bad[0]]), extra={"reason": reason})
                     for i in fam.ids]
        else:
            try:
                found = fam.collect(dirs, runs)
            except Exception as exc:  # noqa: BLE001 - a report is still written
                found = [Verdict(id=i, source="", statement="reading the run failed",
                                 measured={"value": None, "se": None, "unit": ""},
                                 expected={"value": None, "basis": ""},
                                 criterion={"kind": "run", "text": "readable run"}, ok=False,
                                 run=str(dirs[fam.runs[profile][0].name]),
                                 extra={"reason": f"{type(exc).__name__}: {exc}"})
                         for i in fam.ids]
        verdicts += [v for v in found if args.only is None or _matches(args.only, v.id)]
    claims = []
    for v in verdicts:
        d = v.as_dict()
        d["run"] = os.path.relpath(d["run"], out) if d["run"] else ""
        claims.append(d)
    # the exit status is that of the checks; a conjecture that does not hold is a finding
    checks = [c for c in claims if c.get("kind", "check") == "check"]
    ok = all(c["ok"] for c in checks)
    argv_text = " ".join(["python -m meanfield.verify"] + _argv_of(args))
    doc = {"ok": ok, "profile": profile, "claims": claims,
           "n_claims": len(claims), "n_failed": sum(not c["ok"] for c in checks),
           "conjectures_not_holding": [c["id"] for c in claims
                                       if c.get("kind") == "conjecture" and not c["ok"]],
           "runs": {n: {"folder": os.path.relpath(dirs[n], out), **outcomes[n],
                        # the run's own time, also for runs reused from an earlier invocation
                        "wall_time_s": (_read_json(dirs[n] / "summary.json") or {}).get(
                            "wall_time_s")} for n in runs},
           "wall_time_s": time.perf_counter() - started,
           "workers": where, "threads_per_run": threads,
           "load_start": load_start, "load_end": _load_average(),
           "cores": os.cpu_count(), "version": __version__, "commit": _git_commit(dirs.values()),
           "command": argv_text, "only": args.only}
    figures = []
    for fam in families:
        for run_name, fname in fam.figures:
            path = dirs[run_name] / fname
            if path.exists():
                figures.append((f"{run_name}: {fname}", path))
    report.write(out, doc, figures)
    stdout.write(report.text_table(claims, out) + "\n")
    stdout.write(f"{report.headline(claims)}; "
                 f"{doc['wall_time_s']:.0f} s -> {out / report.JSON_FILE}, "
                 f"{out / report.MD_FILE}\n")
    return EXIT_OK if ok else EXIT_FAILED


def _argv_of(args):
    parts = ["--profile", args.profile]
    if args.only is not None:
        parts += ["--only", repr(args.only) if " " in args.only else args.only]
    if args.out is not None:
        parts += ["--out", args.out]
    if args.workers is not None:
        parts += ["--workers", str(args.workers)]
    if args.scheduler:
        parts += ["--scheduler", args.scheduler]
    return parts


def _git_commit(run_dirs):
    """The checkout's commit as the runs recorded it (``config.json``), if any did."""
    for d in run_dirs:
        saved = _read_json(Path(d) / "config.json") or {}
        commit = (saved.get("versions") or {}).get("meanfield_git")
        if commit:
            return commit
    return None


if __name__ == "__main__":
    from meanfield.cli._startup import exit_command

    exit_command(main())
