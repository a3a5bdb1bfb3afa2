"""Scratch: kernel variants for issue 8 (deleted when the winner is in gaussian.py)."""
import math
import time

import numpy as np

from meanfield._numba import kernel, parallel_kernel, prange

PI_HI = 3.141592653589793
PI_LO = 1.2246467991473532e-16
PIO2_HI = 1.5707963267948966
PIO2_LO = 6.123233995736766e-17
PIO4_HI = 0.7853981633974483
PIO4_LO = 3.061616997868383e-17
ATAN_HALF_HI = 4.63647609000806093515e-01
ATAN_HALF_LO = 2.26987774529616870924e-17

# fdlibm s_atan.c, |x| < 7/16
AT0 = 3.33333333333329318027e-01
AT1 = -1.99999999998764832476e-01
AT2 = 1.42857142725034663711e-01
AT3 = -1.11111104054623557880e-01
AT4 = 9.09088713343650656196e-02
AT5 = -7.69187620504482999495e-02
AT6 = 6.66107313738753120669e-02
AT7 = -5.83357013379057348645e-02
AT8 = 4.97687799461593236017e-02
AT9 = -3.65315727442169155270e-02
AT10 = 1.62858201153657823623e-02


@kernel(inline="always", error_model="numpy")
def atan2_vec(y, x):
    ax = abs(x)
    ay = abs(y)
    swap = ay > ax
    num = ax if swap else ay
    den = ay if swap else ax
    # fdlibm's reduction of atan(num/den), num/den in [0, 1], to |t| < 7/16: one division
    mid = num > 0.4375 * den
    big = (num >= 0.6875 * den) & (num > 0.0)
    xn = num - den if big else (2.0 * num - den if mid else num)
    xd = num + den if big else (2.0 * den + num if mid else den)
    t = xn / xd
    t = 0.0 if num == den else t
    z = t * t
    w = z * z
    s1 = z * (AT0 + w * (AT2 + w * (AT4 + w * (AT6 + w * (AT8 + w * AT10)))))
    s2 = w * (AT1 + w * (AT3 + w * (AT5 + w * (AT7 + w * AT9))))
    p = t - t * (s1 + s2)
    # alpha = atan(ay/ax) in [0, pi/2] = K + s*p
    k_hi = PIO4_HI if big else (ATAN_HALF_HI if mid else 0.0)
    k_lo = PIO4_LO if big else (ATAN_HALF_LO if mid else 0.0)
    if swap:
        k_hi = PIO2_HI - k_hi
        k_lo = PIO2_LO - k_lo
        p = -p
    if math.copysign(1.0, x) < 0.0:
        k_hi = PI_HI - k_hi
        k_lo = PI_LO - k_lo
        p = -p
    return math.copysign(k_hi + (p + k_lo), y)


@kernel(error_model="numpy")
def atan2_loop(y, x, out):
    for i in range(y.shape[0]):
        out[i] = atan2_vec(y[i], x[i])


@kernel(error_model="numpy")
def atan2_loop_libm(y, x, out):
    for i in range(y.shape[0]):
        out[i] = math.atan2(y[i], x[i])


def ulp_err(got, ref):
    ref = np.asarray(ref)
    sp = np.spacing(np.abs(ref))
    sp = np.where(sp == 0, np.finfo(float).tiny, sp)
    return np.abs(got - ref) / sp


if __name__ == "__main__":
    rng = np.random.default_rng(1)
    n = 2_000_000
    ang = rng.uniform(-np.pi, np.pi, n)
    r = np.exp(rng.uniform(-30, 30, n))
    y = r * np.sin(ang)
    x = r * np.cos(ang)
    out = np.empty(n)
    atan2_loop(y, x, out)
    ref = np.arctan2(y, x)
    e = ulp_err(out, ref)
    print("max ulp", e.max(), "mean", e.mean())
    w = e > 1
    print("frac >1ulp", w.mean(), "t of those", np.minimum(abs(y[w]), abs(x[w]))[:10] / np.maximum(abs(y[w]), abs(x[w]))[:10], ref[w][:10])
    # near 0 and pi
    eps = np.exp(rng.uniform(-700, 0, n))
    for sx in (1.0, -1.0):
        for sy in (1.0, -1.0):
            yy = sy * eps
            xx = sx * np.ones(n)
            atan2_loop(yy, xx, out)
            print(sx, sy, "max ulp", ulp_err(out, np.arctan2(yy, xx)).max())
    sp = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 5e-324, 1e308])
    yy, xx = np.meshgrid(sp, sp)
    yy = yy.ravel().copy(); xx = xx.ravel().copy()
    out = np.empty(yy.size)
    atan2_loop(yy, xx, out)
    ref = np.array([math.atan2(a, b) for a, b in zip(yy, xx)])
    bad = ~((out == ref) & (np.signbit(out) == np.signbit(ref)) | (np.isnan(out) & np.isnan(ref)))
    for a, b, o, rr in zip(yy[bad], xx[bad], out[bad], ref[bad]):
        print("special mismatch", a, b, o, rr)
    # speed
    y = y[:4096].copy(); x = x[:4096].copy()
    out = np.empty(4096)
    for f in (atan2_loop, atan2_loop_libm):
        f(y, x, out)
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(500):
                f(y, x, out)
            ts.append(time.perf_counter() - t)
        print(f.__name__, min(ts) / 500 / 4096 * 1e9, "ns/elem")
    asm = atan2_loop.inspect_asm(atan2_loop.signatures[0])
    print("zmm", asm.count("zmm"), "ymm", asm.count("ymm"), "vdivpd", asm.count("vdivpd"))


# ---------------------------------------------------------------- pair-sum variants
from math import sqrt, pi  # noqa: E402

INV_2PI = 1.0 / (2.0 * pi)


@parallel_kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def pair_sums_blas(bt, nt2, bs, ns2, cs, out_s, out_g, ti, tk):
    """Variant B: BLAS Gram tile and reduction tile (np.dot) inside prange over row blocks."""
    mt, d = bt.shape
    ms = bs.shape[0]
    nbi = (mt + ti - 1) // ti
    for ib in prange(nbi):
        i0 = ib * ti
        i1 = min(i0 + ti, mt)
        ni = i1 - i0
        bi = bt[i0:i1]
        g = np.zeros((ni, d))
        xs = np.zeros(ni)
        for k0 in range(0, ms, tk):
            k1 = min(k0 + tk, ms)
            nk = k1 - k0
            bk = bs[k0:k1]
            dots = np.dot(bi, bk.T)
            w = np.empty((ni, nk))
            for ii in range(ni):
                n_i = nt2[i0 + ii]
                acc = 0.0
                for kk in range(nk):
                    dot = dots[ii, kk]
                    cross = sqrt(max(n_i * ns2[k0 + kk] - dot * dot, 0.0))
                    th = atan2_vec(cross, -dot)
                    c = cs[k0 + kk]
                    w[ii, kk] = c * th
                    acc += c * cross
                xs[ii] += acc
            g += np.dot(w, bk)
        for ii in range(ni):
            i = i0 + ii
            s = xs[ii]
            for l in range(d):
                s += bt[i, l] * g[ii, l]
            out_s[i] = s * INV_2PI
            radial = xs[ii] / nt2[i] if nt2[i] > 0.0 else 0.0
            for l in range(d):
                out_g[i, l] = (g[ii, l] + radial * bt[i, l]) * INV_2PI


def interaction_variant(fn, b_out, b_src, c, *args):
    out_s = np.empty(b_out.shape[0])
    out_g = np.empty_like(b_out)
    fn(b_out, np.einsum("ij,ij->i", b_out, b_out), b_src, np.einsum("ij,ij->i", b_src, b_src),
       c, out_s, out_g, *args)
    return out_s, out_g


def numpy_reference(b_out, b_src, c):
    """Slow dense NumPy formula (MATH §2), with math.atan2 semantics via np.arctan2."""
    dots = b_out @ b_src.T
    n1 = np.einsum("ij,ij->i", b_out, b_out)
    n2 = np.einsum("ij,ij->i", b_src, b_src)
    cross = np.sqrt(np.maximum(n1[:, None] * n2[None, :] - dots ** 2, 0.0))
    theta = np.pi - np.arctan2(cross, dots)
    s = (cross + theta * dots) @ c / (2 * np.pi)
    radial = np.where(n1 > 0, (cross @ c) / np.where(n1 > 0, n1, 1.0), 0.0)
    g = ((theta * c) @ b_src + radial[:, None] * b_out) / (2 * np.pi)
    return s, g


def relerr(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def bench(fn, *args, repeat=5, clock=time.perf_counter):
    fn(*args)
    ts = []
    for _ in range(repeat):
        t = clock()
        fn(*args)
        ts.append(clock() - t)
    return float(np.median(ts))


@parallel_kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def elementwise_only(dots, ni2, nk2, ck, w, xs, reps):
    """The elementwise tile work alone, reps times over an L2-resident tile."""
    ni, nk = dots.shape
    for r in range(reps):
        for ii in prange(ni):
            n_i = ni2[ii]
            acc = 0.0
            for kk in range(nk):
                dot = dots[ii, kk]
                cross = sqrt(max(n_i * nk2[kk] - dot * dot, 0.0))
                th = atan2_vec(cross, -dot)
                c = ck[kk]
                w[ii, kk] = c * th
                acc += c * cross
            xs[ii] += acc
