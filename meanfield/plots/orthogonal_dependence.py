"""Figure of the ``orthogonal-dependence`` experiment (E3) from its saved profiles: the
predictor at x = u_H + r e_⊥ against r, full flow (band over directions) and 1-D model."""
from pathlib import Path

from ._style import pyplot, read_arrays, read_config, savefig

__all__ = ["plot", "PNGS"]

PNGS = ("orthogonal_dependence.png",)


def plot(run_dir, config=None):
    """Draw orthogonal_dependence.png from ``run_dir`` (config.json and profiles.npz).

    ``run_dir`` and ``config`` as for every ``plot`` of :mod:`meanfield.plots`; returns the
    PNGs written.
    """
    plt = pyplot()
    config = read_config(run_dir) if config is None else config
    prof = read_arrays(run_dir, "profiles.npz", ("r", "steps", "full", "one_d"))
    steps, r_values = [int(s) for s in prof["steps"]], prof["r"]
    prof_full, prof_one = prof["full"], prof["one_d"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for j, s in enumerate(steps):
        col = f"C{j}"
        ax.fill_between(r_values, prof_full[j].min(axis=0), prof_full[j].max(axis=0), color=col,
                        alpha=0.25, lw=0)
        ax.plot(r_values, prof_full[j].mean(axis=0), color=col, lw=1.8,
                label=f"full flow, step {s} (mean, min-max over directions)")
        ax.plot(r_values, prof_one[j], color=col, ls="--", lw=1.2, label=f"1-D model, step {s}")
    ax.axhline(1.0, color="k", ls=":", label="target ||x_H|| = 1")
    ax.set_xlabel("r = ||x_perp||  (x = u_H + r e_perp)")
    ax.set_ylabel("predictor f(x)")
    ax.set_title(f"orthogonal dependence: d = {config['d']}, d_H = {config['d_H']}, "
                 f"m = {config['n_particles']}, {config['integrator']}")
    ax.legend(fontsize=7)
    return [savefig(fig, Path(run_dir) / "orthogonal_dependence.png")]
