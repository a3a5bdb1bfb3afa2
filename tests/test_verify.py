"""python -m meanfield.verify: every check fails on a wrong measurement; the command's files and
exit codes. (The quick profile itself is not run here: it takes minutes.)"""
import json

import numpy as np
import pytest
from scipy import stats

from meanfield.verify import claims as C
from meanfield.verify import measure
from meanfield.verify.__main__ import main
from meanfield.theory.conservation import law_verdict
from meanfield.verify.families import noether_row_verdict

KEYS = {"id", "source", "statement", "measured", "expected", "criterion", "ok", "run"}


def _run(argv):
    import io

    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# ----------------------------------------------------------------------- the pure checks
def test_kernel_check_fails_on_a_perturbed_kernel_value():
    rng = np.random.default_rng(0)
    exact = rng.standard_normal(20)
    se = np.full(20, 1e-3)
    mc = exact + se * rng.standard_normal(20).clip(-3, 3)
    assert C.kernel_vs_monte_carlo(exact, mc, se).ok
    wrong = exact.copy()
    wrong[7] += 10 * se[7]          # one kernel value off by 10 standard errors
    v = C.kernel_vs_monte_carlo(wrong, mc, se)
    assert not v.ok and v.measured["value"] > C.N_SIGMA


def test_velocity_check_fails_when_the_velocity_is_not_minus_m_grad_F():
    rng = np.random.default_rng(1)
    m = 5
    w = np.full(m, 1.0 / m)
    grad = rng.standard_normal((m, 4))
    v = -grad / w[:, None]
    assert C.velocity_vs_finite_differences(v, grad, w, 1e-6).ok
    assert not C.velocity_vs_finite_differences(v, grad * (1 + 1e-4), w, 1e-6).ok
    # the factor m is part of the claim: v = −∇F (learning rate 1 instead of m) fails
    assert not C.velocity_vs_finite_differences(-grad, grad, w, 1e-6).ok


def test_euler_gd_check():
    theta = np.ones((3, 4))
    assert C.euler_is_gradient_descent(theta, theta + 1e-9, 1e-7).ok
    assert not C.euler_is_gradient_descent(theta, theta + 1e-5, 1e-7).ok


def test_fit_loglog_matches_scipy_linregress():
    rng = np.random.default_rng(2)
    x = np.array([10, 30, 100, 300, 1000.0])
    y = 3 * x ** -0.5 * np.exp(0.05 * rng.standard_normal(5))
    s, se = C.fit_loglog(x, y)
    ref = stats.linregress(np.log(x), np.log(y))
    assert s == pytest.approx(ref.slope, rel=1e-12)
    assert se == pytest.approx(ref.stderr, rel=1e-10)
    # seeds as columns: every (x, seed) a point
    y2 = np.column_stack([y, 1.1 * y])
    s2, _ = C.fit_loglog(x, y2)
    ref2 = stats.linregress(np.log(np.repeat(x, 2)), np.log(y2.ravel()))
    assert s2 == pytest.approx(ref2.slope, rel=1e-12)


def test_rate_check_fails_on_a_slope_of_minus_0_2():
    rng = np.random.default_rng(3)
    m = np.array([16, 64, 256, 1024])
    noise = np.exp(0.02 * rng.standard_normal((4, 3)))
    good = m[:, None] ** -0.5 * noise
    assert C.rate_in_width("x", "s", "t", m, good, -0.5).ok
    bad = m[:, None] ** -0.2 * noise
    v = C.rate_in_width("x", "s", "t", m, bad, -0.5)
    assert not v.ok and v.measured["value"] == pytest.approx(-0.2, abs=0.03)
    # a slope given directly, as the energy-identity claim gets it
    assert not C.energy_identity_order("euler", -0.2, 1.0, se=0.01).ok
    assert C.energy_identity_order("euler", 1.01, 1.0, se=0.01).ok


def test_drift_check_fails_at_ten_times_the_prediction():
    p = 5.0e-3
    assert C.drift_vs_prediction("d", "s", p * (1 + 1e-9), p, rtol=1e-6, atol=1e-10).ok
    assert not C.drift_vs_prediction("d", "s", 10 * p, p, rtol=1e-6, atol=1e-10).ok
    assert not C.roundoff_zero("z", "s", 1e-9, 1e-12).ok


def test_noether_rows_are_judged_by_the_tables_structured_criterion():
    slope_row = {"law": "Q_j drift vs dt: slope", "setting": "euler", "measured": 1.0,
                 "predicted": 1.0, "unit": "log–log slope", "basis": "O(dt)",
                 "criterion": "slope"}
    assert noether_row_verdict(0, slope_row, "r").ok
    assert not noether_row_verdict(0, {**slope_row, "measured": -0.2}, "r").ok
    drift_row = {"law": "Q_j = a² − ‖b‖²", "setting": "euler", "measured": 5e-3,
                 "predicted": 5e-3, "unit": "max_j |drift| / max M_j(0)",
                 "basis": "Σ steps of exact RK identity", "criterion": "sum_of_steps"}
    v = noether_row_verdict(3, drift_row, "r")
    assert v.ok and v.criterion["kind"] == "sum_of_steps"
    assert v.id.startswith("conservation.table.03")
    assert not noether_row_verdict(3, {**drift_row, "measured": 5e-2}, "r").ok  # 10× drift
    # the same rule as the table's own verdict, row by row
    for row in (slope_row, drift_row, {**drift_row, "measured": 5e-2}):
        assert noether_row_verdict(1, row, "r").ok == law_verdict(row)["ok"]
    assert noether_row_verdict(3, {**drift_row, "predicted": float("nan")}, "r") is None
    assert noether_row_verdict(3, {**drift_row, "criterion": "info"}, "r") is None
    with pytest.raises(ValueError, match="criterion"):
        noether_row_verdict(3, {k: v for k, v in drift_row.items() if k != "criterion"}, "r")


def test_low_dimensional_and_other_paper_checks():
    alpha = np.array([np.pi, 16 / 3])
    assert C.masses_match_alpha([2, 5], alpha + 0.01, [0.01, 0.01], alpha, 1e-2,
                                what="difference").ok
    assert not C.masses_match_alpha([2, 5], alpha + 0.2, [0.01, 0.01], alpha, 1e-2,
                                    what="difference").ok
    # the limit α δ_0 is a conjecture of the paper: measured, reported, kind "conjecture"
    held = C.masses_match_alpha([2, 5], alpha + 0.01, [0.01, 0.01], alpha, 1e-2,
                                what="positive", risk=[1e-6, 2e-6], horizon=1000.0)
    parked = C.masses_match_alpha([2, 5], alpha + 0.19, [0.19, 0.19], alpha, 1e-2,
                                  what="positive")
    assert held.ok and not parked.ok and held.kind == parked.kind == "conjecture"
    assert held.as_dict()["extra"]["risk_final"] == [1e-6, 2e-6] and "T = 1000" in held.statement
    assert C.masses_match_alpha([2], alpha[:1], [0.0], alpha[:1], 1e-2,
                                what="difference").kind == "check"
    # risk 4e-4: RMS error 0.028; a spread of 0.02 is within it, 0.5 is an r-dependence
    assert C.predictor_flat_in_orthogonal(0.02, 4e-4, 4.0).ok
    assert not C.predictor_flat_in_orthogonal(0.5, 4e-4, 4.0).ok
    assert C.parity_learned([0.97, 0.96], 2000).ok
    assert not C.parity_learned([0.6, 0.55], 2000).ok
    assert C.parity_not_learned([0.50, 0.49], 2000).ok
    assert not C.parity_not_learned([0.70, 0.72], 2000).ok
    assert C.controls_fail("exp", [0.8, 0.7, 0.75], 0.1).ok
    assert not C.controls_fail("exp", [0.3, 0.03, 0.01], 0.1).ok
    assert C.count_equals_enumeration([4], "tanh", 384, 384).ok
    assert not C.count_equals_enumeration([4], "tanh", 384, 383).ok
    v = C.risk_bounded_below(0.4 - 1e-6, 0.4, 1e-12)
    assert not v.ok


def test_verdicts_are_json_records_with_the_documented_fields():
    d = C.rate_in_width("x", "s", "t", [1, 2, 4], [1.0, 0.7, 0.5], -0.5, run="runs/a").as_dict()
    assert KEYS <= set(d)
    assert set(d["measured"]) == {"value", "se", "unit"}
    assert d["criterion"]["kind"] == "slope"
    json.dumps(d, allow_nan=False)


# ----------------------------------------------------------------------------- the command
def test_command_on_a_small_subset_writes_the_report(tmp_path):
    out = tmp_path / "v"
    code, stdout, stderr = _run(["--only", "equivalent", "--out", str(out), "--workers", "1"])
    assert code == 0, stderr
    doc = json.loads((out / "verify.json").read_text())
    assert doc["ok"] is True and doc["profile"] == "quick"
    assert len(doc["claims"]) == 4
    for c in doc["claims"]:
        assert KEYS <= set(c)
        assert c["id"].startswith("equivalent.count.")
        assert (out / c["run"] / "summary.json").exists()
        assert c["measured"]["value"] == c["expected"]["value"]
    md = (out / "verify.md").read_text()
    assert "equivalent.count.tanh.k4.bias-p2" in md and "| ok |" in md
    assert "equivalent.count" in stdout
    # the same command again reuses the finished run
    code, _, stderr = _run(["--only", "equivalent", "--out", str(out), "--workers", "1"])
    assert code == 0 and "skipped" in stderr


def test_a_failing_claim_exits_1(tmp_path, monkeypatch):
    real = measure.TASKS["equivalent"]

    def wrong(**kw):  # one enumeration miscounted
        data = real(**kw)
        data["enumerated"][0] += 1
        return data

    monkeypatch.setitem(measure.TASKS, "equivalent", wrong)
    out = tmp_path / "v"
    code, stdout, _ = _run(["--only", "equivalent.count.tanh", "--out", str(out),
                            "--workers", "1"])
    assert code == 1
    doc = json.loads((out / "verify.json").read_text())
    assert doc["ok"] is False
    assert [c["ok"] for c in doc["claims"]] == [False, True]
    assert "FAIL" in stdout


def test_a_conjecture_that_does_not_hold_is_reported_but_does_not_fail(tmp_path, monkeypatch):
    """kind "conjecture": shown as "does not hold", listed in verify.json, exit 0; the same
    verdict as a check would fail the command."""
    from meanfield.verify import families as F

    fam = next(f for f in F.FAMILIES if f.name == "equivalent")
    real = fam.collect

    def with_extra(kind):
        def collect(dirs, runs):
            found = real(dirs, runs)
            v = C.masses_match_alpha([2], [np.pi + 0.6], [0.6], [np.pi], 1e-2, what="positive")
            v.kind, v.id = kind, "equivalent.count.tanh.limit"  # passes --only
            return found + [v]
        return collect

    monkeypatch.setattr(fam, "collect", with_extra("conjecture"))
    out = tmp_path / "v"
    code, stdout, _ = _run(["--only", "equivalent.count.tanh", "--out", str(out),
                            "--workers", "1"])
    doc = json.loads((out / "verify.json").read_text())
    assert code == 0 and doc["ok"] is True and doc["n_failed"] == 0
    assert doc["conjectures_not_holding"] == ["equivalent.count.tanh.limit"]
    assert doc["claims"][-1]["kind"] == "conjecture" and not doc["claims"][-1]["ok"]
    assert "does not hold" in stdout and "0 of 1 conjecture" in stdout
    assert "**does not hold**" in (out / "verify.md").read_text()
    monkeypatch.setattr(fam, "collect", with_extra("check"))
    code, stdout, _ = _run(["--only", "equivalent.count.tanh", "--out", str(out),
                            "--workers", "1"])
    assert code == 1 and "FAIL" in stdout


@pytest.mark.parametrize("argv,key", [
    (["--profile", "fast"], "--profile"),
    (["--only", "no-such-claim"], "--only"),
    (["--only", ""], "--only"),
    (["--workers", "0"], "--workers"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
    (["--bogus"], "--bogus"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, argv, key):
    out = tmp_path / "v"
    code, stdout, stderr = _run(argv + ["--out", str(out)])
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], stderr
    assert not out.exists()


def test_out_folder_holding_something_else_is_refused(tmp_path):
    out = tmp_path / "v"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, stderr = _run(["--only", "equivalent", "--out", str(out)])
    assert code == 2 and "--out" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
