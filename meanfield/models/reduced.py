"""Block-symmetric reduction of the particle flow (MATH §5): cost independent of d.

Split R^d into consecutive blocks of coordinates. Each block is either kept **explicitly**
(its coordinates stay particle coordinates) or **reduced** to its norm: when the input law,
the target and the initial measure are invariant under independent rotations of every
reduced block, the measure stays invariant (MATH §3), the direction of b inside a reduced
block is uniform given the other coordinates, and the push-forward of μ_t to the reduced
coordinates

    z = (b_explicit, r_1, …, r_R),   r_l = ‖b_{B_l}‖ ≥ 0,

follows a Euclidean Wasserstein gradient flow of its own. Its interaction is the exact
Gaussian kernel averaged over the relative orientation of every reduced block:

    κ̃(z, z') = E_{t_l ∼ γ_{n_l}} κ evaluated with ‖b‖² = ‖y‖² + Σ r_l²,
               ⟨b, b'⟩ = ⟨y, y'⟩ + Σ_l r_l r'_l t_l,

where γ_n is the law of one coordinate of a uniform point on S^{n−1}. The expectation is a
tensor Gauss–Jacobi quadrature (one rule per reduced block), so a velocity evaluation costs
O(m² (p + Q R)) with p explicit coordinates and Q tensor nodes: independent of d.

The target enters exactly: a teacher whose units live in the explicit blocks does not see
the orientation of the reduced blocks (closed form κ), and ‖x_H‖ with H a union of leading
blocks depends on b only through ‖b_H‖ and ‖b‖ (the 1-D quadrature of MATH §2).

The special cases of MATH §5 are ``BlockReduction.subspace(d, d_H)`` (particles
(a, b_H, ‖b_⊥‖)) and ``BlockReduction.subspace(d, d_H, reduce_H=True)`` (particles
(a, ‖b_H‖, ‖b_⊥‖)).

A particle's velocity is −∇ of a (∫ a' κ̃ dν − T) in the reduced coordinates, which is the
gradient descent of the reduced finite-m risk F(ν_m): the self term κ̃(z_j, z_j) is
averaged over orientations too, so F(ν_m) is the exact risk of the measure obtained by
spreading every particle uniformly over the orientations of its reduced blocks (it differs
from the risk of any single lift by O(1/m)). r_l = 0 is invariant (κ̃ is even in each
r_l, so ∂κ̃/∂r_l vanishes there); a discrete step that overshoots 0 is reflected, r ↦ |r|,
which is the same point of the full space (b_B ↦ −b_B has the same law).
"""
from dataclasses import dataclass

import numpy as np

from ..kernels.reduced import (_RED_BUFFER_BYTES, _RED_TILE_COLS, _RED_TILE_ROWS,
                               _RED_TILE_SYM, _RED_WORKERS, _reduced_pair_sums,
                               _reduced_pair_sums_symmetric, _run_serially)
from ..engine import Field, Result, Solver
from ..kernels.gaussian import sphere_coordinate_quadrature
from .particles import orbit_rescale, rescaling_charge
from .problem import Problem

__all__ = ["BlockReduction", "ReducedBackend", "ReducedField", "ReducedFlowResult",
           "ReducedSolver", "reduced_solver", "simulate_reduced", "reduced_interaction"]


# ----------------------------------------------------------------------------- the kernel
# The compiled tiles live in meanfield/_reduced_kernels.py (their design is described there).


def _split(z, n_explicit, name):
    z = np.ascontiguousarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < n_explicit:
        raise ValueError(f"{name} must have shape (m, n_coords), got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name} contains NaN or inf")
    y = np.ascontiguousarray(z[:, :n_explicit])
    r = np.ascontiguousarray(z[:, n_explicit:])
    return z, y, r


def reduced_interaction(z_out, z_src, c_src, n_explicit, nodes, weights):
    """Σ_k c_k κ̃(z_i, z'_k) and its gradient in z_i, for standard Gaussian inputs.

    Parameters
    ----------
    z_out : (m, p + R) array
        Reduced coordinates (explicit coordinates first, then the R block norms).
    z_src : (n, p + R) array
    c_src : (n,) array
    n_explicit : int
        p, the number of explicit coordinates.
    nodes : (Q, R) array, weights : (Q,) array
        Tensor quadrature over the relative orientations (see
        :meth:`BlockReduction.quadrature`).

    Returns
    -------
    S : (m,) array
    grad : (m, p + R) array

    Notes
    -----
    Memory O((m + n)(p + R)): tiles, never an m × n array. When ``z_src`` equals ``z_out``
    (the particle interaction) each unordered pair is computed once (at most 256 MiB of
    worker buffers). The derivative in a block norm r_il that is 0 is exactly 0 (κ̃ is even
    in r_il). The numbers depend on the sizes only, never on the number of threads.
    """
    z_out, yt, rt = _split(z_out, n_explicit, "z_out")
    z_src, ys, rs = _split(z_src, n_explicit, "z_src")
    if z_src.shape[1] != z_out.shape[1]:
        raise ValueError(f"z_src has {z_src.shape[1]} columns, z_out has {z_out.shape[1]}")
    c_src = np.ascontiguousarray(c_src, dtype=np.float64)
    if c_src.shape != (z_src.shape[0],):
        raise ValueError(f"c_src must have shape ({z_src.shape[0]},), got {c_src.shape}")
    nodes = np.ascontiguousarray(nodes, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    n_red = rt.shape[1]
    if nodes.ndim != 2 or nodes.shape[1] != n_red or weights.shape != (nodes.shape[0],):
        raise ValueError(f"nodes must have shape (Q, {n_red}) and weights (Q,), got "
                         f"{nodes.shape} and {weights.shape}")
    m, ncol = z_out.shape
    p = int(n_explicit)
    q = weights.shape[0]
    symmetric = ((z_src is z_out or (z_src.shape == z_out.shape
                                     and np.array_equal(z_src, z_out)))
                 and _RED_WORKERS * 8 * m * (ncol + 1) <= _RED_BUFFER_BYTES)
    nonzero = c_src != 0.0
    if not symmetric and not nonzero.all():
        # a source with c_k = 0 contributes nothing: drop it
        z_src, ys, rs, c_src = z_src[nonzero], ys[nonzero], rs[nonzero], c_src[nonzero]
    out_s = np.empty(m)
    out_g = np.empty((m, ncol))
    if m == 0 or z_src.shape[0] == 0:
        out_s[:] = 0.0
        out_g[:] = 0.0
        return out_s, out_g
    nt2 = np.einsum("ij,ij->i", z_out, z_out)
    if symmetric:
        n_workers = _RED_WORKERS if m > _RED_TILE_SYM else 1  # one block: one tile
        _reduced_pair_sums_symmetric(z_out, yt, np.ascontiguousarray(yt.T),
                                     np.ascontiguousarray(rt.T), c_src, nt2, nodes, weights,
                                     np.zeros((n_workers, m)),
                                     np.zeros((n_workers, m, ncol)), out_s, out_g,
                                     _RED_TILE_SYM, _run_serially(m, m, p, n_red, q))
    else:
        ms = z_src.shape[0]
        _reduced_pair_sums(z_out, yt, nt2, np.ascontiguousarray(ys), np.ascontiguousarray(ys.T),
                           np.ascontiguousarray(rs.T), np.einsum("ij,ij->i", z_src, z_src),
                           c_src, nodes, weights, out_s, out_g, _RED_TILE_ROWS,
                           _RED_TILE_COLS, _run_serially(m, ms, p, n_red, q))
    # κ̃ is even in every block norm: its derivative at r_il = 0 is exactly 0 (the
    # quadrature's Σ_j w_j θ_j t_jl is 0 only to round-off when other blocks are not flat)
    grad_r = out_g[:, p:]
    grad_r[rt == 0.0] = 0.0
    return out_s, out_g


# ------------------------------------------------------------------------- the blocks
@dataclass(frozen=True)
class BlockReduction:
    """A split of R^d into consecutive blocks, each kept explicitly or reduced to its norm.

    Parameters
    ----------
    sizes : tuple of int
        Block sizes n_1, …, n_B (sum d), in coordinate order.
    reduced : tuple of bool
        For every block, True to keep only its norm.

    Reduced coordinates of b ∈ R^d are z = (explicit coordinates in block order,
    then the norms of the reduced blocks in block order): ``n_coords = p + R`` columns.
    """

    sizes: tuple
    reduced: tuple

    def __post_init__(self):
        sizes = tuple(int(s) for s in self.sizes)
        reduced = tuple(bool(x) for x in self.reduced)
        if len(sizes) == 0 or len(sizes) != len(reduced):
            raise ValueError("give one 'reduced' flag per block size (both non-empty)")
        if any(s < 1 for s in sizes):
            raise ValueError(f"block sizes must be >= 1, got {sizes}")
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "reduced", reduced)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        object.__setattr__(self, "_starts", tuple(int(s) for s in starts))

    @classmethod
    def subspace(cls, d, d_H, reduce_H=False):
        """H = first d_H coordinates; H⊥ reduced to ‖b_⊥‖; H explicit unless ``reduce_H``."""
        if not 1 <= d_H < d:
            raise ValueError(f"need 1 <= d_H < d, got d_H = {d_H}, d = {d}")
        return cls((d_H, d - d_H), (bool(reduce_H), True))

    @property
    def d(self):
        return sum(self.sizes)

    @property
    def n_explicit(self):
        """p: number of explicit coordinates."""
        return sum(s for s, red in zip(self.sizes, self.reduced) if not red)

    @property
    def n_reduced(self):
        """R: number of reduced blocks."""
        return sum(self.reduced)

    @property
    def n_coords(self):
        return self.n_explicit + self.n_reduced

    @property
    def reduced_sizes(self):
        return tuple(s for s, red in zip(self.sizes, self.reduced) if red)

    def explicit_columns(self):
        """Indices (p,) of the explicit coordinates in R^d, in reduced-coordinate order."""
        cols = [np.arange(st, st + s) for st, s, red in zip(self._starts, self.sizes, self.reduced)
                if not red]
        return np.concatenate(cols) if cols else np.zeros(0, dtype=int)

    def reduced_slices(self):
        """(start, stop) in R^d of every reduced block, in reduced-coordinate order."""
        return [(st, st + s) for st, s, red in zip(self._starts, self.sizes, self.reduced) if red]

    def leading_columns(self, d_lead):
        """Reduced-coordinate columns that describe the first ``d_lead`` coordinates of R^d
        (which must end on a block boundary). Used for H = first d_H coordinates."""
        ends = np.cumsum(self.sizes)
        if d_lead not in set(int(e) for e in ends):
            raise ValueError(f"the first {d_lead} coordinates do not end on a block boundary "
                             f"(block ends: {list(int(e) for e in ends)}); choose blocks so "
                             "that H is a union of leading blocks")
        cols, col, red_col = [], 0, self.n_explicit
        for st, s, red in zip(self._starts, self.sizes, self.reduced):
            if red:
                if st < d_lead:
                    cols.append(red_col)
                red_col += 1
            else:
                if st < d_lead:
                    cols.extend(range(col, col + s))
                col += s
        return np.array(cols, dtype=int)

    def project(self, b):
        """Reduced coordinates of full particles: b (m, d) -> z (m, p + R)."""
        b = np.asarray(b, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != self.d:
            raise ValueError(f"b must have shape (m, {self.d}), got {b.shape}")
        parts = [b[:, self.explicit_columns()]]
        parts += [np.linalg.norm(b[:, st:en], axis=1)[:, None] for st, en in self.reduced_slices()]
        return np.ascontiguousarray(np.hstack(parts))

    def lift(self, z, rng):
        """Full particles with the given reduced coordinates and independent uniformly
        random directions in every reduced block: z (m, p + R) -> b (m, d).

        A negative norm is read as its absolute value (b_B and −b_B have the same law)."""
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.n_coords:
            raise ValueError(f"z must have shape (m, {self.n_coords}), got {z.shape}")
        m = z.shape[0]
        b = np.zeros((m, self.d))
        b[:, self.explicit_columns()] = z[:, : self.n_explicit]
        for l, (st, en) in enumerate(self.reduced_slices()):
            u = rng.standard_normal((m, en - st))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            b[:, st:en] = np.abs(z[:, self.n_explicit + l])[:, None] * u
        return b

    def quadrature(self, n_nodes=16):
        """Tensor Gauss–Jacobi rule over (t_1, …, t_R), t_l ∼ γ_{n_l}, independent.

        Returns nodes (Q, R) and weights (Q,) summing to 1, Q = Π_l q_l (q_l = 2 for a
        block of size 1, else ``n_nodes``)."""
        rules = [sphere_coordinate_quadrature(n, n_nodes) for n in self.reduced_sizes]
        if not rules:
            return np.zeros((1, 0)), np.ones(1)
        grids = np.meshgrid(*[t for t, _ in rules], indexing="ij")
        wgrids = np.meshgrid(*[w for _, w in rules], indexing="ij")
        nodes = np.stack([g.ravel() for g in grids], axis=1)
        weights = np.prod(np.stack([g.ravel() for g in wgrids], axis=1), axis=1)
        return np.ascontiguousarray(nodes), np.ascontiguousarray(weights)


# --------------------------------------------------------------------------- the backend
class ReducedBackend:
    """Exact potential gradients and risk of the reduced flow, ``gradients(a, z, w)``.

    Parameters
    ----------
    problem : Problem
        The full problem: Gaussian or spherical inputs, ReLU, and a target invariant under
        rotations of every reduced block (teacher units, linear and odd parts living in the
        explicit blocks; ``NormTarget`` with H a union of leading blocks).
    blocks : BlockReduction
    n_nodes : int
        Gauss–Jacobi nodes per reduced block for the interaction.
    target_nodes : int
        Gauss–Jacobi nodes of the ‖x_H‖ quadrature.

    Notes
    -----
    ``gradients`` returns g = ∇_z V (the velocity is −g) exactly like
    :class:`meanfield.models.backends.ExactBackend`, so the integrators of
    :mod:`meanfield.engine.integrators` apply unchanged to (a, z).
    """

    name = "reduced"

    def __init__(self, problem, blocks, n_nodes=16, target_nodes=64):
        if not isinstance(problem, Problem):
            raise ValueError("problem must be a meanfield.Problem")
        if not isinstance(blocks, BlockReduction):
            raise ValueError("blocks must be a BlockReduction")
        if blocks.d != problem.d:
            raise ValueError(f"blocks cover d = {blocks.d} coordinates, the problem has "
                             f"d = {problem.d}")
        if problem.activation != "relu" or not problem.law.rotation_invariant:
            raise ValueError("the reduced flow needs ReLU and Gaussian (or spherical) inputs, "
                             "whose law is invariant under every block rotation")
        if int(n_nodes) < 1 or int(target_nodes) < 1:
            raise ValueError("n_nodes and target_nodes must be >= 1")
        self.problem = problem
        self.blocks = blocks
        self.n_explicit = blocks.n_explicit
        self.nodes, self.weights = blocks.quadrature(int(n_nodes))
        target = problem.target_sum
        self.energy = 0.5 * target.second_moment(problem.law, problem.d)
        self.v_rho = problem.v_rho
        nodes, weights, p = self.nodes, self.weights, self.n_explicit

        def unit_interaction(z_out, z_src, c_src):
            return reduced_interaction(z_out, z_src, c_src, p, nodes, weights)

        # every part checks its own invariance under the reduced blocks' rotations
        self._target_terms = target.reduce(blocks, problem.law, unit_interaction,
                                           int(target_nodes))

    def _check(self, a, z, w):
        a = np.ascontiguousarray(a, dtype=np.float64)
        z = np.ascontiguousarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape != (a.shape[0], self.blocks.n_coords):
            raise ValueError(f"z must have shape (m, {self.blocks.n_coords}) with m = len(a), "
                             f"got {z.shape}")
        return a, z, np.ascontiguousarray(w, dtype=np.float64)

    def target_terms(self, z):
        """T(z_j) = E[f* σ(⟨b_j, x⟩)] and ∇_z T, shapes (m,) and (m, p + R)."""
        return self._target_terms(z)

    def interaction_terms(self, a, z, w):
        """S_j = Σ_k w_k a_k κ̃(z_j, z_k) and ∇_z S_j."""
        s, g = reduced_interaction(z, z, w * a, self.n_explicit, self.nodes, self.weights)
        return self.v_rho * s, self.v_rho * g

    def gradients(self, a, z, w, rng=None):
        """(g_a, g_z, F(ν)): potential gradients at every particle and the exact reduced risk."""
        a, z, w = self._check(a, z, w)
        s, gs = self.interaction_terms(a, z, w)
        t, gt = self.target_terms(z)
        wa = w * a
        risk = 0.5 * wa @ s - wa @ t + self.energy
        return s - t, a[:, None] * (gs - gt), risk

    def risk(self, a, z, w):
        """Exact reduced risk F(ν_m)."""
        return self.gradients(a, z, w)[2]

    def predict(self, a, z, w, x):
        """Predictor of the orientation-averaged measure at inputs x (n, d).

        f(x) = Σ_k w_k a_k E_t σ(⟨y_k, x_expl⟩ + Σ_l r_kl ‖x_{B_l}‖ t_l), by the same tensor
        quadrature. Returns (n,)."""
        a, z, w = self._check(a, z, w)
        xz = self.blocks.project(np.atleast_2d(x))
        p = self.n_explicit
        lin = z[:, :p] @ xz[:, :p].T  # (m, n)
        # (m, n, Q): pre-activation at every node
        red = np.einsum("kl,nl,ql->knq", z[:, p:], xz[:, p:], self.nodes)
        pre = lin[:, :, None] + red
        feat = np.maximum(pre, 0.0) @ self.weights  # (m, n)
        return (w * a) @ feat


# ------------------------------------------------------------------------------ the field
class ReducedField(Field):
    """The reduced flow (a, z)' = −(g_a, g_z) as a field of the one loop.

    After every accepted step a block norm that overshot 0 is reflected, r ↦ |r| (the same
    point of the full space: b_B ↦ −b_B has the same law); ``rescale`` moves every particle
    along its orbit (a, z) ↦ (s a, z/s) back to a² − ‖z‖² = Q(0), as for the full particles
    (‖b‖² = ‖z‖²).

    Parameters
    ----------
    backend : ReducedBackend
    weights : (m,) array
    q0 : (m,) array
        a² − ‖z‖² at t = 0.
    """

    names = ("a", "z")
    state_label = "reduced particles"

    def __init__(self, backend, weights, q0):
        super().__init__(weights)
        self.backend = backend
        self.p = backend.n_explicit
        self.q0 = q0
        self.n_reflections = 0

    def velocity(self, y, t=None):
        ga, gz, risk = self.backend.gradients(y[0], y[1], self.weights)
        return (-ga, -gz), risk

    def project(self, y, t, rescale=False):
        a, z = y
        changed = False
        if rescale:
            a, z = orbit_rescale(a, z, self.q0)
            changed = True
        negative = z[:, self.p:] < 0
        if np.any(negative):
            self.n_reflections += int(negative.sum())
            z = z.copy()
            z[:, self.p:] = np.abs(z[:, self.p:])
            changed = True
        return (a, z), changed

    def state_dict(self):
        return {"n_reflections": np.int64(self.n_reflections)}

    def load_state(self, state):
        if "n_reflections" in state:
            self.n_reflections = int(state["n_reflections"])


@dataclass
class ReducedFlowResult(Result):
    """What :func:`simulate_reduced` produced: a :class:`~meanfield.engine.Result` whose state
    is (a, z).

    Attributes
    ----------
    t, risk : (r,) arrays
        Recorded times and the exact reduced risk F(ν_t).
    snapshots : dict
        ``step`` (s,), ``t`` (s,), ``a`` (s, m), ``z`` (s, m, p + R).
    a, z, weights : arrays
        Final (or last finite) state.
    status, message : str
        ``ok``, ``diverged``, ``max_steps`` or ``interrupted``.
    n_reflections : int
        How many times a block norm overshot 0 in a step and was reflected (r ↦ |r|).
    """

    n_reflections: int = 0

    @property
    def a(self):
        return self.state["a"]

    @property
    def z(self):
        return self.state["z"]


class ReducedSolver(Solver):
    """The one loop over a :class:`ReducedField` (result: :class:`ReducedFlowResult`)."""

    result_class = ReducedFlowResult

    def _result_kwargs(self):
        kw = super()._result_kwargs()
        kw["n_reflections"] = self.field.n_reflections
        return kw


def reduced_solver(backend, a, z, dt=None, n_steps=None, weights=None, integrator="euler",
                   **options):
    """A :class:`ReducedSolver` of the reduced flow from (a, z) (validated); ``options`` as
    for :class:`~meanfield.engine.Solver` (``t_end``, ``rtol``, ``record_every``, ...)."""
    if not isinstance(backend, ReducedBackend):
        raise ValueError("backend must be a ReducedBackend")
    a = np.array(a, dtype=np.float64)
    z = np.array(z, dtype=np.float64)
    m = a.shape[0]
    if a.ndim != 1 or z.shape != (m, backend.blocks.n_coords):
        raise ValueError(f"need a (m,) and z (m, {backend.blocks.n_coords}), got {a.shape}, "
                         f"{z.shape}")
    p = backend.n_explicit
    if np.any(z[:, p:] < 0):
        raise ValueError("block norms (the last R columns of z) must be >= 0")
    w = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
        raise ValueError("weights must be non-negative, shape (m,), summing to 1")
    field = ReducedField(backend, w, rescaling_charge(a, z))
    return ReducedSolver(field, (a, z), integrator, dt=dt, n_steps=n_steps, **options)


def simulate_reduced(backend, a, z, dt=None, n_steps=None, weights=None, integrator="euler",
                     record_every=None, n_snapshots=0, snapshot_spacing="linear", stop=None,
                     **options):
    """Integrate the reduced flow (a, z)' = −(g_a, g_z) with an integrator of
    :data:`meanfield.engine.integrators.INTEGRATORS` through the one loop, reflecting block norms
    at 0.

    Parameters
    ----------
    backend : ReducedBackend
    a : (m,) array, z : (m, p + R) array
        Initial reduced particles (block norms ≥ 0).
    dt : float or None
        Step (fixed-step integrators) or first trial step (adaptive ones).
    n_steps : int or None
        Fixed-step runs (or give ``t_end``).
    weights : (m,) array, optional
        Masses summing to 1 (uniform by default).
    integrator : str
    record_every : int
    n_snapshots : int, snapshot_spacing : str
    stop : callable, optional
        Polled every step; a True answer stops the run (status ``interrupted``).
    **options
        ``t_end``, ``rtol``, ``atol``, ``max_steps``, ``n_records``, ``snapshot_times``,
        ``observers``, ... of :class:`~meanfield.engine.Solver`.

    Returns
    -------
    ReducedFlowResult
    """
    solver = reduced_solver(backend, a, z, dt, n_steps, weights, integrator,
                            record_every=record_every, n_snapshots=n_snapshots,
                            snapshot_spacing=snapshot_spacing, **options)
    solver.advance(stop=stop)
    return solver.result()
