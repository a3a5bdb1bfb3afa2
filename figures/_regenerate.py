"""Shared by the figure scripts: run one experiment through the command line and copy its PNGs.

Each ``figures/plot_*.py`` is a thin wrapper around :func:`regenerate`, so every figure in
this folder is produced by ``python -m meanfield.simulate EXPERIMENT`` exactly as a user
would run it, from the experiment's default config plus any ``--set`` overrides.
Given a finished run folder (``python figures/plot_X.py RUN_DIR``) it only redraws: the
experiment's ``meanfield.plots`` module reads the saved data, nothing is recomputed.
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def regenerate(experiment, pattern="*.png", doc="", default_threads=None):
    """Parse ``RUN_DIR``, ``--out``, ``--threads``, ``--set`` and ``--copy-to`` from the
    command line; run ``experiment`` into the run folder (or, given RUN_DIR, only redraw its
    figures) and copy the PNGs matching ``pattern`` into figures/."""
    parser = argparse.ArgumentParser(description=(doc or experiment).splitlines()[0])
    parser.add_argument("run_dir", nargs="?",
                        help="a finished run folder to redraw from (no computation)")
    parser.add_argument("--out", help="run folder (default: a new temporary directory)")
    parser.add_argument("--threads", type=int, default=default_threads,
                        help="Numba threads passed to the run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to the run (repeatable)")
    parser.add_argument("--copy-to", default=str(HERE), metavar="DIR",
                        help="where the PNGs are copied (default: this figures/ folder)")
    args = parser.parse_args()
    dest = Path(args.copy_to)
    if args.run_dir:
        return redraw(experiment, Path(args.run_dir), pattern, dest)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix=f"{experiment}-")) / "run"
    cmd = [sys.executable, "-m", "meanfield.simulate", experiment, "--out", str(out)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    for item in args.set:
        cmd += ["--set", item]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"the {experiment} run failed (exit {done.returncode}); see {out}/summary.json")
    for png in sorted(out.glob(pattern)):
        shutil.copy2(png, dest / png.name)
        print("wrote", dest / png.name)
    print(f"run folder {out}, {time.perf_counter() - start:.1f} s")


def redraw(experiment, run_dir, pattern="*.png", dest=HERE):
    """Draw the figures of ``run_dir`` from its saved data with ``meanfield.plots.<name>``
    and copy the PNGs matching ``pattern`` into ``dest``. A folder without the saved data
    (not a run of ``experiment``, or written by an older version): one line, exit 2."""
    import importlib

    start = time.perf_counter()
    module = importlib.import_module("meanfield.plots." + experiment.replace("-", "_"))
    from meanfield.plots._style import MissingData

    try:
        paths = module.plot(run_dir)
    except MissingData as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    for png in sorted(p for p in paths if p.match(pattern)):
        shutil.copy2(png, dest / png.name)
        print("wrote", dest / png.name)
    print(f"redrawn from {run_dir}, {time.perf_counter() - start:.1f} s")
