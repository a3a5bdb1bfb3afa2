"""Symmetric Boolean functions (seed 000): exact population flow, invariance, SGD kernel."""
import itertools

import numpy as np
import pytest

from conftest import BOOLEAN_ROUND_OFF, RTOL_FD, SGD_RTOL
from meanfield.systems import boolean as bl


def _invariant_net(rng, n, k):
    """A generic invariant net: w_i = u_i 1 with random u, c, a, b (kinks away from integers)."""
    u = rng.uniform(0.3, 1.5, k) * rng.choice([-1, 1], k)
    net = bl.BooleanNet(np.ascontiguousarray(u[:, None] * np.ones((1, n))),
                        rng.uniform(-n / 2, n / 2, k), rng.standard_normal(k),
                        np.array([0.3]))
    return net


def _brute_force(net, X, y, loss):
    """Risk and full-space gradient, mean over the rows of X (straight from the formulas)."""
    pre = X @ net.W.T + net.c
    act = np.maximum(pre, 0.0)
    f = act @ net.a + net.b[0]
    if loss == "squared":
        risk = np.mean(0.5 * (f - y) ** 2)
        dl = f - y
    else:
        risk = np.mean(np.log1p(np.exp(-y * f)))
        dl = -y / (1 + np.exp(y * f))
    back = (dl[:, None] * (pre > 0)) * net.a       # (N, k)
    return (risk, back.T @ X / len(X), back.mean(axis=0), dl @ act / len(X), dl.mean())


def test_targets():
    np.testing.assert_array_equal(bl.target_labels("parity", 4), [1, -1, 1, -1, 1])
    np.testing.assert_array_equal(bl.target_labels("majority", 4), [-1, -1, 1, 1, 1])
    np.testing.assert_array_equal(bl.target_labels("majority", 3), [-1, -1, 1, 1])
    g = bl.target_labels("random", 10, seed=3)
    np.testing.assert_array_equal(g, bl.target_labels("random", 10, seed=3))
    assert set(np.unique(g)) <= {-1.0, 1.0}
    with pytest.raises(ValueError, match="target"):
        bl.target_labels("xor", 3)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_population_risk_and_gradient_equal_enumeration_of_the_cube(loss):
    n, k = 7, 5
    rng = np.random.default_rng(0)
    net = _invariant_net(rng, n, k)
    g = bl.target_labels("random", n, seed=1)
    X = bl.cube_points(n)
    risk, gW, gc, ga, gb = _brute_force(net, X, bl.labels(X, g), loss)
    u, c, a, b = bl.invariant_coordinates(net)
    assert bl.population_risk(u, c, a, b, g, loss) == pytest.approx(risk, rel=BOOLEAN_ROUND_OFF)
    du, dc, da, db = bl.population_gradient(u, c, a, b, g, loss)
    # the full-space gradient is (∂R/∂u / n) 1: it stays in the invariant subspace
    np.testing.assert_allclose(gW, np.outer(du / n, np.ones(n)), rtol=BOOLEAN_ROUND_OFF, atol=BOOLEAN_ROUND_OFF)
    np.testing.assert_allclose(gc, dc, rtol=BOOLEAN_ROUND_OFF, atol=BOOLEAN_ROUND_OFF)
    np.testing.assert_allclose(ga, da, rtol=BOOLEAN_ROUND_OFF, atol=BOOLEAN_ROUND_OFF)
    assert gb == pytest.approx(db, rel=BOOLEAN_ROUND_OFF)
    acc = np.mean(bl.predict_sign(bl.forward(net, X)) == bl.labels(X, g))
    assert bl.population_accuracy(u, c, a, b, g) == pytest.approx(acc, rel=BOOLEAN_ROUND_OFF)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_population_gradient_matches_finite_differences(loss):
    n, k, h = 9, 4, 1e-6
    rng = np.random.default_rng(1)
    u, c, a, b = bl.invariant_coordinates(_invariant_net(rng, n, k))
    g = bl.target_labels("parity", n)
    grads = bl.population_gradient(u, c, a, b, g, loss)
    params = [u, c, a, np.array([b])]
    for which, grad in enumerate(grads):
        grad = np.atleast_1d(grad)
        for i in range(len(params[which])):
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[which][i] += h
            minus[which][i] -= h
            fd = (bl.population_risk(*plus[:3], plus[3][0], g, loss)
                  - bl.population_risk(*minus[:3], minus[3][0], g, loss)) / (2 * h)
            assert grad[i] == pytest.approx(fd, rel=RTOL_FD, abs=RTOL_FD)


def test_invariant_net_depends_on_hamming_weight_only():
    n = 6
    rng = np.random.default_rng(2)
    net = bl.init_network("invariant", n, n + 1, rng)
    net.a[:] = rng.standard_normal(n + 1)
    X = bl.cube_points(n)
    f = bl.forward(net, X)
    for perm in itertools.islice(itertools.permutations(range(n)), 0, 720, 97):
        np.testing.assert_array_equal(bl.forward(net, X[:, list(perm)]), f)
    # with k = n + 1 the features σ(|x| − i + ½) span every function of |x|: fit any g exactly
    g = bl.target_labels("random", n, seed=5)
    feats = np.maximum(np.arange(n + 1)[:, None] - np.arange(n + 1)[None, :] + 0.5, 0.0)
    net.a[:] = np.linalg.solve(feats, g)
    net.b[0] = 0.0
    assert bl.population_accuracy(*bl.invariant_coordinates(net), g) == 1.0
    np.testing.assert_allclose(bl.forward(net, X), bl.labels(X, g), atol=BOOLEAN_ROUND_OFF)


def test_forward_kernel_matches_numpy():
    n, k = 9, 13
    rng = np.random.default_rng(8)
    net = bl.init_network("random", n, k, rng, a_scale=1.0)
    net.c[:] = rng.standard_normal(k)
    net.b[0] = -0.4
    X = bl.sample_cube(200, n, rng)
    reference = np.maximum(X @ net.W.T + net.c, 0.0) @ net.a + net.b[0]
    np.testing.assert_allclose(bl.forward(net, X), reference, rtol=BOOLEAN_ROUND_OFF, atol=BOOLEAN_ROUND_OFF)
    with pytest.raises(ValueError, match="Boolean"):
        bl.forward(net, X + 0.5)


def _reference_sgd(net, X, y, order, lr, batch_size, loss):
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        _, gW, gc, ga, gb = _brute_force(net, X[idx], y[idx], loss)
        net.W -= lr * gW
        net.c -= lr * gc
        net.a -= lr * ga
        net.b -= lr * gb
    return net


@pytest.mark.parametrize("loss,batch_size", [("squared", 1), ("logistic", 1), ("squared", 3)])
def test_sgd_kernel_matches_numpy_reference(loss, batch_size):
    n, k, N = 8, 6, 20
    rng = np.random.default_rng(3)
    X = bl.sample_cube(N, n, rng)
    y = bl.labels(X, bl.target_labels("parity", n))
    net = bl.init_network("random", n, k, rng, a_scale=1.0)
    net.c[:] = 0.1 * rng.standard_normal(k)
    ref = net.copy()
    bl.train_sgd(net, X, y, epochs=2, lr=0.05, rng=np.random.default_rng(7), loss=loss,
                 batch_size=batch_size, eval_every=2)
    shuffle = np.random.default_rng(7)
    order = np.concatenate([shuffle.permutation(N) for _ in range(2)])
    _reference_sgd(ref, X, y, order, 0.05, batch_size, loss)
    for name in ("W", "c", "a", "b"):
        np.testing.assert_allclose(getattr(net, name), getattr(ref, name), rtol=SGD_RTOL,
                                   atol=SGD_RTOL)


def test_full_batch_gd_on_the_cube_is_the_population_flow():
    """The invariant subspace is preserved by GD on orbit-closed data (here all of {0,1}^n),
    and that GD is exactly the reduced population flow."""
    n, k, steps, dt = 6, 7, 40, 0.05
    g = bl.target_labels("parity", n)
    net = bl.init_network("invariant", n, k, np.random.default_rng(4), a_scale=1.0)
    X = bl.cube_points(n)
    gd = net.copy()
    bl.train_sgd(gd, X, bl.labels(X, g), epochs=steps, lr=dt, rng=np.random.default_rng(0),
                 batch_size=len(X), eval_every=steps)
    assert bl.invariance_defect(gd.W) < BOOLEAN_ROUND_OFF
    flow, hist = bl.population_flow(net, g, dt, steps)
    for mine, theirs in zip(bl.invariant_coordinates(flow), bl.invariant_coordinates(gd)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
    assert np.all(np.diff(hist["risk"]) <= 0)   # small dt: the risk never increases


def test_population_flow_kernel_matches_numpy_euler():
    n, k, steps, dt = 10, 5, 25, 0.01
    rng = np.random.default_rng(5)
    net = _invariant_net(rng, n, k)
    g = bl.target_labels("majority", n)
    for loss in ("squared", "logistic"):
        flow, hist = bl.population_flow(net, g, dt, steps, loss=loss, record_every=5)
        u, c, a, b = bl.invariant_coordinates(net)
        for step in range(steps):
            if step % 5 == 0:
                assert hist["risk"][step // 5] == pytest.approx(
                    bl.population_risk(u, c, a, b, g, loss), rel=BOOLEAN_ROUND_OFF)
            du, dc, da, db = bl.population_gradient(u, c, a, b, g, loss)
            u, c, a, b = u - dt * du / n, c - dt * dc, a - dt * da, b - dt * db
        for mine, ref in zip(bl.invariant_coordinates(flow), (u, c, a, b)):
            np.testing.assert_allclose(mine, ref, rtol=BOOLEAN_ROUND_OFF, atol=BOOLEAN_ROUND_OFF)


def test_sampled_sgd_leaves_the_invariant_subspace():
    """A single-sample step moves w_i along x, not along 1: sampled SGD breaks invariance."""
    n = 10
    rng = np.random.default_rng(6)
    net = bl.init_network("invariant", n, n + 1, rng, a_scale=1.0)
    X = bl.sample_cube(50, n, rng)
    bl.train_sgd(net, X, bl.labels(X, bl.target_labels("parity", n)), 1, 1e-3, rng)
    assert bl.invariance_defect(net.W) > 1e-4


def test_parity_contrast_smoke():
    """Seeded small-n version of the experiment: the invariant init generalises on parity,
    the He init fits part of the training set but stays at chance on test data."""
    n, width, N = 12, 48, 300
    rng = np.random.default_rng(0)
    g = bl.target_labels("parity", n)
    X, X_test = bl.sample_cube(N, n, rng), bl.sample_cube(1000, n, rng)
    y, y_test = bl.labels(X, g), bl.labels(X_test, g)
    acc = {}
    for init in ("invariant", "random"):
        net = bl.init_network(init, n, width, np.random.default_rng(10))
        bl.train_sgd(net, X, y, 200, 1e-3, np.random.default_rng(20))
        acc[init] = (bl.accuracy(net, X, y), bl.accuracy(net, X_test, y_test))
    assert acc["invariant"][1] > 0.9
    assert acc["random"][1] < 0.6
    assert acc["random"][0] - acc["random"][1] > 0.15
