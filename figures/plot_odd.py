"""Regenerate the E1 figures (odd cubic target: particle flow against the reduced linear
predictor).

Command (from the repository root)::

    python figures/plot_odd.py [--threads N] [--set KEY=VALUE] [--out DIR]
    python figures/plot_odd.py RUN_DIR

Runs ``python -m meanfield.simulate odd`` with its default configuration (d = 60, widths
10, 50, 128, 1024, T = 100, exact population gradients integrated by dopri5 at rtol 1e-8;
random start with seeds 0, 1, 2 and the paired start; ``--set include_sampled=true`` adds
the online-SGD batch-512 run of the random start) into a run folder and copies its PNGs
here: odd_risk.png (risk and excess risk vs t), odd_distance.png (‖w − w*‖ vs t with the
bound), odd_gap.png (gap to the reduced ODE vs m, log–log, fitted slope), odd_symmetry.png
(even part of the predictor vs t). Options ``--threads N``, ``--set KEY=VALUE`` and
``--out DIR`` are passed to the command line. Given a finished run folder, the figures are
redrawn from its saved ``odd_curves.npz`` without running anything.
Runtime (one run, 2 cores shared with other jobs, load 11–13): 10.9 minutes with
``--threads 1``; the four m = 1024 runs take 493 s of the 599 s of sub-runs, the seed
paper's four widths alone (random start, seed 0) 165 s. Redrawing a finished run folder
takes 29 s (median of 3, load ≈ 15).
"""
from _regenerate import regenerate

if __name__ == "__main__":
    regenerate("odd", "odd_*.png", __doc__)
