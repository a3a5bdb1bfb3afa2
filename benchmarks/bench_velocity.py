"""One exact population velocity evaluation (all particles, MATH §2): meanfield against peers.

The problem: x ∼ N(0, I_d), a teacher of 4 ReLU units, m particles a ∼ N(0, 1),
b ∼ N(0, I/d), weights 1/m. Every implementation computes the potential gradients
(g_a, g_b) at all particles (the velocity is −g); the O(m² d) particle interaction is
nearly all of the work.

* ``meanfield``: ``ExactBackend.gradients`` (Numba tiles, or BLAS panels for large d; no
  m × m array).
* ``numpy``: the same formula with dense m × m arrays and a BLAS Gram matrix.
* ``torch``: the same formula in PyTorch (CPU, float64).
* ``torch-autograd``: PyTorch autograd of the exact risk F(a, b) (g = m ∇F).
* ``jax``: the same formula under ``jax.jit`` (CPU, float64).
* ``roofline``: a floor for this computation on this machine: the flops of the symmetric
  Gram matrix (half of b bᵀ) and of the reduction Σ_k c_ik b_k at the BLAS DGEMM rate
  measured on a compute-bound 1024³ product, plus the unavoidable elementwise work (one
  square root and one division per unordered pair) at the machine's measured vector
  throughput with the same threads (rates: the fastest of ≥ 5 runs, not the median).
  The note also gives BLAS's time for the two products at their real shapes
  (memory-bound for small d, so above the floor).

Each peer's ``rel_err`` is ‖g_peer − g_meanfield‖/‖g_meanfield‖ over (g_a, g_b) (must be
≤ 1e-10); meanfield's own ``rel_err`` is against ``numpy`` when that ran. A missing peer
(not installed, or its dense m × m arrays would exceed ``--max-dense-gib``) is skipped
with a line saying so. Compile / first-call time is reported apart from the medians.

Run (about 4 minutes on 2 cores)::

    python benchmarks/bench_velocity.py      # m ∈ {1024, 4096, 16384}, d ∈ {10, 100, 1000}
    python benchmarks/bench_velocity.py --m 4096 --d 10,100 --repeat 7
    python benchmarks/bench_velocity.py --smoke --json       # CI: seconds
"""
import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import Output, load_average, machine_lines, median_time, parse_list  # noqa: E402

PEERS = ("numpy", "torch", "torch-autograd", "jax")
#: agreement every peer must reach with meanfield (the issue's requirement)
PEER_RTOL = 1e-10
#: m × m float64 arrays alive at once in each dense peer (for the memory guard)
DENSE_ARRAYS = {"numpy": 7, "torch": 7, "torch-autograd": 14, "jax": 7}
TEACHER_UNITS = 4


def make_problem(m, d, seed=0):
    import meanfield as mf
    rng = np.random.default_rng(seed)
    teacher = mf.Teacher(a=rng.standard_normal(TEACHER_UNITS),
                         b=rng.standard_normal((TEACHER_UNITS, d)) / np.sqrt(d))
    problem = mf.Problem(d=d, target=teacher)
    particles = mf.init_gaussian(m, d, rng)
    return problem, teacher, particles


# ---------------------------------------------------------------------------- the peers
def numpy_velocity(a, b, w, ta, tb):
    """g_a = S − T, g_b = a (∇S − ∇T) with dense arrays (standard Gaussian: v_ρ = 1)."""
    def sums(u, v, c):
        dots = u @ v.T
        nu = np.einsum("ij,ij->i", u, u)
        nv = np.einsum("ij,ij->i", v, v)
        cross = np.sqrt(np.maximum(nu[:, None] * nv[None, :] - dots * dots, 0.0))
        theta = np.pi - np.arctan2(cross, dots)
        s = (cross + theta * dots) @ c
        g = (theta * c) @ v + ((cross @ c) / nu)[:, None] * u
        return s / (2 * np.pi), g / (2 * np.pi)
    s, gs = sums(b, b, w * a)
    t, gt = sums(b, tb, ta)
    return s - t, a[:, None] * (gs - gt)


def torch_velocity_fn(threads):
    import torch
    torch.set_num_threads(threads)

    def sums(u, v, c):
        dots = u @ v.T
        nu = (u * u).sum(1)
        nv = (v * v).sum(1)
        cross = torch.sqrt(torch.clamp(nu[:, None] * nv[None, :] - dots * dots, min=0.0))
        theta = math.pi - torch.atan2(cross, dots)
        s = (cross + theta * dots) @ c
        g = (theta * c) @ v + ((cross @ c) / nu)[:, None] * u
        return s / (2 * math.pi), g / (2 * math.pi)

    def velocity(a, b, w, ta, tb):
        s, gs = sums(b, b, w * a)
        t, gt = sums(b, tb, ta)
        return s - t, a[:, None] * (gs - gt)
    return velocity, torch.from_numpy, lambda x: x.numpy()


def torch_autograd_fn(threads):
    import torch
    torch.set_num_threads(threads)

    def kappa(dots, nu, nv, diag=None):
        prod = nu[:, None] * nv[None, :]
        if diag is not None:  # κ(u, u) = ‖u‖²/2; keep the sqrt away from 0 there
            dots = torch.where(diag, torch.zeros_like(dots), dots)
        cross = torch.sqrt(torch.clamp(prod - dots * dots, min=0.0))
        k = (cross + (math.pi - torch.atan2(cross, dots)) * dots) / (2 * math.pi)
        if diag is not None:
            k = torch.where(diag, 0.5 * prod.sqrt(), k)
        return k

    def velocity(a, b, w, ta, tb):
        a = a.clone().requires_grad_(True)
        b = b.clone().requires_grad_(True)
        m = a.shape[0]
        nb = (b * b).sum(1)
        diag = torch.eye(m, dtype=torch.bool)
        k = kappa(b @ b.T, nb, nb, diag)
        t = kappa(b @ tb.T, nb, (tb * tb).sum(1)) @ ta
        c = w * a
        risk = 0.5 * c @ (k @ c) - c @ t      # + ½E f*², constant
        ga, gb = torch.autograd.grad(risk, (a, b))
        return ga * m, gb * m                  # potential gradient = m ∂F/∂θ_j (w = 1/m)
    return velocity, torch.from_numpy, lambda x: x.detach().numpy()


def jax_velocity_fn(threads):
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true "
                                       f"intra_op_parallelism_threads={threads}")
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def sums(u, v, c):
        dots = u @ v.T
        nu = (u * u).sum(1)
        nv = (v * v).sum(1)
        cross = jnp.sqrt(jnp.maximum(nu[:, None] * nv[None, :] - dots * dots, 0.0))
        theta = jnp.pi - jnp.arctan2(cross, dots)
        s = (cross + theta * dots) @ c
        g = (theta * c) @ v + ((cross @ c) / nu)[:, None] * u
        return s / (2 * jnp.pi), g / (2 * jnp.pi)

    @jax.jit
    def velocity_jit(a, b, w, ta, tb):
        s, gs = sums(b, b, w * a)
        t, gt = sums(b, tb, ta)
        return s - t, a[:, None] * (gs - gt)

    def velocity(*args):
        return jax.block_until_ready(velocity_jit(*args))
    return velocity, jnp.asarray, np.asarray


def peer_function(name, threads):
    """(velocity, to_peer, to_numpy) or raise ImportError."""
    if name == "numpy":
        return numpy_velocity, (lambda x: x), (lambda x: x)
    if name == "torch":
        return torch_velocity_fn(threads)
    if name == "torch-autograd":
        return torch_autograd_fn(threads)
    if name == "jax":
        return jax_velocity_fn(threads)
    raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PEERS)} or none")


# ---------------------------------------------------------------------------- roofline
def best_time(fn, repeat):
    """Fastest of max(repeat, 5) runs after a warm-up: a floor uses the machine's best
    observed rate (medians would put other processes' load into the floor)."""
    fn()
    times = []
    for _ in range(max(repeat, 5)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def elementwise_seconds_per_pair(threads, repeat=5):
    """Seconds per element of one square root plus one division, vectorised, all threads."""
    from meanfield.kernels.threads import parallel_kernel, prange

    @parallel_kernel(error_model="numpy")
    def sqrt_div(x, out, reps):
        n_chunks, n = x.shape
        for c in prange(n_chunks):
            xc = x[c]
            oc = out[c]
            for _ in range(reps):
                for i in range(n):
                    oc[i] = math.sqrt(xc[i]) + 1.0 / xc[i]

    n = 2048  # 16 KiB: stays in L1, so this is the arithmetic rate, not memory
    x = np.random.default_rng(1).uniform(1.0, 2.0, (threads * 4, n))
    out = np.empty_like(x)
    reps = 4000  # ~30 ms per call: the parallel region's start-up is negligible
    t = best_time(lambda: sqrt_div(x, out, reps), repeat)
    return t / (x.size * reps)


def gemm_seconds(m, n, k, repeat, panel=1024):
    """Median BLAS time of an (m × k)·(k × n) product, done in row panels of ≤ 1024 rows
    so that no m × m array is needed; the panel times are added."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((min(panel, m), k))
    bt = rng.standard_normal((k, n))
    out = np.empty((a.shape[0], n))
    t = best_time(lambda: np.dot(a, bt, out=out), repeat)
    return t * m / a.shape[0]


def gemm_flop_rate(repeat):
    """DGEMM flops per second of BLAS (all its threads) on a compute-bound 1024³ product."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((1024, 1024))
    bt = rng.standard_normal((1024, 1024))
    out = np.empty((1024, 1024))
    t = best_time(lambda: np.dot(a, bt, out=out), repeat)
    return 2 * 1024 ** 3 / t


def roofline_seconds(m, d, t_elem, rate, repeat):
    """(floor, gemm part, elementwise part, BLAS time of the two products at their shapes).

    The floor counts the unavoidable flops at BLAS's compute-bound rate: the symmetric
    Gram matrix (m² d multiply-adds' worth: half of b bᵀ) and the reduction (2 m² d), plus
    one square root and one division per unordered pair at the measured vector rate.
    The same two products timed in BLAS at their actual shapes (row panels of 1024, no
    m × m array) are reported too: for small d they are memory-bound, slower than the floor.
    """
    gemm = (m * m * d + 2 * m * m * d) / rate
    elementwise = 0.5 * m * (m + 1) * t_elem
    shapes = 0.5 * gemm_seconds(m, m, d, repeat) + gemm_seconds(m, d, m, repeat)
    return gemm + elementwise, gemm, elementwise, shapes


# ---------------------------------------------------------------------------- main
def velocity_rel_err(got, ref):
    ga, gb = got
    ra, rb = ref
    num = math.sqrt(np.sum((ga - ra) ** 2) + np.sum((gb - rb) ** 2))
    return num / math.sqrt(np.sum(ra ** 2) + np.sum(rb ** 2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--m", default="1024,4096,16384", help="comma list of particle counts")
    parser.add_argument("--d", default="10,100,1000", help="comma list of dimensions")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (median reported)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma list from {','.join(PEERS)}, or none")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for meanfield (Numba), torch and XLA (default: all cores)")
    parser.add_argument("--max-dense-gib", type=float, default=3.0,
                        help="skip a dense peer whose m × m arrays would need more memory")
    parser.add_argument("--no-roofline", action="store_true", help="skip the roofline line")
    parser.add_argument("--json", action="store_true",
                        help="JSON lines on stdout (the table goes to stderr)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny run for CI: --m 256 --d 10 --repeat 1 --peers numpy")
    args = parser.parse_args(argv)
    if args.smoke:
        args.m, args.d, args.repeat, args.peers = "256", "10", 1, "numpy"
    peers = [] if args.peers.strip() == "none" else parse_list(args.peers, str)
    for p in peers:
        if p not in PEERS:
            parser.error(f"unknown peer {p!r}; choose from {', '.join(PEERS)} or none")

    import numba
    from meanfield.models.backends import ExactBackend
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    out = Output(args.json)
    for line in machine_lines(numba.get_num_threads()):
        out.say(line)

    peer_fns = {}
    for p in peers:
        try:
            peer_fns[p] = peer_function(p, args.threads)
        except ImportError as exc:
            out.say(f"  skipped peer {p}: not installed ({exc.name}); "
                    f"pip install -e .[bench]")
    t_elem = rate = None
    if not args.no_roofline:
        t_elem = elementwise_seconds_per_pair(numba.get_num_threads())
        rate = gemm_flop_rate(args.repeat)
        out.say(f"measured elementwise rate: {1e9 * t_elem:.3f} ns per (sqrt + division), "
                f"{numba.get_num_threads()} threads; BLAS DGEMM {rate / 1e9:.1f} GFLOP/s")

    for m in parse_list(args.m):
        for d in parse_list(args.d):
            out.say(f"m = {m}, d = {d} (load {load_average():.2f})")
            out.header()
            problem, teacher, particles = make_problem(m, d)
            backend = ExactBackend(problem)
            a, b, w = particles.a, particles.b, particles.weights
            t_mf, first_mf, res = median_time(lambda: backend.gradients(a, b, w), args.repeat)
            g_mf = (res[0], res[1])
            results = {}
            for name, (fn, to_peer, to_np) in peer_fns.items():
                need = DENSE_ARRAYS[name] * m * m * 8 / 2 ** 30
                if need > args.max_dense_gib:
                    out.say(f"  skipped {name}: its dense m × m arrays need ~{need:.1f} GiB "
                            f"(> --max-dense-gib {args.max_dense_gib})")
                    continue
                inputs = [to_peer(np.ascontiguousarray(x)) for x in (a, b, w, teacher.a, teacher.b)]
                t, first, res = median_time(lambda: fn(*inputs), args.repeat)
                got = (to_np(res[0]), to_np(res[1]))
                results[name] = (t, first, velocity_rel_err(got, g_mf))
            mf_err = (velocity_rel_err(g_mf, _numpy_result(a, b, w, teacher))
                      if "numpy" in results else None)
            out.row("meanfield", m, d, t_mf, m * m, mf_err, f"first call {first_mf:.2f} s")
            for name, (t, first, err) in results.items():
                ok = "matches" if err <= PEER_RTOL else f"DOES NOT match to {PEER_RTOL:g}"
                out.row(name, m, d, t, m * m, err,
                        f"{t / t_mf:5.1f}x meanfield's time; first call {first:.2f} s; {ok}")
            if t_elem is not None:
                floor, gemm, elem, shapes = roofline_seconds(m, d, t_elem, rate, args.repeat)
                out.row("roofline", m, d, floor, m * m, None,
                        f"meanfield = {t_mf / floor:.2f}x floor (products {gemm:.4f} + "
                        f"elementwise {elem:.4f} s; BLAS at these shapes {shapes:.4f} s)")
            if results:
                fastest = min(results, key=lambda k: results[k][0])
                out.say(f"  fastest peer {fastest}: meanfield is "
                        f"{results[fastest][0] / t_mf:.1f}x faster")
    return 0


def _numpy_result(a, b, w, teacher):
    return numpy_velocity(a, b, w, teacher.a, teacher.b)


if __name__ == "__main__":
    sys.exit(main())
