"""What the plotting modules share: a headless pyplot, atomic PNG writes, reading a run folder,
log-axis labels in plain text."""
import json
import os
import re
from pathlib import Path

import numpy as np

__all__ = ["MissingData", "pyplot", "savefig", "read_config", "read_arrays", "plain_log_labels"]


class MissingData(FileNotFoundError):
    """The run folder lacks a file the figure is drawn from (e.g. a run written before the
    data were saved apart from the figures)."""


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
#: the labels of matplotlib's log formatter: $\mathdefault{[M\times]10^{E}}$
_LOG_LABEL = re.compile(r"^\$\\mathdefault\{(?:(\d+)\\times)?10\^\{(-?\d+)\}\}\$$")


def _plain_text(label):
    """'$\\mathdefault{2\\times10^{-3}}$' → '2×10⁻³'; any other label unchanged."""
    match = _LOG_LABEL.match(label)
    if match is None:
        return label
    mantissa, exponent = match.groups()
    return (f"{mantissa}×" if mantissa else "") + "10" + exponent.translate(_SUPERSCRIPT)


def plain_log_labels(axis):
    """Label a log ``axis`` (e.g. ``ax.yaxis``) as matplotlib would — the same ticks and
    which of them get a label — but in plain text with Unicode superscripts (10⁻³, 2×10⁻³)
    instead of mathtext: the first mathtext label builds matplotlib's TeX parser, a
    third of the time (0.2–0.4 s) the default job spends drawing its two figures."""
    from matplotlib.ticker import LogFormatterSciNotation

    class PlainLogFormatter(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            return _plain_text(super().__call__(x, pos))

    # as matplotlib's log scale sets them (base 10; minor ticks not only at decades)
    axis.set_major_formatter(PlainLogFormatter(10))
    axis.set_minor_formatter(PlainLogFormatter(10, labelOnlyBase=False))


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
