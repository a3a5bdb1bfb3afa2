"""Regenerate the E3 predictor figure (orthogonal dependence).

Command (from the repository root)::

    python figures/plot_lowdim_orthogonal.py [--out DIR] [--threads N] [--set KEY=VALUE ...]
    python figures/plot_lowdim_orthogonal.py RUN_DIR

Runs ``python -m meanfield.simulate orthogonal-dependence`` with its default configuration
(d = 20, d_H = 5, m = 1024, T = 250 = dt × n_steps = 0.05 × 5000, dopri5) into a run folder
(``--out``, default a new temporary directory) and copies orthogonal_dependence.png here;
given a finished run folder, redraws it from the saved ``profiles.npz`` without running.
Runtime (one run, 2 cores shared with other jobs, load 11–13, both threads): 163 s (the full
flow, d = 20, m = 1024: 96 s; the 1-D model: 3.4 s). Redrawing a finished run folder takes
21 s (median of 3, load ≈ 13).
"""

from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("orthogonal-dependence", "orthogonal_dependence.png", __doc__)
