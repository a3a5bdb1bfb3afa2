"""Run every parallel kernel family at 1 thread and at ``NUMBA_NUM_THREADS`` threads, at sizes
past the serial thresholds, and print (as JSON) whether each took its parallel branch and
whether the two results are bit-identical.

Started by tests/test_kernels.py in a subprocess with NUMBA_NUM_THREADS set (the thread pool
size is fixed when Numba starts, so a machine with one core still gets several threads).
Each family spies on its own decision function (and, for the pair kernels, on the task
runner) so that the test can assert the parallel path was really taken.
"""
import json
import sys

import numba
import numpy as np

import meanfield as mf
import meanfield.kernels.gaussian as gaussian
import meanfield.kernels.sampled as sampled
import meanfield.models.reduced as reduced
from meanfield.kernels.gaussian import interaction
from meanfield.kernels.sampled import potential_gradients, predict_batch
from meanfield.models.lowdim import sample_radial_init
from meanfield.models.radial1d import RadialKernel, monte_carlo_field, simulate_radial
from meanfield.models.reduced import BlockReduction, ReducedBackend

SPIED = []  # (family, took_parallel) for every decision made while a family runs


def _spy(module, name, family_of, parallel_of):
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        out = original(*args, **kwargs)
        SPIED.append((family_of(), parallel_of(out, args, kwargs)))
        return out

    setattr(module, name, wrapper)


CURRENT = ["none"]
_spy(gaussian, "_run_serially", lambda: CURRENT[0], lambda out, a, k: not out)
_spy(sampled, "_run_serially", lambda: CURRENT[0], lambda out, a, k: not out)
_spy(reduced, "_run_serially", lambda: CURRENT[0], lambda out, a, k: not out)
# the pair kernels' tasks: parallel only if run_tasks is asked to and has > 1 thread and task
_spy(gaussian, "run_tasks", lambda: CURRENT[0] + "/tasks",
     lambda out, a, k: bool(a[2] if len(a) > 2 else k.get("parallel", True))
     and min(numba.get_num_threads(), a[1]) > 1)


def families(rng):
    """name -> function computing a tuple of arrays (one fixed input each)."""
    out = {}
    # pair kernels, numba tiles: m² (d + 16) ≥ _SERIAL_WORK (2^20) needs m ≥ 214 at d = 7
    b7 = rng.standard_normal((613, 7))
    c7 = rng.standard_normal(613)
    src7 = rng.standard_normal((607, 7))
    out["pair_numba"] = lambda: interaction(b7, b7, c7) + interaction(b7, src7, c7[:607])
    # pair kernels, BLAS panels (d ≥ 256 and m ≥ 128), m² (d + 16) ≥ 2^20 at m = 181
    b257 = rng.standard_normal((181, 257)) / 16.0
    c257 = rng.standard_normal(181)
    src257 = rng.standard_normal((179, 257)) / 16.0
    # m ≤ 4 d: the whole weight matrix; (600, 129): the panels' accumulation buffers
    b129 = rng.standard_normal((600, 129)) / 12.0
    c129 = rng.standard_normal(600)
    assert gaussian._uses_dense_weights(181, 257, 4)
    assert not gaussian._uses_dense_weights(600, 129, 4)
    out["pair_blas"] = lambda: (interaction(b257, b257, c257)
                                + interaction(b257, src257, c257[:179])
                                + interaction(b129, b129, c129))
    # the norm target's prange kernel (always parallel)
    out["norm_target"] = lambda: mf.NormTarget(3).unit_terms(b7)
    # sampled backend: n m (d + 4) ≥ 2^22 at n = 1201, m = 203, d = 14
    x = rng.standard_normal((1201, 14))
    a = rng.standard_normal(203)
    b14 = rng.standard_normal((203, 14))
    w = rng.dirichlet(np.ones(203))

    def sampled_pair():
        f = predict_batch(x, a, b14, w, 0)
        return (f,) + potential_gradients(x, f - 1.0, a, b14, 0)
    out["sampled"] = sampled_pair
    # block-reduced kernels: z = (b_H, ‖b_⊥‖), p = 3, one reduced block, 16 nodes:
    # m² (3 + 16·18) ≥ 2^23 at m = 181; the symmetric kernel and the general one (sources
    # differ when some particles have a = 0 and are dropped)
    backend = ReducedBackend(mf.Problem(12, mf.NormTarget(3)), BlockReduction.subspace(12, 3),
                             n_nodes=16)
    ar = rng.standard_normal(181)
    zr = np.abs(rng.standard_normal((181, 4)))
    wr = rng.dirichlet(np.ones(181))

    def reduced_pair():
        ga, gz, risk = backend.gradients(ar, zr, wr)
        return ga, gz, np.array([risk])
    out["reduced"] = reduced_pair
    # the 1-D model: Monte Carlo field (prange over samples, then over particles) and a short
    # run driven by it and by the exact tables
    kern = RadialKernel(3, 9, n_terms=32, table_nodes=48)
    eps, cc, th = sample_radial_init(257, 12, 3, np.random.default_rng(5))
    wc = np.full(257, 1.0 / 257)

    def radial():
        g, dg, loss = monte_carlo_field(kern, eps, cc, th, wc, np.random.default_rng(6), 4001)
        mc = simulate_radial(kern, eps, cc, th, 0.02, 5, estimator="monte_carlo",
                             n_samples=3001, seed=7)
        ex = simulate_radial(kern, eps, cc, th, 0.02, 5, integrator="rk4")
        return (g, dg, np.array([loss]), mc.c, mc.theta, mc.risk_estimate, ex.c, ex.theta,
                ex.risk)
    out["radial"] = radial
    return out


def main():
    many = numba.config.NUMBA_NUM_THREADS
    report = {"threads": many}
    fams = families(np.random.default_rng(0))
    results = {name: {} for name in fams}
    for threads in (1, many):
        numba.set_num_threads(threads)
        for name, fn in fams.items():
            CURRENT[0] = name
            del SPIED[:]
            arrays = [np.asarray(v) for v in fn()]
            results[name][threads] = (arrays, list(SPIED))
    for name in fams:
        arrays_1, _ = results[name][1]
        arrays_n, spied_n = results[name][many]
        decisions = [p for fam, p in spied_n if fam == name]
        tasks = [p for fam, p in spied_n if fam == name + "/tasks"]
        report[name] = {
            "identical": all(np.array_equal(u, v) for u, v in zip(arrays_1, arrays_n)),
            "n_arrays": len(arrays_n),
            "decisions": decisions,
            "tasks_parallel": tasks,
            "finite": all(np.all(np.isfinite(v)) for v in arrays_n),
        }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
