"""The exact Hessian: one Hessian-vector product against one velocity evaluation, and the k
smallest eigenvalues by Lanczos at ~10⁵–10⁶ parameters.

Problem: x ∼ N(0, I_d), a teacher of 4 ReLU units, m particles from the seed paper's start
(a = ±1, b uniform on the sphere), weights 1/m, advanced by ``--flow-steps`` Euler steps
(dt = 0.05) so that the state is not a random one.

* ``velocity``: ``ExactBackend.gradients`` (all potential gradients, the O(m² d) work of one
  flow step).
* ``hvp``: one product H·v with H = m ∇²F (:class:`meanfield.hessian.HessianOperator`),
  times built once; ``rel_err`` is the product against a central difference of the exact
  gradient (step 1e-6 · ‖θ‖/‖v‖; O(h²) + O(ε/h) ≈ 1e-8 is expected).
* ``lanczos-kN``: :func:`meanfield.hessian.spectrum` with k = N: the N largest (ARPACK
  ``LA``) then the N smallest (``SA`` on H + λ_max I) eigenvalues; the note gives the number
  of products, the smallest eigenvalue and whether the state has negative directions.

* ``smallest-lobpcg-kN``: the N smallest eigenvalues alone by
  :func:`meanfield.hessian.lobpcg.smallest_lobpcg` (stored pair geometry, coarse space of one
  vector per particle, LOBPCG with the two-level preconditioner; residual tolerance
  ``--rtol`` relative to the largest eigenvalue of the diagonal blocks); the note splits
  the time into storing the geometry, the coarse space (diagonal blocks, Vᵀ H V, Cholesky
  factorisations, coarse eigensolve) and LOBPCG, and gives the number of products,
  iterations, the largest residual and the load. ``--dtype float32`` stores the pair
  matrices in single precision (half the memory and product time). ``--compare-lanczos``
  adds the same N smallest by ARPACK (``spectrum(..., k=N)``, which also computes the N
  largest).

Compile time (first call) is reported apart; HVP and velocity are medians of ``--repeat``
runs after two warm-ups, in the same process.

Run::

    python benchmarks/bench_hessian.py                      # m = 4096, d = 100; no Lanczos
    python benchmarks/bench_hessian.py --lanczos-m 10000 --lanczos-d 30 --k 20   # ~minutes
    python benchmarks/bench_hessian.py --skip-products --smallest-m 10000 --smallest-d 30 \
        --k 20 --rtol 1e-6 --maxiter 100 --dtype float32            # ~4 min on 2 cores
    python benchmarks/bench_hessian.py --smoke --json       # CI: seconds
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import Output, load_average, machine_lines, median_time  # noqa: E402

TEACHER_UNITS = 4


def make_state(m, d, flow_steps, seed=0):
    import meanfield as mf
    rng = np.random.default_rng(seed)
    tb = rng.standard_normal((TEACHER_UNITS, d))
    tb /= np.linalg.norm(tb, axis=1, keepdims=True)
    problem = mf.Problem(d=d, target=mf.Teacher(np.ones(TEACHER_UNITS), tb))
    particles = mf.init_sphere_rademacher(m, d, rng)
    if flow_steps:
        res = mf.simulate_flow(problem, particles, dt=0.05, n_steps=flow_steps, n_snapshots=0)
        particles = res.particles
    return problem, particles


def bench_products(out, m, d, repeat, flow_steps):
    from meanfield.models.backends import ExactBackend
    from meanfield.hessian import HessianOperator

    problem, p = make_state(m, d, flow_steps)
    be = ExactBackend(problem)
    a, b, w = p.a, p.b, p.weights
    t_vel, first_vel, _ = median_time(lambda: be.gradients(a, b, w), repeat)
    t_build, first_build, op = median_time(lambda: HessianOperator(problem, a, b, w), 1,
                                           warmup=1)
    v = np.random.default_rng(1).standard_normal(op.n)
    t_hvp, first_hvp, hv = median_time(lambda: op.matvec(v), repeat)
    # accuracy: H v = m ∇²F v against a central difference of m ∇F (g per particle)
    theta = np.concatenate([a, b.ravel()])
    h = 1e-6 * np.linalg.norm(theta) / np.linalg.norm(v)

    def mgrad(th):
        ga, gb, _ = be.gradients(th[:m], th[m:].reshape(m, d), w)
        return np.concatenate([ga, gb.ravel()])
    fd = (mgrad(theta + h * v) - mgrad(theta - h * v)) / (2 * h)
    rel = float(np.linalg.norm(hv - fd) / np.linalg.norm(fd))
    pairs = float(m) * m
    out.row("meanfield-velocity", m, d, t_vel, pairs, None, f"first call {first_vel:.2f} s")
    out.row("meanfield-hvp", m, d, t_hvp, pairs, rel,
            f"first call {first_hvp:.2f} s; build {t_build:.3f} s; "
            f"ratio to velocity {t_hvp / t_vel:.2f}")
    return t_hvp / t_vel


def bench_lanczos(out, m, d, k, flow_steps):
    from meanfield.hessian import HessianOperator, spectrum

    problem, p = make_state(m, d, flow_steps)
    op = HessianOperator(problem, p.a, p.b, p.weights)
    op.matvec(np.ones(op.n))  # compile outside the timing
    load0 = load_average()
    t0 = time.perf_counter()
    spec = spectrum(op, k=k)
    elapsed = time.perf_counter() - t0
    small = spec["smallest"]
    out.row(f"meanfield-lanczos-k{k}", m, d, elapsed, float(m) * m * spec["n_products"], None,
            f"{op.n} parameters; {spec['n_products']} products; smallest {small[0]:.3e}, "
            f"{k}th smallest {small[-1]:.3e}, largest {spec['largest'][-1]:.3e}; "
            f"{int(np.sum(small < 0))} negative among them; load {load0:.1f}→"
            f"{load_average():.1f}")
    return elapsed


def bench_smallest(out, m, d, k, flow_steps, rtol, maxiter, compare, dtype="float64"):
    from meanfield.hessian import HessianOperator, spectrum
    from meanfield.hessian.lobpcg import smallest_lobpcg

    problem, p = make_state(m, d, flow_steps)
    op = HessianOperator(problem, p.a, p.b, p.weights)
    load0 = load_average()
    res = smallest_lobpcg(op, k, rtol=rtol, maxiter=maxiter, log=out.say, dtype=np.dtype(dtype))
    small = res["smallest"]
    out.row(f"meanfield-smallest-lobpcg-k{k}-{dtype}", m, d, res["seconds"],
            float(m) * m * res["n_products"], None,
            f"{op.n} parameters; store {res['seconds_store']:.1f} s, coarse "
            f"{res['seconds_coarse']:.1f} s (blocks {res['seconds_blocks']:.1f}, VᵀHV "
            f"{res['seconds_coarse_matrix']:.1f}, {res['n_cholesky']} Cholesky "
            f"{res['seconds_cholesky']:.1f}), LOBPCG {res['seconds_lobpcg']:.1f} s; "
            f"{res['n_products']} products, {res['iterations']} iterations, largest residual "
            f"{res['residuals'].max():.2e} (tol {rtol:g} x {res['scale']:.3g}, "
            f"{'converged' if res['converged'] else 'NOT converged'}); smallest "
            f"{small[0]:.6e}, {k}th {small[-1]:.6e}; load {load0:.1f}->{load_average():.1f}")
    if compare:
        del res
        op.n_products = 0
        t0 = time.perf_counter()
        spec = spectrum(op, k=k)
        elapsed = time.perf_counter() - t0
        out.row(f"meanfield-lanczos-k{k}", m, d, elapsed, float(m) * m * spec["n_products"],
                None, f"{spec['n_products']} products (k largest and k smallest); largest "
                f"difference to LOBPCG {np.abs(spec['smallest'] - small).max():.2e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--m", type=int, default=4096)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--flow-steps", type=int, default=20)
    p.add_argument("--lanczos-m", type=int, default=0, help="0: skip the Lanczos row")
    p.add_argument("--lanczos-d", type=int, default=30)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--smallest-m", type=int, default=0,
                   help="0: skip the smallest-lobpcg row")
    p.add_argument("--smallest-d", type=int, default=30)
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--maxiter", type=int, default=40)
    p.add_argument("--compare-lanczos", action="store_true")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the stored pair matrices of the smallest-lobpcg row")
    p.add_argument("--skip-products", action="store_true", help="no HVP/velocity rows")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import numba
    if args.threads:
        numba.set_num_threads(args.threads)
    if args.smoke:
        args.m, args.d, args.repeat, args.flow_steps = 300, 8, 2, 2
        args.lanczos_m, args.lanczos_d, args.k = 200, 5, 3
        args.smallest_m, args.smallest_d = 200, 5
    out = Output(args.json)
    for line in machine_lines(numba.get_num_threads()):
        out.say(line)
    out.header()
    if not args.skip_products:
        bench_products(out, args.m, args.d, args.repeat, args.flow_steps)
    if args.lanczos_m:
        bench_lanczos(out, args.lanczos_m, args.lanczos_d, args.k, args.flow_steps)
    if args.smallest_m:
        bench_smallest(out, args.smallest_m, args.smallest_d, args.k, args.flow_steps,
                       args.rtol, args.maxiter, args.compare_lanczos, args.dtype)
    out.say(f"load average at the end {load_average():.2f} (shared machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
