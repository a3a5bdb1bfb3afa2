"""Sampled-data expectations: predictor and potential gradients on a batch, compiled with Numba.

Cost O(n m d) per evaluation for n inputs and m particles. Two kernels: the predictor
(parallel over blocks of inputs, which own f(x_n)) and the gradients (parallel over blocks
of particles, which own their gradient). Both work on tiles: the products ⟨b_j, x_n⟩ come
from the register-blocked tile helpers of :mod:`meanfield.kernels.gaussian`, the activation runs
as one vectorised loop per tile row, and Σ_n r_n σ'(z_nj) x_n is a second tile product.
Activations are dispatched on an integer code (``problem.ACTIVATIONS``), never a Python
callable, so the cached kernels stay generic.
"""
from math import tanh

import numpy as np

from .threads import kernel, parallel_kernel, prange
from .gaussian import abt_tile, gram_tile

__all__ = ["predict_batch", "potential_gradients"]


_BLOCK = 64    # inputs (predictor) or particles (gradients) per block
_TILE = 256    # particles (predictor) or inputs (gradients) per tile


@kernel(error_model="numpy")
def _act_row(z, code, slope, out):
    """out = σ(z) elementwise; one loop per activation so that each vectorises."""
    n = z.shape[0]
    if code == 0:
        for t in range(n):
            out[t] = z[t] if z[t] > 0.0 else 0.0
    elif code == 1:
        for t in range(n):
            out[t] = z[t]
    elif code == 2:
        for t in range(n):
            out[t] = z[t] if z[t] > 0.0 else slope * z[t]
    else:
        for t in range(n):
            out[t] = tanh(z[t])


@kernel(error_model="numpy")
def _act_prime_row(z, code, slope, out):
    """out = σ'(z) elementwise (σ'(0) = 0 for ReLU, the convention of autograd frameworks)."""
    n = z.shape[0]
    if code == 0:
        for t in range(n):
            out[t] = 1.0 if z[t] > 0.0 else 0.0
    elif code == 1:
        for t in range(n):
            out[t] = 1.0
    elif code == 2:
        for t in range(n):
            out[t] = 1.0 if z[t] > 0.0 else slope
    else:
        for t in range(n):
            th = tanh(z[t])
            out[t] = 1.0 - th * th


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def _predict_block(ib, x, c, b, b_t, code, slope, out):
    """out_i = Σ_j c_j σ(⟨b_j, x_i⟩) for the inputs of block ib: z tiles from the Gram-tile
    helpers of :mod:`meanfield.kernels.gaussian`, then a vectorised activation and row sum."""
    n, d = x.shape
    m = b.shape[0]
    i0 = ib * _BLOCK
    ni = min(_BLOCK, n - i0)
    z = np.empty((_BLOCK, _TILE))
    act = np.empty(_TILE)
    acc = np.zeros(_BLOCK)
    for k0 in range(0, m, _TILE):
        nk = min(_TILE, m - k0)
        gram_tile(x, i0, ni, b, b_t, k0, nk, z)
        ck = c[k0:k0 + nk]
        for ii in range(ni):
            _act_row(z[ii, :nk], code, slope, act)
            s = 0.0
            for kk in range(nk):
                s += ck[kk] * act[kk]
            acc[ii] += s
    for ii in range(ni):
        out[i0 + ii] = acc[ii]


@parallel_kernel(error_model="numpy")
def _predict_kernel(x, c, b, b_t, code, slope, out, serial):
    """out_n = Σ_j c_j σ(⟨b_j, x_n⟩). x (n, d), c (m,), b (m, d) and its transpose b_t
    (d, m) C-contiguous float64.

    Parallel over blocks of inputs (each owns its f(x_n)), or a plain loop when
    ``serial`` (small problems, see :func:`_run_serially`): the same numbers either way.
    """
    n_blocks = (x.shape[0] + _BLOCK - 1) // _BLOCK
    if serial:
        for ib in range(n_blocks):
            _predict_block(ib, x, c, b, b_t, code, slope, out)
    else:
        for ib in prange(n_blocks):
            _predict_block(ib, x, c, b, b_t, code, slope, out)


@kernel(error_model="numpy", fastmath={"reassoc", "contract"})
def _gradient_block(jb, x, x_t, r, a, b, code, slope, out_ga, out_gb):
    """For the particles of block jb: ga_j = mean_n r_n σ(z_nj) and
    gb_j = a_j mean_n r_n σ'(z_nj) x_n, z_nj = ⟨b_j, x_n⟩, by tiles of inputs."""
    n, d = x.shape
    m = b.shape[0]
    j0 = jb * _BLOCK
    nj = min(_BLOCK, m - j0)
    z = np.empty((_BLOCK, _TILE))
    w = np.empty((_BLOCK, _TILE))
    act = np.empty(_TILE)
    acc_a = np.zeros(_BLOCK)
    gb = out_gb[j0:j0 + nj]
    gb[:] = 0.0
    for i0 in range(0, n, _TILE):
        ni = min(_TILE, n - i0)
        gram_tile(b, j0, nj, x, x_t, i0, ni, z)
        ri = r[i0:i0 + ni]
        for jj in range(nj):
            zrow = z[jj, :ni]
            _act_row(zrow, code, slope, act)
            s = 0.0
            for t in range(ni):
                s += ri[t] * act[t]
            acc_a[jj] += s
            wrow = w[jj, :ni]
            _act_prime_row(zrow, code, slope, wrow)
            for t in range(ni):
                wrow[t] *= ri[t]
        # gb_j += Σ_t w_jt x_t: dot products over the tile's inputs
        abt_tile(w, 0, 0, nj, x_t, 0, i0, d, ni, gb, True)
    for jj in range(nj):
        out_ga[j0 + jj] = acc_a[jj] / n
        scale = a[j0 + jj] / n
        for l in range(d):
            gb[jj, l] *= scale


@parallel_kernel(error_model="numpy")
def _gradient_kernel(x, x_t, r, a, b, code, slope, out_ga, out_gb, serial):
    """Potential gradients at every particle; parallel over blocks of particles (each owns
    its gradients), or a plain loop when ``serial``: the same numbers either way.
    ``x_t`` is x transposed, (d, n), C-contiguous."""
    n_blocks = (b.shape[0] + _BLOCK - 1) // _BLOCK
    if serial:
        for jb in range(n_blocks):
            _gradient_block(jb, x, x_t, r, a, b, code, slope, out_ga, out_gb)
    else:
        for jb in prange(n_blocks):
            _gradient_block(jb, x, x_t, r, a, b, code, slope, out_ga, out_gb)


def _run_serially(n, m, d):
    """Small batches run without a parallel region: starting one costs microseconds on an
    idle machine but milliseconds when other processes hold the cores (it waits for all
    its threads). Depends on the sizes only, so results stay thread-independent."""
    return n * m * (d + 4) < (1 << 22)


def predict_batch(x, a, b, weights, act_code=0, slope=0.01):
    """f(μ; x_n) = Σ_j w_j a_j σ(⟨b_j, x_n⟩) for every row of x (n, d); returns (n,)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != b.shape[1]:
        raise ValueError(f"inputs must have shape (n, {b.shape[1]}), got {x.shape}")
    out = np.empty(x.shape[0])
    b = np.ascontiguousarray(b, dtype=np.float64)
    _predict_kernel(x, np.ascontiguousarray(weights * a, dtype=np.float64), b,
                    np.ascontiguousarray(b.T), int(act_code), float(slope), out,
                    _run_serially(x.shape[0], b.shape[0], b.shape[1]))
    return out


def potential_gradients(x, residual, a, b, act_code=0, slope=0.01):
    """∂_a V and ∇_b V of V(θ) = mean_n r_n a σ(⟨b, x_n⟩) at every particle.

    Parameters
    ----------
    x : (n, d) array
    residual : (n,) array
        r_n = f(μ; x_n) − f*(x_n).
    a : (m,) array
    b : (m, d) array

    Returns
    -------
    ga : (m,) array
    gb : (m, d) array
    """
    ga = np.empty(a.shape[0])
    gb = np.empty_like(b)
    x = np.ascontiguousarray(x, dtype=np.float64)
    _gradient_kernel(x, np.ascontiguousarray(x.T), np.ascontiguousarray(residual, dtype=np.float64),
                     np.ascontiguousarray(a, dtype=np.float64),
                     np.ascontiguousarray(b, dtype=np.float64), int(act_code), float(slope),
                     ga, gb, _run_serially(x.shape[0], b.shape[0], b.shape[1]))
    return ga, gb
