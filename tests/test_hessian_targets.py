"""The targets' Hessians of T(b) = E[f* σ(⟨b, x⟩)] (TargetPart.correlation_hessian): products
and dense matrices against central differences of each part's own ∇T, every exact part and
law; parts without a Hessian are refused by name."""
import numpy as np
import pytest

import meanfield as mf
from meanfield.models.laws import GaussianLaw, SphereLaw
from meanfield.models.targets import TargetPart, TargetSum

from conftest import RTOL_FD, RTOL_KERNEL, RTOL_NORM_IN_H


def _parts(rng, d):
    return [
        ("teacher units+linear", mf.Teacher(rng.standard_normal(3), rng.standard_normal((3, d)),
                                            rng.standard_normal(d)), GaussianLaw(0.7)),
        ("teacher sphere", mf.Teacher(np.ones(2), rng.standard_normal((2, d))), SphereLaw()),
        ("norm d_H=3", mf.NormTarget(3, coef=1.3), GaussianLaw(1.2)),
        ("norm d_H=1", mf.NormTarget(1), GaussianLaw()),
        ("norm d_H=d sphere", mf.NormTarget(d, coef=0.8), SphereLaw()),
        ("odd cubic", mf.odd_cubic_target(d, rng), GaussianLaw(0.5)),
        ("linear teacher", mf.Teacher(np.zeros(0), np.zeros((0, d)), rng.standard_normal(d)),
         GaussianLaw()),
    ]


@pytest.mark.parametrize("which", range(7))
def test_correlation_hessian_matches_finite_differences_of_grad_T(rng, which):
    """∇²T(b_j) β_j (apply) and the dense ∇²T(b_j) equal the central difference of the part's
    ∇T along β_j, at generic rows and at rows inside H and orthogonal to it (the norm target's
    special cases). A wrong coefficient, a missing v_ρ or α, or a Hessian for a linear T
    that is not zero fails here."""
    m, d = 6, 5
    name, part, law = _parts(rng, d)[which]
    b = rng.standard_normal((m, d))
    b[1, 3:] = 0.0          # inside H for d_H = 3
    b[2, :3] = 0.0          # orthogonal to H
    beta = rng.standard_normal((m, d))
    hess = part.correlation_hessian(b, law)
    h = 1e-6
    fd = (part.correlation(b + h * beta, law)[1] - part.correlation(b - h * beta, law)[1]) / (2 * h)
    got = hess.apply(beta)
    dense = hess.dense()
    scale = max(np.abs(fd).max(), np.abs(part.correlation(b, law)[1]).max())
    err = np.abs(got - fd).max(axis=1)
    generic = np.arange(m) != 1
    assert err[generic].max() <= RTOL_FD * scale, name
    assert err[1] <= RTOL_NORM_IN_H * scale, name   # b_1 ∈ H (conftest: the quadrature)
    assert np.abs(np.einsum("jab,jb->ja", dense, beta) - got).max() <= RTOL_KERNEL * scale, name
    assert np.abs(dense - dense.transpose(0, 2, 1)).max() <= RTOL_KERNEL * np.abs(dense).max() + 0.0
    if part.parity == mf.models.targets.ODD:
        assert hess.zero and not np.any(dense)
    else:
        assert not hess.zero and np.abs(got).max() > 1e-3 * scale, name


def test_target_sum_hessian_is_the_sum_of_its_parts(rng):
    """TargetSum adds the parts' Hessians (teacher + norm + odd) and gives zero for the linear
    activation, where T(b) = ⟨b, X̄⟩."""
    d, m = 4, 5
    parts = [mf.Teacher(rng.standard_normal(2), rng.standard_normal((2, d))), mf.NormTarget(2),
             mf.odd_cubic_target(d, rng)]
    law = GaussianLaw(0.9)
    total = TargetSum(parts)
    b = rng.standard_normal((m, d))
    beta = rng.standard_normal((m, d))
    h = 1e-6
    fd = (total.correlation(b + h * beta, law)[1] - total.correlation(b - h * beta, law)[1]) / (2 * h)
    got = total.correlation_hessian(b, law).apply(beta)
    assert np.abs(got - fd).max() <= RTOL_FD * np.abs(fd).max()
    each = sum(p.correlation_hessian(b, law).dense() for p in parts)
    assert np.abs(total.correlation_hessian(b, law).dense() - each).max() <= \
        RTOL_KERNEL * np.abs(each).max()
    assert total.correlation_hessian(b, law, activation="linear").zero


def test_part_without_hessian_is_refused_by_name():
    """A part with a closed-form T but no Hessian (and not odd) raises a ValueError that names
    it, and so does the Hessian operator built on it."""
    class Plain(TargetPart):
        laws = (GaussianLaw,)

        def __call__(self, x):
            return np.abs(x[:, 0])

        def correlation(self, b, law):
            return np.zeros(len(b)), np.zeros_like(b)

        def second_moment(self, law, d):
            return 1.0

        def xbar(self, law, d):
            return np.zeros(d)

    with pytest.raises(ValueError, match="Plain has no closed form for the Hessian"):
        Plain().correlation_hessian(np.ones((2, 3)), GaussianLaw())
    problem = mf.Problem(3, Plain())
    with pytest.raises(ValueError, match="Plain"):
        mf.hessian.HessianOperator(problem, np.ones(2), np.ones((2, 3)))
