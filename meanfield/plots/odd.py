"""Figures of the ``odd`` experiment (E1) from its saved curves: risk and excess risk vs t,
‖w − w*‖ vs t with the bound, the gap to the reduced dynamics vs m, and the even part of
the predictor vs t."""
from pathlib import Path

import numpy as np

from ._style import pyplot, read_arrays, read_config, savefig

__all__ = ["plot", "PNGS"]

PNGS = ("odd_risk.png", "odd_distance.png", "odd_gap.png", "odd_symmetry.png")


def part_name(job):
    """The prefix of a sub-run's arrays in odd_curves.npz: ``<init>_m<m>_seed<seed>_<backend>``."""
    init, m, seed, backend = job
    return f"{init}_m{m}_seed{seed}_{backend}"


def plot(run_dir, config=None):
    """Draw odd_risk.png, odd_distance.png, odd_gap.png and odd_symmetry.png from
    ``run_dir`` (config.json and odd_curves.npz).

    ``run_dir`` and ``config`` as for every ``plot`` of :mod:`meanfield.plots`; returns the
    PNGs written.
    """
    plt = pyplot()
    config = read_config(run_dir) if config is None else config
    curves = read_arrays(run_dir, "odd_curves.npz", ("F_star", "widths", "step_label",
                                                     "sampled_dt"))
    step = str(curves["step_label"])
    F_star = float(curves["F_star"])
    widths = [int(m) for m in curves["widths"]]
    fit = {kind: (float(curves[f"fit_{kind}_slope"]), float(curves[f"fit_{kind}_se"]),
                  curves[f"fit_{kind}_table"], curves[f"fit_{kind}_means"])
           for kind in ("ode", "same_dt") if f"fit_{kind}_slope" in curves}

    def gap(kind, job):
        return float(curves[f"gap_{kind}_" + part_name(job)])

    written = []
    t = curves["t"]
    first = config["seeds"][0]
    colors = {m: plt.cm.viridis(k / max(len(widths) - 1, 1) * 0.85)
              for k, m in enumerate(widths)}
    inits = config["inits"]
    titles = {"sphere": "random start (a = ±1, b ∈ S$^{d-1}$)",
              "paired": "paired start (a, b), (−a, −b)"}
    sub = (f"d = {config['d']}, {step}, "
           f"exact population gradient (solid), SGD batch {config['batch_size']} (Euler, dt = "
           f"{float(curves['sampled_dt']):g}; dashed)"
           if any(part_name((i, m, first, "sampled")) + "_risk" in curves
                  for i in inits for m in widths) else
           f"d = {config['d']}, {step}, exact gradient")

    def sampled_line(ax, key, m, log=False):
        if key not in curves:
            return
        v = curves[key]
        ok = np.isfinite(v) & ((v > 0) if log else True)
        ax.plot(t[ok], v[ok], "--", color=colors[m], lw=1.0, alpha=0.8)

    # risk vs t (top) and excess risk F − F* on a log scale (bottom)
    fig, axes = plt.subplots(2, len(inits), figsize=(5.2 * len(inits), 7.2), squeeze=False,
                             sharex=True)
    for col, init in enumerate(inits):
        top, bottom = axes[0, col], axes[1, col]
        for m in widths:
            key = part_name((init, m, first, "exact"))
            risk = curves[key + "_risk"]
            top.plot(t, risk, color=colors[m], lw=1.6, label=f"m = {m}")
            excess = risk - F_star
            ok = excess > 0
            bottom.semilogy(t[ok], excess[ok], color=colors[m], lw=1.6)
            skey = part_name((init, m, first, "sampled")) + "_risk"
            if skey in curves:
                v = curves[skey]
                ok = np.isfinite(v)
                top.plot(t[ok], v[ok], "--", color=colors[m], lw=1.0, alpha=0.8)
                ok &= v - F_star > 0
                bottom.semilogy(t[ok], v[ok] - F_star, "--", color=colors[m], lw=1.0,
                                alpha=0.8)
        top.plot(t, curves["inf_risk"], "k:", lw=2.0, label="m = ∞ (reduced ODE)")
        ok = curves["inf_risk"] - F_star > 0
        bottom.semilogy(t[ok], curves["inf_risk"][ok] - F_star, "k:", lw=2.0)
        top.axhline(F_star, color="0.5", lw=1.0, ls="-.", label=f"F* = {F_star:.2f}")
        top.set_ylabel("population risk F(μ$_t$)")
        bottom.set_ylabel("excess risk F(μ$_t$) − F*")
        bottom.set_xlabel("t")
        top.set_title(titles[init], fontsize=10)
        top.legend(fontsize=8)
    fig.suptitle(sub, fontsize=8)
    fig.tight_layout()
    written.append(savefig(fig, Path(run_dir) / "odd_risk.png"))

    # ‖w − w*‖ vs t
    fig, axes = plt.subplots(1, len(inits), figsize=(5.2 * len(inits), 4.0), squeeze=False)
    for ax, init in zip(axes[0], inits):
        for m in widths:
            key = part_name((init, m, first, "exact"))
            ax.semilogy(t, curves[key + "_error"], color=colors[m], lw=1.6, label=f"m = {m}")
            sampled_line(ax, part_name((init, m, first, "sampled")) + "_error", m, log=True)
        ax.semilogy(t, curves["inf_error"], "k:", lw=2.0, label="m = ∞ (reduced ODE)")
        ax.semilogy(t, curves["bound"], color="0.4", ls="-.", lw=1.2,
                    label="bound ‖w*‖ exp(−V v$_ρ$ t/4)")
        ax.set_xlabel("t")
        ax.set_ylabel("‖w(t) − w*‖,  w = ½ ∫ a b dμ$_t$")
        ax.set_title(titles[init], fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(sub, fontsize=8)
    written.append(savefig(fig, Path(run_dir) / "odd_distance.png"))

    # gap to the reduced ODE vs m: random start (left), paired start (right)
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.4))
    ms = np.array(widths, float)
    ax = axes[0]
    if "ode" in fit:
        slope, se, table, means = fit["ode"]
        for k in range(table.shape[1]):
            ax.loglog(ms, table[:, k], "o", color="C0", ms=3, alpha=0.5,
                      label="single seeds" if k == 0 else None)
        ax.loglog(ms, means, "o", color="C0", ms=7, label=f"mean of {table.shape[1]} seeds")
        c = np.exp(np.mean(np.log(means) - slope * np.log(ms)))
        ax.loglog(ms, c * ms ** slope, "-", color="C0",
                  label=f"fit: slope {slope:.3f} ± {se:.3f}")
        ax.loglog(ms, means[0] * (ms / ms[0]) ** -0.5, ":", color="0.5", label="m$^{-1/2}$")
    if "same_dt" in fit:
        ax.loglog(ms, fit["same_dt"][3], "x", color="C1", ms=8,
                  label="mean, vs the reduction at the same dt")
    if part_name(("sphere", widths[0], first, "sampled")) + "_risk" in curves:
        sg = [gap("ode", ("sphere", m, first, "sampled")) for m in widths]
        ax.loglog(ms, sg, "d", color="C2", ms=6, mfc="none",
                  label=f"SGD batch {config['batch_size']} (seed {first})")
    ax.set_xlabel("width m")
    ax.set_ylabel("max$_t$ ‖w$_m$(t) − w$_\\infty$(t)‖")
    ax.set_title("random start vs the ∞-width reduced ODE", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1]
    if "paired" in inits:
        pg = [gap("ode", ("paired", m, first, "exact")) for m in widths]
        pd = [max(gap("same_dt", ("paired", m, first, "exact")), 1e-17) for m in widths]
        ax.loglog(ms, pg, "s", color="C3", ms=6,
                  label="vs its moment ODE (solve_ivp): time-step error")
        ax.loglog(ms, pd, "^", color="C3", ms=6, mfc="none",
                  label="vs its reduction at the same dt: round-off")
        ax.set_ylim(1e-17, 1.0)
        ax.legend(fontsize=7)
    ax.set_xlabel("width m")
    ax.set_ylabel("max$_t$ ‖w$_m$(t) − w$_{reduced}$(t)‖")
    ax.set_title("paired start vs the moment ODE from its own start", fontsize=10)
    fig.suptitle(f"gap between the m-particle flow and the reduced dynamics "
                 f"({step}, exact gradient unless marked)",
                 fontsize=9)
    fig.tight_layout()
    written.append(savefig(fig, Path(run_dir) / "odd_gap.png"))

    # even part of the predictor vs t
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    floor = 1e-18
    styles = {"sphere": "-", "paired": "--"}
    for init in inits:
        for m in widths:
            key = part_name((init, m, first, "exact"))
            ax.semilogy(t, np.maximum(curves[key + "_even_probe"], floor), styles[init],
                        color=colors[m], lw=1.4, label=f"{init}, m = {m}")
    ax.set_xlabel("t")
    ax.set_ylabel("max$_x$ |f(x) + f(−x)| / max$_x$ Σ$_j$ |a$_j$||⟨b$_j$, x⟩|/m")
    ax.set_title(f"even part of the predictor on {config['n_probe']} probes "
                 f"(exact gradient; floor {floor:g})", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    written.append(savefig(fig, Path(run_dir) / "odd_symmetry.png"))
    return written
