"""What the plotting modules share: a headless pyplot, atomic PNG writes, reading a run folder."""
import json
import os
from pathlib import Path

import numpy as np

__all__ = ["MissingData", "pyplot", "savefig", "read_config", "read_arrays"]


class MissingData(FileNotFoundError):
    """The run folder lacks a file the figure is drawn from (e.g. a run written before the
    data were saved apart from the figures)."""


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def savefig(fig, path, dpi=120):
    """Save ``fig`` as ``path`` (PNG) atomically, close it and return the path."""
    plt = pyplot()
    path = Path(path)
    tmp = path.with_name("." + path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    os.replace(tmp, path)
    plt.close(fig)
    return path


def _need(run_dir, name):
    path = Path(run_dir) / name
    if not path.exists():
        raise MissingData(f"{run_dir} has no {name}: it is not a finished run folder of this "
                          "experiment, or it was written before figures were drawn from saved "
                          "data; rerun the experiment")
    return path


def read_config(run_dir):
    """The experiment's config (``config.json``'s "config")."""
    with open(_need(run_dir, "config.json")) as fh:
        return json.load(fh)["config"]


def read_arrays(run_dir, name, keys=()):
    """All arrays of ``run_dir/name`` (.npz) as a dict; MissingData if the file or one of
    ``keys`` is absent."""
    with np.load(_need(run_dir, name), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise MissingData(f"{Path(run_dir) / name} lacks {', '.join(missing)}: it was written "
                          "before figures were drawn from saved data; rerun the experiment")
    return arrays
