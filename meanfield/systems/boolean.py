r"""Symmetric Boolean functions and symmetric initialisation (seed 000: Nachum & Yehudayoff).

Targets are symmetric functions on the cube, ``f*(x) = g(|x|)`` for ``x ∈ {0,1}^n`` with
Hamming weight ``|x| = Σ_m x_m``; labels are ``±1``:

* ``"parity"``: ``g(h) = +1`` for even ``h``, ``−1`` for odd ``h`` (i.e. ``(−1)^h``);
* ``"majority"``: ``g(h) = +1`` if ``h ≥ n/2`` else ``−1`` (ties, for even ``n``, are ``+1``);
* ``"random"``: ``g(h)`` i.i.d. uniform ``±1``, from a seed.

The network has one hidden ReLU layer with biases and an output bias,
``f(x) = Σ_i a_i σ(⟨w_i, x⟩ + c_i) + b`` (``W`` of shape ``(k, n)``), trained on both layers by
SGD on ``N`` samples drawn uniformly from the cube, with squared loss ``½(f − y)²`` or
logistic loss ``log(1 + e^{−y f})``. Accuracy is sign agreement: the prediction is ``+1`` when
``f(x) ≥ 0`` and ``−1`` otherwise.

Initialisations (``init_network``):

* ``"invariant"``: every unit sees ``x`` only through ``|x|``: ``w_i = s·1``,
  ``c_i = −s (t_i − ½)`` with thresholds ``t_i`` spread evenly over ``[0, n]``
  (``t_i = i`` when ``k = n + 1``, so unit ``i`` computes ``s σ(|x| − i + ½)``). The paper's
  exact formula could not be read; this is the natural reading of "S_n-invariant". With
  ``k = n + 1`` these features span every function of ``|x|`` (a triangular basis).
* ``"random"``: He initialisation, ``w_i ~ N(0, 2/n I)``, ``c_i = 0``.
* ``"small"``: the same, multiplied by ``small_scale``.

Output weights start i.i.d. ``N(0, a_scale²/k)`` for every init, ``b = 0``.

The invariant subspace ``{w_i ∈ span(1) for all i}``: the network is then ``F(|x|)`` with
``F(h) = Σ_i a_i σ(u_i h + c_i) + b`` (``w_i = u_i 1``). For inputs uniform on the cube (or any
permutation-invariant law, or a data set that is a union of ``S_n``-orbits, e.g. the whole
cube) the risk gradient with respect to ``w_i`` is ``E[ℓ' a_i σ'(·) x] = E[ℓ' a_i σ'(·) |x|/n] 1``,
so gradient flow stays in the subspace and the population risk reduces exactly to a sum over
the ``n + 1`` Hamming weights with weights ``C(n, h)/2^n``:
``R = Σ_h C(n,h) 2^{−n} ℓ(F(h), g(h))``. In the reduced coordinates ``(u, c, a, b)`` the flow is
``u' = −(1/n) ∂R/∂u`` (the factor ``1/n = 1/‖1‖²`` is the Euclidean metric of the full
parameter space restricted to the line ``u 1``), ``c' = −∂R/∂c``, ``a' = −∂R/∂a``, ``b' = −∂R/∂b``.
A single SGD step on one sample ``x`` moves ``w_i`` along ``x``, *not* along ``1``: SGD on a
sampled training set leaves the subspace (``invariance_defect`` measures by how much); only
orbit-closed data and the population flow preserve it exactly.

SGD is a compiled kernel: per-sample steps are sequential, so NumPy would pay Python overhead
on every sample, and Boolean inputs let each step touch only the ``|x|`` coordinates equal to 1.
With a step ``lr`` per sample, one epoch on ``N`` samples is about ``N·lr`` units of
gradient-flow time, the scale on which :func:`population_flow` is compared with SGD.
"""
from dataclasses import dataclass

import numpy as np

from ..kernels.threads import kernel

__all__ = [
    "TARGETS", "INITS", "LOSSES", "target_labels", "sample_cube", "cube_points", "labels",
    "BooleanNet", "init_network", "forward", "predict_sign", "accuracy", "loss_value",
    "train_sgd", "invariance_defect", "invariant_coordinates", "hamming_weights",
    "population_risk", "population_gradient", "population_accuracy", "population_flow",
]

TARGETS = ("parity", "majority", "random")
INITS = ("invariant", "random", "small")
#: loss name -> integer code for the kernel (never pass callables to cached kernels).
LOSSES = {"squared": 0, "logistic": 1}


# ----------------------------------------------------------------------------- targets, data
def target_labels(target, n, seed=0):
    """``g(h)`` for ``h = 0..n``: array of ±1, shape (n + 1,). ``seed`` only matters for
    ``"random"``."""
    h = np.arange(n + 1)
    if target == "parity":
        return np.where(h % 2 == 0, 1.0, -1.0)
    if target == "majority":
        return np.where(2 * h >= n, 1.0, -1.0)
    if target == "random":
        return np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=n + 1)
    raise ValueError(f"target must be one of {TARGETS}, got {target!r}")


def sample_cube(n_samples, n, rng):
    """``n_samples`` points uniform on ``{0,1}^n`` (with replacement); float64 (N, n)."""
    return rng.integers(0, 2, size=(n_samples, n)).astype(np.float64)


def cube_points(n):
    """All ``2^n`` points of ``{0,1}^n`` (``n ≤ 20``); float64 (2^n, n)."""
    if n > 20:
        raise ValueError(f"2^{n} points are too many to enumerate; use n ≤ 20")
    return ((np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float64)


def labels(X, g):
    """``y = g(|x|)`` for each row of ``X`` (N, n); shape (N,)."""
    return g[np.rint(X.sum(axis=1)).astype(np.int64)]


def hamming_weights(n):
    """Probabilities ``C(n, h)/2^n`` of ``|x| = h`` for uniform ``x``; shape (n + 1,)."""
    from scipy.special import comb  # imported when used (slow to load)

    return comb(n, np.arange(n + 1)) / 2.0 ** n


# ----------------------------------------------------------------------------- network
@dataclass
class BooleanNet:
    """``f(x) = Σ_i a_i σ(⟨w_i, x⟩ + c_i) + b``. Arrays are updated in place by training.

    Attributes
    ----------
    W : ndarray, shape (k, n)
    c : ndarray, shape (k,)
    a : ndarray, shape (k,)
    b : ndarray, shape (1,)
        Output bias (an array so that kernels can update it in place).
    """

    W: np.ndarray
    c: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def copy(self):
        return BooleanNet(self.W.copy(), self.c.copy(), self.a.copy(), self.b.copy())


def init_network(kind, n, width, rng, invariant_scale=1.0, a_scale=0.1, small_scale=0.01):
    """Initial network (see the module docstring for the three kinds).

    Parameters
    ----------
    kind : {"invariant", "random", "small"}
    n : int
        Input dimension.
    width : int
        Number of hidden units ``k``.
    rng : numpy.random.Generator
    invariant_scale : float
        ``s`` in ``w_i = s·1``, ``c_i = −s(t_i − ½)``.
    a_scale : float
        Output weights ``a_i ~ N(0, a_scale²/k)`` (all kinds).
    small_scale : float
        Factor applied to the whole He-initialised network for ``"small"``.

    Returns
    -------
    BooleanNet
    """
    if kind not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {kind!r}")
    a = a_scale * rng.standard_normal(width) / np.sqrt(width)
    if kind == "invariant":
        t = np.linspace(0.0, n, width) if width > 1 else np.array([n / 2])
        W = invariant_scale * np.ones((width, n))
        c = -invariant_scale * (t - 0.5)
    else:
        W = np.sqrt(2.0 / n) * rng.standard_normal((width, n))
        c = np.zeros(width)
        if kind == "small":
            W, c, a = small_scale * W, small_scale * c, small_scale * a
    return BooleanNet(np.ascontiguousarray(W), c, a, np.zeros(1))


def _csr(X):
    """Coordinates equal to 1 of each row of a Boolean ``X`` (N, n): ``(indptr, indices)``."""
    X = np.asarray(X)
    if X.ndim != 2 or not np.all((X == 0) | (X == 1)):
        raise ValueError("X must be a 2-D Boolean array (entries 0 or 1)")
    rows, cols = np.nonzero(X)           # row-major order: a CSR of the ones
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(X)))])
    return indptr.astype(np.int64), cols.astype(np.int64)


@kernel
def _forward_kernel(WT, c, a, b, indptr, indices, out):
    """``out[s] = Σ_i a_i σ(c_i + Σ_{m: x_sm = 1} W_im) + b`` for CSR Boolean rows.

    Preconditions: as :func:`_sgd_kernel`; ``out`` float64 (N,).
    """
    n, k = WT.shape
    pre = np.zeros(k)
    for s in range(len(indptr) - 1):
        out[s] = _network_output(WT, c, a, b, indptr, indices, s, pre)


@kernel
def _network_output(WT, c, a, b, indptr, indices, s, pre):
    """f(x_s) for CSR Boolean row ``s``; leaves the pre-activations of the k units in ``pre``
    (k,) (SGD's gradients need them)."""
    k = len(c)
    for i in range(k):
        pre[i] = c[i]
    for q in range(indptr[s], indptr[s + 1]):
        m = indices[q]
        for i in range(k):
            pre[i] += WT[m, i]
    f = b[0]
    for i in range(k):
        if pre[i] > 0.0:
            f += a[i] * pre[i]
    return f


def forward(net, X):
    """``f(x)`` for each row of a Boolean ``X`` (N, n); shape (N,).

    Compiled and serial: tiny BLAS calls from many processes on a shared machine spend more
    time in thread synchronisation than in arithmetic; this loop touches only the ones of x.
    """
    indptr, indices = _csr(X)
    if np.shape(X)[1] != net.W.shape[1]:
        raise ValueError(f"X has {np.shape(X)[1]} columns, the net expects {net.W.shape[1]}")
    out = np.empty(len(indptr) - 1)
    _forward_kernel(np.ascontiguousarray(net.W.T, dtype=np.float64),
                    np.ascontiguousarray(net.c, dtype=np.float64),
                    np.ascontiguousarray(net.a, dtype=np.float64),
                    np.ascontiguousarray(net.b, dtype=np.float64), indptr, indices, out)
    return out


def predict_sign(f):
    """±1 predictions: +1 where ``f ≥ 0``."""
    return np.where(f >= 0, 1.0, -1.0)


def accuracy(net, X, y):
    """Fraction of rows where ``sign f(x)`` equals the ±1 label."""
    return float(np.mean(predict_sign(forward(net, X)) == y))


def _loss(f, y, loss):
    if loss == "squared":
        return 0.5 * (f - y) ** 2
    if loss == "logistic":
        return np.logaddexp(0.0, -y * f)
    raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")


def _dloss(f, y, loss):
    if loss == "squared":
        return f - y
    return -y / (1.0 + np.exp(np.clip(y * f, -700, 700)))


def loss_value(net, X, y, loss="squared"):
    """Mean loss over the rows of ``X``."""
    return float(np.mean(_loss(forward(net, X), y, loss)))


@kernel
def _sgd_kernel(WT, c, a, b, indptr, indices, y, order, lr, batch_size, loss_code):
    """Minibatch SGD over ``order`` (one or more epochs of sample indices), in place.

    Inputs are Boolean, so sample ``s`` is stored as the list of its coordinates equal to 1,
    ``indices[indptr[s]:indptr[s+1]]`` (CSR): ``⟨w_i, x⟩`` is a sum of ``|x|`` weights and the
    gradient of ``w_i`` touches only those coordinates. ``WT`` is ``Wᵀ`` so that the inner
    loops run over units, contiguous in memory.

    Preconditions: float64 C-contiguous ``WT`` (n, k), ``c``, ``a`` (k,), ``b`` (1,), ``y``
    (N,); int64 ``indptr`` (N + 1,), ``indices``, ``order`` (entries in [0, N));
    ``batch_size ≥ 1``; ``loss_code`` 0 (squared) or 1 (logistic). Gradients of a batch are
    summed at the old parameters and applied together with step ``lr / batch_size``.
    """
    n, k = WT.shape
    gWT = np.zeros((n, k))
    gc = np.zeros(k)
    ga = np.zeros(k)
    pre = np.zeros(k)
    gunit = np.zeros(k)
    stamp = np.zeros(n, dtype=np.int64)   # batch id (start + 1) that last applied row m
    n_steps = len(order)
    start = 0
    while start < n_steps:
        stop = min(start + batch_size, n_steps)
        gb = 0.0
        for t in range(start, stop):
            s = order[t]
            f = _network_output(WT, c, a, b, indptr, indices, s, pre)
            if loss_code == 0:
                dl = f - y[s]
            else:
                dl = -y[s] / (1.0 + np.exp(min(max(y[s] * f, -700.0), 700.0)))
            gb += dl
            for i in range(k):
                if pre[i] > 0.0:
                    ga[i] += dl * pre[i]
                    gunit[i] = dl * a[i]
                else:
                    gunit[i] = 0.0
                gc[i] += gunit[i]
            for q in range(indptr[s], indptr[s + 1]):
                m = indices[q]
                for i in range(k):
                    gWT[m, i] += gunit[i]
        step = lr / (stop - start)
        for i in range(k):
            a[i] -= step * ga[i]
            c[i] -= step * gc[i]
            ga[i] = 0.0
            gc[i] = 0.0
        # apply (and clear) only the rows of Wᵀ that the batch touched: O(|x| k), not O(n k)
        for t in range(start, stop):
            s = order[t]
            for q in range(indptr[s], indptr[s + 1]):
                m = indices[q]
                if stamp[m] != start + 1:
                    stamp[m] = start + 1
                    for i in range(k):
                        WT[m, i] -= step * gWT[m, i]
                        gWT[m, i] = 0.0
        b[0] -= step * gb
        start = stop


def train_sgd(net, X, y, epochs, lr, rng, loss="squared", batch_size=1, eval_every=1,
              callback=None):
    """Train ``net`` in place by SGD with reshuffling each epoch.

    Parameters
    ----------
    net : BooleanNet
    X : array, shape (N, n)
        Training inputs in {0,1}.
    y : array, shape (N,)
        ±1 labels.
    epochs : int
    lr : float
        Step size (per sample for ``batch_size = 1``; the batch gradient is averaged).
    rng : numpy.random.Generator
        Draws the shuffles (randomness stays in the driver; the kernel gets index arrays).
    loss : {"squared", "logistic"}
    batch_size : int
    eval_every : int
        Call ``callback(epoch, net)`` after every ``eval_every`` epochs (and after epoch 0,
        i.e. before training).
    callback : callable, optional

    Returns
    -------
    BooleanNet
        ``net`` itself; afterwards ``net.W`` is a (Fortran-ordered) view of the ``Wᵀ`` array
        the kernel updates.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")
    X = np.asarray(X)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (len(X),) or X.shape[1] != net.W.shape[1]:
        raise ValueError(f"need X (N, {net.W.shape[1]}) and y (N,); got {X.shape}, {y.shape}")
    if not (lr > 0 and batch_size >= 1 and epochs >= 0):
        raise ValueError("need lr > 0, batch_size ≥ 1 and epochs ≥ 0")
    indptr, indices = _csr(X)
    for name in ("c", "a", "b"):
        setattr(net, name, np.ascontiguousarray(getattr(net, name), dtype=np.float64))
    WT = np.ascontiguousarray(np.asarray(net.W, dtype=np.float64).T)
    net.W = WT.T                         # a view: the kernel's updates show in net.W
    if callback is not None:
        callback(0, net)
    done = 0
    while done < epochs:
        chunk = min(eval_every, epochs - done)
        order = np.concatenate([rng.permutation(len(X)) for _ in range(chunk)])
        _sgd_kernel(WT, net.c, net.a, net.b, indptr, indices, y,
                    order.astype(np.int64), float(lr), int(batch_size), LOSSES[loss])
        done += chunk
        if not np.all(np.isfinite(net.W)) or not np.all(np.isfinite(net.a)):
            raise FloatingPointError(f"SGD diverged at epoch {done} (lr = {lr}); lower lr")
        if callback is not None:
            callback(done, net)
    return net


# ----------------------------------------------------------------------------- invariance
def invariance_defect(W):
    """Relative distance of ``W`` (k, n) to the invariant subspace ``{w_i ∈ span(1)}``:
    ``‖W − W 11ᵀ/n‖_F / ‖W‖_F`` (0 exactly on the subspace)."""
    W = np.asarray(W, dtype=np.float64)
    norm = np.linalg.norm(W)
    if norm == 0:
        return 0.0
    return float(np.linalg.norm(W - W.mean(axis=1, keepdims=True)) / norm)


def invariant_coordinates(net):
    """``(u, c, a, b)`` with ``w_i = u_i 1``: the reduced coordinates of an invariant net."""
    return net.W.mean(axis=1), net.c.copy(), net.a.copy(), float(net.b[0])


def _reduced(u, c, a, b, n):
    h = np.arange(n + 1, dtype=np.float64)
    pre = h[:, None] * u[None, :] + c[None, :]      # (n+1, k)
    act = np.maximum(pre, 0.0)
    return h, pre, act, act @ a + b


def population_risk(u, c, a, b, g, loss="squared"):
    """Exact population risk of an invariant net, ``Σ_h C(n,h) 2^{−n} ℓ(F(h), g(h))``.

    Parameters
    ----------
    u, c, a : arrays, shape (k,)
        Reduced coordinates (``w_i = u_i 1``).
    b : float
    g : array, shape (n + 1,)
        Labels per Hamming weight.
    loss : {"squared", "logistic"}
    """
    n = len(g) - 1
    _, _, _, F = _reduced(u, c, a, b, n)
    return float(hamming_weights(n) @ _loss(F, g, loss))


def population_gradient(u, c, a, b, g, loss="squared"):
    """Gradient of :func:`population_risk` in the reduced coordinates.

    Returns
    -------
    (du, dc, da, db)
        ``∂R/∂u`` etc. The full-space gradient is ``∂R/∂w_i = (∂R/∂u_i / n) 1``.
    """
    n = len(g) - 1
    h, pre, act, F = _reduced(u, c, a, b, n)
    r = hamming_weights(n) * _dloss(F, g, loss)     # (n+1,)
    on = (pre > 0) * a[None, :]                      # a_i σ'(pre)
    return (r * h) @ on, r @ on, r @ act, float(r.sum())


def population_accuracy(u, c, a, b, g):
    """Exact probability that ``sign F(|x|) = g(|x|)`` for uniform ``x``."""
    n = len(g) - 1
    _, _, _, F = _reduced(u, c, a, b, n)
    return float(hamming_weights(n) @ (predict_sign(F) == g))


@kernel
def _population_flow_kernel(u, c, a, b, g, probs, dt, n_steps, loss_code, record_every,
                            risk_out, acc_out):
    """Euler steps of the reduced population flow, in place; records every ``record_every``.

    A stepping loop of its own, outside :mod:`meanfield.engine`, on purpose: one step costs
    O((n + 1) k) ≈ 1.3e3 flops (n = 20, k = 64), and the default symmetric-boolean run takes
    10⁵ steps per target. Measured by ``python benchmarks/bench_population_flow.py`` (a Field
    whose state is the rows (u_i, c_i, a_i, b), stepped by ``Solver(..., "euler")``, against
    this kernel; one thread, 2 shared cores at load ≈ 18): this kernel 20 µs per step, the engine's loop 1.06 ms per
    step (0.45 ms of it the NumPy velocity :func:`population_gradient`, 0.6 ms the loop's own
    per-step work), so routing the flow through the engine would make it ≈ 50× slower
    (≥ 20× even with a compiled velocity). Also, the engine's state arrays carry the
    particles on their first axis, and the output bias b is one shared number, not a
    particle's.

    Preconditions: float64 ``u``, ``c``, ``a`` (k,), ``b`` (1,), ``g``, ``probs`` (n + 1,);
    ``risk_out``, ``acc_out`` of length ``n_steps // record_every + 1``. Same formulas as
    :func:`population_gradient` (the NumPy reference it is tested against).
    """
    k = len(u)
    n1 = len(g)
    inv_n = 1.0 / (n1 - 1)
    pre = np.zeros((n1, k))
    du = np.zeros(k)
    dc = np.zeros(k)
    da = np.zeros(k)
    for step in range(n_steps + 1):
        du[:] = 0.0
        dc[:] = 0.0
        da[:] = 0.0
        db = 0.0
        risk = 0.0
        acc = 0.0
        for h in range(n1):
            F = b[0]
            for i in range(k):
                z = u[i] * h + c[i]
                pre[h, i] = z
                if z > 0.0:
                    F += a[i] * z
            if loss_code == 0:
                risk += probs[h] * 0.5 * (F - g[h]) ** 2
                r = probs[h] * (F - g[h])
            else:
                m = -g[h] * F
                risk += probs[h] * (max(m, 0.0) + np.log1p(np.exp(-abs(m))))
                r = -probs[h] * g[h] / (1.0 + np.exp(min(max(g[h] * F, -700.0), 700.0)))
            if (F >= 0.0) == (g[h] > 0.0):
                acc += probs[h]
            db += r
            for i in range(k):
                if pre[h, i] > 0.0:
                    da[i] += r * pre[h, i]
                    dc[i] += r * a[i]
                    du[i] += r * a[i] * h
        if step % record_every == 0:
            risk_out[step // record_every] = risk
            acc_out[step // record_every] = acc
        if step == n_steps:
            break
        for i in range(k):
            u[i] -= dt * du[i] * inv_n
            c[i] -= dt * dc[i]
            a[i] -= dt * da[i]
        b[0] -= dt * db


def population_flow(net, g, dt, n_steps, loss="squared", record_every=1):
    """Explicit Euler on the exact population gradient flow, inside the invariant subspace.

    Equivalent to full-batch gradient descent with step ``dt`` on all ``2^n`` points of the
    cube (each weighted ``2^{−n}``), at ``O((n + 1) k)`` cost per step instead of ``O(2^n k n)``.

    Parameters
    ----------
    net : BooleanNet
        Must be invariant (``invariance_defect ≤ 1e-12``).
    g : array, shape (n + 1,)
    dt : float
    n_steps : int
        A multiple of ``record_every``.
    loss : {"squared", "logistic"}
    record_every : int

    Returns
    -------
    net : BooleanNet
        The final network (a new object).
    history : dict of arrays
        ``step``, ``risk``, ``accuracy`` (exact population values before each recorded step).
    """
    if invariance_defect(net.W) > 1e-12:
        raise ValueError("population_flow needs an invariant net (all w_i ∝ 1)")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")
    if n_steps % record_every:
        raise ValueError("n_steps must be a multiple of record_every")
    g = np.ascontiguousarray(g, dtype=np.float64)
    n = len(g) - 1
    u, c, a, b = invariant_coordinates(net)
    b = np.array([b])
    n_rec = n_steps // record_every + 1
    risk, acc = np.zeros(n_rec), np.zeros(n_rec)
    _population_flow_kernel(u, c, a, b, g, hamming_weights(n), float(dt), int(n_steps),
                            LOSSES[loss], int(record_every), risk, acc)
    final = BooleanNet(np.ascontiguousarray(u[:, None] * np.ones((1, n))), c, a, b)
    return final, {"step": np.arange(n_rec) * record_every, "risk": risk, "accuracy": acc}
