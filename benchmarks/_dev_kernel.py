"""Scratch: kernel variants for issue 8 (deleted when the winner is in gaussian.py)."""
import math
import time

import numba
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


# ------------------------------------------------ pure-Numba tile GEMMs (no BLAS inside prange)
@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def gram_tile_r1(a, i0, ni, bT, k0, nk, dots):
    """dots[ii, kk] = <a[i0+ii], b[k0+kk]> by rank-1 updates vectorised over kk, 4 rows at once."""
    d = a.shape[1]
    ii = 0
    while ii < ni:
        if ii + 4 <= ni:
            r0 = dots[ii]
            r1 = dots[ii + 1]
            r2 = dots[ii + 2]
            r3 = dots[ii + 3]
            a0 = a[i0 + ii, 0]
            a1 = a[i0 + ii + 1, 0]
            a2 = a[i0 + ii + 2, 0]
            a3 = a[i0 + ii + 3, 0]
            bl = bT[0]
            for kk in range(nk):
                v = bl[k0 + kk]
                r0[kk] = a0 * v
                r1[kk] = a1 * v
                r2[kk] = a2 * v
                r3[kk] = a3 * v
            for l in range(1, d):
                a0 = a[i0 + ii, l]
                a1 = a[i0 + ii + 1, l]
                a2 = a[i0 + ii + 2, l]
                a3 = a[i0 + ii + 3, l]
                bl = bT[l]
                for kk in range(nk):
                    v = bl[k0 + kk]
                    r0[kk] += a0 * v
                    r1[kk] += a1 * v
                    r2[kk] += a2 * v
                    r3[kk] += a3 * v
            ii += 4
        else:
            r0 = dots[ii]
            for kk in range(nk):
                r0[kk] = 0.0
            for l in range(d):
                a0 = a[i0 + ii, l]
                bl = bT[l]
                for kk in range(nk):
                    r0[kk] += a0 * bl[k0 + kk]
            ii += 1


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def gram_tile_dot(a, i0, ni, b, k0, nk, dots):
    """dots by dot products over l (reassoc), 2x4 register block."""
    d = a.shape[1]
    for ii in range(ni):
        x = a[i0 + ii]
        kk = 0
        while kk + 4 <= nk:
            y0 = b[k0 + kk]
            y1 = b[k0 + kk + 1]
            y2 = b[k0 + kk + 2]
            y3 = b[k0 + kk + 3]
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for l in range(d):
                xl = x[l]
                s0 += xl * y0[l]
                s1 += xl * y1[l]
                s2 += xl * y2[l]
                s3 += xl * y3[l]
            dots[ii, kk] = s0
            dots[ii, kk + 1] = s1
            dots[ii, kk + 2] = s2
            dots[ii, kk + 3] = s3
            kk += 4
        while kk < nk:
            y0 = b[k0 + kk]
            s0 = 0.0
            for l in range(d):
                s0 += x[l] * y0[l]
            dots[ii, kk] = s0
            kk += 1


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def reduce_tile_dot(w, ni, nk, bT, k0, g):
    """g[ii, l] += sum_kk w[ii, kk] b[k0+kk, l], dots over kk (reassoc), 2 rows x 4 coords."""
    d = g.shape[1]
    ii = 0
    while ii < ni:
        two = ii + 2 <= ni
        w0 = w[ii]
        w1 = w[ii + 1] if two else w[ii]
        l = 0
        while l + 4 <= d:
            v0 = bT[l]
            v1 = bT[l + 1]
            v2 = bT[l + 2]
            v3 = bT[l + 3]
            s00 = 0.0
            s01 = 0.0
            s02 = 0.0
            s03 = 0.0
            s10 = 0.0
            s11 = 0.0
            s12 = 0.0
            s13 = 0.0
            for kk in range(nk):
                x0 = w0[kk]
                x1 = w1[kk]
                s00 += x0 * v0[k0 + kk]
                s01 += x0 * v1[k0 + kk]
                s02 += x0 * v2[k0 + kk]
                s03 += x0 * v3[k0 + kk]
                s10 += x1 * v0[k0 + kk]
                s11 += x1 * v1[k0 + kk]
                s12 += x1 * v2[k0 + kk]
                s13 += x1 * v3[k0 + kk]
            g[ii, l] += s00
            g[ii, l + 1] += s01
            g[ii, l + 2] += s02
            g[ii, l + 3] += s03
            if two:
                g[ii + 1, l] += s10
                g[ii + 1, l + 1] += s11
                g[ii + 1, l + 2] += s12
                g[ii + 1, l + 3] += s13
            l += 4
        while l < d:
            v0 = bT[l]
            s00 = 0.0
            s10 = 0.0
            for kk in range(nk):
                s00 += w0[kk] * v0[k0 + kk]
                s10 += w1[kk] * v0[k0 + kk]
            g[ii, l] += s00
            if two:
                g[ii + 1, l] += s10
            l += 1
        ii += 2


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def reduce_tile_r1(w, ni, nk, b, k0, g):
    """g[ii, :] += sum_kk w[ii, kk] b[k0+kk, :], rank-1 updates vectorised over l."""
    d = g.shape[1]
    for ii in range(ni):
        gi = g[ii]
        wi = w[ii]
        for kk in range(nk):
            x = wi[kk]
            y = b[k0 + kk]
            for l in range(d):
                gi[l] += x * y[l]


@kernel(error_model="numpy", fastmath={"contract"})
def gram_tile_slp(a, i0, ni, bT, k0, nk, dots):
    """dots by an explicit 4 x 8 register block (SLP-vectorised), rows in steps of 4, cols 8.

    Preconditions: ni % 4 == 0, nk % 8 == 0.
    """
    d = a.shape[1]
    for ii in range(0, ni, 4):
        for kk in range(0, nk, 8):
            c00 = 0.0
            c01 = 0.0
            c02 = 0.0
            c03 = 0.0
            c04 = 0.0
            c05 = 0.0
            c06 = 0.0
            c07 = 0.0
            c10 = 0.0
            c11 = 0.0
            c12 = 0.0
            c13 = 0.0
            c14 = 0.0
            c15 = 0.0
            c16 = 0.0
            c17 = 0.0
            c20 = 0.0
            c21 = 0.0
            c22 = 0.0
            c23 = 0.0
            c24 = 0.0
            c25 = 0.0
            c26 = 0.0
            c27 = 0.0
            c30 = 0.0
            c31 = 0.0
            c32 = 0.0
            c33 = 0.0
            c34 = 0.0
            c35 = 0.0
            c36 = 0.0
            c37 = 0.0
            for l in range(d):
                a0 = a[i0 + ii + 0, l]
                a1 = a[i0 + ii + 1, l]
                a2 = a[i0 + ii + 2, l]
                a3 = a[i0 + ii + 3, l]
                bl = bT[l]
                v0 = bl[k0 + kk + 0]
                v1 = bl[k0 + kk + 1]
                v2 = bl[k0 + kk + 2]
                v3 = bl[k0 + kk + 3]
                v4 = bl[k0 + kk + 4]
                v5 = bl[k0 + kk + 5]
                v6 = bl[k0 + kk + 6]
                v7 = bl[k0 + kk + 7]
                c00 += a0 * v0
                c01 += a0 * v1
                c02 += a0 * v2
                c03 += a0 * v3
                c04 += a0 * v4
                c05 += a0 * v5
                c06 += a0 * v6
                c07 += a0 * v7
                c10 += a1 * v0
                c11 += a1 * v1
                c12 += a1 * v2
                c13 += a1 * v3
                c14 += a1 * v4
                c15 += a1 * v5
                c16 += a1 * v6
                c17 += a1 * v7
                c20 += a2 * v0
                c21 += a2 * v1
                c22 += a2 * v2
                c23 += a2 * v3
                c24 += a2 * v4
                c25 += a2 * v5
                c26 += a2 * v6
                c27 += a2 * v7
                c30 += a3 * v0
                c31 += a3 * v1
                c32 += a3 * v2
                c33 += a3 * v3
                c34 += a3 * v4
                c35 += a3 * v5
                c36 += a3 * v6
                c37 += a3 * v7
            dots[ii + 0, kk + 0] = c00
            dots[ii + 0, kk + 1] = c01
            dots[ii + 0, kk + 2] = c02
            dots[ii + 0, kk + 3] = c03
            dots[ii + 0, kk + 4] = c04
            dots[ii + 0, kk + 5] = c05
            dots[ii + 0, kk + 6] = c06
            dots[ii + 0, kk + 7] = c07
            dots[ii + 1, kk + 0] = c10
            dots[ii + 1, kk + 1] = c11
            dots[ii + 1, kk + 2] = c12
            dots[ii + 1, kk + 3] = c13
            dots[ii + 1, kk + 4] = c14
            dots[ii + 1, kk + 5] = c15
            dots[ii + 1, kk + 6] = c16
            dots[ii + 1, kk + 7] = c17
            dots[ii + 2, kk + 0] = c20
            dots[ii + 2, kk + 1] = c21
            dots[ii + 2, kk + 2] = c22
            dots[ii + 2, kk + 3] = c23
            dots[ii + 2, kk + 4] = c24
            dots[ii + 2, kk + 5] = c25
            dots[ii + 2, kk + 6] = c26
            dots[ii + 2, kk + 7] = c27
            dots[ii + 3, kk + 0] = c30
            dots[ii + 3, kk + 1] = c31
            dots[ii + 3, kk + 2] = c32
            dots[ii + 3, kk + 3] = c33
            dots[ii + 3, kk + 4] = c34
            dots[ii + 3, kk + 5] = c35
            dots[ii + 3, kk + 6] = c36
            dots[ii + 3, kk + 7] = c37


@kernel
def rep_tiles(fn_code, reps, a, b, bT, ti, tk, dots, w, g):
    for r in range(reps):
        if fn_code == 0:
            gram_tile_r1(a, 0, ti, bT, 0, tk, dots)
        elif fn_code == 1:
            gram_tile_dot(a, 0, ti, b, 0, tk, dots)
        elif fn_code == 4:
            gram_tile_slp(a, 0, ti, bT, 0, tk, dots)
        elif fn_code == 2:
            reduce_tile_dot(w, ti, tk, bT, 0, g)
        else:
            reduce_tile_r1(w, ti, tk, b, 0, g)


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def abt_tile(x, xr, xc, nx, y, yr, yc, ny, n, out, accumulate):
    """out[i, j] (+)= sum_t x[xr+i, xc+t] * y[yr+j, yc+t], i < nx, j < ny, t < n.

    2 x 4 register block, reduction over the contiguous t (vectorised, reassoc).
    """
    i = 0
    while i < nx:
        two = i + 2 <= nx
        x0 = x[xr + i, xc:xc + n]
        x1 = x[xr + i + 1, xc:xc + n] if two else x0
        j = 0
        while j + 4 <= ny:
            y0 = y[yr + j, yc:yc + n]
            y1 = y[yr + j + 1, yc:yc + n]
            y2 = y[yr + j + 2, yc:yc + n]
            y3 = y[yr + j + 3, yc:yc + n]
            s00 = 0.0
            s01 = 0.0
            s02 = 0.0
            s03 = 0.0
            s10 = 0.0
            s11 = 0.0
            s12 = 0.0
            s13 = 0.0
            for t in range(n):
                u0 = x0[t]
                u1 = x1[t]
                v0 = y0[t]
                v1 = y1[t]
                v2 = y2[t]
                v3 = y3[t]
                s00 += u0 * v0
                s01 += u0 * v1
                s02 += u0 * v2
                s03 += u0 * v3
                s10 += u1 * v0
                s11 += u1 * v1
                s12 += u1 * v2
                s13 += u1 * v3
            if accumulate:
                out[i, j] += s00
                out[i, j + 1] += s01
                out[i, j + 2] += s02
                out[i, j + 3] += s03
                if two:
                    out[i + 1, j] += s10
                    out[i + 1, j + 1] += s11
                    out[i + 1, j + 2] += s12
                    out[i + 1, j + 3] += s13
            else:
                out[i, j] = s00
                out[i, j + 1] = s01
                out[i, j + 2] = s02
                out[i, j + 3] = s03
                if two:
                    out[i + 1, j] = s10
                    out[i + 1, j + 1] = s11
                    out[i + 1, j + 2] = s12
                    out[i + 1, j + 3] = s13
            j += 4
        while j < ny:
            y0 = y[yr + j, yc:yc + n]
            s00 = 0.0
            s10 = 0.0
            for t in range(n):
                s00 += x0[t] * y0[t]
                s10 += x1[t] * y0[t]
            if accumulate:
                out[i, j] += s00
                if two:
                    out[i + 1, j] += s10
            else:
                out[i, j] = s00
                if two:
                    out[i + 1, j] = s10
            j += 1
        i += 2


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def tile_elementwise(dots, ni, nk, nt2, i0, ns2, cs, k0, w, xs):
    """w[ii,kk] = c_k theta_ik; xs[ii] += sum_kk c_k cross_ik."""
    for ii in range(ni):
        n_i = nt2[i0 + ii]
        acc = 0.0
        drow = dots[ii]
        wrow = w[ii]
        for kk in range(nk):
            dot = drow[kk]
            cross = sqrt(max(n_i * ns2[k0 + kk] - dot * dot, 0.0))
            th = atan2_vec(cross, -dot)
            c = cs[k0 + kk]
            wrow[kk] = c * th
            acc += c * cross
        xs[ii] += acc


@parallel_kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def pair_sums_tiled(bt, nt2, bs, bsT, ns2, cs, out_s, out_g, ti, tk, small_d):
    """Variant A: pure-Numba tiles (Gram tile, vectorised elementwise, reduction tile)."""
    mt, d = bt.shape
    ms = bs.shape[0]
    nbi = (mt + ti - 1) // ti
    for ib in prange(nbi):
        i0 = ib * ti
        ni = min(ti, mt - i0)
        dots = np.empty((ti, tk))
        w = np.empty((ti, tk))
        g = np.zeros((ti, d))
        xs = np.zeros(ti)
        for k0 in range(0, ms, tk):
            nk = min(tk, ms - k0)
            if small_d & 1:
                gram_tile_r1(bt, i0, ni, bsT, k0, nk, dots)
            elif not small_d & 8:
                abt_tile(bt, i0, 0, ni, bs, k0, 0, nk, d, dots, False)
            if not small_d & 2:
                tile_elementwise(dots, ni, nk, nt2, i0, ns2, cs, k0, w, xs)
            if not small_d & 4:
                abt_tile(w, 0, 0, ni, bsT, 0, k0, d, nk, g, True)
        for ii in range(ni):
            i = i0 + ii
            s = xs[ii]
            for l in range(d):
                s += bt[i, l] * g[ii, l]
            out_s[i] = s * INV_2PI
            radial = xs[ii] / nt2[i] if nt2[i] > 0.0 else 0.0
            for l in range(d):
                out_g[i, l] = (g[ii, l] + radial * bt[i, l]) * INV_2PI


def interaction_tiled(b_out, b_src, c, ti=64, tk=256, small_d=None):
    out_s = np.empty(b_out.shape[0])
    out_g = np.empty_like(b_out)
    if small_d is None:
        small_d = int(b_out.shape[1] < 32)
    pair_sums_tiled(b_out, np.einsum("ij,ij->i", b_out, b_out), b_src, np.ascontiguousarray(b_src.T),
                    np.einsum("ij,ij->i", b_src, b_src), c, out_s, out_g, ti, tk, small_d)
    return out_s, out_g


# ------------------------------------------- variant B: Python panels, numpy BLAS, Numba elementwise
@parallel_kernel(error_model="numpy")
def panel_theta_cross(dots, nr, nr0, nc, nc0, cross):
    """In place: dots[i, k] -> theta = pi - angle; cross[i, k] = |u||v| sin(angle)."""
    p, q = dots.shape
    for i in prange(p):
        n_i = nr[nr0 + i]
        drow = dots[i]
        crow = cross[i]
        for k in range(q):
            dot = drow[k]
            cr = sqrt(max(n_i * nc[nc0 + k] - dot * dot, 0.0))
            drow[k] = atan2_vec(cr, -dot)
            crow[k] = cr


def interaction_panels(b, bs, c, p=256, q=4096, symmetric=False):
    m, d = b.shape
    n = bs.shape[0]
    nr = np.einsum("ij,ij->i", b, b)
    nc = np.einsum("ij,ij->i", bs, bs)
    g = np.zeros((m, d))
    xs = np.zeros(m)
    cb = c[:, None] * bs
    buf_d = np.empty(p * q)
    buf_c = np.empty(p * q)
    for i0 in range(0, m, p):
        i1 = min(i0 + p, m)
        bi = b[i0:i1]
        k_start = i0 if symmetric else 0
        for k0 in range(k_start, n, q):
            k1 = min(k0 + q, n)
            dots = buf_d[:(i1 - i0) * (k1 - k0)].reshape(i1 - i0, k1 - k0)
            cross = buf_c[:(i1 - i0) * (k1 - k0)].reshape(i1 - i0, k1 - k0)
            np.dot(bi, bs[k0:k1].T, out=dots)
            panel_theta_cross(dots, nr, i0, nc, k0, cross)
            g[i0:i1] += dots @ cb[k0:k1]
            xs[i0:i1] += cross @ c[k0:k1]
            if symmetric:
                # transposed contributions, excluding the diagonal block i0:i1
                j0 = max(k0, i1)
                if j0 < k1:
                    t = dots[:, j0 - k0:]
                    g[j0:k1] += t.T @ cb[i0:i1]
                    xs[j0:k1] += cross[:, j0 - k0:].T @ c[i0:i1]
    s = (xs + np.einsum("ij,ij->i", b, g)) / (2 * np.pi)
    radial = np.where(nr > 0, xs / np.where(nr > 0, nr, 1.0), 0.0)
    return s, (g + radial[:, None] * b) / (2 * np.pi)


@kernel(error_model="numpy", fastmath={"contract"})
def ay_tile(a, ar, ac, ni, nt, y, yr, yc, nk, out, accumulate):
    """out[i, j] (+)= sum_t a[ar+i, ac+t] * y[yr+t, yc+j]: rank-4 updates of out rows,
    vectorised over the contiguous j (no reassociation needed)."""
    for i in range(ni):
        orow = out[i, :nk]
        ai = a[ar + i, ac:ac + nt]
        if not accumulate:
            for j in range(nk):
                orow[j] = 0.0
        t = 0
        while t + 4 <= nt:
            a0 = ai[t]
            a1 = ai[t + 1]
            a2 = ai[t + 2]
            a3 = ai[t + 3]
            y0 = y[yr + t, yc:yc + nk]
            y1 = y[yr + t + 1, yc:yc + nk]
            y2 = y[yr + t + 2, yc:yc + nk]
            y3 = y[yr + t + 3, yc:yc + nk]
            for j in range(nk):
                orow[j] += a0 * y0[j] + a1 * y1[j] + a2 * y2[j] + a3 * y3[j]
            t += 4
        while t < nt:
            a0 = ai[t]
            y0 = y[yr + t, yc:yc + nk]
            for j in range(nk):
                orow[j] += a0 * y0[j]
            t += 1


@kernel
def rep_tiles2(code, reps, a, b, bT, ti, tk, dots):
    for r in range(reps):
        if code == 0:
            ay_tile(a, 0, 0, ti, a.shape[1], bT, 0, 0, tk, dots, False)
        else:
            abt_tile(a, 0, 0, ti, b, 0, 0, tk, a.shape[1], dots, False)


@kernel(error_model="numpy", fastmath={"reassoc"})
def sym_elementwise(dots, ni, nk, n2, i0, k0, cs, w1, th, xs_row, xs_col, diag):
    """Off-diagonal (diag False) or diagonal tile: w1 = c_k theta, th = theta,
    xs_row[ii] += sum_k c_k cross, xs_col[kk] += sum_i c_i cross (off-diagonal only)."""
    n2k = n2[k0:k0 + nk]
    ck = cs[k0:k0 + nk]
    col = xs_col[:nk]
    for ii in range(ni):
        n_i = n2[i0 + ii]
        c_i = cs[i0 + ii]
        acc = 0.0
        drow = dots[ii, :nk]
        wrow = w1[ii, :nk]
        trow = th[ii, :nk]
        for kk in range(nk):
            dot = drow[kk]
            cross = sqrt(max(n_i * n2k[kk] - dot * dot, 0.0))
            t = atan2_vec(cross, -dot)
            c = ck[kk]
            wrow[kk] = c * t
            trow[kk] = t
            acc += c * cross
            col[kk] += c_i * cross
        xs_row[ii] += acc


@kernel(error_model="numpy")
def scatter_T(outT, col, nk, g, xs):
    """g[kk, :] += outT[:, kk]; xs[kk] += col[kk]."""
    d = outT.shape[0]
    for kk in range(nk):
        xs[kk] += col[kk]
        gk = g[kk]
        for l in range(d):
            gk[l] += outT[l, kk]


@parallel_kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def pair_sums_sym(b, bT, cbT, cs, n2, out_s, out_g, tb, small_d):
    """Variant A-sym: b_out is b_src; each unordered pair of tiles once, round-robin rounds."""
    m, d = b.shape
    nb = (m + tb - 1) // tb
    g = np.zeros((m, d))
    xs = np.zeros(m)
    # round 0: diagonal tiles; their Gram diagonal defines n2 (so cross_ii = 0 exactly)
    for ib in prange(nb):
        i0 = ib * tb
        ni = min(tb, m - i0)
        dots = np.empty((tb, tb))
        w1 = np.empty((tb, tb))
        th = np.empty((tb, tb))
        col = np.zeros(tb)
        if small_d & 1:
            ay_tile(b, i0, 0, ni, d, bT, 0, i0, ni, dots, False)
        else:
            abt_tile(b, i0, 0, ni, b, i0, 0, ni, d, dots, False)
        for ii in range(ni):
            n2[i0 + ii] = dots[ii, ii]
        sym_elementwise(dots, ni, ni, n2, i0, i0, cs, w1, th, xs[i0:i0 + ni], col, True)
        abt_tile(w1, 0, 0, ni, bT, 0, i0, d, ni, g[i0:i0 + ni], True)
    nbe = nb + (nb & 1)
    for r in range(nbe - 1):
        for p in prange(nbe // 2):
            if p == 0:
                ib = r
                kb = nbe - 1
            else:
                ib = (r + p) % (nbe - 1)
                kb = (r - p + nbe - 1) % (nbe - 1)
            if ib >= nb or kb >= nb:
                continue
            i0 = ib * tb
            ni = min(tb, m - i0)
            k0 = kb * tb
            nk = min(tb, m - k0)
            dots = np.empty((tb, tb))
            w1 = np.empty((tb, tb))
            th = np.empty((tb, tb))
            col = np.zeros(tb)
            outT = np.empty((d, tb))
            if small_d & 1:
                ay_tile(b, i0, 0, ni, d, bT, 0, k0, nk, dots, False)
            elif not small_d & 16:
                abt_tile(b, i0, 0, ni, b, k0, 0, nk, d, dots, False)
            if not small_d & 2:
                sym_elementwise(dots, ni, nk, n2, i0, k0, cs, w1, th, xs[i0:i0 + ni], col, False)
            if not small_d & 4:
                abt_tile(w1, 0, 0, ni, bT, 0, k0, d, nk, g[i0:i0 + ni], True)
            if not small_d & 8:
                ay_tile(cbT, 0, i0, d, ni, th, 0, 0, nk, outT, False)
                scatter_T(outT, col, nk, g[k0:k0 + nk], xs[k0:k0 + nk])
    for i in prange(m):
        s = xs[i]
        for l in range(d):
            s += b[i, l] * g[i, l]
        out_s[i] = s * INV_2PI
        radial = xs[i] / n2[i] if n2[i] > 0.0 else 0.0
        for l in range(d):
            out_g[i, l] = (g[i, l] + radial * b[i, l]) * INV_2PI


def interaction_sym(b, c, tb=128, small_d=None):
    m, d = b.shape
    out_s = np.empty(m)
    out_g = np.empty_like(b)
    if small_d is None:
        small_d = int(d < 32)
    pair_sums_sym(b, np.ascontiguousarray(b.T), np.ascontiguousarray((c[:, None] * b).T), c,
                  np.empty(m), out_s, out_g, tb, small_d)
    return out_s, out_g


def numpy_reference_sym(b, c):
    """Dense reference for b_src = b_out with the Gram's own diagonal as squared norms
    (so the self-pair has cross = 0 exactly)."""
    dots = b @ b.T
    n = np.diag(dots).copy()
    cross = np.sqrt(np.maximum(n[:, None] * n[None, :] - dots ** 2, 0.0))
    np.fill_diagonal(cross, 0.0)
    theta = np.pi - np.arctan2(cross, dots)
    s = (cross + theta * dots) @ c / (2 * np.pi)
    radial = np.where(n > 0, (cross @ c) / np.where(n > 0, n, 1.0), 0.0)
    g = ((theta * c) @ b + radial[:, None] * b) / (2 * np.pi)
    return s, g


@kernel(error_model="numpy")
def phase_bench(code, reps, b, bT, cbT, cs, n2, tb, d, dots, w1, th, col, xs, g, outT):
    for r in range(reps):
        if code == 0:
            ay_tile(b, 0, 0, tb, d, bT, 0, tb, tb, dots, False)
        elif code == 1:
            abt_tile(b, 0, 0, tb, b, tb, 0, tb, d, dots, False)
        elif code == 2:
            sym_elementwise(dots, tb, tb, n2, 0, tb, cs, w1, th, xs, col, False)
        elif code == 3:
            abt_tile(w1, 0, 0, tb, bT, 0, tb, d, tb, g, True)
        elif code == 4:
            ay_tile(cbT, 0, 0, d, tb, th, 0, 0, tb, outT, False)
        elif code == 5:
            scatter_T(outT, col, tb, g[tb:2 * tb], xs[tb:2 * tb])


@kernel(error_model="numpy")
def transpose_scale(th, ni, nk, c, out):
    """out[kk, ii] = th[ii, kk] * c[ii] (blocks of 8 rows)."""
    ii0 = 0
    while ii0 + 8 <= ni:
        c0 = c[ii0]
        c1 = c[ii0 + 1]
        c2 = c[ii0 + 2]
        c3 = c[ii0 + 3]
        c4 = c[ii0 + 4]
        c5 = c[ii0 + 5]
        c6 = c[ii0 + 6]
        c7 = c[ii0 + 7]
        t0 = th[ii0, :nk]
        t1 = th[ii0 + 1, :nk]
        t2 = th[ii0 + 2, :nk]
        t3 = th[ii0 + 3, :nk]
        t4 = th[ii0 + 4, :nk]
        t5 = th[ii0 + 5, :nk]
        t6 = th[ii0 + 6, :nk]
        t7 = th[ii0 + 7, :nk]
        for kk in range(nk):
            o = out[kk, ii0:ii0 + 8]
            o[0] = t0[kk] * c0
            o[1] = t1[kk] * c1
            o[2] = t2[kk] * c2
            o[3] = t3[kk] * c3
            o[4] = t4[kk] * c4
            o[5] = t5[kk] * c5
            o[6] = t6[kk] * c6
            o[7] = t7[kk] * c7
        ii0 += 8
    for ii in range(ii0, ni):
        ci = c[ii]
        for kk in range(nk):
            out[kk, ii] = th[ii, kk] * ci


@kernel(error_model="numpy")
def phase_bench2(code, reps, b, bT, cs, tb, d, th, w2T, g):
    for r in range(reps):
        if code == 0:
            transpose_scale(th, tb, tb, cs, w2T)
        elif code == 1:
            abt_tile(w2T, 0, 0, tb, bT, 0, 0, d, tb, g, True)
