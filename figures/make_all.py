"""Regenerate every committed figure in this folder from scratch, timing each script.

Command (from the repository root)::

    python figures/make_all.py [--only NAME ...] [--threads N]

Runs every ``figures/plot_*.py`` (each experiment at its default config, then the films of
``plot_films.py``) one after the other, each in a fresh process and a new temporary run
folder, and prints the time of each and the total. ``--only`` takes script names without
``plot_`` and ``.py`` (e.g. ``--only moments lowdim_1d films``). A failed script is reported
and the others still run; the exit status is 1 if any failed.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def scripts():
    """Names of the figure scripts: plot_<name>.py -> name (the films last)."""
    names = sorted(p.stem[len("plot_"):] for p in HERE.glob("plot_*.py"))
    return [n for n in names if n != "films"] + (["films"] if "films" in names else [])


def main(argv=None):
    known = scripts()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=known, metavar="NAME",
                   help=f"run only these scripts ({', '.join(known)})")
    p.add_argument("--threads", type=int, help="Numba threads passed to the experiment runs")
    args = p.parse_args(argv)
    chosen = [n for n in known if not args.only or n in args.only]
    times, failed = {}, []
    total = time.perf_counter()
    for name in chosen:
        cmd = [sys.executable, str(HERE / f"plot_{name}.py")]
        if args.threads and name != "films":
            cmd += ["--threads", str(args.threads)]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT)
        times[name] = time.perf_counter() - start
        if done.returncode != 0:
            failed.append(name)
        print(f"== {name}: {times[name]:.1f} s"
              + (f" (FAILED, exit {done.returncode})" if done.returncode else ""), flush=True)
    total = time.perf_counter() - total
    print("\nfigure script                  time")
    for name in chosen:
        print(f"  plot_{name + '.py':26s} {times[name]:8.1f} s" + ("  FAILED" if name in failed
                                                                else ""))
    print(f"  {'total':31s} {total:8.1f} s ({total / 60:.1f} min)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
