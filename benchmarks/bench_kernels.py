"""What each kernel design step gave: the pair sums S, G of ``gaussian.interaction`` at one
size, per design, in nanoseconds per pair per core (CPU time, one thread: the least
sensitive measure on a shared machine) and in wall time with all threads.

Designs (each computes the same numbers; ``rel_err`` is against the dense NumPy formula):

* ``per-pair-libm``: the first kernel — a loop over pairs: scalar dot over d, sqrt,
  libm atan2, axpy over d (copied here, as it was).
* ``per-pair-vec-atan``: the same loop with the branch-free ``fast_atan2`` (alone it cannot
  vectorise: the dot and the axpy of each pair are short serial loops).
* ``tiled-general``: the tiled kernel (Gram tile, vectorised elementwise pass, reduction
  tile), used when ``b_src`` is not ``b_out``.
* ``tiled-symmetric``: the same visiting each unordered pair once (``b_src is b_out``).

Run (about a minute)::

    python benchmarks/bench_kernels.py --m 4096 --d 10,100
    python benchmarks/bench_kernels.py --smoke --json
"""
import argparse
import os
import sys
import time
from math import atan2, pi, sqrt

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import Output, load_average, machine_lines, median_time, parse_list  # noqa: E402
from meanfield.kernels import gaussian  # noqa: E402
from meanfield.kernels.threads import parallel_kernel, prange  # noqa: E402

_INV_2PI = 1.0 / (2.0 * pi)


@parallel_kernel
def per_pair_libm(bt, nt2, bs, ns2, cs, out_s, out_g):
    """The kernel before issue 8 (verbatim apart from the name)."""
    mt, d = bt.shape
    ms = bs.shape[0]
    for i in prange(mt):
        acc_s = 0.0
        acc_cross = 0.0
        for l in range(d):
            out_g[i, l] = 0.0
        for k in range(ms):
            c = cs[k]
            if c == 0.0:
                continue
            dot = 0.0
            for l in range(d):
                dot += bt[i, l] * bs[k, l]
            cross = sqrt(max(nt2[i] * ns2[k] - dot * dot, 0.0))
            angle = atan2(cross, dot)
            coef = c * (pi - angle)
            acc_s += c * cross + coef * dot
            acc_cross += c * cross
            for l in range(d):
                out_g[i, l] += coef * bs[k, l]
        out_s[i] = acc_s * _INV_2PI
        radial = acc_cross / nt2[i] if nt2[i] > 0.0 else 0.0
        for l in range(d):
            out_g[i, l] = (out_g[i, l] + radial * bt[i, l]) * _INV_2PI


@parallel_kernel(error_model="numpy")
def per_pair_vec_atan(bt, nt2, bs, ns2, cs, out_s, out_g):
    """The same loop with the branch-free arctangent."""
    mt, d = bt.shape
    ms = bs.shape[0]
    for i in prange(mt):
        acc_s = 0.0
        acc_cross = 0.0
        for l in range(d):
            out_g[i, l] = 0.0
        for k in range(ms):
            c = cs[k]
            dot = 0.0
            for l in range(d):
                dot += bt[i, l] * bs[k, l]
            cross = sqrt(max(nt2[i] * ns2[k] - dot * dot, 0.0))
            coef = c * gaussian.fast_atan2(cross, -dot)
            acc_s += c * cross + coef * dot
            acc_cross += c * cross
            for l in range(d):
                out_g[i, l] += coef * bs[k, l]
        out_s[i] = acc_s * _INV_2PI
        radial = acc_cross / nt2[i] if nt2[i] > 0.0 else 0.0
        for l in range(d):
            out_g[i, l] = (out_g[i, l] + radial * bt[i, l]) * _INV_2PI


def run_per_pair(fn, b, c):
    out_s, out_g = np.empty(b.shape[0]), np.empty_like(b)
    n2 = np.einsum("ij,ij->i", b, b)
    fn(b, n2, b, n2, c, out_s, out_g)
    return out_s, out_g


def dense_reference(b, c):
    dots = b @ b.T
    n = np.einsum("ij,ij->i", b, b)
    cross = np.sqrt(np.maximum(n[:, None] * n[None, :] - dots ** 2, 0.0))
    np.fill_diagonal(cross, 0.0)
    theta = np.pi - np.arctan2(cross, dots)
    s = (cross + theta * dots) @ c / (2 * np.pi)
    g = ((theta * c) @ b + ((cross @ c) / n)[:, None] * b) / (2 * np.pi)
    return s, g


def cpu_time_per_pair(fn, m, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return float(np.median(times)) / (m * m)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--m", default="4096")
    parser.add_argument("--d", default="10,100")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.m, args.d, args.repeat = "300", "10", 1
    import numba
    threads = min(args.threads, numba.config.NUMBA_NUM_THREADS)
    out = Output(args.json)
    for line in machine_lines(threads):
        out.say(line)
    rng = np.random.default_rng(0)
    for m in parse_list(args.m):
        for d in parse_list(args.d):
            b = rng.standard_normal((m, d)) / np.sqrt(d)
            c = rng.standard_normal(m) / m
            moved = b.copy()
            moved[-1, -1] = np.nextafter(moved[-1, -1], np.inf)  # forces the general kernel
            ref = dense_reference(b, c) if m <= 8192 else None
            designs = [
                ("per-pair-libm", lambda: run_per_pair(per_pair_libm, b, c)),
                ("per-pair-vec-atan", lambda: run_per_pair(per_pair_vec_atan, b, c)),
                ("tiled-general", lambda: gaussian.interaction(b, moved, c)),
                ("tiled-symmetric", lambda: gaussian.interaction(b, b, c)),
            ]
            out.say(f"m = {m}, d = {d} (load {load_average():.2f}); note: CPU ns per pair per "
                    f"core with 1 thread, then wall time with {threads} threads")
            out.header()
            for name, fn in designs:
                numba.set_num_threads(1)
                ns = 1e9 * cpu_time_per_pair(fn, m, args.repeat)
                numba.set_num_threads(threads)
                t, _, res = median_time(fn, args.repeat)
                err = None
                if ref is not None:
                    num = np.sqrt(np.sum((res[0] - ref[0]) ** 2) + np.sum((res[1] - ref[1]) ** 2))
                    err = num / np.sqrt(np.sum(ref[0] ** 2) + np.sum(ref[1] ** 2))
                out.row(name, m, d, t, m * m, err, f"{ns:6.2f} ns/pair/core (1 thread, CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
