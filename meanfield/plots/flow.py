"""Figures of the ``flow`` experiment: risk.png and q_drift.png from trajectory.npz."""
from pathlib import Path

import numpy as np

from ._style import plain_log_labels, pyplot, read_arrays, savefig

#: the PNGs this module writes into the run folder
FIGURES = ("risk.png", "q_drift.png")


#: the arrays both figures are drawn from
_KEYS = ("t", "risk", "risk_exact", "q_drift", "title")


def plot(run_dir, config=None):
    """Draw the risk curve F(μ_t) (with the exact risk of sampled runs) and the drift of the
    balance a² − ‖b‖² from ``run_dir/trajectory.npz``; return the PNG paths.

    ``config`` is the run's config (read from ``run_dir/config.json`` when None: a
    redraw); the experiment passes its own, so a run drawn before config.json exists works.
    """
    return [path for part in FIGURE_PARTS for path in part(run_dir, config)]


def plot_risk(run_dir, config=None):
    """risk.png: the risk curve F(μ_t), with the exact risk of sampled runs."""
    run_dir = Path(run_dir)
    tr = read_arrays(run_dir, "trajectory.npz", _KEYS)
    t, risk, risk_exact = tr["t"], tr["risk"], tr["risk_exact"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ok = np.isfinite(risk) & (risk > 0)
    ax.semilogy(t[ok], risk[ok], label="risk F(μ_t)")
    if np.any(np.isfinite(risk_exact)) and not np.allclose(risk_exact, risk, equal_nan=True):
        e = np.isfinite(risk_exact)
        ax.semilogy(t[e], risk_exact[e], "k.", ms=3, label="exact risk")
    ax.set_xlabel("t (PDE time)")
    ax.set_ylabel("risk")
    ax.set_title(str(tr["title"]), fontsize=9)
    ax.legend()
    plain_log_labels(ax.yaxis)
    return [savefig(fig, run_dir / "risk.png")]


def plot_q_drift(run_dir, config=None):
    """q_drift.png: the drift of the balance a² − ‖b‖² (the rescaling charge)."""
    run_dir = Path(run_dir)
    tr = read_arrays(run_dir, "trajectory.npz", _KEYS)
    t, q = tr["t"], tr["q_drift"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    pos = q > 0
    if np.any(pos):
        ax.semilogy(t[pos], q[pos])
    ax.set_xlabel("t")
    ax.set_ylabel("max_j |Q_j(t) − Q_j(0)e^{−2λt}|")
    ax.set_title("conserved quantity a² − ‖b‖²: drift", fontsize=9)
    plain_log_labels(ax.yaxis)
    return [savefig(fig, run_dir / "q_drift.png")]


#: the figures one by one, in plot's order: the figure process draws them at once
#: (:mod:`meanfield.plots._parts`)
FIGURE_PARTS = (plot_risk, plot_q_drift)
