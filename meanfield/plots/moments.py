"""Figures of ``moments`` (seed 004) from results.npz and config.json:
moments_error_vs_n.png, moments_error_vs_noise.png and (with GD trials) moments_vs_gd.png."""
from pathlib import Path

import numpy as np

from ._style import pyplot, read_arrays, read_config, savefig


def plot(run_dir, config=None):
    """Draw the error against N per input law (controls dashed), against noise, and the
    comparison with gradient descent; return the PNG paths.

    ``config`` is the run's config (read from ``run_dir/config.json`` when None: a
    redraw); the experiment passes its own, so a run drawn before config.json exists works.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir) if config is None else config
    res = read_arrays(run_dir, "results.npz",
                      ("n_samples", "law_names", "law_is_control", "law_slopes", "noise_error"))
    plt = pyplot()
    out = []
    n = res["n_samples"].astype(float)
    laws = [str(v) for v in res["law_names"]]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (law, control, slope) in enumerate(zip(laws, res["law_is_control"],
                                                  res["law_slopes"])):
        err = res[f"error_{law}"]
        med = np.median(err, axis=1)
        style = dict(color=colors[i % len(colors)], ls="--" if control else "-",
                     marker="s" if control else "o")
        label = f"{law} (slope {slope:.2f})" + (" [control]" if control else "")
        ax.plot(n, med, label=label, **style)
        ax.fill_between(n, err.min(axis=1), err.max(axis=1), color=style["color"], alpha=0.15)
    first_symmetric = next(law for law, c in zip(laws, res["law_is_control"]) if not c)
    ref = np.median(res[f"error_{first_symmetric}"], axis=1)[0]
    ax.plot(n, ref * (n / n[0]) ** -0.5, color="k", lw=0.8, ls=":", label=r"$\propto N^{-1/2}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of samples N")
    ax.set_ylabel("relative parameter error (canonical form)")
    ax.set_title(f"moment recovery, p={config['p']}, k={config['k']}, d={config['d']}, "
                 f"noise {config['noise_std']:g}\nmedian of {config['trials']} trials "
                 "(band: min–max)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    out.append(savefig(fig, run_dir / "moments_error_vs_n.png"))

    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    s = res["noise_levels"].astype(float)
    err = res["noise_error"]
    xs = np.where(s > 0, s, s[s > 0].min() / 3 if np.any(s > 0) else 1.0)
    ax.plot(xs, np.median(err, axis=1), "o-", label="median")
    ax.fill_between(xs, err.min(axis=1), err.max(axis=1), alpha=0.2, label="min–max")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{v:g}" for v in s])
    ax.set_xlabel("noise standard deviation (leftmost point: no noise)")
    ax.set_ylabel("relative parameter error")
    ax.set_title(f"Gaussian inputs, N = {config['noise_n_samples']}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    out.append(savefig(fig, run_dir / "moments_error_vs_noise.png"))

    if len(res["gd_error"]):
        fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), layout="constrained")
        names = ["moments", "gradient descent"]
        loss = res["gd_loss"]
        for ax, key, label in ((axes[0], "error", "relative parameter error"),
                               (axes[1], "seconds", "wall time [s]")):
            vals = [res[f"moments_{key}"], res[f"gd_{key}"]]
            for j, v in enumerate(vals):
                ax.scatter(np.full(len(v), j), v, color=colors[j], zorder=3)
                ax.hlines(np.median(v), j - 0.25, j + 0.25, color=colors[j])
            if key == "seconds":
                first = np.argmax(loss <= 1.01 * loss[:, -1:], axis=1) / (loss.shape[1] - 1)
                ax.scatter(np.ones(len(first)), res["gd_seconds"] * first, facecolors="none",
                           edgecolors=colors[1], zorder=3, label="GD: to within 1% of final loss")
                ax.legend(fontsize=8)
            ax.set_xticks([0, 1])
            ax.set_xticklabels(names)
            ax.set_xlim(-0.6, 1.6)
            ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.grid(True, axis="y", which="both", alpha=0.3)
        steps = np.linspace(0, config["gd_steps"], loss.shape[1])
        for curve in loss:
            axes[2].plot(steps, curve, color=colors[1], alpha=0.7)
        axes[2].set_yscale("log")
        axes[2].set_xlabel("GD step")
        axes[2].set_ylabel("empirical loss ½ mean‖ŷ − y‖²")
        axes[2].axhline(0.5 * config["p"] * config["noise_std"] ** 2, color="k", ls=":",
                        lw=0.8, label="noise floor ½ p s²")
        axes[2].legend(fontsize=8)
        fig.suptitle(f"same teacher, Gaussian inputs, N = {config['gd_n_samples']}, "
                     f"noise {config['noise_std']:g}; GD: {config['gd_steps']} steps, "
                     f"lr {config['gd_lr']:g}", fontsize=10)
        out.append(savefig(fig, run_dir / "moments_vs_gd.png"))
    return out
