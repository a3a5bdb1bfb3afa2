"""Rendering speed of ``meanfield.film``: a film of m particles with s snapshots, MP4 and GIF.

The run folder is synthetic (the cost of a frame does not depend on the dynamics): m
particles in d dimensions drifting from the sphere along a random walk, a ± 1 output
weights growing in size, a risk curve of 10 000 points, s linearly spaced snapshots; the
view is ``pca`` (no target directions), the frame 800 x 400 pixels (dpi 100).

Reported: the median wall time of one complete render (load, figure set-up, every frame,
encoding, atomic write) over ``--repeat`` runs after one untimed warm-up (which pays the
imports and matplotlib's font cache; printed as "first call"), the frames per second and
the file size. The target of the film issue is a 100-frame film of m = 1024 particles in
≤ 20 s on 2 cores.

Run (about a minute)::

    python benchmarks/bench_film.py
    python benchmarks/bench_film.py --m 4096 --frames 200
    python benchmarks/bench_film.py --smoke --json
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import Output, machine_lines, median_time  # noqa: E402


def synthetic_run(folder, m, d, s, seed=0):
    """A full-model run folder in the flow format with ``s`` snapshots."""
    rng = np.random.default_rng(seed)
    b0 = rng.standard_normal((m, d))
    b0 /= np.linalg.norm(b0, axis=1, keepdims=True)
    steps = rng.standard_normal((s, m, d)) * 0.05
    steps[0] = 0.0
    b = b0 + np.cumsum(steps, axis=0)
    sign = rng.choice([-1.0, 1.0], m)
    a = sign * np.linalg.norm(b, axis=2)
    t = np.linspace(0.0, 20.0, 10001)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "trajectory.npz", t=t, risk=0.6 * np.exp(-t / 4) + 1e-3,
             snapshot_t=np.linspace(0.0, 20.0, s), snapshot_a=a, snapshot_b=b)
    return folder


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m", type=int, default=1024)
    p.add_argument("--d", type=int, default=10)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--formats", default="mp4,gif")
    p.add_argument("--smoke", action="store_true", help="m = 64, 8 frames, one repeat")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.m, args.frames, args.repeat = 64, 8, 1
    from meanfield import film

    out = Output(args.json)
    for line in machine_lines(threads=os.cpu_count()):
        out.say(line)
    out.say(f"film of m = {args.m} particles, d = {args.d}, {args.frames} frames, 800 x 400")
    out.header()
    with tempfile.TemporaryDirectory() as tmp:
        run = synthetic_run(Path(tmp) / "run", args.m, args.d, args.frames)
        for fmt in args.formats.split(","):
            path = Path(tmp) / f"film.{fmt}"
            median, first, written = median_time(
                lambda: film.render(run, out=path, fps=10), args.repeat, warmup=1)
            if written.suffix != f".{fmt}":
                out.say(f"  {fmt}: no writer here, fell back to {written.suffix}")
            note = (f"{args.frames / median:.1f} frames/s, first call {first:.2f} s, "
                    f"{written.stat().st_size / 1e6:.2f} MB, load {os.getloadavg()[0]:.2f}")
            # no particle pairs here: the row is printed directly (pairs_per_s is null)
            out.say(f"  {'meanfield-film-' + fmt:<22} {args.m:>7} {args.d:>5} {median:>11.4f} "
                    f"{'':>10} {'':>9}  {note}")
            if args.json:
                print(json.dumps({"implementation": f"meanfield-film-{fmt}", "m": args.m,
                                  "d": args.d, "median_s": median, "pairs_per_s": None,
                                  "rel_err": None, "frames": args.frames,
                                  "first_call_s": first, "bytes": written.stat().st_size,
                                  "load": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.1f} s", file=sys.stderr)
