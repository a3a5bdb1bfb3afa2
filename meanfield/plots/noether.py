"""Figures of the ``noether`` experiment (E4) from its saved parts: drift of Q_j and of the
energy identity vs dt, drift vs time (weight decay, per-layer rates), the balance matrix of
a linear network, angular momentum, and symmetry defects."""
import json
from pathlib import Path

import numpy as np

from ..engine.integrators import FIXED_STEP
from ._style import pyplot, read_arrays, read_config, savefig

__all__ = ["plot", "PNGS"]

PNGS = ("noether_drift_vs_dt.png", "noether_drift_vs_time.png", "noether_balance.png",
        "noether_angular_momentum.png", "noether_symmetry_defect.png")

#: saved parts the figures read, with the arrays each must hold
PARTS = {"sweep": ("dts",), "time": (), "linear": ("M0", "dt_shown"),
         "angmom": ("block_names",), "orbits": ("group_names",),
         "defect": ("ms", "d0", "dT", "orbit_m", "orbit_d", "T", "group")}

_INTEGRATORS = FIXED_STEP


def plot(run_dir, config=None):
    """Draw the five noether figures from ``run_dir`` (config.json and parts/*.npz).

    ``run_dir`` and ``config`` as for every ``plot`` of :mod:`meanfield.plots`; returns the
    PNGs written.
    """
    from ..theory.conservation import loglog_slope

    plt = pyplot()
    config = read_config(run_dir) if config is None else config
    parts = {name: read_arrays(run_dir, f"parts/{name}.npz", keys)
             for name, keys in PARTS.items()}
    written = []

    colors = {"euler": "C0", "heun": "C1", "rk4": "C2", "euler_projected": "C3",
              "momentum": "C4", "heavy_ball": "C5"}
    sw = parts["sweep"]
    dts = sw["dts"]
    k = config["fit_points"]
    floor = 1e-13

    # 1. drift vs dt
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    ax = axes[0]
    for name in _INTEGRATORS + ("heavy_ball",):
        y = sw[f"q_{name}"]
        sel = y[-k:] > floor
        slope = loglog_slope(dts[-k:][sel], y[-k:][sel]) if name != "euler_projected" else np.nan
        label = {"heavy_ball": f"heavy ball, γ={config['friction']:g} (μ=1−γ√dt)",
                 "momentum": f"momentum, μ={config['momentum']:g}"}.get(name, name)
        label += f"  slope {slope:.2f}" if np.isfinite(slope) else "  (round-off)"
        ax.loglog(dts, np.maximum(y, 1e-17), "o-", color=colors[name], label=label, ms=4)
        if name in ("euler", "heun", "rk4"):
            ax.loglog(dts, np.maximum(sw[f"qpred_{name}"], 1e-17), "k+", ms=8)
    ax.plot([], [], "k+", label="Σ exact per-step identities")
    ax.axhline(np.finfo(float).eps, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("dt")
    ax.set_ylabel("max_j |Q_j(T) − Q_j(0)| / max_j M_j(0)")
    ax.set_title(f"rescaling charge a² − ‖b‖², horizon T = {config['horizon']:g}", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    ax = axes[1]
    for name in _INTEGRATORS:
        y = np.abs(sw[f"energy_{name}"])
        sel = y[-k:] > floor
        slope = loglog_slope(dts[-k:][sel], y[-k:][sel])
        ax.loglog(dts, np.maximum(y, 1e-17), "o-", color=colors[name], ms=4,
                  label=f"{name}  slope {slope:.2f}")
    ax.loglog(dts, np.abs(sw["energypred_euler"]), "k+", ms=8, label="euler: (dt/4)(D₀ − D_N)")
    ax.loglog(dts, np.abs(sw["energypred_momentum"]), "kx", ms=6,
              label="momentum: quasi-static prediction")
    ax.set_xlabel("dt")
    ax.set_ylabel("|E(T) − E(0) + ∫D| / E(0)")
    ax.set_title("energy identity, integrator's own quadrature of D", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    written.append(savefig(fig, Path(run_dir) / "noether_drift_vs_dt.png"))

    # 2. drift vs time
    tm = parts["time"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for name in _INTEGRATORS:
        ax.semilogy(tm[f"t_{name}"], np.maximum(tm[f"q_{name}"], 1e-17), color=colors[name],
                    label=name)
    ax.set_xlabel("t")
    ax.set_ylabel("max_j |Q_j(t) − Q_j(0)| / max_j M_j(0)")
    ax.set_title(f"drift vs time, dt = {config['time_dt']:g}", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1]
    lam, ra, rb = config["weight_decay"], config["rate_a"], config["rate_b"]
    for key, label, style in (
            ("wd_euler", f"e^(−2λt) law, euler (λ={lam:g})", "C0-"),
            ("wd_projected", "e^(−2λt) law, euler_projected", "C3-"),
            ("rates_euler", f"a²/η_a − ‖b‖²/η_b, euler (η=({ra:g},{rb:g}))", "C0--"),
            ("rates_projected", "a²/η_a − ‖b‖²/η_b, euler_projected", "C3--"),
            ("wd_rates_euler", "both: e^(−2λt) law of a²/η_a − ‖b‖²/η_b, euler", "C1-."),
            ("wd_rates_projected", "both, euler_projected", "C4-."),
            ("euler", "law of Q under μ_t (W₁), euler", "C2:")):
        y = tm[f"w1_{key}"] if label.startswith("law of Q") else tm[f"q_{key}"]
        ax.semilogy(tm[f"t_{key}"], np.maximum(y, 1e-17), style, label=label)
    ax.set_xlabel("t")
    ax.set_ylabel("drift / max_j M_j(0)")
    ax.set_title("weight decay e^(−2λt), per-layer rates, both together; mean-field form",
                 fontsize=9)
    ax.legend(fontsize=7)
    written.append(savefig(fig, Path(run_dir) / "noether_drift_vs_time.png"))

    # 3. balance matrix
    li = parts["linear"]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.0), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1, 1.3]})
    panels = [("M(0) = B Bᵀ − a aᵀ", li["M0"]),
              (f"M(T) − M(0), euler dt={float(li['dt_shown']):g}", li["dM_euler"]),
              (f"M(T) − M(0), rk4 dt={float(li['dt_shown']):g}", li["dM_rk4"])]
    for ax, (title, M) in zip(axes[:3], panels):
        lim = float(np.max(np.abs(M))) or 1.0
        im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, shrink=0.8,
                     format="%.1e" if lim < 1e-2 else None)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = axes[3]
    for name in ("euler", "rk4", "momentum"):
        y = li[f"drift_{name}"]
        sel = y > floor
        slope = loglog_slope(li["dts"][sel], y[sel])
        ax.loglog(li["dts"], np.maximum(y, 1e-17), "o-", color=colors[name], ms=4,
                  label=f"{name}  slope {slope:.2f}")
    ax.set_xlabel("dt")
    ax.set_ylabel("max_ij |M_ij(T) − M_ij(0)| / max_j M_j(0)", fontsize=8)
    ax.set_title(f"linear network, m = {config['linear_m']}, T = {config['horizon']:g}", fontsize=9)
    ax.legend(fontsize=7)
    written.append(savefig(fig, Path(run_dir) / "noether_balance.png"))

    # 4. angular momentum
    am = parts["angmom"]
    names = json.loads(str(am["block_names"]))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    styles = {"exact": "-", "sampled": "--"}
    for backend in ("exact", "sampled"):
        for i, name in enumerate(names):
            y = am[f"L_{backend}_{i}"]
            label = f"{backend}: {name.replace('H_perp', 'H⊥')}"
            if backend == "sampled":
                label += f" (batch {config['batch_size']})"
            ax.semilogy(am[f"t_{backend}"], np.maximum(y, 1e-18), styles[backend], color=f"C{i}",
                        label=label)
    ax.set_xlabel("t")
    ax.set_ylabel("‖L‖_F / Σ_j w_j(‖Pb‖‖P'v‖ + ‖Pv‖‖P'b‖)")
    ax.set_title(f"angular momentum, norm target d_H = {config['d_H']}, d = {config['angmom_d']}",
                 fontsize=9)
    ax.legend(fontsize=7, loc="center right")
    written.append(savefig(fig, Path(run_dir) / "noether_angular_momentum.png"))

    # 5. symmetry defect
    de = parts["defect"]
    orb = parts["orbits"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    ax = axes[0]
    ms = de["ms"].astype(float)
    for key, label, color in (("d0", "t = 0", "C0"), ("dT", f"t = {float(de['T']):g}", "C1")):
        mean = de[key].mean(axis=1)
        slope = loglog_slope(ms, mean)
        ax.loglog(ms, mean, "o-", color=color, label=f"i.i.d. start, {label}: slope {slope:.2f}")
        ax.loglog(np.repeat(ms, de[key].shape[1]), de[key].ravel(), ".", color=color, alpha=0.4)
    ax.loglog(ms, de["d0"].mean(axis=1)[0] * (ms / ms[0]) ** -0.5, "k:", lw=0.8, label="m^(−1/2)")
    ax.set_xlabel("m")
    ax.set_ylabel("sliced W₁(μ, g#μ) / ‖θ‖ (mean over generators)")
    ax.set_title(f"i.i.d. starts ({de['d0'].shape[1]} seeds, dots)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.loglog(ms, de["d0"].mean(axis=1), "o-", color="C0", label="i.i.d. start, t = 0")
    ax.loglog(de["orbit_m"], np.maximum(de["orbit_d"], 1e-18), "s-", color="C3",
              label=f"orbit start, t = {float(de['T']):g}")
    ax.axhline(np.finfo(float).eps, color="0.6", lw=0.8, ls=":", label="machine ε")
    ax.set_xlabel("m")
    ax.set_ylabel("sliced W₁(μ, g#μ) / ‖θ‖")
    ax.set_title("the same group: " + str(de["group"]), fontsize=8)
    ax.legend(fontsize=7)
    ax = axes[2]
    gnames = json.loads(str(orb["group_names"]))
    for gi, gname in enumerate(gnames):
        dfc = orb[f"defect_{gi}"]
        ax.semilogy(orb[f"t_{gi}"], np.maximum(dfc.max(axis=0), 1e-18), "o-", ms=3,
                    label=gname)
    ax.axhline(np.finfo(float).eps, color="0.6", lw=0.8, ls=":")
    ax.set_ylim(1e-18, 1e-10)
    ax.set_xlabel("t")
    ax.set_ylabel("max over generators of W₂(μ_t, g#μ_t) / ‖θ‖")
    ax.set_title("orbit-symmetric starts along the flow (exact matching)", fontsize=9)
    ax.legend(fontsize=7)
    written.append(savefig(fig, Path(run_dir) / "noether_symmetry_defect.png"))
    return written
