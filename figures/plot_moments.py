"""Regenerate figures/moments_*.png (seed 004: method-of-moments recovery)::

    python figures/plot_moments.py [--out RUN_DIR] [--set KEY=VALUE]
    python figures/plot_moments.py RUN_DIR     # redraw from a finished run, no computation

Runs ``python -m meanfield.simulate moments`` with its default config. Runtime: 21 s
(``python figures/make_all.py``, 2 cores, load 1.5–3.5); the run folder keeps ``results.npz``, ``summary.json`` and the parts.
"""
from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("moments", "moments_*.png", __doc__)
