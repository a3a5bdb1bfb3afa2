"""Shared test settings: named tolerances (each with the reason for its size) and fixtures."""
import numpy as np
import pytest

# -- tolerances ---------------------------------------------------------------------------
#: compiled kernel vs NumPy reference of the same formula: only summation order differs.
RTOL_KERNEL = 1e-12
#: derivative vs central finite difference with h = 1e-6: O(h²) truncation + O(ε/h) round-off.
RTOL_FD = 1e-6
#: Monte Carlo comparisons use this many standard errors (false-alarm rate ~ 6e-7 per check);
#: the one value for every Monte Carlo test (kernels, backends, moments, odd, reduced, 1-D).
N_SIGMA = 5.0
#: an optimal-transport value from two exact solvers (network simplex, HiGHS LP, quantile
#: merge): measured ≤ 1.2e-15 apart over 50 draws, but HiGHS only promises its marginals to
#: its feasibility tolerance (1e-7); a wrong plan moves the value by ~1e-2.
RTOL_LP = 1e-10
#: Gauss–Jacobi quadrature against adaptive scipy.integrate.quad (its own error ~1e-10).
RTOL_QUAD = 1e-8


# -- adaptive pairs (test_adaptive.py) -------------------------------------------
#: slopes fitted from log–log regressions: allowed shortfall against the theoretical value
ADAPTIVE_ORDER_SLACK = 0.3
#: dopri5 at rtol = atol = 1e-11 against RK4 at dt = 2.5e-3 over t = 1: RK4's own error
#: (~C dt⁴ ≈ 1e-10 here) dominates
RK4_AGREEMENT = 1e-8

# -- symmetric Boolean functions (test_boolean.py) -------------------------------
#: sums of ≤ 2^n · k float64 products, compared across summation orders.
BOOLEAN_ROUND_OFF = 1e-12
#: compiled SGD vs the NumPy reference after tens of steps: both do the same arithmetic in
#: a different order; differences grow a little per step.
SGD_RTOL = 1e-10

# -- conservation laws (test_conservation.py) ------------------------------------
#: machine epsilon of float64 (ulp of 1).
EPS = float(np.finfo(np.float64).eps)
#: per-step identities (the Euler ΔQ identity of MATH §6 and its decay/rates/stage forms), in
#: units of EPS·M_j (M_j = a²/η_a + ‖b‖²/η_b, the terms whose difference is Q_j): Q before and
#: after the step are each rounded to ~1–2 ulp of M_j and the step itself rounds θ⁺; measured
#: ≤ 3.1. The one bound for this identity: it was also tested at 64 ulp of max(a², ‖b‖²)
#: (≥ M_j/2), i.e. 4–8× looser than this with no reason for the difference.
STEP_ULPS = 8
#: fitted order of convergence vs the nominal one, dt over 3–4 halvings (a factor 4–8):
#: O(dt^{p+1}) terms still bend the fit; measured pre-asymptotic curvature < 0.05.
ORDER_SLACK = 0.15
#: projected Euler over 10⁴ steps: the projection restores Q to a few ulp each step, errors
#: do not accumulate (the target is Q_0, not the previous Q).
PROJECTED_RTOL = 1e-12
#: angular momentum of the exact field relative to the size of its terms: sums of m rounded
#: terms (~1e-16 each); 1e-13 leaves a factor > 50 over the measured 2e-15.
ANGMOM_ROUNDOFF = 1e-13
#: a batch of 128 inputs breaks rotation invariance at ~n^{−1/2} ≈ 0.09 relative; 1e-3 is
#: far above round-off and far below that.
ANGMOM_SAMPLED_MIN = 1e-3
#: Euler's energy residual vs its leading-order prediction (dt/4)(D₀ − D_N): the relative
#: correction is O(dt), measured 0.6 % (λ = 0) and 3.4 % (λ = 0.4, η = (2, ½)) at dt = 0.01.
ENERGY_LEADING_RTOL = 0.05
#: that correction halves with dt (measured ratio 0.48–0.49 from dt = 0.02 to 0.01).
ENERGY_HALVING_MAX = 0.6
#: RK4 + Simpson over T = 1 at dt = 0.02: O(dt⁴) residual, relative to E(0).
RK4_ENERGY_RTOL = 1e-6

# -- models against pre-engine values (test_engine_models.py) --------------------
#: the block-reduced kernel was re-tiled after the reference was written (it now sums pairs in
#: another order, and the 1-D model's tables are filled with it): those two models agree with
#: their reference to round-off (measured ≤ 4e-15), not bit for bit; any change of the
#: stepping (order of projection and step, record or snapshot step, stage times) moves them
#: by O(dt) ≫ this
KERNEL_ROUNDOFF = 1e-13

# -- equivalent minima (test_equivalent.py) --------------------------------------
#: outputs of equivalent networks: the permutation reorders the sum over units, so results
#: agree to a few ulp of the output size, not bitwise.
OUTPUT_RTOL = 1e-13
#: canonical forms of rescaled networks: one division by the norm, a few ulp.
RESCALE_ATOL = 1e-14

# -- Hessian (test_hessian.py) ---------------------------------------------------
#: a zero mode at an exact minimum is round-off (≲ 1e-14 of the top eigenvalue) and the
#: rest are ≳ 1e-4 of it in these small problems: demand at least 8 decades between.
MIN_GAP = 1e8
#: Lanczos (eigsh, tol = 0) against eigh: both at machine precision of the largest |λ|.
RTOL_LANCZOS = 1e-10
#: the norm target's ∇²T against a central difference of its ∇T at b ∈ H (d_H = 3): both are
#: 64-node Gauss–Jacobi sums of integrands with a √(1 − t²) endpoint singularity (r(t) → 0
#: at t = ±1), an error that does not shrink with the step (measured up to 1.3e-6 of the
#: scale at 64 nodes, 1e-7 at 2 048); generic rows stay at RTOL_FD (test_hessian_targets.py).
RTOL_NORM_IN_H = 1e-5

# -- kernel variants (test_kernel_variants.py) -----------------------------------
#: fast_atan2 against libm's atan2: fdlibm's polynomial plus one rounded quotient; the argument
#: reduction and the final high+low sum round once each, so 1 ulp is possible on either
#: side of the correctly rounded value (and libm's own fast_atan2 is itself within 1 ulp).
MAX_ULP_ATAN = 2.0

# -- low-dimensional reductions (test_lowdim.py) ---------------------------------
#: two-sample Kolmogorov–Smirnov: same law unless p < 1e-4 (false alarm 1 in 10⁴)
KS_P_MIN = 1e-4
#: exact identities up to round-off
LOWDIM_ROUND_OFF = 1e-12

# -- method of moments (test_moments.py) -----------------------------------------
#: identities evaluated on exact moments: a few hundred flops of O(1) numbers.
MOMENTS_ROUND_OFF = 1e-11
#: a recovery counts as failed above this relative parameter error (successful recoveries in
#: these tests are ≤ 0.03).
MOMENTS_FAILED = 0.2

# -- odd target (test_odd.py) ----------------------------------------------------
#: identities that hold to round-off (a few hundred ulp of O(1)-normalised quantities after
#: O(100) steps of sums over ≤ 64 particles).
RTOL_ROUNDOFF = 1e-12
#: solve_ivp at rtol = atol = 1e-12 over T = 100 (≈ 5 e-folds of growth): global error ~1e-10.
RTOL_ODE = 1e-9
#: random start: E gap ∝ m^{−½} predicts gap(128)/gap(8) = 0.25; 0.5 leaves room for seed noise.
GAP_RATIO_MAX = 0.5
#: slope of the random-start gap vs m (slow test): −½ ± 0.15 (≈ 2 standard errors) for 8 seeds,
#: m = 8..512 in d = 8 (the m = 8 point carries O(1/m) terms that steepen the fit a little).
ODD_RATE_SLACK = 0.15

# -- symmetry (test_symmetry.py) -------------------------------------------------
#: orbit starts under the flow: particle and image see the same sums in a different order,
#: so they differ by round-off per step (measured ≤ 1e-15 over 200 steps).
ORBIT_ROUNDOFF = 1e-13
#: a rotation by 2π/n is exact only to round-off (cos, sin rounded): images agree to ~1e-16.
ROTATION_ROUNDOFF = 1e-14
#: slope of the random-start defect vs m: 4 seeds × 4 sizes, sampling noise of the fit ~0.05.
DEFECT_RATE_SLACK = 0.15

# -- block-reduced model (test_reduced.py) ---------------------------------------
#: target terms depend on b only through block norms: lifting changes nothing but round-off
EXACT_TOL = 1e-12
#: 8 vs 48 Gauss–Jacobi nodes for γ_{d⊥}, d⊥ = 25 (measured 1e-12; a margin for other points)
QUADRATURE_TOL = 1e-10
#: m-rate of the full-vs-reduced particle discrepancy: theory −½ (3 widths × 4 seeds)
LAW_RATE_WINDOW = (-0.8, -0.3)
#: m-rate of the risk discrepancy: theory −1 (second order in the symmetry defect)
RISK_RATE_WINDOW = (-1.3, -0.7)

# -- 1-D model (test_radial1d.py) ------------------------------------------------
#: spectral tables vs direct quadrature for d_H = 5, d⊥ = 25 (measured ~1e-13)
TABLE_TOL_SMOOTH = 1e-10
#: d_H = 2 (Chebyshev weight, least smooth corner at θ = 0); measured 1e-9 (K), 1e-7 (K')
TABLE_TOL_DH2 = 1e-6
#: 1-D velocities vs the (a, ‖b_H‖, ‖b⊥‖) reduced velocities: same formulas, both quadratures
#: converged (measured 1e-11)
IDENTITY_TOL = 1e-8
#: RK4 trajectories in two coordinate systems, dt = 0.01, 50 steps: O(dt⁴) apart
TRAJECTORY_TOL = 1e-6

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
