"""Equivalent minima (seed 002): counts, group actions, canonical form, matching distance."""
import math

import numpy as np
import pytest

from conftest import OUTPUT_RTOL, RESCALE_ATOL
from meanfield.systems.equivalent import (canonical_distance, canonical_form, count_equivalent_minima,
                                  discrete_orbit, flip_signs, network_output, permute_units,
                                  rescale_units)


def _net(rng, k=4, d=3, p=2, bias=True):
    A = rng.standard_normal((p, k)) if p else rng.standard_normal(k)
    W = rng.standard_normal((k, d))
    c = rng.standard_normal(k) if bias else None
    return A, W, c


def _flat(A, W, c):
    parts = [np.ravel(A), np.ravel(W)] + ([] if c is None else [c])
    return np.concatenate(parts)


def test_counts_match_the_formula():
    assert count_equivalent_minima([10], "tanh").count == 3_715_891_200
    assert count_equivalent_minima([10], "relu").count == math.factorial(10)
    assert count_equivalent_minima([10], "relu").continuous
    assert not count_equivalent_minima([10], "tanh").continuous
    assert count_equivalent_minima([3, 4], "tanh").count == 6 * 8 * 24 * 16
    assert count_equivalent_minima([3, 4], "generic").count == 6 * 24
    assert int(count_equivalent_minima([5], "tanh")) == 120 * 32


def test_log10_without_forming_a_huge_integer():
    big = count_equivalent_minima([1000, 1000], "tanh", max_digits=100)
    assert big.count is None
    exact = count_equivalent_minima([1000, 1000], "tanh")
    assert exact.count is not None
    assert big.log10 == pytest.approx(math.log10(exact.count), rel=1e-12)
    with pytest.raises(OverflowError):
        int(big)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation"):
        count_equivalent_minima([3], "sigmoid")


@pytest.mark.parametrize("activation,bias,p", [("tanh", True, 2), ("tanh", False, 0),
                                                ("relu", True, 2), ("relu", False, 0)])
def test_orbit_has_exactly_the_counted_distinct_points(activation, bias, p):
    rng = np.random.default_rng(1)
    k = 4
    A, W, c = _net(rng, k=k, p=p, bias=bias)
    x = rng.standard_normal((50, 3))
    reference = network_output(A, W, x, c, activation)
    canonical = _flat(*canonical_form(A, W, c, activation))
    points = set()
    for image in discrete_orbit(A, W, c, activation):
        points.add(_flat(*image).tobytes())
        np.testing.assert_allclose(network_output(*image[:2], x, image[2], activation),
                                   reference, rtol=OUTPUT_RTOL, atol=OUTPUT_RTOL)
        # exact group elements: the canonical form is bitwise the same
        assert np.array_equal(_flat(*canonical_form(*image[:2], image[2], activation)),
                              canonical)
    assert len(points) == count_equivalent_minima([k], activation).count


def test_relu_rescaling_keeps_function_and_canonical_form():
    rng = np.random.default_rng(2)
    A, W, c = _net(rng)
    x = rng.standard_normal((40, 3))
    lam = np.exp(rng.standard_normal(4))
    A2, W2, c2 = rescale_units(A, W, lam, c)
    assert not np.allclose(W2, W)
    np.testing.assert_allclose(network_output(A2, W2, x, c2), network_output(A, W, x, c),
                               rtol=OUTPUT_RTOL, atol=OUTPUT_RTOL)
    for left, right in zip(canonical_form(A2, W2, c2), canonical_form(A, W, c)):
        np.testing.assert_allclose(left, right, atol=RESCALE_ATOL)
    assert canonical_distance(A2, W2, A, W, c2, c) < RESCALE_ATOL * 10
    # the canonical ReLU units lie on the unit sphere (input weights and bias together)
    _, Wc, cc = canonical_form(A, W, c)
    np.testing.assert_allclose(np.hypot(np.linalg.norm(Wc, axis=1), cc), 1.0, atol=1e-15)


def test_tanh_sign_flip_is_not_a_relu_symmetry():
    rng = np.random.default_rng(3)
    A, W, c = _net(rng)
    x = rng.standard_normal((40, 3))
    s = np.array([1.0, -1.0, 1.0, -1.0])
    A2, W2, c2 = flip_signs(A, W, s, c)
    np.testing.assert_allclose(network_output(A2, W2, x, c2, "tanh"),
                               network_output(A, W, x, c, "tanh"), rtol=OUTPUT_RTOL)
    assert not np.allclose(network_output(A2, W2, x, c2, "relu"),
                           network_output(A, W, x, c, "relu"))
    assert canonical_distance(A2, W2, A, W, c2, c, activation="relu") > 0.1


def test_distance_matches_units_and_separates_different_networks():
    rng = np.random.default_rng(4)
    A, W, c = _net(rng, k=6)
    perm = rng.permutation(6)
    A2, W2, c2 = permute_units(A, W, perm, c)
    assert canonical_distance(A2, W2, A, W, c2, c) == 0.0
    # a perturbed network is at distance of the order of the perturbation
    eps = 1e-3
    A3 = A + eps * rng.standard_normal(A.shape)
    dist = canonical_distance(A3, W, A, W, c, c)
    assert 0 < dist < 10 * eps
    # matching: canonical units pair up one-to-one with themselves
    _, match = canonical_distance(A, W, A, W, c, c, return_matching=True)
    np.testing.assert_array_equal(match, np.arange(6))


def test_tanh_distance_tolerates_a_sign_tie():
    # the unit's two largest entries have nearly equal magnitude: a perturbation of 1e-9
    # flips which one decides the canonical sign; the distance must stay ~1e-9.
    A = np.array([1.0, 2.0])
    W = np.array([[1.0, -1.0 + 1e-12], [0.3, 0.1]])
    W2 = W.copy()
    W2[0, 1] = -1.0 - 1e-9
    assert canonical_distance(A, W2, A, W, activation="tanh") < 1e-8


def test_null_units_are_zeroed():
    A = np.array([0.0, 2.0, 1.0])
    W = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 4.0]])
    Ac, Wc, _ = canonical_form(A, W)
    assert np.count_nonzero(np.any(Wc != 0, axis=1)) == 1
    np.testing.assert_allclose(sorted(Ac), [0.0, 0.0, 5.0])
