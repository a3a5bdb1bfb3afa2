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

import queue  # noqa: E402
import threading  # noqa: E402
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


class _TaskThreads:
    """The helper threads of :func:`run_tasks`, started on first use, each waiting on its
    own queue for a function to run. ``queue.SimpleQueue`` is implemented in C: handing
    work to a waiting thread and back costs ~40 µs, against ~60–90 µs with a
    ``ThreadPoolExecutor``'s futures (measured with a nogil kernel of 0 to 260 µs), which
    decides whether an evaluation of a few hundred µs gains from the second core."""

    def __init__(self, n):
        self.pid = os.getpid()
        self.inboxes = [queue.SimpleQueue() for _ in range(n)]
        for k, inbox in enumerate(self.inboxes):
            threading.Thread(target=self._serve, args=(inbox,), daemon=True,
                             name=f"meanfield-{k}").start()

    @staticmethod
    def _serve(inbox):
        while True:
            inbox.get()()


_THREADS = None
_THREADS_LOCK = threading.Lock()


def _task_threads(n):
    """At least n helper threads; a forked child (whose copy has no threads) starts its own."""
    global _THREADS
    with _THREADS_LOCK:
        if _THREADS is None or _THREADS.pid != os.getpid() or len(_THREADS.inboxes) < n:
            _THREADS = _TaskThreads(max(n, numba.config.NUMBA_NUM_THREADS - 1))
        return _THREADS


def run_tasks(task, n_tasks, parallel=True):
    """Run ``task(0) … task(n_tasks − 1)`` on up to :func:`get_threads` threads.

    The calling thread works too; the others are persistent helper threads, and every
    thread takes the next task as it finishes one (dynamic scheduling). The caller waits
    for the tasks the helpers took, never for a helper that took none: a helper that other
    processes keep off the CPU until the caller has done all the work costs nothing (it
    finds no task left when it runs). ``task`` must release the GIL for its work (``nogil``
    kernels, BLAS) and write only what its index owns. With ``parallel`` false, or one
    thread, the tasks run in order in the calling thread. An exception in a task is
    raised here after every started task has finished (a Ctrl-C too: the started tasks
    finish first). Safe to call from several threads at once (each call has its own task
    list and replies; but see :func:`blas_single_thread`); a task must not call
    :func:`run_tasks`.
    """
    threads = min(get_threads(), n_tasks) if parallel else 1
    if threads <= 1:
        for t in range(n_tasks):
            task(t)
        return
    helpers = _task_threads(threads - 1)
    lock = threading.Lock()
    pending = iter(range(n_tasks))
    replies = queue.SimpleQueue()  # one per task a helper took: None or its exception
    # tasks the helpers took (counted by them: a signal never interrupts them), and the
    # caller's "take no more" once it stops
    taken, stop = [0], [False]

    def helper():
        while True:
            with lock:
                t = None if stop[0] else next(pending, None)
                if t is None:
                    return
                taken[0] += 1
            try:
                task(t)
                replies.put(None)
            except BaseException as exc:
                replies.put(exc)

    for inbox in helpers.inboxes[:threads - 1]:
        inbox.put(helper)
    errors = []
    try:
        while True:
            with lock:
                t = next(pending, None)
            if t is None:
                break
            task(t)
    except BaseException as exc:
        errors.append(exc)
    # Wait for every task a helper started, even through Ctrl-C (retried, then raised):
    # returning earlier would let them write into arrays the next call reuses.
    while True:
        try:
            with lock:
                stop[0] = True
                n_helper = taken[0]
            break
        except BaseException as exc:
            errors.append(exc)
    while n_helper:
        try:
            err = replies.get()
        except BaseException as exc:
            errors.append(exc)
            continue
        n_helper -= 1
        if err is not None:
            errors.append(err)
    if errors:
        raise errors[0]


_BLAS = None


@contextmanager
def blas_single_thread():
    """BLAS (NumPy's and SciPy's) limited to one thread inside the block, restored after:
    tasks of :func:`run_tasks` that call BLAS then share the cores instead of each
    starting BLAS's own threads (which oversubscribes them), and a product's summation
    order cannot depend on BLAS's thread count. The limit is process-wide: two user
    threads inside this block at once could restore it in the wrong order (nothing in the
    package does that)."""
    global _BLAS
    from threadpoolctl import ThreadpoolController
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    with _BLAS.limit(limits=1, user_api="blas"):
        yield
