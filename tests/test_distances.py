"""The distances module (meanfield.theory.distances, on POT) against scipy, closed forms and
brute-force enumeration of couplings on tiny cases."""
import itertools

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.stats import wasserstein_distance

from conftest import RTOL_KERNEL, RTOL_LP
from meanfield.theory import distances as D


def test_wasserstein_1d_against_scipy_and_closed_forms(rng):
    x, y = rng.standard_normal(17), rng.standard_normal(9) + 0.3
    wx, wy = rng.uniform(size=17), rng.uniform(size=9)
    assert D.wasserstein_1d(x, y, wx, wy) == pytest.approx(wasserstein_distance(x, y, wx, wy),
                                                           rel=RTOL_KERNEL)
    assert D.wasserstein_1d(x, y) == pytest.approx(wasserstein_distance(x, y), rel=RTOL_KERNEL)
    # W_p of a translate is the shift, for every p; batch rows are independent problems
    out = D.wasserstein_1d(np.stack([x, x]), np.stack([x + 0.5, x - 2.0]), wx, wx, p=2)
    np.testing.assert_allclose(out, [0.5, 2.0], rtol=RTOL_KERNEL)
    # two-point laws: W_2² = Σ of the quantile gaps² by hand
    assert D.wasserstein_1d([0.0, 1.0], [0.0, 3.0], [0.5, 0.5], [0.25, 0.75], p=2) \
        == pytest.approx(np.sqrt(0.25 * 0 + 0.25 * 9 + 0.5 * 4), rel=RTOL_KERNEL)
    with pytest.raises(ValueError, match="p must be"):
        D.wasserstein_1d(x, y, p=0.5)


def _brute_force_assignment(X, Y, p):
    """min over all permutations π of (mean_j ‖X_j − Y_π(j)‖^p)^{1/p}."""
    n = X.shape[0]
    return min(np.mean(np.linalg.norm(X - Y[list(pi)], axis=1) ** p) ** (1 / p)
               for pi in itertools.permutations(range(n)))


@pytest.mark.parametrize("p", [1, 2, 3])
def test_discrete_uniform_equals_every_permutation_tried(rng, p):
    X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)) + 0.2
    assert D.wasserstein_discrete(X, Y, p=p) == pytest.approx(_brute_force_assignment(X, Y, p),
                                                              rel=RTOL_KERNEL)


def test_discrete_weighted_equals_the_transport_linear_program(rng):
    # unequal sizes and weights: the plan is not a permutation; an independent LP solver
    X, Y = rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    wx, wy = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(3))
    C = np.linalg.norm(X[:, None] - Y[None], axis=2) ** 2
    A_eq = np.vstack([np.kron(np.eye(4), np.ones(3)), np.kron(np.ones(4), np.eye(3))])
    lp = linprog(C.ravel(), A_eq=A_eq, b_eq=np.concatenate([wx, wy]), bounds=(0, None),
                 method="highs")
    assert lp.status == 0
    assert D.wasserstein_discrete(X, Y, wx, wy, p=2) == pytest.approx(np.sqrt(lp.fun),
                                                                      rel=RTOL_LP)
    # on the line it is the 1-D distance
    x, y = rng.standard_normal(7), rng.exponential(size=5)
    vx, vy = rng.dirichlet(np.ones(7)), rng.dirichlet(np.ones(5))
    assert D.wasserstein_discrete(x, y, vx, vy, p=1) == pytest.approx(
        wasserstein_distance(x, y, vx, vy), rel=RTOL_LP)


def test_discrete_distance_of_a_relabelling_is_zero_to_round_off(rng):
    X = rng.standard_normal((40, 3))
    perm = rng.permutation(40)
    assert D.wasserstein_discrete(X, X[perm]) == 0.0  # the cost is recomputed on the plan
    assert D.coupled_distance(X, X[perm]) > 0.5  # the fixed coupling sees the labels


def test_sliced_is_the_mean_of_projected_one_dimensional_distances(rng):
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((20, 4)) * 1.5
    wx, wy = rng.dirichlet(np.ones(30)), rng.dirichlet(np.ones(20))
    u = rng.standard_normal((8, 4))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    for p in (1, 2):
        per = [wasserstein_distance(X @ v, Y @ v, wx, wy) if p == 1 else
               D.wasserstein_discrete(X @ v, Y @ v, wx, wy, p=2) for v in u]
        expected = np.mean(np.array(per) ** p) ** (1 / p)
        assert D.sliced_wasserstein(X, Y, u, wx, wy, p) == pytest.approx(expected,
                                                                         rel=RTOL_LP)


def test_coupled_distance_with_weights(rng):
    X, Y = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    w = rng.dirichlet(np.ones(5))
    assert D.coupled_distance(X, Y, w) == pytest.approx(
        np.sqrt(w @ np.sum((X - Y) ** 2, axis=1)), rel=RTOL_KERNEL)
    assert D.coupled_distance(X, Y) == pytest.approx(
        np.sqrt(np.mean(np.sum((X - Y) ** 2, axis=1))), rel=RTOL_KERNEL)
