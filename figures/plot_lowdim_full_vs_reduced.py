"""Regenerate the E3 figure (full particle flow vs the reduced flows as m grows).

Command (from the repository root)::

    python figures/plot_lowdim_full_vs_reduced.py [--out DIR] [--threads N] [--set KEY=VALUE ...]
    python figures/plot_lowdim_full_vs_reduced.py RUN_DIR   # redraw from a finished run

Runs ``python -m meanfield.simulate lowdim-full-vs-reduced`` with its default configuration
(d = 30, d_H = 5, widths 32..512, seeds 0 and 1, Heun, dt = 0.02, 500 steps) into a run
folder (``--out``, default a new temporary directory) and copies lowdim_full_vs_reduced.png
here.
Runtime: 89 s (``python figures/make_all.py``, 2 cores, load 1.5–3.5).
"""

from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("lowdim-full-vs-reduced", "lowdim_full_vs_reduced.png", __doc__)
