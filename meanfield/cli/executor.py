"""Where independent runs execute: in this process, on a local Dask cluster, or on a running
Dask scheduler (one machine or a whole cluster).

The scheduling is Dask's (:mod:`distributed`); this module only sizes a
:class:`~distributed.LocalCluster` so that workers × Numba threads stays within the cores,
connects to an existing scheduler when asked, and hands back results as tasks finish.
A task's result never depends on where it ran: tasks receive everything they need (configs,
seeds, folders) as arguments.

Worker processes are started with one task slot each (``threads_per_worker=1``): a task is a
whole run that sets its own Numba thread count, so two tasks sharing a process would share
(and fight over) one Numba thread pool.
"""
import logging
import os
import uuid

from .config import ConfigError

__all__ = ["available_cores", "plan_workers", "scheduler_address", "worker_env", "Executor"]

#: how often Dask reruns a task that raised (a worker that dies mid-task is handled by the
#: scheduler separately: the task moves to another worker, up to
#: ``distributed.scheduler.allowed-failures`` times).
RETRIES = 2

#: Dask settings of the local cluster (scheduler, nannies and the workers they start). A
#: task is one whole run whose time loop holds the GIL between short compiled kernels, in a
#: thread beside the worker's event loop; with Dask's defaults such a run (flow, d = 10,
#: m = 512) took ~30 % more CPU than in a plain process, and more wall time on a busy machine:
#:
#: * ``MALLOC_TRIM_THRESHOLD_``, which the nanny exports to every worker it starts, turns
#:   off glibc's adaptive mmap threshold: every array over 128 KiB is then mapped afresh
#:   and zero-filled by the kernel on first touch (~170 page faults per step instead of ~2;
#:   the run's CPU time ~25 % higher, most of it system time). ``None`` leaves the variable
#:   out (a value the user exported still reaches the workers).
#: * the event-loop health check (``tick``, every 20 ms) and the system monitor (every
#:   500 ms; GIL sampling every 1 ms where ``gilknocker`` is installed) wake the loop thread
#:   ~100 times a second; each wake-up takes the GIL from the run, and on an oversubscribed
#:   machine the loop thread can be descheduled while holding it. Nothing here reads them.
#: * the statistical profiler walks the running task's stack every 10 ms on the event loop
#:   (a flow run took ~25 % longer with it on); nothing here reads it.
LOCAL_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.profile.enabled": False,
}

#: seconds allowed to start or shut down a cluster, and to connect to a scheduler.
TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 20


def available_cores():
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def plan_workers(n_tasks, workers=None, threads=None, cores=None):
    """Worker processes and Numba threads per task for a local run of ``n_tasks`` tasks.

    By default as many single-task workers as there are tasks, at most one per core, and
    the cores left over shared out as Numba threads, so that workers × threads ≤ cores.

    Parameters
    ----------
    n_tasks : int
        Tasks still to run (>= 0).
    workers, threads : int or None
        What the user asked for; None chooses.
    cores : int or None
        Defaults to :func:`available_cores`.

    Returns
    -------
    (int, int)
        ``(workers, threads)``; ``workers == 1`` means run in this process.

    Raises
    ------
    ConfigError
        If ``workers`` or ``threads`` is < 1 or their product exceeds the cores.
    """
    cores = cores or available_cores()
    if workers is not None and workers < 1:
        raise ConfigError("--workers", f"must be >= 1, got {workers}")
    if threads is not None and threads < 1:
        raise ConfigError("--threads", f"must be >= 1, got {threads}")
    if workers is None:
        workers = max(1, min(max(n_tasks, 1), cores // (threads or 1)))
    if threads is None:
        threads = max(1, cores // workers)
    if workers * threads > cores:
        raise ConfigError("--workers", f"{workers} workers × {threads} Numba threads exceeds the "
                                       f"{cores} cores here; lower --workers or --threads")
    return workers, threads


def scheduler_address(path):
    """The address in a file written by ``dask scheduler --scheduler-file``; ConfigError
    naming ``--scheduler-file`` when there is none."""
    import json

    try:
        with open(path) as fh:
            info = json.load(fh)
    except (OSError, ValueError):
        raise ConfigError("--scheduler-file", f"{path} does not exist or is not JSON; give the "
                                              "file `dask scheduler --scheduler-file` wrote") from None
    if not isinstance(info, dict) or not isinstance(info.get("address"), str):
        raise ConfigError("--scheduler-file", f"{path} has no scheduler address; give the file "
                                              "`dask scheduler --scheduler-file` wrote")
    return info["address"]


def worker_env():
    """Environment of local worker processes: BLAS and OpenMP single-threaded beside Numba's
    pool, whose size each task sets itself."""
    return {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


class Executor:
    """Runs independent tasks and yields their results as they finish.

    Parameters
    ----------
    workers : int
        Local worker processes; 1 runs every task in this process, one after the other
        (no cluster, Ctrl-C reaches the task directly).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); its workers run the tasks.
    scheduler_file : str, optional
        The JSON file ``dask scheduler --scheduler-file`` wrote; alternative to ``scheduler``.
    env : dict, optional
        Environment variables of local worker processes (e.g. thread counts for BLAS).

    Use as a context manager: the cluster (if any) is started on entry and shut down on exit,
    whatever happens in between.
    """

    def __init__(self, workers=1, scheduler=None, scheduler_file=None, env=None):
        self.workers = workers
        self.scheduler = scheduler
        self.scheduler_file = scheduler_file
        self.env = dict(env or {})
        self.client = None
        self.cluster = None

    @property
    def in_process(self):
        return self.workers == 1 and not (self.scheduler or self.scheduler_file)

    def describe(self):
        if self.scheduler or self.scheduler_file:
            return (f"on the Dask scheduler {self.client.scheduler.address}" if self.client
                    else "on a Dask scheduler")
        if self.in_process:
            return "in this process"
        return f"on a local Dask cluster of {self.workers} worker processes"

    def __enter__(self):
        if self.in_process:
            return self
        from distributed import Client, LocalCluster

        try:
            if self.scheduler or self.scheduler_file:
                self.client = Client(self.scheduler, scheduler_file=self.scheduler_file,
                                     timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
            else:
                import dask

                with dask.config.set(LOCAL_WORKER_CONFIG):
                    self.cluster = LocalCluster(
                        n_workers=self.workers, threads_per_worker=1, processes=True,
                        # every server (scheduler, nannies, workers, the scheduler's HTTP
                        # routes) listens on the loopback interface only, on free ports
                        host="127.0.0.1", dashboard_address="127.0.0.1:0", memory_limit=0,
                        silence_logs=logging.ERROR, env=self.env)
                self.client = Client(self.cluster, timeout=f"{TIMEOUT_S}s", set_as_default=False)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            try:
                self.client.close(timeout=TIMEOUT_S)
            finally:
                self.client = None
        if self.cluster is not None:
            try:
                self.cluster.close(timeout=TIMEOUT_S)
            finally:
                self.cluster = None
        return False

    def n_workers(self):
        """Workers connected now (1 in this process)."""
        if self.client is None:
            return 1
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def map_unordered(self, fn, tasks, names=None, retries=RETRIES, stop=None):
        """Run ``fn(*args)`` for each ``args`` in ``tasks``; yield ``(i, result, error)`` in
        the order the tasks finish (``error`` is the exception a task raised after its
        retries, or the scheduler's :class:`~distributed.KilledWorker` when the task's worker
        died too often; ``result`` is None then).

        ``fn`` must be importable on the workers (a module-level function of ``meanfield``).
        ``retries``: reruns of a task that raised (0 for tasks whose exceptions are
        deterministic). ``stop``: a callable polled while waiting; once it returns True the
        generator cancels the tasks not yet finished and ends. Closing the generator early
        (e.g. Ctrl-C) cancels them too.
        """
        tasks = list(tasks)
        if self.in_process:
            for i, args in enumerate(tasks):
                if stop is not None and stop():
                    return
                yield i, fn(*args), None  # exceptions propagate: there is no one else to retry
            return
        from distributed import as_completed

        names = names or [str(i) for i in range(len(tasks))]
        tag = uuid.uuid4().hex[:8]
        index, futures = {}, []
        for i, args in enumerate(tasks):
            fut = self.client.submit(fn, *args, key=f"meanfield-{names[i]}-{tag}", pure=False,
                                     retries=retries)
            index[fut.key] = i
            futures.append(fut)
        done = set()
        try:
            for fut in self._finished(as_completed(futures, loop=self.client.loop), stop):
                i = index[fut.key]
                done.add(i)
                try:
                    yield i, fut.result(), None
                except Exception as exc:  # noqa: BLE001 - reported per task by the caller
                    yield i, None, exc
                finally:
                    fut.release()
        finally:
            leftovers = [f for f in futures if index[f.key] not in done]
            if leftovers and self.client is not None:
                self.client.cancel(leftovers)

    @staticmethod
    def _finished(completed, stop, poll_s=0.2):
        """Futures of ``completed`` (a :class:`~distributed.as_completed`) as they finish;
        with ``stop``, polled every ``poll_s`` seconds and ended once ``stop()`` is true."""
        if stop is None:
            yield from completed
            return
        import time

        while not completed.is_empty():
            batch = completed.next_batch(block=False)
            if not batch:
                if stop():
                    return
                time.sleep(poll_s)
            yield from batch
