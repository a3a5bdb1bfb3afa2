"""Potential gradients and risk for a :class:`~meanfield.models.problem.Problem`: exact or sampled.

A backend turns particles (a, b, w) into ``(g_a, g_b, risk)`` where g = ∇_θ V_μ(θ_j) is the
gradient of the first variation V_μ(θ) = E[(f(μ;x) − f*(x)) a σ(⟨b,x⟩)] at each particle
(the Wasserstein velocity is −g) and ``risk`` is F(μ) (exact) or its batch estimate.
"""
import numpy as np

from ..kernels.gaussian import interaction
from .laws import SampledLaw
from .problem import EXACT_ACTIVATIONS
from .targets import ODD
from ..kernels.sampled import potential_gradients, predict_batch

__all__ = ["ExactBackend", "SampledBackend", "make_backend", "BACKENDS"]

BACKENDS = ("exact", "sampled")


class ExactBackend:
    """Exact population expectations (MATH §2) for Gaussian or spherical inputs.

    The target enters only through what its parts compute
    (:class:`~meanfield.models.targets.TargetSum`): T(b) = E[f* σ(⟨b,x⟩)] and ∇T
    (``target_terms``), and the constant ½ E f*² (``energy``).

    Attributes
    ----------
    energy : float
        ½ E f*², the risk of the zero network.
    xbar_odd : (d,) array
        X̄ = E[f* x] of the odd parts of the target.
    units : tuple of (k,) and (k, d) arrays, or None
        (a*, b*) when the target is ReLU units only (:meth:`TargetSum.units`): then
        :meth:`gradients` takes one symmetric pair sum over particles and units together
        (when there are at least 8 particles per unit, :meth:`fuses_units`).
    """

    name = "exact"

    def __init__(self, problem):
        if problem.activation not in EXACT_ACTIVATIONS:
            raise ValueError(f"the exact backend needs activation relu or linear, got "
                             f"{problem.activation!r}: use backend='sampled'")
        # names the first part without closed forms under this law, and the laws it has
        problem.target_sum.check_law(problem.law)
        self.problem = problem
        self.target = problem.target_sum
        self.law = problem.law
        self.v_rho = problem.v_rho
        self.linear = problem.activation == "linear"
        self.energy = 0.5 * self.target.second_moment(self.law, problem.d)
        # a target made of ReLU units only: the units join the particles in one pair sum
        self.units = None if self.linear else self.target.units()

    @property
    def xbar_odd(self):
        return self.target.xbar(self.law, self.problem.d, parity=ODD)

    def target_terms(self, b):
        """T(b_j) = E[f* σ(⟨b_j, x⟩)] and ∇T, shapes (m,) and (m, d)."""
        return self.target.correlation(b, self.law, "linear" if self.linear else "relu")

    def interaction_terms(self, a, b, w):
        """S_j = Σ_k w_k a_k κ_ρ(b_j, b_k) and its gradient in b_j."""
        c = w * a
        if self.linear:
            mean_field = c @ b
            return self.v_rho * (b @ mean_field), np.broadcast_to(self.v_rho * mean_field,
                                                                  b.shape).copy()
        s, g = interaction(b, b, c)
        return self.v_rho * s, self.v_rho * g

    # -- the one entry point -------------------------------------------------------------
    def gradients(self, a, b, w, rng=None):
        """(g_a, g_b, F(μ)): potential gradients at every particle and the exact risk."""
        if self.fuses_units(b.shape[0]):
            return self._gradients_with_units(a, b, w)
        s, gs = self.interaction_terms(a, b, w)
        t, gt = self.target_terms(b)
        ga = s - t
        gb = a[:, None] * (gs - gt)
        wa = w * a
        risk = 0.5 * wa @ s - wa @ t + self.energy
        return ga, gb, risk

    def fuses_units(self, m):
        """Whether :meth:`gradients` takes the units into the particles' pair sum for m
        particles: a target of ReLU units only, and k ≤ m/8 of them (the k²/2 unit pairs,
        recomputed at every evaluation, then cost at most 1/128 of the m²/2 particle pairs)."""
        return self.units is not None and 8 * self.units[0].size <= m

    def _gradients_with_units(self, a, b, w):
        """:meth:`gradients` for a target of ReLU units (a*_k, b*_k): with the points
        (b_1 … b_m, b*_1 … b*_k) and weights c = (w a, −a*), U_i = v_ρ Σ_j c_j κ(b_i, b_j)
        is S_i − T_i at a particle, so g_a = U, g_b = a ∇U and F(μ) = ½ Σ_i c_i U_i
        (= ½ E (f − f*)², the constant ½ E f*² included). One symmetric pair sum per
        evaluation instead of the particles' pair sum plus a particles × units sum: each
        pair once, and no general kernel to compile or call (issue 17)."""
        ua, ub = self.units
        m = b.shape[0]
        points = np.concatenate((b, ub))
        c = np.concatenate((w * a, -ua))
        u, gu = interaction(points, points, c)
        u *= self.v_rho
        return u[:m], (self.v_rho * a)[:, None] * gu[:m], 0.5 * float(c @ u)

    def risk(self, a, b, w):
        """Exact F(μ)."""
        return self.gradients(a, b, w)[2]


class SampledBackend:
    """Expectations replaced by averages over a batch of inputs.

    ``batch_size`` inputs are drawn afresh at every evaluation (online SGD, the seed paper's
    method) from the problem's law; for a law given as fixed ``data`` with ``batch_size``
    None the whole data set is used every time (full-batch gradient descent).
    """

    name = "sampled"

    def __init__(self, problem, batch_size=512):
        self.problem = problem
        self.batch_size = batch_size
        fixed = isinstance(problem.law, SampledLaw) and problem.law.data is not None
        if batch_size is None and not fixed:
            raise ValueError("batch_size is required unless the input law is a fixed data set")
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.fixed_data = problem.law.data if (fixed and batch_size is None) else None
        if self.fixed_data is not None:
            self.fixed_y = problem.target_values(self.fixed_data)
        self.exact = ExactBackend(problem) if problem.exact else None

    def gradients(self, a, b, w, rng):
        """(g_a, g_b, risk estimate on the batch)."""
        p = self.problem
        if self.fixed_data is not None:
            x, y = self.fixed_data, self.fixed_y
        else:
            x = p.sample_inputs(rng, int(self.batch_size))
            y = p.target_values(x)
        f = predict_batch(x, a, b, w, p.act_code, p.leaky_slope)
        r = f - y
        ga, gb = potential_gradients(x, r, a, b, p.act_code, p.leaky_slope)
        return ga, gb, 0.5 * float(r @ r) / r.shape[0]

    def risk(self, a, b, w):
        """Exact F(μ) when the problem allows it, else NaN (use an estimate)."""
        return self.exact.risk(a, b, w) if self.exact is not None else float("nan")


def make_backend(problem, backend="exact", batch_size=512):
    """Backend by name (``exact`` or ``sampled``), or any object with
    ``gradients(a, b, w, rng) -> (g_a, g_b, risk)``, ``risk(a, b, w)`` and ``name``
    (e.g. a reduced model), which is returned as it is."""
    if not isinstance(backend, str):
        missing = [k for k in ("gradients", "risk", "name") if not hasattr(backend, k)]
        if missing:
            raise ValueError(f"backend object lacks {missing}; give 'exact', 'sampled' or an "
                             "object with gradients(a, b, w, rng), risk(a, b, w) and name")
        return backend
    if backend == "exact":
        return ExactBackend(problem)
    if backend == "sampled":
        return SampledBackend(problem, batch_size)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
