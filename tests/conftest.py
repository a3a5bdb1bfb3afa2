"""Shared test settings: named tolerances (each with the reason for its size) and fixtures."""
import numpy as np
import pytest

# -- tolerances ---------------------------------------------------------------------------
#: compiled kernel vs NumPy reference of the same formula: only summation order differs.
RTOL_KERNEL = 1e-12
#: derivative vs central finite difference with h = 1e-6: O(h²) truncation + O(ε/h) round-off.
RTOL_FD = 1e-6
#: Monte Carlo comparisons use this many standard errors (false-alarm rate ~ 6e-7 per check).
N_SIGMA = 5.0
#: conservation identities that hold to a few ulp of the quantity's magnitude.
ULPS = 64
#: an optimal-transport value from two exact solvers (network simplex, HiGHS LP, quantile
#: merge): measured ≤ 1.2e-15 apart over 50 draws, but HiGHS only promises its marginals to
#: its feasibility tolerance (1e-7); a wrong plan moves the value by ~1e-2.
RTOL_LP = 1e-10
#: Gauss–Jacobi quadrature against adaptive scipy.integrate.quad (its own error ~1e-10).
RTOL_QUAD = 1e-8


# -- settings -------------------------------------------------------------------------------
#: Numba threads forced in thread-invariance subprocesses: more than one on any machine, and
#: not a divisor of the tile or task counts.
FORCED_THREADS = 3


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _floating_point_errors_fail():
    """Turn NumPy floating-point errors into failures (overflow, invalid, divide by zero)."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield


@pytest.fixture(autouse=True, scope="session")
def _private_table_cache(tmp_path_factory):
    """Cached G, G' tables of the 1-D model go to a temporary folder, not the user's cache
    (subprocesses inherit it)."""
    import os

    old = os.environ.get("MEANFIELD_CACHE_DIR")
    os.environ["MEANFIELD_CACHE_DIR"] = str(tmp_path_factory.mktemp("table-cache"))
    yield
    if old is None:
        os.environ.pop("MEANFIELD_CACHE_DIR", None)
    else:
        os.environ["MEANFIELD_CACHE_DIR"] = old
