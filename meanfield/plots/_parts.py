"""A module's figures drawn on several cores at once, one forked process per figure.

A figure module may list its figures as ``FIGURE_PARTS``: functions
``part(run_dir, config) -> list of Path`` that each draw some of its PNGs, independent of
one another, whose results in order are what its ``plot(run_dir, config)`` returns (and
``plot`` calls them in order). The figure process (:mod:`meanfield.plots.process`) draws
such a module's parts concurrently: when a run ends it has the machine's cores to itself,
and the default job's two figures then take the time of one (0.32–0.46 s against
0.50–0.66 s on 2 cores, measured). Each part after the first is drawn in a child forked
from the figure process, which has pyplot and the module imported already; the first is
drawn in the figure process meanwhile. A child's PNG is written atomically (as every
figure is) before it reports, so a part that fails leaves no partial file.
"""
import json
import os
import warnings

__all__ = ["draw_module", "warning_record"]


def _cores():
    """The cores this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _parallel(parts):
    """Whether to draw ``parts`` in forked children: more than one, ``os.fork`` exists and
    this process may use a second core."""
    return len(parts) > 1 and hasattr(os, "fork") and _cores() > 1


def _fork():
    """``os.fork()``. Python 3.12+ warns (DeprecationWarning) when the process has other
    threads; the figure process starts with one BLAS thread (:mod:`.process`) and draws
    on the main thread, and a child only draws and exits, so the warning is not relayed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
        return os.fork()


def warning_record(caught):
    """Caught warnings as [[names of the category's classes, its own first], message] (JSON)."""
    return [[[c.__name__ for c in w.category.__mro__], str(w.message)] for w in caught]


def _child(part, run_dir, config, fd):
    """In a forked child: draw ``part``, write one JSON report to ``fd`` and exit at once
    (no interpreter shutdown: the parent's state is not the child's to finalise)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                report = {"paths": [str(p) for p in part(run_dir, config) or ()]}
            except Exception as exc:
                report = {"error": f"{type(exc).__name__}: {exc}"}
        report["warnings"] = warning_record(caught)
        data = json.dumps(report).encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
    finally:
        os._exit(0)


def _collect(pid, fd):
    """A child's report (its dict, or an ``error`` if it died without one), once it exited."""
    with os.fdopen(fd, "rb") as stream:
        data = stream.read()
    os.waitpid(pid, 0)
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        return {"error": "the process drawing a figure ended without a report", "warnings": []}


def draw_module(module, run_dir, config):
    """Draw the figures of ``module`` (a :mod:`meanfield.plots` module) into ``run_dir``.

    Returns ``(paths, warnings)``: the PNGs' paths in the order ``module.plot`` gives them,
    and the warnings raised in the forked children as [[category class names], message]
    (those raised in this process reach its own warning filters). Raises RuntimeError
    naming the first failed part if any part failed in a child (the caller then draws the
    module again in a process of its own, where the failure is raised with its type); an
    error in this process's part is raised as is, after every child has finished.
    """
    parts = tuple(getattr(module, "FIGURE_PARTS", ()))
    if not _parallel(parts):
        return list(module.plot(run_dir, config) or ()), []
    children = []
    try:
        for part in parts[1:]:
            read_fd, write_fd = os.pipe()
            try:
                pid = _fork()
            except BaseException:  # no process: the pipe is not needed
                os.close(read_fd)
                os.close(write_fd)
                raise
            if pid == 0:
                os.close(read_fd)
                _child(part, run_dir, config, write_fd)
            os.close(write_fd)
            children.append((pid, read_fd))
        first = [str(p) for p in parts[0](run_dir, config) or ()]
    finally:
        # every child reaped before returning or raising (none is left writing)
        reports = [_collect(pid, fd) for pid, fd in children]
    paths, caught = first, []
    for part, report in zip(parts[1:], reports):
        caught += report.get("warnings", [])
        if "error" in report:
            raise RuntimeError(f"{part.__name__}: {report['error']}")
        paths += report["paths"]
    return paths, caught
