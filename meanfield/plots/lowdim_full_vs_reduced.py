"""The figure of ``lowdim-full-vs-reduced`` (E3), lowdim_full_vs_reduced.png, from data.npz
and config.json."""
from pathlib import Path

import numpy as np

from ._style import pyplot, read_arrays, read_config, savefig

#: the discrepancies drawn against m, with their legend labels
LABELS = {"risk_full_reduced": "max_t |F_full - F_red|",
          "risk_reduced_1d": "max_t |F_red - F_1D|",
          "w2_full_reduced": "W2 law (a,|b_H|,|b_perp|): full vs red",
          "coupled_full_reduced": "coupled distance full vs red",
          "w1_theta_full_1d": "W1 theta-law (tau+): full vs 1-D"}


def plot(run_dir, config=None):
    """Draw the risk curves of the three models (first seed) and the discrepancies against
    the width m with their fitted slopes; return the PNG paths.

    ``config`` is the run's config (read from ``run_dir/config.json`` when None: a
    redraw); the experiment passes its own, so a run drawn before config.json exists works.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir) if config is None else config
    data = read_arrays(run_dir, "data.npz", ("widths", "seed", *(f"mean_{k}" for k in LABELS)))
    widths = [int(m) for m in data["widths"]]
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    for i, m in enumerate(widths):
        t = data[f"t_m{m}"]
        ax.semilogy(t, data[f"risk_full_m{m}"], color=f"C{i}", lw=1.5, label=f"m = {m}: full")
        ax.semilogy(t, data[f"risk_reduced_m{m}"], color=f"C{i}", ls="--", lw=1)
        ax.semilogy(t, data[f"risk_1d_m{m}"], color=f"C{i}", ls=":", lw=1)
    ax.plot([], [], "k-", label="full (R^{1+d})")
    ax.plot([], [], "k--", label="(d_H+2)-reduced")
    ax.plot([], [], "k:", label="1-D (eps, c, theta)")
    ax.set_xlabel("t")
    ax.set_ylabel("exact risk F")
    ax.set_title(f"f* = ||x_H||, d = {config['d']}, d_H = {config['d_H']}, "
                 f"seed {int(data['seed'])}")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1]
    for i, (key, lab) in enumerate(LABELS.items()):
        ax.loglog(widths, data[f"mean_{key}"], "o-", color=f"C{i}",
                  label=f"{lab}  (slope {float(data['slope_' + key]):+.2f})")
    w = np.array(widths, dtype=float)
    ax.loglog(w, data["mean_coupled_full_reduced"][0] * (w / w[0]) ** -0.5, "k--", lw=1,
              label="m^-1/2")
    ax.loglog(w, data["mean_risk_full_reduced"][0] * (w / w[0]) ** -1.0, "k:", lw=1,
              label="m^-1")
    ax.set_xticks(w)
    ax.set_xticks([], minor=True)
    ax.set_xticklabels([str(int(x)) for x in w])
    ax.set_xlabel("width m")
    ax.set_ylabel("discrepancy (mean over seeds)")
    ax.set_title("full vs reduced models as m grows")
    ax.legend(fontsize=7)
    return [savefig(fig, run_dir / "lowdim_full_vs_reduced.png")]
