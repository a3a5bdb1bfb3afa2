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


@parallel_kernel
def _predict_kernel(x, c, b, code, slope, out):
    """out_n = Σ_j c_j σ(⟨b_j, x_n⟩). x (n, d), c (m,), b (m, d) C-contiguous float64."""
    n, d = x.shape
    m = b.shape[0]
    for i in prange(n):
        acc = 0.0
        for j in range(m):
            z = 0.0
            for l in range(d):
                z += b[j, l] * x[i, l]
            acc += c[j] * _act(z, code, slope)
        out[i] = acc


@parallel_kernel
def _gradient_kernel(x, r, a, b, code, slope, out_ga, out_gb):
    """ga_j = mean_n r_n σ(z_nj), gb_j = a_j mean_n r_n σ'(z_nj) x_n, z_nj = ⟨b_j, x_n⟩."""
    n, d = x.shape
    m = b.shape[0]
    for j in prange(m):
        acc_a = 0.0
        for l in range(d):
            out_gb[j, l] = 0.0
        for i in range(n):
            z = 0.0
            for l in range(d):
                z += b[j, l] * x[i, l]
            acc_a += r[i] * _act(z, code, slope)
            s = r[i] * _act_prime(z, code, slope)
            if s != 0.0:
                for l in range(d):
                    out_gb[j, l] += s * x[i, l]
        out_ga[j] = acc_a / n
        scale = a[j] / n
        for l in range(d):
            out_gb[j, l] *= scale


def predict_batch(x, a, b, weights, act_code=0, slope=0.01):
    """f(μ; x_n) = Σ_j w_j a_j σ(⟨b_j, x_n⟩) for every row of x (n, d); returns (n,)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != b.shape[1]:
        raise ValueError(f"inputs must have shape (n, {b.shape[1]}), got {x.shape}")
    out = np.empty(x.shape[0])
    _predict_kernel(x, np.ascontiguousarray(weights * a), np.ascontiguousarray(b),
                    int(act_code), float(slope), out)
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
                     int(act_code), float(slope), ga, gb)
    return ga, gb
