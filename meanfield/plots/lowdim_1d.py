"""Figures of ``lowdim-1d`` (E2) from trajectory.npz, data.npz and config.json:
lowdim_1d_risk.png, lowdim_1d_angles.png, lowdim_1d_masses.png and (with the sweep)
lowdim_1d_sweep.png."""
from pathlib import Path

import numpy as np

from ._style import pyplot, read_arrays, read_config, savefig

#: the seed paper's plotted plateau of the re-scaled loss (EXPERIMENTS.md E2)
SEED_PLATEAU = 0.012


def plot(run_dir, config=None):
    """Draw the E2 figures of the run folder ``run_dir``; return the PNG paths.

    ``config`` is the run's config (read from ``run_dir/config.json`` when None: a
    redraw); the experiment passes its own, so a run drawn before config.json exists works.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir) if config is None else config
    tr = read_arrays(run_dir, "trajectory.npz", ("t", "risk", "snap_step"))
    data = read_arrays(run_dir, "data.npz", ("alpha", "hist_steps", "hist_pos", "mass_pos"))
    plt = pyplot()
    d, dt = config["d"], config["dt"]
    alpha = float(data["alpha"])
    out = []

    # 1. risk
    steps, risk = tr["t"] / dt, tr["risk"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.semilogy(steps, risk / d, color="C0", lw=2, label="exact G, G' (this package)")
    if "mc_t" in tr:
        ax.semilogy(tr["mc_t"] / dt, np.abs(tr["mc_risk_estimate"]) / d, color="C1", lw=0.5,
                    alpha=0.6, label=f"seed code's loss readout |L| (Monte Carlo, "
                                     f"{config['mc_samples']} samples/step)")
        ax.semilogy(tr["mc_t"] / dt, tr["mc_risk"] / d, color="C3", lw=1.5,
                    label="same Monte Carlo-driven particles: exact risk")
    ax.axhline(SEED_PLATEAU, color="gray", ls=":", label="seed paper's plotted level 0.012")
    for s in config["report_steps"]:
        i = int(np.argmin(np.abs(steps - s)))
        ax.plot(steps[i], risk[i] / d, "ko", ms=4)
        ax.annotate(f"{risk[i] / d:.2e}", (steps[i], risk[i] / d),
                    textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("re-scaled risk F / d")
    ax.set_title(f"1-D model, f* = ||x_H||, d = {d}, d_H = {config['d_H']}, "
                 f"m = {config['n_particles']}, dt = {dt:g}")
    ax.legend(fontsize=8)
    out.append(savefig(fig, run_dir / "lowdim_1d_risk.png"))

    # 2. angle histograms (mass density in θ)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    edges = data["hist_edges"]
    width = edges[1] - edges[0]
    for s, hp, hn in zip(data["hist_steps"], data["hist_pos"], data["hist_neg"]):
        axes[0].stairs(hp / width, edges, label=f"step {s}")
        axes[1].stairs(hn / width, edges, label=f"step {s}")
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[0].set_title("tau+ (eps = +1): mass density in theta")
    axes[1].set_title("tau- (eps = -1): mass density in theta")
    for ax in axes:
        ax.set_xlabel("angle to H, theta")
        ax.legend(fontsize=8)
    out.append(savefig(fig, run_dir / "lowdim_1d_angles.png"))

    # 3. masses and distances to the limit
    t_snap = tr["snap_step"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(t_snap, data["mass_pos"], label="tau+ mass")
    axes[0].plot(t_snap, data["mass_neg"], label="tau- mass")
    axes[0].axhline(alpha, color="k", ls="--", label=f"alpha(d_H) = {alpha:.4f}")
    axes[0].set_xlabel("step")
    axes[0].legend(fontsize=8)
    axes[0].set_title("total masses")
    for key, lab in (("w2_pos", "W2(tau+/|tau+|, delta_0)"), ("mass_gap", "|alpha - |tau+||"),
                     ("w2_neg", "W2(tau-/|tau-|, delta_pi/2)"), ("mass_neg", "|tau-|")):
        axes[1].semilogy(t_snap, np.maximum(data[f"diag_{key}"], 1e-300), label=lab)
    axes[1].set_xlabel("step")
    axes[1].set_title("distances to the limit alpha delta_0")
    axes[1].legend(fontsize=8)
    out.append(savefig(fig, run_dir / "lowdim_1d_masses.png"))

    # 4. the d_H sweep: rows (d_H, α, final τ⁺ mass, final τ⁻ mass, final risk)
    if "sweep" in tr:
        rows = tr["sweep"]
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        ax.plot(data["sweep_grid"], data["sweep_alpha_grid"], "k-", lw=1, label="alpha(d_H)")
        ax.plot(rows[:, 0], rows[:, 2], "o", color="C0", label="final tau+ mass")
        ax.plot(rows[:, 0], rows[:, 3], "s", color="C3", label="final tau- mass")
        ax.set_xlabel("d_H")
        ax.set_ylabel("mass")
        ax.set_title(f"final masses, d = {config['sweep_d']}, {config['sweep_steps']} steps")
        ax.legend(fontsize=8)
        out.append(savefig(fig, run_dir / "lowdim_1d_sweep.png"))
    return out
