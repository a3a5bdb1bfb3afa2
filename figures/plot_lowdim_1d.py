"""Regenerate the E2 figures (1-D model for f* = ||x_H||, exact vs Monte Carlo G, d_H sweep).

Command (from the repository root)::

    python figures/plot_lowdim_1d.py [--out DIR] [--threads N] [--set KEY=VALUE ...]
    python figures/plot_lowdim_1d.py RUN_DIR     # redraw from a finished run, no computation

Runs ``python -m meanfield.simulate lowdim-1d`` with its default configuration (d = 30,
d_H = 5, m = 1024, dt = 5e-3, 20 000 steps, seed 42; the Monte Carlo run beside it; the sweep
d_H ∈ {2, …, 35} at d = 40) into a run folder (``--out``, default a new temporary
directory) and copies its PNGs here:
lowdim_1d_risk.png, lowdim_1d_angles.png, lowdim_1d_masses.png, lowdim_1d_sweep.png.
Runtime: 217 s (``python figures/make_all.py``, 2 cores, load 1.5–3.5), the Monte Carlo run most of it;
a saved run folder is redrawn in 4.5 s (``python figures/plot_lowdim_1d.py RUN_DIR``).
"""

from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("lowdim-1d", "lowdim_1d_*.png", __doc__)
