"""Start-up of the package's commands (imported first by ``meanfield/__init__.py``)."""
import sys as _sys


def _quiet_startup_interrupt():
    """``python -m meanfield.<command>``: Ctrl-C while the package is still being imported
    (a few seconds: NumPy, Numba, SciPy) ends with one line instead of a traceback. Only for
    the package's own commands; a library import changes no signal handler."""
    argv = list(getattr(_sys, "orig_argv", ()))
    if _sys.argv[:1] != ["-m"] or "-m" not in argv:
        return
    i = argv.index("-m")
    if i + 1 >= len(argv) or not argv[i + 1].startswith("meanfield."):
        return
    import os
    import signal

    def _exit(signum, frame):
        _sys.stderr.write("interrupted during start-up; nothing was run\n")
        _sys.stderr.flush()
        os._exit(130)

    try:
        signal.signal(signal.SIGINT, _exit)
    except ValueError:  # pragma: no cover - not the main thread
        return None
    return _exit


#: the start-up handler, if installed; the command line replaces it by Python's own
#: (KeyboardInterrupt) once it has taken over, so a caller of ``cli.main`` handles Ctrl-C
#: its own way between calls
HANDLER = _quiet_startup_interrupt()


def exit_command(status):
    """End a ``python -m meanfield.<command>`` process with ``status``.

    Every object is first moved to the collector's permanent generation (``gc.freeze``):
    the interpreter's final collections then skip the ~10⁶ objects that Numba, its LLVM
    bindings and matplotlib leave behind, which took 0.4–0.6 s after a default run and
    0.05 s with it (the run's files are all written and closed by then; nothing the
    package needs runs at finalisation)."""
    import gc

    for stream in (_sys.stdout, _sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (``| head``) or stream
            pass
    gc.freeze()
    _sys.exit(status)
