"""Potential gradients and risk for a :class:`~meanfield.models.problem.Problem`: exact or sampled.

A backend turns particles (a, b, w) into ``(g_a, g_b, risk)`` where g = ∇_θ V_μ(θ_j) is the
gradient of the first variation V_μ(θ) = E[(f(μ;x) − f*(x)) a σ(⟨b,x⟩)] at each particle
(the Wasserstein velocity is −g) and ``risk`` is F(μ) (exact) or its batch estimate.
"""
import numpy as np

from ..kernels.gaussian import interaction, norm_target_terms
from .problem import (GaussianLaw, NormTarget, OddPowerTarget, SampledLaw, SphereLaw, Teacher,
                      _double_factorial)
from ..kernels.sampled import potential_gradients, predict_batch

__all__ = ["ExactBackend", "SampledBackend", "make_backend", "BACKENDS"]

BACKENDS = ("exact", "sampled")


class ExactBackend:
    """Exact population expectations (MATH §2) for Gaussian or spherical inputs.

    The target enters through T(b) = E[f* σ(⟨b,x⟩)] = Σ_k a*_k κ_ρ(b, b*_k)
    + ½⟨b, X̄_odd⟩ + coef·E[‖x_H‖σ(⟨b,x⟩)], where X̄_odd = E[f_odd x] collects the linear
    and odd-polynomial parts (only the odd part z/2 of σ sees an odd function), and
    through the constant ½ E f*², computed in closed form from all pairs of parts.
    """

    name = "exact"

    def __init__(self, problem):
        if not problem.exact:
            raise ValueError(
                f"the exact backend needs Gaussian (or, for teacher/norm targets, spherical) "
                f"inputs, a teacher/linear/norm/odd-power target and activation relu or linear; "
                f"this problem has law {type(problem.law).__name__}, activation "
                f"{problem.activation!r}: use backend='sampled'")
        kinds = [type(p) for p in problem.target_parts]
        if len(set(kinds)) != len(kinds):
            raise ValueError("give at most one target part of each kind (merge teachers into one)")
        self.problem = problem
        d = problem.d
        self.v_rho = problem.v_rho
        self.linear = problem.activation == "linear"
        self.teacher = next((p for p in problem.target_parts if isinstance(p, Teacher)), None)
        self.norm = next((p for p in problem.target_parts if isinstance(p, NormTarget)), None)
        odd = next((p for p in problem.target_parts if isinstance(p, OddPowerTarget)), None)
        self.odd = odd
        beta = self.teacher.beta if self.teacher is not None and self.teacher.beta is not None \
            else np.zeros(d)
        # X̄ of the odd parts: E[⟨β,x⟩ x] = v_ρ β, E[f_odd x] from Gaussian moments
        self.xbar_odd = self.v_rho * beta + (self._odd_xbar(odd) if odd is not None else 0.0)
        self.beta = beta
        self.energy = 0.5 * self._second_moment()

    # -- target constants ----------------------------------------------------------------
    def _odd_xbar(self, odd):
        s2 = self.problem.law.scale ** 2
        p = odd.power
        return odd.coef * odd.z * s2 ** ((p + 1) / 2) * _double_factorial(p)

    def _norm_T(self, b):
        t, g = norm_target_terms(b, self.norm.d_H)
        return self.norm.coef * self.v_rho * t, self.norm.coef * self.v_rho * g

    def _second_moment(self):
        """E f*² from all pairs of target parts (cross terms of opposite parity vanish)."""
        v = self.v_rho
        total = v * self.beta @ self.beta + 2.0 * self.beta @ (self.xbar_odd - v * self.beta)
        if self.odd is not None:
            s2 = self.problem.law.scale ** 2
            p = self.odd.power
            total += (self.odd.coef ** 2 * (self.odd.z @ self.odd.z) * s2 ** p
                      * _double_factorial(2 * p - 1))
        if self.norm is not None:
            total += self.norm.coef ** 2 * v * self.norm.d_H
        if self.teacher is not None and self.teacher.a.size:
            ta, tb = self.teacher.a, self.teacher.b
            s, _ = interaction(tb, tb, ta)
            total += v * ta @ s
            total += 2.0 * 0.5 * ta @ (tb @ self.xbar_odd)
            if self.norm is not None:
                total += 2.0 * ta @ self._norm_T(tb)[0]
        return total

    def target_terms(self, b):
        """T(b_j) = E[f* σ(⟨b_j, x⟩)] and ∇T, shapes (m,) and (m, d)."""
        if self.linear:
            xbar = self.xbar_odd.copy()
            if self.teacher is not None and self.teacher.a.size:
                xbar = xbar + 0.5 * self.v_rho * self.teacher.a @ self.teacher.b
            # E[‖x_H‖ x] = 0: the norm target is even
            return b @ xbar, np.broadcast_to(xbar, b.shape).copy()
        t = 0.5 * (b @ self.xbar_odd)
        g = np.broadcast_to(0.5 * self.xbar_odd, b.shape).copy()
        if self.teacher is not None and self.teacher.a.size:
            s, gs = interaction(b, self.teacher.b, self.teacher.a)
            t += self.v_rho * s
            g += self.v_rho * gs
        if self.norm is not None:
            tn, gn = self._norm_T(b)
            t += tn
            g += gn
        return t, g

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
        s, gs = self.interaction_terms(a, b, w)
        t, gt = self.target_terms(b)
        ga = s - t
        gb = a[:, None] * (gs - gt)
        wa = w * a
        risk = 0.5 * wa @ s - wa @ t + self.energy
        return ga, gb, risk

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
