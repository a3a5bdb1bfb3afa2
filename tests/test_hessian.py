"""The exact Hessian (meanfield.hessian): products against finite differences, the dense
matrix and a loop reference; thread independence; Lanczos against eigh; zero modes against
the symmetry rule at constructed minima; a saddle; polishing; the command line."""
import json

import numba
import numpy as np
import pytest

import meanfield as mf
from meanfield.models.backends import ExactBackend
from meanfield.hessian import (HessianOperator, analyse, dense_hessian, polish,
                               predict_zero_modes, spectrum)
from meanfield.kernels.hessian import hvp_pair_sums

import reference as ref
from conftest import MIN_GAP, RTOL_FD, RTOL_KERNEL, RTOL_LANCZOS


def _problems(rng, d):
    teacher = mf.Teacher(rng.standard_normal(3), rng.standard_normal((3, d)),
                         rng.standard_normal(d))
    return [
        ("teacher+linear", mf.Problem(d, teacher, mf.GaussianLaw(0.7))),
        ("norm d_H=3", mf.Problem(d, mf.NormTarget(3, coef=1.3))),
        ("norm d_H=1", mf.Problem(d, mf.NormTarget(1))),
        ("odd cubic", mf.Problem(d, mf.odd_cubic_target(d, rng), mf.GaussianLaw(0.5))),
        ("sphere teacher", mf.Problem(d, mf.Teacher(np.ones(2), rng.standard_normal((2, d))),
                                      mf.SphereLaw())),
        ("linear activation", mf.Problem(d, teacher, activation="linear")),
    ]


def _state(rng, m, d):
    a = rng.standard_normal(m)
    b = rng.standard_normal((m, d))
    w = rng.random(m) + 0.1
    return a, b, w / w.sum()


def _exact_grad(problem, w, m, d):
    be = ExactBackend(problem)

    def grad(theta):
        ga, gb, _ = be.gradients(theta[:m], theta[m:].reshape(m, d), w)
        return np.concatenate([w * ga, (w[:, None] * gb).ravel()])
    return grad


@pytest.mark.parametrize("which", range(6))
def test_hvp_matches_finite_differences_and_dense(rng, which):
    """∇²F·v equals the central difference of the exact gradient, and the dense matrix
    (non-uniform weights, every exact target kind, ReLU and linear)."""
    m, d = 9, 6
    name, problem = _problems(rng, d)[which]
    a, b, w = _state(rng, m, d)
    op = HessianOperator(problem, a, b, w)
    grad = _exact_grad(problem, w, m, d)
    theta = np.concatenate([a, b.ravel()])
    v = rng.standard_normal(op.n)
    h = 1e-5
    fd = (grad(theta + h * v) - grad(theta - h * v)) / (2 * h)
    hv = op.hvp_F(v)
    assert np.linalg.norm(hv - fd) <= RTOL_FD * np.linalg.norm(fd), name
    D = dense_hessian(problem, a, b, w, scaled=False)
    assert np.linalg.norm(D @ v - hv) <= RTOL_KERNEL * np.linalg.norm(hv), name
    assert np.abs(D - D.T).max() <= RTOL_KERNEL * np.abs(D).max(), name
    # the scaled operator is D^{-1/2} ∇²F D^{-1/2}, symmetric: ⟨u, Hv⟩ = ⟨Hu, v⟩
    u = rng.standard_normal(op.n)
    assert abs(u @ op.matvec(v) - op.matvec(u) @ v) <= RTOL_KERNEL * (
        np.linalg.norm(u) * np.linalg.norm(op.matvec(v)))
    s = np.sqrt(np.concatenate([w, np.repeat(w, d)]))
    Hs = dense_hessian(problem, a, b, w)
    assert np.allclose(Hs, D / np.outer(s, s), rtol=0, atol=RTOL_KERNEL * np.abs(Hs).max())


def test_dense_matches_loop_reference(rng):
    """The dense Hessian against tests/reference.py (other formulas for the pair blocks:
    Gaussian conditioning and an orthonormal frame) with a teacher."""
    m, d = 5, 4
    ta, tb = rng.standard_normal(3), rng.standard_normal((3, d))
    problem = mf.Problem(d, mf.Teacher(ta, tb))
    a, b, w = _state(rng, m, d)
    H = dense_hessian(problem, a, b, w, scaled=False)
    R = ref.risk_hessian(a, b, w, ta, tb)
    assert np.abs(H - R).max() <= RTOL_KERNEL * np.abs(R).max()


def test_norm_target_hessian_matches_angle_integral(rng):
    """∇²T for ‖x_H‖ (d_H = 2) by the t-quadrature against a direct φ integral."""
    d = 5
    problem = mf.Problem(d, mf.NormTarget(2))
    b = rng.standard_normal((3, d))
    mine = problem.target_sum.correlation_hessian(b, problem.law).dense()
    for j in range(3):
        want = ref.norm_target_hessian_dH2(b[j], n_phi=1000)
        assert np.abs(mine[j] - want).max() <= 1e-9 * np.abs(want).max()


def test_hvp_identical_for_serial_parallel_and_threads(rng):
    """Sizes past the serial cut-off (m·n·(d+16) ≥ 2²², several row blocks and source tiles):
    1 and 2 threads and the serial path give bit-identical products."""
    m, d = 700, 12
    b = rng.standard_normal((m, d))
    beta = rng.standard_normal((m, d))
    al = rng.standard_normal(m)
    c = rng.standard_normal(m)
    bt = rng.standard_normal((m, d))
    results = [hvp_pair_sums(b, beta, b, bt, al, c, same=True, serial=True)]
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            results.append(hvp_pair_sums(b, beta, b, bt, al, c, same=True, serial=False))
    finally:
        numba.set_num_threads(before)
    assert numba.config.NUMBA_NUM_THREADS >= 2 or pytest.skip("one core: nothing to compare")
    for A, B in results[1:]:
        assert np.array_equal(A, results[0][0]) and np.array_equal(B, results[0][1])


def test_lanczos_extremes_equal_eigh(rng):
    m, d = 30, 5
    problem = mf.Problem(d, mf.Teacher(np.ones(2), rng.standard_normal((2, d))))
    a, b, w = _state(rng, m, d)
    op = HessianOperator(problem, a, b, w)
    full = spectrum(op)["eigenvalues"]
    lan = spectrum(op, k=4)
    scale = np.abs(full).max()
    assert np.allclose(lan["smallest"], full[:4], rtol=0, atol=RTOL_LANCZOS * scale)
    assert np.allclose(lan["largest"], full[-4:], rtol=0, atol=RTOL_LANCZOS * scale)


# ------------------------------------------------------------------------- zero modes
def _teacher(rng, k, d):
    tb = rng.standard_normal((k, d))
    tb /= np.linalg.norm(tb, axis=1)[:, None]
    return np.array([1.0, -0.7, 1.3, 0.9][:k]), tb


def test_zero_modes_teacher_equals_student(rng):
    d, k = 5, 3
    ta, tb = _teacher(rng, k, d)
    problem = mf.Problem(d, mf.Teacher(ta, tb))
    r = analyse(problem, k * ta, tb.copy())
    assert r["risk"] < 1e-14 and r["gradient_norm"] < 1e-13
    assert r["n_zero_modes"] == r["n_zero_modes_predicted"] == k
    assert r["n_negative"] == 0 and r["spectral_gap"] > MIN_GAP


def test_zero_modes_clustered_minimum(rng):
    """k = 3 units carried by m = 6 neurons (clusters of 3, 2, 1, norms 1, 2, 4 and uneven
    output masses, non-uniform weights): m + d·h zero modes, h = m − k."""
    d, k = 5, 3
    ta, tb = _teacher(rng, k, d)
    problem = mf.Problem(d, mf.Teacher(ta, tb))
    sizes = (3, 2, 1)
    m = sum(sizes)
    w = rng.random(m) + 0.5
    w /= w.sum()
    a, b, j = [], [], 0
    for unit, n in enumerate(sizes):
        frac = rng.random(n) + 0.2
        frac /= frac.sum()
        for i in range(n):
            s = 2.0 ** i  # exact scalings: the cluster's directions are exactly equal
            a.append(ta[unit] * frac[i] / (s * w[j]))
            b.append(s * tb[unit])
            j += 1
    r = analyse(problem, np.array(a), np.array(b), w)
    assert r["risk"] < 1e-14 and r["gradient_norm"] < 1e-13
    assert r["n_zero_modes"] == r["n_zero_modes_predicted"] == m + d * (m - k)
    assert r["n_negative"] == 0 and r["spectral_gap"] > MIN_GAP


def test_zero_modes_dead_neuron(rng):
    """A neuron with a_j = 0 and its own direction adds d zero modes (its whole b_j block),
    not 1: the count is (live neurons) + d."""
    d, k = 5, 3
    ta, tb = _teacher(rng, k, d)
    problem = mf.Problem(d, mf.Teacher(ta, tb))
    m = k + 1
    a = np.concatenate([m * ta, [0.0]])
    b = np.vstack([tb, rng.standard_normal(d)])
    r = analyse(problem, a, b)
    assert r["n_dead"] == 1
    assert r["n_zero_modes"] == r["n_zero_modes_predicted"] == k + d
    assert r["n_negative"] == 0 and r["spectral_gap"] > MIN_GAP


def test_prediction_rule_antipodal_pairs(rng):
    """Pairs (a, b), (−a, −b): m + (m/2 − 1) d by the rule."""
    d, half = 4, 5
    a = rng.standard_normal(half)
    b = rng.standard_normal((half, d))
    pred = predict_zero_modes(np.concatenate([a, -a]), np.vstack([b, -b]))
    assert pred["n_antipodal_pairs"] == half
    assert pred["n_zero_modes_predicted"] == 2 * half + (half - 1) * d


def test_odd_target_paired_minimum_matches_rule(rng):
    """Odd target: antipodal pairs with ½ Σ w a b = w* are a minimum whose residual part of
    the Hessian vanishes; the spectral count equals the rule m + (m/2 − 1) d."""
    d, half = 3, 4
    target = mf.odd_cubic_target(d, rng)
    problem = mf.Problem(d, target)
    be = ExactBackend(problem)
    w_star = be.xbar_odd / problem.v_rho
    m = 2 * half
    b = rng.standard_normal((half, d))
    # ½ Σ_j w_j a_j b_j = w* over both halves (each pair contributes twice): solve for a
    a = np.linalg.lstsq(b.T / m, w_star, rcond=None)[0]
    assert np.allclose(b.T @ a / m, w_star)
    r = analyse(problem, np.concatenate([a, -a]), np.vstack([b, -b]))
    assert r["gradient_norm"] < 1e-12
    assert r["n_zero_modes"] == r["n_zero_modes_predicted"] == m + (half - 1) * d
    assert r["n_negative"] == 0 and r["spectral_gap"] > MIN_GAP


def test_split_neuron_saddle(rng):
    """Split the one-neuron critical point of a 2-unit teacher into two neurons with output
    fractions λ, 1 − λ (off balance: |a_j| ≠ ‖b_j‖). The curvature across the split is
    ∝ λ(1 − λ), so exactly one of λ ∈ (0, 1) and λ ∉ [0, 1] is a saddle, with d − 1 negative
    directions; both keep the symmetry zero modes (2 rescalings + 1 mass exchange)."""
    d = 4
    _, tb = _teacher(rng, 2, d)
    problem = mf.Problem(d, mf.Teacher(np.ones(2), tb))
    p = polish(problem, np.array([1.0]), (tb[0] + 0.3 * tb[1])[None, :])
    assert p["gradient_norm"] < 1e-13
    a0, b0 = p["a"][0], p["b"]
    negatives = []
    for lam in (1.5, 0.3):
        a = np.array([2 * lam * a0, 2 * (1 - lam) * a0])
        r = analyse(problem, a, np.vstack([b0, b0]))
        assert r["gradient_norm"] < 1e-13
        assert r["n_zero_modes"] == r["n_zero_modes_symmetry"] == 3
        negatives.append(r["n_negative"])
    assert sorted(negatives) == [0, d - 1]


def test_polish_reaches_round_off(rng):
    d = 4
    _, tb = _teacher(rng, 2, d)
    problem = mf.Problem(d, mf.Teacher(np.ones(2), tb))
    lines = []
    p = polish(problem, np.array([0.8, 1.1]), tb + 0.2 * rng.standard_normal((2, d)),
               log=lines.append)
    assert p["gradient_norm"] < 1e-12
    assert len(lines) == len(p["history"]) >= 2
    assert p["history"][0][2] > 1e3 * p["gradient_norm"]


def test_polish_product_budget_stops_trust_krylov(rng):
    """With max_products the trust-krylov stage stops at its budget (the message says so)
    and keeps the best point so far."""
    d = 4
    _, tb = _teacher(rng, 2, d)
    problem = mf.Problem(d, mf.Teacher(np.ones(2), tb))
    a0, b0 = np.array([0.8, 1.1]), tb + 0.2 * rng.standard_normal((2, d))
    full = polish(problem, a0, b0)
    p = polish(problem, a0, b0, max_products=3, newton_steps=0)
    assert full["n_products"] > 3
    assert p["n_products"] == 3 and "max_products" in p["message"]
    assert p["gradient_norm"] <= p["history"][0][2]


# ------------------------------------------------------------------------- command line
def _flow_run(tmp_path, name="run", **keys):
    from meanfield.cli.simulate import main as sim_main

    out = tmp_path / name
    args = ["flow", "--quiet", "--out", str(out), "--set", "d=3", "--set", "n_particles=6",
            "--set", "n_steps=20", "--set", "teacher_units=2"]
    for k, v in keys.items():
        args += ["--set", f"{k}={v}"]
    assert sim_main(args) == 0
    return out


def _run_cli(argv, capsys):
    from meanfield.hessian.cli import main

    code = main(argv)
    return code, capsys.readouterr()


def test_cli_writes_results_and_never_overwrites(tmp_path, capsys):
    run = _flow_run(tmp_path)
    code, out = _run_cli([str(run)], capsys)
    assert code == 0
    data = json.loads((run / "hessian.json").read_text())
    n = 6 * 4
    assert len(data["eigenvalues"]) == n and data["method"] == "dense"
    assert np.all(np.diff(data["eigenvalues"]) >= 0)
    for key in ("n_zero_modes", "n_zero_modes_predicted", "spectral_gap", "gradient_norm"):
        assert key in data
    assert (run / "spectrum.png").stat().st_size > 0
    first = (run / "hessian.json").read_bytes()
    code, out = _run_cli([str(run), "--k", "3", "--polish", "--polish-maxiter", "3",
                          "--quiet"], capsys)
    assert code == 0
    assert (run / "hessian.json").read_bytes() == first
    second = json.loads((run / "hessian-2.json").read_text())
    assert len(second["eigenvalues"]) == 6 and second["method"] == "lobpcg"
    assert (run / "hessian_polished-2.npz").exists() and (run / "spectrum-2.png").exists()
    code, out = _run_cli([str(run), "--k", "3", "--method", "lanczos", "--quiet"], capsys)
    assert code == 0
    third = json.loads((run / "hessian-3.json").read_text())
    assert third["method"] == "lanczos"
    # the same state (unpolished): both solvers give the same k smallest and largest
    first_ev = np.sort(json.loads(first)["eigenvalues"])
    scale = np.abs(first_ev).max()
    assert np.allclose(third["eigenvalues"][:3], first_ev[:3], rtol=0, atol=1e-8 * scale)
    assert np.allclose(third["eigenvalues"][3:], first_ev[-3:], rtol=0, atol=1e-8 * scale)


def test_cli_exit_2(tmp_path, capsys):
    run = _flow_run(tmp_path)
    (tmp_path / "empty").mkdir()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((run / "config.json").read_text())
    before = sorted(p.name for p in run.iterdir())
    cases = [([str(unfinished)], "no final state"),
             ([str(tmp_path / "empty")], "config.json"),
             ([str(tmp_path / "missing")], "not a folder"),
             ([str(run), "--k", "0"], "--k"),
             ([str(run), "--k", "12"], "--k"),
             ([str(run), "--k", "x"], "--k"),
             ([str(run), "--k", "6", "--method", "lobpcg"], "--k"),
             ([str(run), "--rtol", "0"], "--rtol")]
    for argv, words in cases:
        code, out = _run_cli(argv, capsys)
        assert code == 2, argv
        assert out.err.count("\n") == 1 and words in out.err, (argv, out.err)
    assert sorted(p.name for p in run.iterdir()) == before
    assert sorted(p.name for p in unfinished.iterdir()) == ["config.json"]


def test_deflated_lanczos_counts_zero_modes_beyond_rescalings(rng):
    """At the clustered minimum, Lanczos on the complement of the m rescaling directions
    finds the d·h remaining zero modes (k > d·h), so the count again equals m + d·h, and the
    removed directions are null (residual at round-off)."""
    d, k = 4, 2
    ta, tb = _teacher(rng, k, d)
    problem = mf.Problem(d, mf.Teacher(ta, tb))
    a = np.array([ta[0] * 3 * 0.25, ta[0] * 3 * 0.75 / 2, ta[1] * 3])
    b = np.array([tb[0], 2 * tb[0], tb[1]])
    m, h = 3, 1
    full = analyse(problem, a, b)
    assert full["n_zero_modes"] == m + d * h
    r = analyse(problem, a, b, k=6, deflate_rescaling=True)
    assert r["method"] == "lanczos-deflated" and r["rescaling_residual"] < 1e-13
    assert r["n_zero_modes"] == r["n_zero_modes_predicted"] == m + d * h
    # the deflated smallest eigenvalues are the full spectrum's after its m + d·h zeros...
    nonzero = np.sort(full["eigenvalues"])[m + d * h:]
    scale = np.abs(full["eigenvalues"]).max()
    assert np.allclose(np.sort(r["eigenvalues"][:6])[d * h:], nonzero[:6 - d * h], rtol=0,
                       atol=RTOL_LANCZOS * scale)


def test_zero_modes_dead_neurons_alone_and_in_a_live_cluster(rng):
    """The dead-neuron rule against the dense eigh count. A dead neuron (a_j = 0) with its
    own direction: its whole b_j block is flat (d modes, its rescaling among them) and a_j is
    curved, so two of them add 2d, not 2(d + 1) or 2. A dead neuron sharing the direction
    of a live one: its a_j becomes flat too (a mass exchange with the live neuron), d + 1."""
    d, k = 5, 3
    ta, tb = _teacher(rng, k, d)
    problem = mf.Problem(d, mf.Teacher(ta, tb))
    m = k + 2
    a = np.concatenate([m * ta, [0.0, 0.0]])
    b = np.vstack([tb, rng.standard_normal((2, d))])
    r = analyse(problem, a, b)
    assert r["n_dead"] == 2 and r["gradient_norm"] < 1e-13
    assert r["n_zero_modes"] == r["n_zero_modes_predicted"] == k + 2 * d
    assert r["n_negative"] == 0 and r["spectral_gap"] > MIN_GAP
    m = k + 1
    a = np.concatenate([m * ta, [0.0]])
    b = np.vstack([tb, 1.7 * tb[0]])
    r = analyse(problem, a, b)
    assert r["n_dead"] == 1 and r["n_clusters"] == k
    assert r["n_zero_modes"] == r["n_zero_modes_predicted"] == k + d + 1
    assert r["n_negative"] == 0 and r["spectral_gap"] > MIN_GAP


# ------------------------------------------------------------------------- stored products, LOBPCG
@pytest.mark.parametrize("which", range(6))
def test_stored_products_blocks_and_coarse_matrix(rng, monkeypatch, which):
    """StoredHessian: block products equal the tiled kernel's, the diagonal blocks and the
    coarse matrix Vᵀ H V equal the dense matrix's (every exact target kind; clustered and
    antipodal particles; several row blocks)."""
    import meanfield.hessian.stored as st

    monkeypatch.setattr(st, "_ROWS", 7)
    m, d = 20, 6
    name, problem = _problems(rng, d)[which]
    a, b, w = _state(rng, m, d)
    b[3] = 2.0 * b[2]
    b[5] = -b[4]
    op = HessianOperator(problem, a, b, w)
    S = st.StoredHessian(op)
    X = rng.standard_normal((op.n, 3))
    want = np.column_stack([op.matvec(X[:, t]) for t in range(3)])
    got = S.matmat(X)
    assert np.abs(got - want).max() <= RTOL_KERNEL * np.abs(want).max(), name
    H = dense_hessian(problem, a, b, w)
    blocks = S.blocks()
    for j in range(m):
        idx = [j] + list(m + j * d + np.arange(d))
        assert np.abs(H[np.ix_(idx, idx)] - blocks[j]).max() <= RTOL_KERNEL * np.abs(H).max()
    if problem.activation == "relu":
        V = rng.standard_normal((m, d + 1))
        Vf = np.zeros((op.n, m))
        Vf[np.arange(m), np.arange(m)] = V[:, 0]
        for j in range(m):
            Vf[m + j * d:m + (j + 1) * d, j] = V[j, 1:]
        C = S.coarse_matrix(V)
        assert np.abs(C - Vf.T @ H @ Vf).max() <= RTOL_KERNEL * np.abs(H).max() * np.abs(V).max() ** 2


@pytest.mark.parametrize("deflate", [False, True])
def test_lobpcg_smallest_equal_eigh(rng, deflate):
    """The k smallest by LOBPCG (two-level preconditioner) equal eigh's at a state whose
    bottom is a band of one eigenvalue per particle (a short flow from the sphere start), with
    and without the rescaling directions deflated; far fewer products than the matrix size."""
    from meanfield.hessian import rescaling_directions
    from meanfield.hessian.lobpcg import smallest_lobpcg

    m, d, k = 60, 5, 6
    tb = rng.standard_normal((2, d))
    problem = mf.Problem(d, mf.Teacher(np.ones(2), tb))
    p = mf.init_sphere_rademacher(m, d, rng)
    p = mf.simulate_flow(problem, p, dt=0.05, n_steps=5, n_snapshots=0).particles
    op = HessianOperator(problem, p.a, p.b, p.weights)
    H = dense_hessian(problem, p.a, p.b, p.weights)
    if deflate:
        U = rescaling_directions(p.a, p.b)
        Uf = np.zeros((op.n, m))
        Uf[np.arange(m), np.arange(m)] = U[:, 0]
        for j in range(m):
            Uf[m + j * d:m + (j + 1) * d, j] = U[j, 1:]
        P = np.eye(op.n) - Uf @ Uf.T
        H = P @ H @ P + 1e3 * Uf @ Uf.T
    full = np.linalg.eigvalsh(H)
    scale = np.abs(np.linalg.eigvalsh(dense_hessian(problem, p.a, p.b, p.weights))).max()
    r = smallest_lobpcg(op, k, deflate_rescaling=deflate, rtol=1e-10, scale=scale)
    assert r["converged"]
    assert np.allclose(r["smallest"], full[:k], rtol=0, atol=1e-9 * scale)
    assert r["n_products"] < op.n // 2


def test_stored_products_identical_for_any_thread_count_and_row_split(rng, monkeypatch):
    """Stored products over several row tasks and P sub-blocks (small _ROWS, _MIX_DOUBLES):
    serial and threaded runs are bit-identical, and equal the tiled kernel's products; the
    norm target's Hessian (folded into G) included."""
    import meanfield.hessian.stored as st

    m, d = 50, 4
    problem = mf.Problem(d, (mf.Teacher(np.ones(2), rng.standard_normal((2, d))),
                             mf.NormTarget(2)))
    a, b, w = _state(rng, m, d)
    op = HessianOperator(problem, a, b, w)
    X = rng.standard_normal((op.n, 5))
    V = rng.standard_normal((m, d + 1))
    want = np.column_stack([op.matvec(X[:, t]) for t in range(5)])
    monkeypatch.setattr(st, "_ROWS", 16)
    monkeypatch.setattr(st, "_MIX_DOUBLES", 5 * m * 3)      # 3 rows per P block
    before = numba.get_num_threads()
    got = []
    try:
        for threads, parallel in ((1, False), (min(2, numba.config.NUMBA_NUM_THREADS), True)):
            numba.set_num_threads(threads)
            S = st.StoredHessian(op, parallel=parallel)
            got.append((S.matmat(X), S.blocks().copy(), S.coarse_matrix(V)))
    finally:
        numba.set_num_threads(before)
    for x, y in zip(got[0], got[1]):
        assert np.array_equal(x, y)
    assert np.abs(got[0][0] - want).max() <= RTOL_KERNEL * np.abs(want).max()


@pytest.mark.parametrize("target", ["teacher", "norm"])
def test_lobpcg_smallest_equal_eigh_over_row_tasks(rng, monkeypatch, target):
    """The stored path (geometry, blocks, coarse matrix, products) split into several row
    tasks and P sub-blocks, through :func:`spectrum` (method='lobpcg'): the k smallest and k
    largest equal eigh's of the dense matrix, for a teacher and for the norm target (whose
    ∇²T enters through the stored G)."""
    import meanfield.hessian.stored as st

    monkeypatch.setattr(st, "_ROWS", 13)
    monkeypatch.setattr(st, "_MIX_DOUBLES", 400)
    m, d, k = 48, 4, 5
    if target == "teacher":
        problem = mf.Problem(d, mf.Teacher(np.ones(2), rng.standard_normal((2, d))))
    else:
        problem = mf.Problem(d, mf.NormTarget(3))
    p = mf.init_sphere_rademacher(m, d, rng)
    p = mf.simulate_flow(problem, p, dt=0.05, n_steps=5, n_snapshots=0).particles
    op = HessianOperator(problem, p.a, p.b, p.weights)
    full = np.linalg.eigvalsh(dense_hessian(problem, p.a, p.b, p.weights))
    spec = spectrum(op, k=k, method="lobpcg", rtol=1e-10)
    scale = np.abs(full).max()
    assert np.allclose(spec["smallest"], full[:k], rtol=0, atol=1e-9 * scale)
    assert np.allclose(spec["largest"], full[-k:], rtol=0, atol=1e-9 * scale)


def test_block_lobpcg_stops_on_the_wanted_pairs(rng):
    """block_lobpcg on a symmetric matrix with a dense bottom cluster: the k smallest equal
    eigh's to the residual tolerance, the reported residuals are those of the returned
    vectors, and the guard vectors let it stop in fewer iterations than without."""
    from meanfield.hessian.lobpcg import block_lobpcg

    n, k = 400, 6
    lam = np.concatenate([np.linspace(0.0, 1e-2, 60), np.linspace(1.0, 3.0, n - 60)])
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * lam) @ Q.T
    want = np.linalg.eigvalsh(A)[:k]
    X0 = rng.standard_normal((n, k + 6))
    inv = np.linalg.inv(A + 0.5 * np.eye(n))   # an SPD preconditioner ≈ (A − σ)⁻¹, σ = −0.5
    tol = 1e-9
    runs = {}
    for guard in (0, 6):
        r = block_lobpcg(lambda X: A @ X, lambda X: inv @ X, X0[:, :k + guard], k, tol, 300)
        assert r["converged"]
        x = r["vectors"]
        assert np.allclose(np.linalg.norm(A @ x - x * r["values"], axis=0), r["residuals"],
                           rtol=1e-6, atol=1e-14)
        assert np.all(r["residuals"] <= tol)
        assert np.abs(r["values"] - want).max() <= tol
        runs[guard] = r["iterations"]
    assert runs[6] < runs[0]


def test_stored_float32_products_and_smallest(rng, monkeypatch):
    """float32 storage: products within 1e-6 of the float64 ones (relative to ‖HX‖; float32
    sums of m terms), and LOBPCG's k smallest within 1e-6 of the top eigenvalue of eigh's
    (the perturbation of H bounds the shift of every eigenvalue, Weyl)."""
    import meanfield.hessian.stored as st
    from meanfield.hessian.lobpcg import smallest_lobpcg

    monkeypatch.setattr(st, "_ROWS", 17)
    m, d, k = 60, 5, 4
    problem = mf.Problem(d, mf.Teacher(np.ones(2), rng.standard_normal((2, d))))
    p = mf.init_sphere_rademacher(m, d, rng)
    p = mf.simulate_flow(problem, p, dt=0.05, n_steps=5, n_snapshots=0).particles
    op = HessianOperator(problem, p.a, p.b, p.weights)
    X = rng.standard_normal((op.n, 3))
    full = st.StoredHessian(op).matmat(X)
    S32 = st.StoredHessian(op, dtype=np.float32)
    assert S32.theta.dtype == np.float32
    err = np.linalg.norm(S32.matmat(X) - full, axis=0) / np.linalg.norm(full, axis=0)
    assert err.max() <= 1e-6 and err.max() > 0.0       # float32 is used, and is close
    ev = np.linalg.eigvalsh(dense_hessian(problem, p.a, p.b, p.weights))
    r = smallest_lobpcg(op, k, rtol=1e-6, stored=S32, scale=np.abs(ev).max())
    assert r["converged"]
    assert np.abs(r["smallest"] - ev[:k]).max() <= 1e-6 * np.abs(ev).max()
