"""Figures drawn by a second process started with the run.

Importing matplotlib and setting up its first figure takes 0.5–1 s of one core, which a
short run (the default job simulates for about 1.5 s) would otherwise spend after its
simulation, while the machine's other cores wait. A :class:`FigureProcess` is started when a
run of ``python -m meanfield.simulate`` begins: it imports pyplot and the experiment's
figure module while the run imports its kernels and simulates, then draws the figures from
the saved files when asked (:meth:`FigureProcess.draw`), exactly as
``meanfield.plots.<module>.plot(run_dir, config)`` would in the run's own process (a module
that lists its figures as ``FIGURE_PARTS`` has them drawn at once on the free cores:
:mod:`meanfield.plots._parts`).

If the process could not start, died, or answered with something other than a reply, the
figures are drawn in the calling process, so a figure is never lost to it. (There is no
time-out: drawing takes as long as it takes, as in-process; a hung run is stopped with
Ctrl-C, which keeps its checkpoint.)
When the figure code itself fails there, the figures are drawn again in the calling process,
so that the error (a missing file, a bug) is raised there with its own type and traceback,
as without the process. Warnings come back with their category and message. The process
ignores Ctrl-C (the run handles it and ends the process) and exits when its input closes.
"""
import json
import os
import subprocess
import sys
import warnings
from importlib import import_module
from pathlib import Path

from ..io import _json_default

__all__ = ["FigureProcess", "draw_in_process"]

#: the figure process: pyplot and the named figure modules first, then one JSON request
#: per line ({"module", "run_dir", "config"}), one JSON reply per line ({"paths"} or
#: {"error"}, with the warnings the drawing raised)
_CHILD = r"""
import importlib.util, json, os, signal, sys, warnings
signal.signal(signal.SIGINT, signal.SIG_IGN)
# replies go to a private copy of stdout; anything else printed here goes to stderr
replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
# the caller's copy of the package (argv[1] is the folder holding it), without its
# __init__: the figure modules need NumPy and matplotlib, not the Numba and SciPy that the
# package's __init__ imports (0.5 s of CPU the run would lose)
sys.path.insert(0, sys.argv[1])
package = importlib.util.module_from_spec(importlib.util.find_spec("meanfield"))
sys.modules["meanfield"] = package
from importlib import import_module
from meanfield.plots._style import pyplot
from meanfield.plots._parts import draw_module, warning_record
pyplot()
for name in sys.argv[2:]:
    import_module("meanfield.plots." + name)
for line in sys.stdin:
    request = json.loads(line)
    child_warnings = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # a module that lists its figures as FIGURE_PARTS gets them drawn at once
            module = import_module("meanfield.plots." + request["module"])
            paths, child_warnings = draw_module(module, request["run_dir"], request["config"])
            reply = {"paths": [str(p) for p in paths]}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
    reply["warnings"] = warning_record(caught) + child_warnings
    replies.write(json.dumps(reply) + "\n")
    replies.flush()
os._exit(0)  # nothing to finalise: skip the interpreter's collections over matplotlib
"""


def _warning_class(names):
    """The warning category named by ``names``, the names of its classes from its own to
    ``object`` (its MRO): a built-in category itself, or a class of that name derived from
    the first built-in one it derives from (so a library's ``…DeprecationWarning`` is still
    a ``DeprecationWarning`` to the caller's filters)."""
    import builtins

    def builtin(name):
        category = getattr(builtins, name, None)
        return category if isinstance(category, type) and issubclass(category, Warning) \
            else None

    own = builtin(names[0])
    if own is not None:
        return own
    base = next((c for c in map(builtin, names[1:]) if c is not None), UserWarning)
    return type(names[0], (base,), {})


def draw_in_process(module, run_dir, config):
    """``meanfield.plots.<module>.plot(run_dir, config)`` in this process."""
    return import_module(f"meanfield.plots.{module}").plot(run_dir, config)


class FigureProcess:
    """A Python process that has imported pyplot and ``modules`` (names under
    :mod:`meanfield.plots`) and draws figures on request.

    Parameters
    ----------
    modules : sequence of str
        Figure modules to import ahead, e.g. ``["flow"]``.

    Use as a context manager, or call :meth:`close`. If the process cannot be started,
    :meth:`draw` draws in the calling process.
    """

    def __init__(self, modules=()):
        # one BLAS thread: the figures need no parallel linear algebra, and a process with
        # no threads of its own forks its figure parts safely (plots/_parts.py)
        env = dict(os.environ, MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1",
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        root = str(Path(__file__).resolve().parents[2])  # the folder holding this package
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, root, *modules], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
                encoding="utf-8")
        except (OSError, ValueError, TypeError):  # no processes, or no interpreter to start
            self._proc = None

    @property
    def alive(self):
        """True while the process runs and takes requests."""
        return self._proc is not None and self._proc.poll() is None

    def draw(self, module, run_dir, config):
        """Draw ``meanfield.plots.<module>.plot(run_dir, config)`` in the figure process and
        return the paths of the PNGs written; in this process if the figure process is gone
        or the figure code failed there (its error is then raised here, as without the
        figure process). ``config`` must be JSON data (a run's config is)."""
        reply = self._ask({"module": module, "run_dir": str(run_dir), "config": config})
        if reply is None or "error" in reply:
            return draw_in_process(module, run_dir, config)
        for names, message in reply.get("warnings", ()):
            warnings.warn(message, _warning_class(names), stacklevel=2)
        return [Path(p) for p in reply["paths"]]

    def _ask(self, request):
        """One request and its reply, or None if the process is not there to answer."""
        if not self.alive:
            return None
        try:
            text = json.dumps(request, default=_json_default)  # as config.json is written
        except (TypeError, ValueError):  # a config that is not JSON data: draw in the caller
            return None
        try:
            self._proc.stdin.write(text + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except (OSError, ValueError):  # a broken pipe: the process died
            line = ""
        try:
            reply = json.loads(line)
            if not isinstance(reply, dict) or not ("paths" in reply or "error" in reply):
                raise ValueError(line)
        except ValueError:  # no reply (the process died) or not one: no more requests
            self.close()
            return None
        return reply

    def close(self):
        """End the process at once, whatever it is doing (importing, drawing a figure the
        run no longer waits for, or waiting for a request): every figure it was asked for
        has been written and closed before its reply. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:  # a broken pipe
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
