"""Regenerate the E3 predictor figure (orthogonal dependence).

Command (from the repository root)::

    python figures/plot_lowdim_orthogonal.py [--out DIR] [--threads N] [--set KEY=VALUE ...]

Runs ``python -m meanfield.simulate orthogonal-dependence`` with its default configuration
(d = 20, d_H = 5, m = 1024, dt = 0.05, 5000 steps) into a run folder (``--out``, default a
new temporary directory) and copies orthogonal_dependence.png here.
Runtime: 2.3 minutes measured on 2 shared cores (the full flow, d = 20, m = 1024, 5000 steps:
113 s; the 1-D model: 4 s).
"""

from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("orthogonal-dependence", "orthogonal_dependence.png", __doc__)
