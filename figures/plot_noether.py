"""Regenerate figures/noether_*.png (E4: conservation laws and symmetry defects).

Runs ``python -m meanfield.simulate noether`` with its default config into a run folder
(which also gets ``laws.csv`` / ``laws.json``, the law table, and ``summary.json``) and
copies its PNGs here::

    python figures/plot_noether.py [--out RUN_DIR] [--threads N]

Runtime: about 30 s on a shared 2-core machine with ``--threads 1`` (the default here: every
problem is small, m ≤ 1024, and one thread is not slowed down by other jobs).
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="run folder (default: a new temporary directory)")
    parser.add_argument("--threads", type=int, default=1, help="Numba threads (default 1)")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="noether-")) / "run"
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "meanfield.simulate", "noether", "--out", str(out),
           "--threads", str(args.threads)]
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"the noether run failed (exit {done.returncode}); see {out}/summary.json")
    for png in sorted(out.glob("noether_*.png")):
        shutil.copy(png, HERE / png.name)
        print("wrote", HERE / png.name)
    print(f"run folder {out}, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
