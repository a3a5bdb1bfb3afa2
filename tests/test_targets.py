"""Target parts own their maths: E f*², cross moments, X̄, T(b) and ∇T against Monte Carlo and
finite differences, under every law each part supports; a new part works with the exact backend."""
import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import meanfield as mf
from meanfield.kernels.gaussian import interaction
from meanfield.models.backends import ExactBackend
from meanfield.models.targets import EVEN, NEITHER, ODD, TargetPart, TargetSum

from conftest import N_SIGMA, RTOL_FD

D = 5
N_MC = 400_000


def _teacher(rng, beta=True):
    return mf.Teacher(rng.standard_normal(3), rng.standard_normal((3, D)),
                      rng.standard_normal(D) if beta else None)


def _cases(rng):
    """(label, part, law): every part under every law it supports."""
    z = rng.standard_normal(D)
    out = []
    for law in (mf.GaussianLaw(0.7), mf.SphereLaw()):
        out += [("teacher", _teacher(rng), law),
                ("teacher_units", _teacher(rng, beta=False), law),
                ("linear_teacher", mf.Teacher(np.zeros(0), np.zeros((0, D)),
                                              rng.standard_normal(D)), law),
                ("norm", mf.NormTarget(3, coef=1.3), law)]
    out += [("odd3", mf.OddPowerTarget(z, coef=0.8, power=3), mf.GaussianLaw(0.6)),
            ("odd5", mf.OddPowerTarget(z, coef=0.8, power=5), mf.GaussianLaw(0.6))]
    return out


def _mc_mean(samples):
    """Mean and standard error over the first axis."""
    return samples.mean(axis=0), samples.std(axis=0) / np.sqrt(samples.shape[0])


def _assert_within(estimate, se, exact):
    estimate, se, exact = np.broadcast_arrays(estimate, se, exact)
    assert np.all(np.abs(estimate - exact) < N_SIGMA * se + 1e-14), (estimate, exact, se)


@pytest.mark.parametrize("index", range(10))
def test_part_expectations_match_monte_carlo(index):
    rng = np.random.default_rng(100 + index)
    label, part, law = _cases(rng)[index]
    x = law.sample(rng, N_MC, D)
    f = part(x)
    # E f*²
    est, se = _mc_mean(f * f)
    _assert_within(est, se, part.second_moment(law, D))
    # X̄ = E[f* x]
    est, se = _mc_mean(f[:, None] * x)
    _assert_within(est, se, part.xbar(law, D))
    # T(b) = E[f* σ(⟨b,x⟩)], ∇T = E[f* 1{⟨b,x⟩>0} x]
    b = rng.standard_normal((3, D))
    t, g = part.correlation(b, law)
    pre = x @ b.T  # (n, 3)
    est, se = _mc_mean(f[:, None] * np.maximum(pre, 0.0))
    _assert_within(est, se, t)
    for j in range(b.shape[0]):
        est, se = _mc_mean((f * (pre[:, j] > 0))[:, None] * x)
        _assert_within(est, se, g[j])
    # parity, read off the samples: f(−x) = ±f(x)
    if part.parity != NEITHER:
        np.testing.assert_allclose(part(-x[:100]), part.parity * f[:100], rtol=1e-12, atol=1e-12)
    else:
        assert not np.allclose(part(-x[:100]), f[:100]) and not np.allclose(part(-x[:100]), -f[:100])


@pytest.mark.parametrize("index", range(10))
def test_part_gradient_matches_finite_differences(index):
    rng = np.random.default_rng(200 + index)
    label, part, law = _cases(rng)[index]
    b = rng.standard_normal((4, D))
    _, g = part.correlation(b, law)
    h = 1e-6
    fd = np.empty_like(b)
    for l in range(D):
        e = np.zeros(D)
        e[l] = h
        fd[:, l] = (part.correlation(b + e, law)[0] - part.correlation(b - e, law)[0]) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=RTOL_FD, atol=RTOL_FD * np.abs(g).max())


@pytest.mark.parametrize("law", [mf.GaussianLaw(0.7), mf.SphereLaw()], ids=["gauss", "sphere"])
def test_sum_second_moment_and_correlation_match_monte_carlo(law):
    """Cross moments: teacher × norm (through the norm's T), teacher × teacher, odd × odd."""
    rng = np.random.default_rng(7)
    parts = (_teacher(rng), mf.NormTarget(2, coef=0.9), _teacher(rng))
    if isinstance(law, mf.GaussianLaw):
        parts += (mf.OddPowerTarget(rng.standard_normal(D), 0.5, 3),
                  mf.OddPowerTarget(rng.standard_normal(D), 0.3, 5))
    target = TargetSum(parts)
    x = law.sample(rng, N_MC, D)
    f = target(x)
    est, se = _mc_mean(f * f)
    _assert_within(est, se, target.second_moment(law, D))
    b = rng.standard_normal((2, D))
    est, se = _mc_mean(f[:, None] * np.maximum(x @ b.T, 0.0))
    _assert_within(est, se, target.correlation(b, law)[0])
    # linear activation: T(b) = E[f* ⟨b,x⟩] = ⟨b, X̄⟩
    est, se = _mc_mean(f[:, None] * (x @ b.T))
    _assert_within(est, se, target.correlation(b, law, "linear")[0])


def test_opposite_parities_do_not_meet():
    law = mf.GaussianLaw(1.0)
    rng = np.random.default_rng(3)
    target = TargetSum((mf.NormTarget(2), mf.OddPowerTarget(rng.standard_normal(D))))
    p, q = target.parts
    assert target.cross_moment(p, q, law, D) == 0.0
    assert target.parity == NEITHER
    assert TargetSum((mf.OddPowerTarget(np.ones(D)),)).parity == ODD
    assert TargetSum((mf.NormTarget(2),)).parity == EVEN


def test_unsupported_law_or_pair_raises_clearly():
    z = np.ones(D)
    with pytest.raises(ValueError, match="OddPowerTarget has closed-form expectations under "
                                         "GaussianLaw, not under SphereLaw"):
        mf.OddPowerTarget(z).xbar(mf.SphereLaw(), D)
    with pytest.raises(ValueError, match="CallableTarget has closed-form expectations under no law"):
        mf.CallableTarget(lambda x: x[:, 0]).correlation(np.ones((1, D)), mf.GaussianLaw())
    with pytest.raises(ValueError, match="NormTarget .* not under SampledLaw"):
        mf.NormTarget(2).second_moment(mf.rademacher_law(), D)
    with pytest.raises(ValueError, match="no closed form for E\\[f_p f_q\\] of NormTarget and "
                                         "NormTarget"):
        ExactBackend(mf.Problem(D, (mf.NormTarget(2), mf.NormTarget(3))))
    with pytest.raises(ValueError, match="OddPowerTarget .* SphereLaw"):
        ExactBackend(mf.Problem(D, mf.OddPowerTarget(z), mf.SphereLaw()))


# ------------------------------------------------------- a part written outside the package
@dataclass(frozen=True, eq=False)
class AbsProjection(TargetPart):
    """f(x) = |⟨u, x⟩| = σ(⟨u,x⟩) + σ(−⟨u,x⟩): T(b) = v (κ(b, u) + κ(b, −u)), E f² = v‖u‖²."""

    u: np.ndarray
    laws = (mf.GaussianLaw, mf.SphereLaw)
    parity = EVEN

    def __call__(self, x):
        return np.abs(x @ self.u)

    def second_moment(self, law, d):
        return law.second_moment(d) * (self.u @ self.u)

    def xbar(self, law, d):
        return np.zeros(d)

    def correlation(self, b, law):
        s, g = interaction(b, np.stack([self.u, -self.u]), np.ones(2))
        v = law.second_moment(b.shape[1])
        return v * s, v * g

    def used_coordinates(self, d):
        return self.u != 0


@pytest.mark.parametrize("law", [mf.GaussianLaw(0.8), mf.SphereLaw()], ids=["gauss", "sphere"])
def test_a_new_part_works_with_the_exact_backend(law):
    """|⟨u,x⟩| plus a teacher equals the teacher with two more units ±u: the backend, the
    energy and the cross moment (through the new part's T) only use the part's methods."""
    rng = np.random.default_rng(11)
    u = rng.standard_normal(D)
    teacher = _teacher(rng)
    new = mf.Problem(D, (teacher, AbsProjection(u)), law=law)
    same = mf.Problem(D, mf.Teacher(np.concatenate([teacher.a, [1.0, 1.0]]),
                                    np.vstack([teacher.b, u, -u]), teacher.beta), law=law)
    a = rng.standard_normal(7)
    b = rng.standard_normal((7, D))
    w = np.full(7, 1 / 7)
    for x, y in zip(ExactBackend(new).gradients(a, b, w), ExactBackend(same).gradients(a, b, w)):
        np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-14)
    # the same part through the sampled estimate of the risk: within 5σ of the exact one
    xs = law.sample(rng, N_MC, D)
    r = (a * w) @ np.maximum(b @ xs.T, 0.0) - new.target_values(xs)
    est, se = _mc_mean(0.5 * r * r)
    _assert_within(est, se, ExactBackend(new).risk(a, b, w))


def test_reduced_backend_asks_the_parts():
    """A part without a reduced form is refused by name; a teacher in the explicit block works."""
    from meanfield.models.reduced import BlockReduction, ReducedBackend
    blocks = BlockReduction.subspace(D, 2)
    with pytest.raises(ValueError, match="AbsProjection has no exact reduced form"):
        ReducedBackend(mf.Problem(D, AbsProjection(np.ones(D))), blocks)
    rng = np.random.default_rng(5)
    tb = np.zeros((2, D))
    tb[:, :2] = rng.standard_normal((2, 2))
    problem = mf.Problem(D, (mf.Teacher(np.ones(2), tb), mf.NormTarget(2)))
    backend = ReducedBackend(problem, blocks)
    assert backend.energy == 0.5 * problem.target_sum.second_moment(problem.law, D)


def test_kernels_do_not_import_models():
    """kernels/ is the lowest layer: no import of models (the norm target's α lives there)."""
    root = Path(mf.__file__).parent / "kernels"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = ("." * node.level) + (node.module or "")
                assert "models" not in name and not name.startswith(".."), (path.name, name)
