"""Distances between particle measures, on POT (Python Optimal Transport).

Every Wasserstein distance of the package is computed here:

* :func:`wasserstein_1d`: W_p between weighted laws on the line (``ot.wasserstein_1d``,
  quantile functions, exact for discrete laws), batched;
* :func:`wasserstein_discrete`: W_p between two weighted empirical measures in R^k
  (``ot.emd``, exact network simplex), the cost recomputed on the plan's support;
* :func:`sliced_wasserstein`: the sliced distance over given directions
  (``ot.sliced_wasserstein_distance``);
* :func:`coupled_distance`: not an optimal-transport distance (a fixed coupling), kept for
  particle systems with a common labelling.

All return the distance itself (W_p, not W_p^p).
"""
import numpy as np

__all__ = ["wasserstein_1d", "wasserstein_discrete", "sliced_wasserstein", "coupled_distance"]


def _weights(w, n, name):
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,) or np.any(w < 0) or not np.all(np.isfinite(w)) or not w.sum() > 0:
        raise ValueError(f"{name} must be non-negative, not all zero, one per value ({n})")
    return w / w.sum()


def _order(p):
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p}")
    return float(p)


def wasserstein_1d(x, y, wx=None, wy=None, p=1):
    """W_p between the weighted empirical laws Σ wx_i δ_{x_i} and Σ wy_j δ_{y_j} on the line.

    W_p^p = ∫_0^1 |F_x⁻¹(u) − F_y⁻¹(u)|^p du, exact for discrete laws (``ot.wasserstein_1d``).

    Parameters
    ----------
    x : (n,) or (P, n) array
        Values (a batch of P problems along the first axis, sharing the weights).
    y : (k,) or (P, k) array
    wx, wy : (n,), (k,) arrays, optional
        Weights (normalised here); uniform when omitted.
    p : float >= 1

    Returns
    -------
    float or (P,) array
    """
    import ot  # imported when used (slow to load)

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    single = x.ndim == 1
    x2, y2 = np.atleast_2d(x), np.atleast_2d(y)
    if x2.ndim != 2 or y2.ndim != 2 or x2.shape[0] != y2.shape[0] or single != (y.ndim == 1):
        raise ValueError(f"x and y must be (n,) and (k,), or (P, n) and (P, k); got {x.shape}, "
                         f"{y.shape}")
    p = _order(p)
    n, k = x2.shape[1], y2.shape[1]
    wx, wy = _weights(wx, n, "wx"), _weights(wy, k, "wy")
    P = x2.shape[0]
    # POT batches along the trailing axis: values (n, P), weights broadcast to (n, P)
    wpp = ot.wasserstein_1d(x2.T, y2.T, np.broadcast_to(wx[:, None], (n, P)),
                            np.broadcast_to(wy[:, None], (k, P)), p=p)
    out = np.maximum(np.asarray(wpp, dtype=np.float64), 0.0) ** (1.0 / p)
    return float(out[0]) if single else out


def wasserstein_discrete(X, Y, wx=None, wy=None, p=2):
    """W_p between Σ wx_i δ_{X_i} and Σ wy_j δ_{Y_j} in R^k by exact optimal transport.

    The plan comes from ``ot.emd`` on the cost ‖X_i − Y_j‖^p; the value is then summed over
    the plan's support with each ‖X_i − Y_j‖ recomputed from the difference (a cost matrix
    formed from Gram products cancels, and W = 0 must come out as 0 to round-off).
    O(n³) time and n·n_y memory: fine up to a few thousand points. For uniform weights and
    n = n_y the optimal plan is a permutation (Birkhoff), so this is the optimal assignment.

    Parameters
    ----------
    X : (n, k) or (n,) array
    Y : (n_y, k) or (n_y,) array
    wx, wy : (n,), (n_y,) arrays, optional
        Weights (normalised here); uniform when omitted.
    p : float >= 1

    Returns
    -------
    float
    """
    import ot  # imported when used (slow to load)

    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    Y = Y[:, None] if Y.ndim == 1 else Y
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"need two point clouds in the same R^k, got {X.shape} and {Y.shape}")
    p = _order(p)
    wx, wy = _weights(wx, X.shape[0], "wx"), _weights(wy, Y.shape[0], "wy")
    cost = ot.dist(X, Y, metric="euclidean") ** p
    plan = ot.emd(wx, wy, cost)
    i, j = np.nonzero(plan)
    diff = X[i] - Y[j]
    dist = np.sqrt(np.einsum("ij,ij->i", diff, diff)) ** p
    return float(plan[i, j] @ dist) ** (1.0 / p)


def sliced_wasserstein(X, Y, directions, wx=None, wy=None, p=1):
    """Sliced W_p: (mean over directions u of W_p(⟨u, X⟩#μ, ⟨u, Y⟩#ν)^p)^{1/p}.

    Parameters
    ----------
    X : (n, k) array
    Y : (n_y, k) array
    directions : (L, k) array
        Unit vectors u (drawn by the caller, so that repeated calls use the same ones).
    wx, wy : (n,), (n_y,) arrays, optional
    p : float >= 1

    Returns
    -------
    float
    """
    import ot  # imported when used (slow to load)

    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    u = np.asarray(directions, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or u.ndim != 2 or not X.shape[1] == Y.shape[1] == u.shape[1]:
        raise ValueError(f"need X (n, k), Y (n_y, k) and directions (L, k); got {X.shape}, "
                         f"{Y.shape}, {u.shape}")
    p = _order(p)
    wx, wy = _weights(wx, X.shape[0], "wx"), _weights(wy, Y.shape[0], "wy")
    return float(ot.sliced_wasserstein_distance(X, Y, wx, wy, p=p, projections=u.T))


def coupled_distance(X, Y, weights=None):
    """(Σ_j w_j ‖X_j − Y_j‖²)^½ for two particle systems with a common labelling.

    Not an optimal-transport distance, hence not on POT: the coupling is fixed (particle j
    of one system with particle j of the other), which makes it an upper bound of W₂ between
    the two laws that also sees how labels moved (it is > 0 for a permutation of the same
    points, where W₂ = 0).

    Parameters
    ----------
    X, Y : (m, ...) arrays of one shape
    weights : (m,) array, optional
        Uniform 1/m when omitted.

    Returns
    -------
    float
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.shape != Y.shape:
        raise ValueError(f"need arrays of the same shape, got {X.shape} and {Y.shape}")
    diff = (X - Y).reshape(X.shape[0], -1)
    sq = np.einsum("ij,ij->i", diff, diff)
    if weights is None:
        return float(np.sqrt(np.mean(sq)))
    return float(np.sqrt(np.asarray(weights, dtype=np.float64) @ sq))
