"""The one slope fitter (meanfield.theory.rates.fit_power_law)."""
import numpy as np
import pytest

from conftest import RTOL_KERNEL
from meanfield.theory.rates import fit_power_law


def test_exact_power_law_is_recovered():
    x = np.array([10.0, 20.0, 40.0, 80.0, 160.0])
    fit = fit_power_law(x, 3.0 * x ** -0.5)
    assert fit.slope == pytest.approx(-0.5, rel=RTOL_KERNEL)
    assert np.exp(fit.intercept) == pytest.approx(3.0, rel=RTOL_KERNEL)
    assert fit.stderr < 1e-12 and fit.n_points == 5


def test_standard_error_is_the_textbook_formula(rng):
    # se² = Σ r² / (n − 2) / Σ (log x − mean)²: written out here, not taken from scipy
    x = np.geomspace(1.0, 100.0, 7)
    y = 2.0 * x ** 1.3 * np.exp(0.1 * rng.standard_normal(7))
    lx, ly = np.log(x), np.log(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    r = ly - (slope * lx + intercept)
    se = np.sqrt(r @ r / (lx.size - 2) / np.sum((lx - lx.mean()) ** 2))
    fit = fit_power_law(x, y)
    assert (fit.slope, fit.intercept) == pytest.approx((slope, intercept), rel=RTOL_KERNEL)
    assert fit.stderr == pytest.approx(se, rel=RTOL_KERNEL)


def test_non_positive_points_are_left_out_and_two_points_have_no_error():
    fit = fit_power_law([1.0, 2.0, 4.0, 8.0], [1.0, 0.0, np.nan, 8.0])
    assert fit.n_points == 2 and fit.slope == pytest.approx(1.0, rel=RTOL_KERNEL)
    assert np.isnan(fit.stderr)
    assert np.isnan(fit_power_law([1.0, 2.0], [0.0, 1.0]).slope)
    with pytest.raises(ValueError, match="same length"):
        fit_power_law([1.0, 2.0], [1.0])
