"""Figures drawn from the saved data of a run folder.

One module per experiment, each with ``plot(run_dir, config=None) -> list of Path``: it reads
only the files the experiment saved (``config.json``, the ``.npz`` arrays), never recomputes,
and writes the experiment's PNGs into the run folder.

Parameters of every ``plot``: ``run_dir`` (path), the run folder, where the figures are
written; ``config`` (dict, optional), the run's config, by default read from
``run_dir/config.json`` (an experiment passes its own, so that a run folder made without the
command line is drawn as well). Returns the paths of the PNGs written. A module may also
list its figures as ``FIGURE_PARTS``, functions of the same parameters that ``plot`` calls in
order; the figure process of a run then draws them at once (:mod:`meanfield.plots._parts`).
Matplotlib is imported here and nowhere else in the package (besides :mod:`meanfield.film`).
"""
# the headless pyplot and the atomic PNG write, also used by the sweep's figure and run contexts
from ._style import pyplot, savefig

__all__ = ["pyplot", "savefig"]
