"""Sampled-data expectations: predictor and potential gradients on a batch, compiled with Numba.

Cost O(n m d) per evaluation for n inputs and m particles. Two kernels: the predictor
(parallel over inputs, which own f(x_n)) and the gradients (parallel over particles, which
own their gradient). Activations are dispatched on an integer code (``problem.ACTIVATIONS``),
never a Python callable, so the cached kernels stay generic.
"""
from math import tanh

import numpy as np

from ._numba import kernel, parallel_kernel, prange

__all__ = ["predict_batch", "potential_gradients"]


@kernel
def _act(z, code, slope):
    if code == 0:
        return z if z > 0.0 else 0.0
    if code == 1:
        return z
    if code == 2:
        return z if z > 0.0 else slope * z
    return tanh(z)


@kernel
def _act_prime(z, code, slope):
    # σ'(0) = 0 for ReLU (the convention of autograd frameworks); measure-zero for sampled data
    if code == 0:
        return 1.0 if z > 0.0 else 0.0
    if code == 1:
        return 1.0
    if code == 2:
        return 1.0 if z > 0.0 else slope
    t = tanh(z)
    return 1.0 - t * t


@kernel(fastmath={"reassoc", "contract"})
def _predict_row(i, x, c, b, code, slope, out):
    """out_i = Σ_j c_j σ(⟨b_j, x_i⟩) (the dot product vectorises: ``reassoc``)."""
    d = x.shape[1]
    xi = x[i]
    acc = 0.0
    for j in range(b.shape[0]):
        bj = b[j]
        z = 0.0
        for l in range(d):
            z += bj[l] * xi[l]
        acc += c[j] * _act(z, code, slope)
    out[i] = acc


@parallel_kernel
def _predict_kernel(x, c, b, code, slope, out, serial):
    """out_n = Σ_j c_j σ(⟨b_j, x_n⟩). x (n, d), c (m,), b (m, d) C-contiguous float64.

    Parallel over inputs (each owns out_n), or a plain loop when ``serial`` (small
    problems, see :func:`_run_serially`): the same numbers either way.
    """
    if serial:
        for i in range(x.shape[0]):
            _predict_row(i, x, c, b, code, slope, out)
    else:
        for i in prange(x.shape[0]):
            _predict_row(i, x, c, b, code, slope, out)


@kernel(fastmath={"reassoc", "contract"})
def _gradient_particle(j, x, r, a, b, code, slope, out_ga, out_gb):
    """ga_j = mean_n r_n σ(z_nj), gb_j = a_j mean_n r_n σ'(z_nj) x_n, z_nj = ⟨b_j, x_n⟩."""
    n, d = x.shape
    bj = b[j]
    gb = out_gb[j]
    acc_a = 0.0
    for l in range(d):
        gb[l] = 0.0
    for i in range(n):
        xi = x[i]
        z = 0.0
        for l in range(d):
            z += bj[l] * xi[l]
        acc_a += r[i] * _act(z, code, slope)
        s = r[i] * _act_prime(z, code, slope)
        if s != 0.0:
            for l in range(d):
                gb[l] += s * xi[l]
    out_ga[j] = acc_a / n
    scale = a[j] / n
    for l in range(d):
        gb[l] *= scale


@parallel_kernel
def _gradient_kernel(x, r, a, b, code, slope, out_ga, out_gb, serial):
    """Potential gradients at every particle; parallel over particles (each owns its
    gradient), or a plain loop when ``serial``: the same numbers either way."""
    if serial:
        for j in range(b.shape[0]):
            _gradient_particle(j, x, r, a, b, code, slope, out_ga, out_gb)
    else:
        for j in prange(b.shape[0]):
            _gradient_particle(j, x, r, a, b, code, slope, out_ga, out_gb)


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
    b = np.ascontiguousarray(b)
    _predict_kernel(x, np.ascontiguousarray(weights * a), b, int(act_code), float(slope), out,
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
    _gradient_kernel(np.ascontiguousarray(x), np.ascontiguousarray(residual), a, b,
                     int(act_code), float(slope), ga, gb,
                     _run_serially(x.shape[0], b.shape[0], b.shape[1]))
    return ga, gb
