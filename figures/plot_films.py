"""Regenerate the two films of the README: film_odd.gif and film_radial1d.gif.

Command (from the repository root)::

    python figures/plot_films.py [--out DIR] [--only odd|radial1d]

1. ``film_odd.gif``: the odd cubic target of E1 (d = 60, x ∼ N(0, I/d), f* = C Σ z_k x_k³)
   learned by m = 128 particles from the sphere start (a = ±1), exact gradients, Euler with
   dt = 0.01 up to T = 100: ``python -m meanfield.simulate flow`` with the keys in ``ODD``
   below, then ``meanfield.film`` in its ``teacher`` view: ⟨b, u⟩ and ‖b − ⟨b, u⟩u‖ for
   u = z/‖z‖, the direction of the linear predictor w* the flow converges to.
2. ``film_radial1d.gif``: the balanced 1-D model (ε, c, θ) of E2 (f* = ‖x_H‖, d = 30,
   d_H = 5, m = 1024, dt = 5e-3, 20 000 steps, seed 42, exact G): the script drives
   :func:`meanfield.models.radial1d.simulate_radial` itself and writes a run folder in the
   snapshot format that ``meanfield.film`` reads (``model = "radial1d"``), then renders the
   mass histograms of τ⁺ and τ⁻ in θ.

Both films ask for 100 log-spaced snapshots (t = 0 and geometric times from the first step;
times that round to the same step are taken once: 84 and 86 frames), 640 x 320 pixels, 12
frames per second; 0.39 and 0.38 MB. The run folders go to ``--out`` (default a new
temporary directory). Runtime: 34 s (``python figures/make_all.py``, 2 cores, load 1.5–3.5): the odd run
10.7 s, the 1-D run 14.2 s, rendering 2.7 s and 4.2 s.
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
N_FRAMES = 100
DPI = 80
FPS = 12
D_ODD = 60
ODD = {"target": "odd_cubic", "d": D_ODD, "n_particles": 128, "init": "sphere",
       "input_scale": D_ODD ** -0.5, "dt": 0.01, "n_steps": 10000, "record_every": 10,
       "n_snapshots": N_FRAMES, "snapshot_spacing": "log", "seed": 0}
RADIAL = {"d": 30, "d_H": 5, "n_particles": 1024, "dt": 5e-3, "n_steps": 20000, "seed": 42,
          "record_every": 10, "n_snapshots": N_FRAMES, "snapshot_spacing": "log"}


def odd_film(out):
    run = out / "odd"
    cmd = [sys.executable, "-m", "meanfield.simulate", "flow", "--out", str(run), "--quiet"]
    for key, value in ODD.items():
        cmd += ["--set", f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"the flow run failed (exit {done.returncode}); see {run}/summary.json")
    print(f"odd run: {time.perf_counter() - start:.1f} s -> {run}")
    return run


def radial_film(out):
    from meanfield.engine import snapshot_steps
    from meanfield.models.lowdim import sample_radial_init
    from meanfield.models.radial1d import RadialKernel, simulate_radial

    cfg = RADIAL
    run = out / "radial1d"
    run.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    kernel = RadialKernel(cfg["d_H"], cfg["d"] - cfg["d_H"])
    eps, c, theta = sample_radial_init(cfg["n_particles"], cfg["d"], cfg["d_H"],
                                       np.random.default_rng(cfg["seed"]))
    snaps = snapshot_steps(cfg["n_steps"], cfg["n_snapshots"], cfg["snapshot_spacing"])
    res = simulate_radial(kernel, eps, c, theta, cfg["dt"], cfg["n_steps"],
                          record_every=cfg["record_every"], snapshot_at=snaps)
    if res.status != "ok":
        sys.exit(f"the 1-D run failed: {res.message}")
    from meanfield.io import atomic_savez, atomic_write_json

    atomic_write_json(run / "config.json", {"experiment": "radial1d (figures/plot_films.py)",
                                            "config": cfg})
    atomic_savez(run / "trajectory.npz", model=np.array("radial1d"), t=res.t, risk=res.risk,
                 snapshot_step=res.snapshots["step"], snapshot_t=res.snapshots["t"],
                 snapshot_c=res.snapshots["c"], snapshot_theta=res.snapshots["theta"],
                 eps=res.eps, weights=res.weights)
    print(f"1-D run: {time.perf_counter() - start:.1f} s -> {run}")
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="folder for the run folders (default: a temporary one)")
    p.add_argument("--only", choices=["odd", "radial1d"])
    args = p.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="films-"))
    from meanfield import film

    for name, make in (("odd", odd_film), ("radial1d", radial_film)):
        if args.only and args.only != name:
            continue
        run = make(out)
        start = time.perf_counter()
        path = film.render(run, out=HERE / f"film_{name}.gif", fps=FPS, dpi=DPI)
        with np.load(run / "trajectory.npz") as traj:
            n = traj["snapshot_t"].size
        print(f"wrote {path} ({n} frames, {path.stat().st_size / 1e6:.2f} MB, "
              f"{time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
