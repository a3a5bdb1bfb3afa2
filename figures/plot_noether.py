"""Regenerate figures/noether_*.png (E4: conservation laws and symmetry defects).

Runs ``python -m meanfield.simulate noether`` with its default config into a run folder
(which also gets ``laws.csv`` / ``laws.json``, the law table, ``verdicts.json``, one
structured verdict per law, and ``summary.json``), or redraws the figures of a finished run
folder from its saved parts without running anything::

    python figures/plot_noether.py [--out RUN_DIR] [--threads N] [--set KEY=VALUE]
    python figures/plot_noether.py RUN_DIR

Runtime (one run, 2 cores shared with other jobs, load 12–18): 163 s with ``--threads 1``
(the default here: every problem is small, m ≤ 1024), of which the parts take sweep 38 s,
time 28 s, linear 12 s, angmom 6 s, orbits 4 s, defect 12 s; redrawing a finished run
folder takes 77 s (median of 3, load ≈ 12), almost all of it in Matplotlib's savefig.
"""
from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("noether", "noether_*.png", __doc__, default_threads=1)
