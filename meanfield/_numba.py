"""The one place that owns Numba's options.

Every compiled kernel in ``meanfield`` is declared through :func:`kernel` or
:func:`parallel_kernel` so that caching and floating-point policy are set once:

* ``cache=True``: compiled code is stored next to the sources, so only the first
  import on a machine pays the compile time.
* ``fastmath`` is limited to the safe subset (no ``nnan``/``ninf``), and only where a
  kernel asks for it: NaN checks downstream must keep working.
* Parallel kernels loop with ``prange`` over the index that owns the output and never
  write to shared memory, so results are bit-identical for any thread count.
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

import numba  # noqa: E402

__all__ = ["kernel", "parallel_kernel", "SAFE_FASTMATH", "prange", "set_threads", "get_threads"]

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
