"""Shared by the figure scripts: run one experiment through the command line and copy its PNGs.

Each ``figures/plot_*.py`` is a thin wrapper around :func:`regenerate`, so every figure in
this folder is produced by ``python -m meanfield.simulate EXPERIMENT`` exactly as a user
would run it, from the experiment's default config plus any ``--set`` overrides.
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
    """Parse ``--out``, ``--threads`` and ``--set`` from the command line, run ``experiment``
    into the run folder, and copy the PNGs matching ``pattern`` into figures/."""
    parser = argparse.ArgumentParser(description=(doc or experiment).splitlines()[0])
    parser.add_argument("--out", help="run folder (default: a new temporary directory)")
    parser.add_argument("--threads", type=int, default=default_threads,
                        help="Numba threads passed to the run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to the run (repeatable)")
    args = parser.parse_args()
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
        shutil.copy2(png, HERE / png.name)
        print("wrote", HERE / png.name)
    print(f"run folder {out}, {time.perf_counter() - start:.1f} s")
