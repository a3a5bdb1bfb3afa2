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
