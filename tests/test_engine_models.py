"""Every model through the one loop reproduces, on the fixed-step path, what its own stepping
loop gave before the loops were unified (arrays in data/pre_engine_reference.npz, written by
data/make_pre_engine_reference.py against the code before the change)."""
from pathlib import Path

import numpy as np
import pytest

import meanfield as mf

REF = Path(__file__).parent / "data" / "pre_engine_reference.npz"


@pytest.fixture(scope="module")
def ref():
    with np.load(REF) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("name", ["euler", "heun", "rk4", "euler_projected", "momentum"])
def test_full_model_bit_identical(ref, name):
    d = 5
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(16, d, np.random.default_rng(11))
    r = mf.simulate(problem, p, 0.05, 40, integrator=name, record_every=3, n_snapshots=4)
    for k in ("t", "risk", "dissipation", "q_drift"):
        np.testing.assert_array_equal(getattr(r, k), ref[f"full_{name}_{k}"], err_msg=k)
    np.testing.assert_array_equal(r.particles.a, ref[f"full_{name}_a"])
    np.testing.assert_array_equal(r.particles.b, ref[f"full_{name}_b"])
    np.testing.assert_array_equal(r.snapshots["b"], ref[f"full_{name}_snap_b"])


def test_sampled_backend_bit_identical(ref):
    d = 5
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(16, d, np.random.default_rng(11))
    r = mf.simulate(problem, p, 0.05, 20, backend="sampled", batch_size=64, seed=5,
                    exact_risk_every=2)
    np.testing.assert_array_equal(r.risk, ref["sampled_risk"])
    np.testing.assert_array_equal(r.risk_exact, ref["sampled_risk_exact"])
    np.testing.assert_array_equal(r.particles.b, ref["sampled_b"])
