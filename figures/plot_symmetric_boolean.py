"""Regenerate figures/symmetric_boolean_*.png (seed 000: symmetric vs random initialisation)::

    python figures/plot_symmetric_boolean.py [--out RUN_DIR] [--set KEY=VALUE]
    python figures/plot_symmetric_boolean.py RUN_DIR     # redraw from a finished run

Runs ``python -m meanfield.simulate symmetric-boolean`` with its default config. Runtime:
23 s (``python figures/make_all.py``, 2 cores, load 1.5–3.5); the run folder keeps ``results.npz``,
``summary.json`` and the per-sub-run parts.
"""
from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("symmetric-boolean", "symmetric_boolean_*.png", __doc__)
