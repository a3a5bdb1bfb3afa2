"""Write ``pre_engine_reference.npz``: fixed-step results of every model computed by the code
as it was before the engine unified the stepping loops (commit 2df2ad1).

Run once, against that commit: ``python tests/data/make_pre_engine_reference.py``.
``tests/test_engine_models.py`` checks that every model, now integrated by the one loop,
reproduces these arrays on the fixed-step path.
"""
from pathlib import Path

import numpy as np

import meanfield as mf
from meanfield.models.lowdim import sample_radial_init, sample_reduced_init
from meanfield.models.odd import discrete_reduced_flow, odd_reduction
from meanfield.models.radial1d import RadialKernel, simulate_radial
from meanfield.models.reduced import BlockReduction, ReducedBackend, simulate_reduced


def main():
    out = {}
    d = 5
    problem = mf.Problem(d, mf.NormTarget(2))
    p = mf.init_sphere_rademacher(16, d, np.random.default_rng(11))
    for name in ("euler", "heun", "rk4", "euler_projected", "momentum"):
        r = mf.simulate_flow(problem, p, 0.05, 40, integrator=name, record_every=3, n_snapshots=4)
        for k in ("t", "risk", "dissipation", "q_drift"):
            out[f"full_{name}_{k}"] = getattr(r, k)
        out[f"full_{name}_a"] = r.particles.a
        out[f"full_{name}_b"] = r.particles.b
        out[f"full_{name}_snap_b"] = r.snapshots["b"]
    r = mf.simulate_flow(problem, p, 0.05, 20, backend="sampled", batch_size=64, seed=5,
                    exact_risk_every=2)
    out["sampled_risk"] = r.risk
    out["sampled_risk_exact"] = r.risk_exact
    out["sampled_b"] = r.particles.b

    d, d_H, m = 9, 2, 16
    backend = ReducedBackend(mf.Problem(d, mf.NormTarget(d_H)), BlockReduction.subspace(d, d_H),
                             n_nodes=8)
    a, z = sample_reduced_init(m, d, d_H, np.random.default_rng(7))
    for name in ("euler", "heun", "rk4", "euler_projected"):
        r = simulate_reduced(backend, a, z, 0.05, 30, integrator=name, record_every=4,
                             n_snapshots=3)
        out[f"reduced_{name}_t"] = r.t
        out[f"reduced_{name}_risk"] = r.risk
        out[f"reduced_{name}_a"] = r.a
        out[f"reduced_{name}_z"] = r.z
        out[f"reduced_{name}_snap_z"] = r.snapshots["z"]
        out[f"reduced_{name}_n_reflections"] = np.int64(r.n_reflections)

    kernel = RadialKernel(5, 25, n_terms=32, table_nodes=48)
    eps, c, theta = sample_radial_init(64, 30, 5, np.random.default_rng(2))
    for name in ("euler", "heun", "rk4"):
        r = simulate_radial(kernel, eps, c, theta, 0.01, 50, integrator=name, record_every=5,
                            n_snapshots=3)
        out[f"radial_{name}_t"] = r.t
        out[f"radial_{name}_risk"] = r.risk
        out[f"radial_{name}_c"] = r.c
        out[f"radial_{name}_theta"] = r.theta
        out[f"radial_{name}_snap_theta"] = r.snapshots["theta"]
    r = simulate_radial(kernel, eps, c, theta, 0.01, 20, estimator="monte_carlo", n_samples=200,
                        seed=3, record_every=2)
    out["radial_mc_risk"] = r.risk
    out["radial_mc_risk_estimate"] = r.risk_estimate
    out["radial_mc_c"] = r.c
    out["radial_mc_theta"] = r.theta

    dd = 6
    red = odd_reduction(mf.Problem(dd, mf.odd_cubic_target(dd, np.random.default_rng(0)),
                                   mf.GaussianLaw(dd ** -0.5)))
    rng = np.random.default_rng(4)
    pp = mf.init_paired(mf.init_sphere_rademacher(10, dd, rng))
    w0, S0, s0 = mf.odd.moments(pp.a, pp.b, pp.weights)
    for name in ("euler", "heun", "rk4", "momentum"):
        tr = discrete_reduced_flow(red, w0, S0, s0, 0.05, 40, name, record_every=7)
        out[f"odd_{name}_t"] = tr.t
        out[f"odd_{name}_w"] = tr.w
        out[f"odd_{name}_s"] = tr.s
    np.savez(Path(__file__).with_name("pre_engine_reference.npz"), **out)


if __name__ == "__main__":
    main()
