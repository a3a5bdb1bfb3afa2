"""Figures of ``symmetric-boolean`` (seed 000) from results.npz and config.json:
symmetric_boolean_vs_epochs.png, symmetric_boolean_vs_n.png and (with the learning-rate
sweep) symmetric_boolean_lr.png."""
from pathlib import Path

import numpy as np

from ._style import pyplot, read_arrays, read_config, savefig

COLORS = {"invariant": "C0", "random": "C3", "small": "C2"}


def plot(run_dir, config=None):
    """Draw accuracy against epochs (largest N) and against N, per target and init, beside
    the exact population flow, and the parity learning-rate sweep; return the PNG paths.

    ``config`` is the run's config (read from ``run_dir/config.json`` when None: a
    redraw); the experiment passes its own, so a run drawn before config.json exists works.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir) if config is None else config
    res = read_arrays(run_dir, "results.npz", ("n_train", "epochs"))
    if "lr_sweep_test" in res and "lr_sweep_inits" not in res:
        read_arrays(run_dir, "results.npz", ("lr_sweep_inits",))  # an older run folder
    plt = pyplot()
    out = []
    targets, inits = config["targets"], config["inits"]
    n_list = [int(v) for v in res["n_train"]]
    every = config["eval_every"]
    title = (f"n = {config['n']}, width {config['width']}, SGD lr {config['lr']:g}, "
             f"{config['loss']} loss, mean of {config['n_seeds']} seeds")

    # accuracy against epochs at the largest N
    fig, axes = plt.subplots(1, len(targets), figsize=(4.6 * len(targets), 4.4), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, target in zip(axes[0], targets):
        for init in inits:
            train, test = res[f"train_{target}_{init}"], res[f"test_{target}_{init}"]
            ep = np.arange(train.shape[-1]) * every
            ax.plot(ep, np.nanmean(test[-1], axis=0), color=COLORS[init], label=f"{init}: test")
            ax.plot(ep, np.nanmean(train[-1], axis=0), color=COLORS[init], ls="--",
                    label=f"{init}: train")
        pop = res.get(f"population_accuracy_{target}")
        if pop is not None:
            ax.plot(np.arange(len(pop)) * every, pop, color="k", lw=1, ls=":",
                    label="invariant: exact population flow (t = epoch·N·lr)")
        ax.set_title(f"{target}, N = {n_list[-1]}")
        ax.set_xlabel("epoch")
    out.append(_finish_accuracy(fig, axes, title, run_dir / "symmetric_boolean_vs_epochs.png"))

    # final accuracy against N
    fig, axes = plt.subplots(1, len(targets), figsize=(4.6 * len(targets), 4.4), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, target in zip(axes[0], targets):
        for init in inits:
            for key, ls, mk in (("test", "-", "o"), ("train", "--", "^")):
                final = res[f"{key}_{target}_{init}"][:, :, -1]
                ax.errorbar(n_list, np.nanmean(final, axis=1), yerr=np.nanstd(final, axis=1),
                            color=COLORS[init], ls=ls, marker=mk, ms=4, capsize=2,
                            label=f"{init}: {key}")
        pop = res.get(f"population_accuracy_{target}")
        if pop is not None:
            ax.axhline(pop[-1], color="k", lw=1, ls=":", label="invariant, population flow")
        ax.set_xscale("log")
        ax.set_title(f"{target}, after {config['epochs']} epochs")
        ax.set_xlabel("training samples N")
    out.append(_finish_accuracy(fig, axes, title + " (bars: ±1 s.d.)",
                                run_dir / "symmetric_boolean_vs_n.png"))

    if "lr_sweep_test" in res:
        lrs = [float(v) for v in res["lr_sweep"]]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.0), layout="constrained")
        for ii, init in enumerate(str(v) for v in res["lr_sweep_inits"]):
            axes[0].plot(lrs, res["lr_sweep_test"][ii], "o-", color=COLORS[init],
                         label=f"{init}: test")
            axes[0].plot(lrs, res["lr_sweep_train"][ii], "^--", color=COLORS[init],
                         label=f"{init}: train")
            axes[1].plot(lrs, res["lr_sweep_defect"][ii], "o-", color=COLORS[init], label=init)
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xticks(lrs)
            ax.set_xticklabels([f"{v:g}" for v in lrs])
            ax.minorticks_off()
            ax.set_xlabel("SGD learning rate")
            ax.grid(True, alpha=0.3)
        axes[0].axhline(0.5, color="grey", lw=0.5)
        axes[0].set_ylabel("final accuracy")
        axes[0].set_ylim(0.3, 1.02)
        axes[0].legend(fontsize=7)
        axes[1].set_ylabel("‖W − W11ᵀ/n‖ / ‖W‖")
        axes[1].set_title("distance of W to the invariant subspace", fontsize=10)
        axes[1].legend(fontsize=7)
        fig.suptitle(f"parity, N = {n_list[-1]}, {config['epochs']} epochs, seed 0", fontsize=10)
        out.append(savefig(fig, run_dir / "symmetric_boolean_lr.png"))
    return out


def _finish_accuracy(fig, axes, title, path):
    """The accuracy panels' common frame (chance level, range, grid, one legend below) and
    the atomic save; returns the path."""
    for ax in axes[0]:
        ax.axhline(0.5, color="grey", lw=0.5)
        ax.set_ylim(0.3, 1.02)
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("accuracy (sign agreement)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return savefig(fig, path)
