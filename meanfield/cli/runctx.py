"""What an experiment gets from the command line: its folder, progress, parts and stop requests.

An experiment module (see :mod:`meanfield.experiments`) receives a :class:`RunContext` and
uses it to write figures and arrays, to save finished sub-runs ("parts") so that
``--resume`` skips them, to checkpoint long loops, and to notice Ctrl-C.
"""
import json
import time
from pathlib import Path

import numpy as np

from ..io import CONFIG_ARRAY, atomic_savez, load_npz
from .progress import Progress

__all__ = ["RunContext", "RunFailed", "Interrupted"]


class RunFailed(RuntimeError):
    """The run itself failed (e.g. the risk diverged). ``details`` goes into summary.json."""

    def __init__(self, reason, **details):
        super().__init__(reason)
        self.details = details

    def __reduce__(self):  # keep ``details`` when raised on a Dask worker and sent back
        import functools

        return functools.partial(type(self), **self.details), (str(self),)


class Interrupted(Exception):
    """Raised by an experiment after it saved a checkpoint in answer to Ctrl-C."""


class RunContext:
    """Services the CLI gives an experiment.

    Attributes
    ----------
    out_dir : Path
        The run folder (exists).
    quiet : bool
        No progress bars or log lines.
    resuming : bool
        True when started by ``--resume``.
    checkpoint_every_s : float
        Seconds between checkpoints of long loops (experiments also checkpoint every
        ``checkpoint_every`` steps when their config has that key).
    executor : meanfield.cli.executor.Executor or None
        Where sub-runs go (``--workers``, ``--scheduler``); None runs them in this process.
        Experiments use it through :func:`meanfield.experiments._common.map_sub_runs`.
    sub_run_threads : int or None
        Numba threads of each sub-run on a worker (None: the worker's default).
    figure_process : meanfield.plots.process.FigureProcess or None
        Where :meth:`draw_figures` draws (the command line starts one per run); None draws
        in this process.
    """

    def __init__(self, out_dir, quiet=False, resuming=False, checkpoint_every_s=30.0, log=print,
                 config=None, progress_every_s=10.0, progress_stream=None, executor=None,
                 sub_run_threads=None):
        self.out_dir = Path(out_dir)
        self.quiet = quiet
        self.resuming = resuming
        self.checkpoint_every_s = checkpoint_every_s
        self.progress_every_s = progress_every_s
        self.progress_stream = progress_stream  # None: sys.stderr
        #: the run's config; every checkpoint and part records it, so that a resume under an
        #: edited config.json is refused instead of mixing two settings in one result
        self.config = config
        self.executor = executor
        self.sub_run_threads = sub_run_threads
        self.figure_process = None
        self._stop = False
        self._log = log
        self._last_checkpoint = time.monotonic()

    # -- messages and progress -------------------------------------------------------------
    def log(self, message):
        """Print a line unless quiet."""
        if not self.quiet:
            self._log(message)

    def progress(self, total, desc=""):
        """A :class:`~meanfield.cli.progress.Progress` bar (a plain line every
        ``progress_every_s`` seconds when stderr is not a terminal)."""
        return Progress(total, desc=desc, quiet=self.quiet, every_s=self.progress_every_s,
                        stream=self.progress_stream)

    # -- stop requests (Ctrl-C) ------------------------------------------------------------
    def request_stop(self):
        self._stop = True

    def stop_requested(self):
        """True once Ctrl-C was pressed: save a checkpoint and raise :class:`Interrupted`."""
        return self._stop

    def checkpoint_due(self):
        """True when ``checkpoint_every_s`` seconds passed since the last call that returned True."""
        now = time.monotonic()
        if now - self._last_checkpoint >= self.checkpoint_every_s:
            self._last_checkpoint = now
            return True
        return False

    # -- files -----------------------------------------------------------------------------
    def path(self, name):
        return self.out_dir / name

    def save_arrays(self, name, **arrays):
        """Write ``arrays`` to ``out_dir/name`` (.npz) atomically."""
        return atomic_savez(self.out_dir / name, **arrays)

    def savefig(self, fig, name, dpi=120):
        """Save a Matplotlib figure as ``out_dir/name`` (PNG) atomically and close it."""
        from ..plots import savefig

        return savefig(fig, self.out_dir / name, dpi=dpi)

    def draw_figures(self, module, config):
        """Draw the figures of ``meanfield.plots.<module>`` from this run folder's saved files
        (its ``plot(out_dir, config)``), in :attr:`figure_process` when there is one; returns
        the PNG paths."""
        if self.figure_process is not None:
            return self.figure_process.draw(module, self.out_dir, config)
        from ..plots.process import draw_in_process

        return draw_in_process(module, self.out_dir, config)

    # -- parts: finished sub-runs that a resumed run skips ---------------------------------
    def _part_path(self, name):
        return self.out_dir / "parts" / f"{name}.npz"

    def _stamped(self, arrays):
        if self.config is not None:
            arrays = dict(arrays)
            arrays[CONFIG_ARRAY] = np.array(json.dumps(self.config, sort_keys=True))
        return arrays

    def save_part(self, name, **arrays):
        """Record a finished sub-run's arrays; a resumed run gets them from :meth:`load_part`."""
        return atomic_savez(self._part_path(name), **self._stamped(arrays))

    def load_part(self, name):
        """Arrays of a finished sub-run, or None if it has not finished yet."""
        p = self._part_path(name)
        if not p.exists():
            return None
        arrays = load_npz(p)
        arrays.pop(CONFIG_ARRAY, None)
        return arrays

    def save_checkpoint(self, name, **arrays):
        """Write a checkpoint ``out_dir/name`` (.npz) atomically, stamped with the config."""
        return atomic_savez(self.out_dir / name, **self._stamped(arrays))

    def load_checkpoint(self, name):
        """Arrays of checkpoint ``name``, or None when there is none."""
        p = self.out_dir / name
        if not p.exists():
            return None
        arrays = load_npz(p)
        arrays.pop(CONFIG_ARRAY, None)
        return arrays
