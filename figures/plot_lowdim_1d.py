"""Regenerate the E2 figures (1-D model for f* = ||x_H||, exact vs Monte Carlo G, d_H sweep).

Command (from the repository root)::

    python figures/plot_lowdim_1d.py [--out DIR] [--threads N] [--set KEY=VALUE ...]
    python figures/plot_lowdim_1d.py RUN_DIR     # redraw from a finished run, no computation

Runs ``python -m meanfield.simulate lowdim-1d`` with its default configuration (d = 30,
d_H = 5, m = 1024, dt = 5e-3, 20 000 steps, seed 42; the Monte Carlo run beside it; the sweep
d_H ∈ {2, …, 35} at d = 40) into a run folder (``--out``, default a new temporary
directory) and copies its PNGs here:
lowdim_1d_risk.png, lowdim_1d_angles.png, lowdim_1d_masses.png, lowdim_1d_sweep.png.
Runtime: 7 minutes measured on 2 shared cores (load average about 5): the exact 1-D run took
10 s (+ 2.6 s for the kernel tables), the Monte Carlo run 350 s, the ten-point sweep about
1 minute.
"""

from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("lowdim-1d", "lowdim_1d_*.png", __doc__)
