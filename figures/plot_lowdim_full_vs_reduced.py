"""Regenerate the E3 figure (full particle flow vs the reduced flows as m grows).

Command (from the repository root)::

    python figures/plot_lowdim_full_vs_reduced.py [--out DIR] [--threads N] [--set KEY=VALUE ...]
    python figures/plot_lowdim_full_vs_reduced.py RUN_DIR   # redraw from a finished run

Runs ``python -m meanfield.simulate lowdim-full-vs-reduced`` with its default configuration
(d = 30, d_H = 5, widths 32..512, seeds 0 and 1, Heun, dt = 0.02, 500 steps) into a run
folder (``--out``, default a new temporary directory) and copies lowdim_full_vs_reduced.png
here.
Runtime: 20 minutes measured on 2 heavily shared cores (load average about 5); the full
flow at m = 512 took 124 s per seed, the reduced flow 88 s, the 1-D model 0.2 s.
"""

from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("lowdim-full-vs-reduced", "lowdim_full_vs_reduced.png", __doc__)
