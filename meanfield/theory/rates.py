"""Rates from log–log fits: the one slope fitter of the package.

Every convergence order, m^{−½} rate and drift slope is the least-squares slope of log y
against log x, reported with its standard error (the spread of the points about the line,
not the error of any single point).
"""
from typing import NamedTuple

import numpy as np

__all__ = ["PowerLaw", "fit_power_law"]


class PowerLaw(NamedTuple):
    """y ≈ exp(intercept) · x^slope.

    Attributes
    ----------
    slope : float
    stderr : float
        Standard error of the slope from the residuals (NaN with fewer than three points:
        no degrees of freedom are left).
    intercept : float
        Of log y at log x = 0 (natural logarithms); exp(intercept) is the prefactor.
    n_points : int
        Points used (positive and finite in both coordinates).
    """

    slope: float
    stderr: float
    intercept: float
    n_points: int


def fit_power_law(x, y):
    """Least-squares fit of log y = slope · log x + intercept.

    Points where x or y is not positive and finite are left out (a drift that is exactly 0
    has no logarithm); with fewer than two points left every field is NaN.

    Parameters
    ----------
    x, y : (k,) arrays

    Returns
    -------
    PowerLaw
        ``(slope, stderr, intercept, n_points)``; unpacks like a tuple.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    n = int(ok.sum())
    nan = float("nan")
    if n < 2:
        return PowerLaw(nan, nan, nan, n)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    if np.all(lx == lx[0]):
        raise ValueError("all x are equal: no slope to fit")
    # centred normal equations and the residuals themselves: scipy.stats.linregress gets the
    # slope right but its stderr from √(1 − r²), which has only √eps ≈ 1e-8 absolute
    # accuracy when the points lie on a line (a measured order that is exact to round-off)
    mx, my = lx.mean(), ly.mean()
    dx = lx - mx
    sxx = dx @ dx
    slope = float(dx @ (ly - my) / sxx)
    intercept = float(my - slope * mx)
    if n < 3:
        return PowerLaw(slope, nan, intercept, n)
    r = ly - (slope * lx + intercept)
    return PowerLaw(slope, float(np.sqrt(r @ r / (n - 2) / sxx)), intercept, n)
