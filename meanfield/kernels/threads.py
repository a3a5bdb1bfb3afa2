"""The one place that owns Numba's options.

Every compiled kernel in ``meanfield`` is declared through :func:`kernel` or
:func:`parallel_kernel` so that caching and floating-point policy are set once:

* ``cache=True``: compiled code is stored next to the sources, so only the first
  import on a machine pays the compile time.
* ``fastmath`` is limited to the safe subset (no ``nnan``/``ninf``), and only where a
  kernel asks for it: NaN checks downstream must keep working.
* Parallel kernels loop with ``prange`` over the index that owns the output and never
  write to shared memory, so results are bit-identical for any thread count.
* The pair kernels of :mod:`meanfield.kernels.gaussian` are serial ``nogil`` kernels run on
  fixed *tasks* by a small pool of Python threads (:func:`run_tasks`) instead: no
  ``parallel=True`` compile (the parfor lowering was most of a cold start), tasks are
  taken dynamically (a thread that other processes deschedule does not hold up a static
  share of the work), and BLAS calls can run inside the tasks with BLAS's own threads
  kept at one (:func:`blas_single_thread`). What a task computes never depends on
  which thread runs it, so results stay bit-identical for any thread count.
* Options such as ``error_model="numpy"`` or ``inline="always"`` pass through. Do not use
  ``numba.set_parallel_chunksize`` or ``numba.get_thread_id`` inside kernels: they make a
  kernel uncacheable (and results would depend on the thread count).
"""
import os

# GNU OpenMP threads spin between parallel regions; when other processes hold the cores
# (shared machines, clusters) a region then waits ~10 ms for a descheduled thread. Passive
# waiting costs little here (small problems skip parallel regions altogether) and must be
# set before the OpenMP runtime starts; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import threading  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import numba  # noqa: E402

__all__ = ["kernel", "parallel_kernel", "SAFE_FASTMATH", "prange", "set_threads", "get_threads",
           "run_tasks", "blas_single_thread"]

#: fast-math flags that keep NaN/inf semantics; allowed in pure-arithmetic leaves.
SAFE_FASTMATH = frozenset({"nsz", "arcp", "contract", "reassoc"})

prange = numba.prange


def kernel(*args, fastmath=False, **kwargs):
    """Serial ``@njit`` with the project policy (``cache=True``, no unsafe fast-math)."""
    fm = set(fastmath) if fastmath else False
    if fm and not fm <= SAFE_FASTMATH:
        raise ValueError(f"fastmath flags {fm - SAFE_FASTMATH} are not allowed")
    return numba.njit(*args, cache=True, fastmath=fm, nogil=True, **kwargs)


def parallel_kernel(*args, fastmath=False, **kwargs):
    """Parallel ``@njit`` (``prange`` over the output-owning index) with the project policy."""
    fm = set(fastmath) if fastmath else False
    if fm and not fm <= SAFE_FASTMATH:
        raise ValueError(f"fastmath flags {fm - SAFE_FASTMATH} are not allowed")
    return numba.njit(*args, cache=True, parallel=True, fastmath=fm, nogil=True, **kwargs)


def set_threads(n):
    """Set the number of Numba threads used by parallel kernels (1 ≤ n ≤ machine cores)."""
    numba.set_num_threads(int(n))


def get_threads():
    """Number of Numba threads parallel kernels currently use."""
    return numba.get_num_threads()


_POOL = None
_POOL_PID = None
_POOL_LOCK = threading.Lock()


def _pool():
    """The task threads, made on first use; a forked child (whose copy of the pool has no
    threads) makes its own."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid():
            _POOL = ThreadPoolExecutor(max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="meanfield")
            _POOL_PID = os.getpid()
        return _POOL


def run_tasks(task, n_tasks, parallel=True):
    """Run ``task(0) … task(n_tasks − 1)`` on up to :func:`get_threads` threads.

    The calling thread works too; the others come from a persistent pool and take the next
    task as they finish one (dynamic scheduling). ``task`` must release the GIL for its
    work (``nogil`` kernels, BLAS) and write only what its index owns. With ``parallel``
    false, or one thread, the tasks run in order in the calling thread. An exception in a
    task is raised here after every started task has finished.
    """
    threads = min(get_threads(), n_tasks) if parallel else 1
    if threads <= 1:
        for t in range(n_tasks):
            task(t)
        return
    lock = threading.Lock()
    pending = iter(range(n_tasks))

    def runner():
        while True:
            with lock:
                t = next(pending, None)
            if t is None:
                return
            task(t)

    futures = [_pool().submit(runner) for _ in range(threads - 1)]
    try:
        runner()
    finally:
        for f in futures:
            f.result()


_BLAS = None


@contextmanager
def blas_single_thread():
    """BLAS (NumPy's and SciPy's) limited to one thread inside the block, restored after:
    tasks of :func:`run_tasks` that call BLAS then share the cores instead of each
    starting BLAS's own threads (which oversubscribes them), and a product's summation
    order cannot depend on BLAS's thread count."""
    global _BLAS
    from threadpoolctl import ThreadpoolController
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    with _BLAS.limit(limits=1, user_api="blas"):
        yield
