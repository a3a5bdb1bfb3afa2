"""Regenerate figures/symmetric_boolean_*.png (seed 000: symmetric vs random initialisation)::

    python figures/plot_symmetric_boolean.py [--out RUN_DIR] [--set KEY=VALUE]
    python figures/plot_symmetric_boolean.py RUN_DIR     # redraw from a finished run

Runs ``python -m meanfield.simulate symmetric-boolean`` with its default config. Runtime:
about 30 s on 2 cores (Numba compile included); the run folder keeps ``results.npz``,
``summary.json`` and the per-sub-run parts.
"""
from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("symmetric-boolean", "symmetric_boolean_*.png", __doc__)
