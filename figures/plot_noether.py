"""Regenerate figures/noether_*.png (E4: conservation laws and symmetry defects).

Runs ``python -m meanfield.simulate noether`` with its default config into a run folder
(which also gets ``laws.csv`` / ``laws.json``, the law table, and ``summary.json``)::

    python figures/plot_noether.py [--out RUN_DIR] [--threads N] [--set KEY=VALUE]

Runtime: about 30 s on a shared 2-core machine with ``--threads 1`` (the default here: every
problem is small, m ≤ 1024).
"""
from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("noether", "noether_*.png", __doc__, default_threads=1)
