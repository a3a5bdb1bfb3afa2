"""Figures drawn from the saved data of a run folder.

One module per experiment, each with ``plot(run_dir) -> list of Path``: it reads only the
files the experiment saved (``config.json``, the ``.npz`` arrays), never recomputes, and writes
the experiment's PNGs into the run folder. Matplotlib is imported here and nowhere else in the
package (besides :mod:`meanfield.film`).
"""
