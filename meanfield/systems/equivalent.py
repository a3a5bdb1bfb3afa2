"""Equivalent parameter points of a network: counts, group actions, canonical form (seed 002).

A feed-forward network with hidden layers of widths ``n_1, ..., n_L`` computes the same
function at many parameter points (Michelucci, seed 002):

* permuting the units of a hidden layer (together with the matching rows of the incoming
  weights and columns of the outgoing weights) never changes the function: ``n_l!`` points
  per layer;
* for an odd activation (``tanh``), flipping the sign of a unit's incoming weights and bias
  and of its outgoing weights does not change it either: another factor ``2^{n_l}``;
* for the 1-homogeneous ReLU, ``(a, w, c) ↦ (a/λ, λw, λc)`` with any ``λ > 0`` leaves the
  function unchanged: a *continuum* of equivalent points per unit, not a finite factor.

So a generic parameter point has ``Π_l n_l!`` (ReLU, generic σ) or ``Π_l 2^{n_l} n_l!``
(tanh) images under the discrete group, every one of them a minimum when one is. The count
is an upper bound reached at generic points: when two units coincide, or a unit is dead
(zero incoming or outgoing weights), some images coincide.

For two-layer networks ``f(x) = A σ(W x + c)`` (``A`` of shape ``(p, k)``, or ``a`` of shape
``(k,)`` for a scalar output; ``W`` of shape ``(k, d)``; optional bias ``c`` of shape ``(k,)``)
this module implements the group actions, a *canonical form* in which all equivalent points
coincide, and a distance between networks in canonical form. The canonical form is the
mean-field view: a two-layer network is the particle measure ``(1/k) Σ_i δ_{θ_i}`` over units
``θ_i = (a_i, w_i, c_i)``, the quotient of parameter space by permutations; for ReLU one
further quotients by rescaling, putting every unit on the sphere ``‖(w_i, c_i)‖ = 1`` and its
scale into the output weight ``a_i``.
"""
import itertools
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MinimaCount", "count_equivalent_minima", "ACTIVATION_CLASSES",
    "network_output", "permute_units", "flip_signs", "rescale_units", "discrete_orbit",
    "canonical_form", "canonical_distance",
]

#: activation name -> symmetry class. "odd": σ(−z) = −σ(z) (sign flips);
#: "homogeneous": σ(λz) = λσ(z) for λ > 0 (positive rescaling, a continuum);
#: "generic": permutations only.
ACTIVATION_CLASSES = {"tanh": "odd", "relu": "homogeneous", "generic": "generic"}

#: above this many decimal digits the exact count is not formed (``count`` is None).
DEFAULT_MAX_DIGITS = 10_000


def _symmetry_class(activation):
    try:
        return ACTIVATION_CLASSES[activation]
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_CLASSES)}, "
                         f"got {activation!r}") from None


# ----------------------------------------------------------------------------- counting
@dataclass(frozen=True)
class MinimaCount:
    """Number of equivalent parameter points under the discrete symmetry group.

    Attributes
    ----------
    count : int or None
        Exact order of the discrete group ``Π_l n_l!`` (× ``Π_l 2^{n_l}`` for odd σ), or None
        when it has more than ``max_digits`` decimal digits.
    log10 : float
        ``log10`` of the count, always available.
    continuous : bool
        True when each unit also has a continuous symmetry (ReLU's positive rescaling): the
        equivalent points then form a continuum of dimension ``Σ_l n_l`` and ``count``
        counts its connected pieces' discrete labels only.
    widths : tuple of int
        Hidden-layer widths ``(n_1, ..., n_L)``.
    activation : str
    """

    count: object
    log10: float
    continuous: bool
    widths: tuple
    activation: str

    def __int__(self):
        if self.count is None:
            raise OverflowError(f"count has about {self.log10:.0f} digits; use .log10")
        return self.count


def count_equivalent_minima(widths, activation="tanh", max_digits=DEFAULT_MAX_DIGITS):
    """Count the parameter points equivalent to a generic one (seed 002).

    Parameters
    ----------
    widths : sequence of int
        Hidden-layer widths ``n_1, ..., n_L`` (input and output layers are not permutable and
        are not listed).
    activation : {"tanh", "relu", "generic"}
        ``"tanh"`` (any odd σ): ``Π_l 2^{n_l} n_l!``. ``"relu"``: ``Π_l n_l!`` discrete points,
        each on a ``Σ_l n_l``-dimensional continuum of positive rescalings
        (``continuous=True``). ``"generic"``: ``Π_l n_l!``.
    max_digits : int
        Form the exact integer only when it has at most this many digits (``log10`` is
        always computed, from ``lgamma``).

    Returns
    -------
    MinimaCount

    Examples
    --------
    >>> count_equivalent_minima([10], "tanh").count
    3715891200
    """
    kind = _symmetry_class(activation)
    widths = tuple(int(n) for n in np.atleast_1d(widths))
    if any(n < 0 for n in widths):
        raise ValueError(f"widths must be non-negative integers, got {widths}")
    log10 = sum(math.lgamma(n + 1) for n in widths) / math.log(10)
    if kind == "odd":
        log10 += sum(widths) * math.log10(2)
    count = None
    if log10 < max_digits:
        count = 1
        for n in widths:
            count *= math.factorial(n) * (2 ** n if kind == "odd" else 1)
        log10 = math.log10(count) if count > 0 else 0.0
    return MinimaCount(count=count, log10=log10, continuous=(kind == "homogeneous"),
                       widths=widths, activation=activation)


# ----------------------------------------------------------------------------- networks
def _check(A, W, c=None):
    """Validate shapes; return (A as (p, k), W, c or None, was_vector)."""
    A = np.asarray(A, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    vector = A.ndim == 1
    A2 = A[None, :] if vector else A
    if A2.ndim != 2 or W.ndim != 2 or A2.shape[1] != W.shape[0]:
        raise ValueError(f"need A of shape (p, k) or (k,) and W of shape (k, d); got A "
                         f"{A.shape}, W {W.shape}")
    if c is not None:
        c = np.asarray(c, dtype=np.float64)
        if c.shape != (W.shape[0],):
            raise ValueError(f"bias c must have shape ({W.shape[0]},), got {c.shape}")
    return A2, W, c, vector


def _out(A2, W, c, vector):
    return (A2[0] if vector else A2), W, c


def _activation(name):
    if name == "relu":
        return lambda z: np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh
    raise ValueError(f"network_output needs activation 'relu' or 'tanh', got {name!r}")


def network_output(A, W, x, c=None, activation="relu"):
    """``f(x) = A σ(W x + c)`` for a batch of inputs.

    Parameters
    ----------
    A : array, shape (p, k) or (k,)
    W : array, shape (k, d)
    x : array, shape (N, d)
    c : array, shape (k,), optional
    activation : {"relu", "tanh"}

    Returns
    -------
    array, shape (N, p), or (N,) when ``A`` is 1-D.
    """
    A2, W, c, vector = _check(A, W, c)
    z = np.asarray(x, dtype=np.float64) @ W.T
    if c is not None:
        z = z + c
    out = _activation(activation)(z) @ A2.T
    return out[:, 0] if vector else out


def permute_units(A, W, perm, c=None):
    """Reorder hidden units: unit ``i`` of the result is unit ``perm[i]`` of the input.

    Returns
    -------
    (A, W, c) with the same shapes (``c`` None if it was None).
    """
    A2, W, c, vector = _check(A, W, c)
    perm = np.asarray(perm)
    if sorted(perm.tolist()) != list(range(W.shape[0])):
        raise ValueError(f"perm must be a permutation of range({W.shape[0]})")
    return _out(A2[:, perm], W[perm], None if c is None else c[perm], vector)


def flip_signs(A, W, signs, c=None):
    """Odd-σ symmetry: ``(a_i, w_i, c_i) ↦ (s_i a_i, s_i w_i, s_i c_i)``, ``s_i ∈ {±1}``."""
    A2, W, c, vector = _check(A, W, c)
    s = np.asarray(signs, dtype=np.float64)
    if s.shape != (W.shape[0],) or not np.all(np.abs(s) == 1):
        raise ValueError(f"signs must be ±1 of shape ({W.shape[0]},)")
    return _out(A2 * s, W * s[:, None], None if c is None else c * s, vector)


def rescale_units(A, W, scales, c=None):
    """ReLU symmetry: ``(a_i, w_i, c_i) ↦ (a_i/λ_i, λ_i w_i, λ_i c_i)``, ``λ_i > 0``."""
    A2, W, c, vector = _check(A, W, c)
    lam = np.asarray(scales, dtype=np.float64)
    if lam.shape != (W.shape[0],) or not np.all(lam > 0):
        raise ValueError(f"scales must be positive, of shape ({W.shape[0]},)")
    return _out(A2 / lam, W * lam[:, None], None if c is None else c * lam, vector)


def discrete_orbit(A, W, c=None, activation="tanh", max_units=8):
    """Yield every image of ``(A, W, c)`` under the discrete symmetry group.

    ``k!`` permutations, times ``2^k`` sign patterns for odd σ. Meant for tests and small
    demonstrations: refuses ``k > max_units`` (8 units and tanh are already 10 321 920 images).

    Yields
    ------
    (A, W, c)
    """
    kind = _symmetry_class(activation)
    k = np.asarray(W).shape[0]
    if k > max_units:
        raise ValueError(f"{k} units give too many images to enumerate; raise max_units "
                         f"(now {max_units}) if you mean it")
    sign_patterns = (itertools.product((1.0, -1.0), repeat=k) if kind == "odd"
                     else [np.ones(k)])
    sign_patterns = [np.array(s) for s in sign_patterns]
    for perm in itertools.permutations(range(k)):
        Ap, Wp, cp = permute_units(A, W, perm, c)
        for s in sign_patterns:
            yield flip_signs(Ap, Wp, s, cp) if kind == "odd" else (Ap, Wp, cp)


# ----------------------------------------------------------------------------- quotient
def _units(A2, W, c):
    """Per-unit rows: input side ``u_i = (w_i, c_i)`` and output side ``a_i = A[:, i]``."""
    U = W if c is None else np.concatenate([W, c[:, None]], axis=1)
    return U, A2.T


def canonical_form(A, W, c=None, activation="relu"):
    """The representative of ``(A, W, c)``'s equivalence class.

    Steps, per unit ``θ_i = (a_i, u_i)`` with ``u_i = (w_i, c_i)``:

    1. a *null* unit (``u_i = 0`` or ``a_i = 0``) contributes ``a_i σ(0) = 0`` (ReLU, tanh)
       or nothing: it is set to all zeros (for ``"generic"`` σ only ``a_i = 0`` counts);
    2. ReLU: rescale to ``‖u_i‖ = 1``, moving the scale into ``a_i`` (``a_i ← ‖u_i‖ a_i``);
       tanh: flip the sign so that the entry of ``u_i`` of largest magnitude (first such
       index) is positive;
    3. sort units lexicographically by ``(u_i, a_i)``.

    Permutations and sign flips are exact in floating point, so their images give bitwise
    identical canonical forms; rescaled images agree to round-off.

    Returns
    -------
    (A, W, c) with the input's shapes.
    """
    kind = _symmetry_class(activation)
    A2, W, c, vector = _check(A, W, c)
    U, a = _units(A2, W, c)
    U = U.copy()
    a = a.copy()
    null = ~np.any(a != 0, axis=1)
    if kind != "generic":
        null |= ~np.any(U != 0, axis=1)
    U[null] = 0.0
    a[null] = 0.0
    live = ~null
    if kind == "homogeneous":
        norms = np.linalg.norm(U[live], axis=1)
        U[live] /= norms[:, None]
        a[live] *= norms[:, None]
    elif kind == "odd":
        rows = np.flatnonzero(live)
        s = np.sign(U[rows, np.argmax(np.abs(U[rows]), axis=1)])
        U[rows] *= s[:, None]
        a[rows] *= s[:, None]
    keys = np.concatenate([U, a], axis=1)
    order = np.lexsort(keys.T[::-1])  # lexsort's last key is the primary one
    U, a = U[order], a[order]
    d = W.shape[1]
    return _out(np.ascontiguousarray(a.T), U[:, :d], None if c is None else U[:, d], vector)


def canonical_distance(A1, W1, A2, W2, c1=None, c2=None, activation="relu", relative=False,
                       return_matching=False):
    """Distance between two networks' canonical forms, units matched optimally.

    With ``θ_i = (u_i, a_i)`` the canonical units of network 1 and ``θ'_j`` those of network
    2, the distance is ``min_π (Σ_i ‖θ_i − θ'_{π(i)}‖²)^{1/2}`` over permutations π, found by
    the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``). For odd σ the cost of a
    pair is the smaller of ``‖θ_i − θ'_j‖²`` and ``‖θ_i + θ'_j‖²``, so a sign choice that flips
    under a small perturbation (two entries of nearly equal magnitude) costs nothing. For ReLU
    this is the distance between particle measures on the sphere with output weights as
    "masses" (a W₂-like matching distance between equal-size empirical measures).

    Parameters
    ----------
    A1, A2 : array, shape (p, k) or (k,)
    W1, W2 : array, shape (k, d)
    c1, c2 : array, shape (k,), optional
        Both given or both None.
    activation : {"relu", "tanh", "generic"}
    relative : bool
        Divide by ``(Σ_j ‖θ'_j‖²)^{1/2}``, the size of network 2 (the reference).
    return_matching : bool
        Also return ``perm`` with unit ``i`` of canonical network 1 matched to unit
        ``perm[i]`` of canonical network 2.

    Returns
    -------
    float, or (float, ndarray of int) when ``return_matching``.
    """
    kind = _symmetry_class(activation)
    if (c1 is None) != (c2 is None):
        raise ValueError("give biases for both networks or for neither")
    X = [np.concatenate(_units(*_check(*canonical_form(A, W, c, activation))[:3]), axis=1)
         for A, W, c in ((A1, W1, c1), (A2, W2, c2))]
    if X[0].shape != X[1].shape:
        raise ValueError(f"networks differ in shape: {X[0].shape} vs {X[1].shape} "
                         "(units × (d [+1] + p))")
    diff = X[0][:, None, :] - X[1][None, :, :]
    cost = np.sum(diff ** 2, axis=2)
    if kind == "odd":
        summ = X[0][:, None, :] + X[1][None, :, :]
        cost = np.minimum(cost, np.sum(summ ** 2, axis=2))
    from scipy.optimize import linear_sum_assignment  # imported when used (slow to load)

    rows, cols = linear_sum_assignment(cost)
    dist = float(np.sqrt(cost[rows, cols].sum()))
    if relative:
        dist /= float(np.linalg.norm(X[1]))
    if return_matching:
        perm = np.empty(len(rows), dtype=np.int64)
        perm[rows] = cols
        return dist, perm
    return dist
