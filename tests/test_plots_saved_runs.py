"""Data apart from plots: structured law verdicts, figures redrawn from a saved run folder
(nothing rerun), and ``python figures/plot_X.py RUN_DIR``."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hostile import run_cli, sets

ROOT = Path(__file__).resolve().parents[1]

#: experiment -> (plots module, figure script, the PNGs it writes)
FIGURES = {
    "noether": ("noether", "plot_noether.py",
                ["noether_drift_vs_dt.png", "noether_drift_vs_time.png", "noether_balance.png",
                 "noether_angular_momentum.png", "noether_symmetry_defect.png"]),
    "odd": ("odd", "plot_odd.py",
            ["odd_risk.png", "odd_distance.png", "odd_gap.png", "odd_symmetry.png"]),
    "orthogonal-dependence": ("orthogonal_dependence", "plot_lowdim_orthogonal.py",
                              ["orthogonal_dependence.png"]),
}

#: tiny settings of the runs the figures are drawn from (the odd run includes SGD and both
#: starts, so that every curve of its figures is read from the saved file)
TINY = {
    "noether": sets("noether"),
    "odd": sets("odd", "include_sampled=true", 'sampled_inits=["sphere","paired"]',
                "batch_size=16", "seeds=[0,1]", "integrator=euler"),
    "orthogonal-dependence": ["--set", "d=6", "--set", "d_H=2", "--set", "n_particles=16",
                              "--set", "n_steps=20", "--set", "profile_steps=[0,20]",
                              "--set", "n_r=5", "--set", "n_directions=2"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished tiny run folder per experiment, made through the command line."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for name, argv in TINY.items():
        run_dir = base / name
        code, stdout, stderr = run_cli(name, *argv, "--quiet", "--threads", "1",
                                       "--out", str(run_dir))
        assert code == 0, (name, stdout, stderr)
        out[name] = run_dir
    return out


# ------------------------------------------------------------------------------ verdicts
def _row(criterion, measured, predicted, law="a law"):
    return {"law": law, "integrator": "euler", "setting": "test", "measured": measured,
            "predicted": predicted, "criterion": criterion}


@pytest.mark.parametrize("criterion, right, wrong", [
    # a summed per-step identity: the measured drift equals the prediction; 10× is wrong
    ("sum_of_steps", (3.0e-4, 3.0e-4), (3.0e-3, 3.0e-4)),
    # a leading-order prediction within 5 %; 10× is wrong
    ("relative", (1.05e-3, 1.0e-3), (1.0e-2, 1.0e-3)),
    # a slope of 1.05 against the method's order 1; 1.5 is wrong
    ("slope", (1.05, 1.0), (1.5, 1.0)),
    # a per-step identity at 2 ulps; 100 ulps is wrong
    ("ulps", (2.0, 0.0), (100.0, 0.0)),
    # zero to round-off; 1e-6 is not
    ("roundoff", (3e-16, 0.0), (1e-6, 0.0)),
])
def test_law_verdict_says_fail_for_a_wrong_measurement(criterion, right, wrong):
    from meanfield.theory.conservation import law_verdict

    good, bad = law_verdict(_row(criterion, *right)), law_verdict(_row(criterion, *wrong))
    assert good["ok"] is True and good["verdict"] == "ok"
    assert bad["ok"] is False and bad["verdict"] == "FAIL"
    assert bad["criterion"] == criterion and bad["integrator"] == "euler"
    assert bad["tolerance"] is not None
    json.dumps(bad, allow_nan=False)  # a plain JSON-able record


def test_law_verdict_info_rows_are_not_judged():
    from meanfield.theory.conservation import LawRow, law_verdict

    assert law_verdict(_row("info", 5.0, 0.0))["ok"] is None
    assert law_verdict(_row("slope", float("nan"), 1.0))["verdict"] == "info"
    with pytest.raises(ValueError):
        LawRow("x", "", 0.0, 0.0, "", "", criterion="close enough")


def test_monitored_flow_verdicts_pass_and_a_10x_drift_fails():
    """A real euler flow: every judged law row is ok; the same rows with the measured drift
    multiplied by 10 are FAIL (Q_j: summed identities; energy: the leading-order term)."""
    from meanfield import NormTarget, Problem, Simulation
    from meanfield.models.particles import init_sphere_rademacher
    from meanfield.theory.conservation import LawMonitor, law_verdict

    rng = np.random.default_rng(0)
    problem = Problem(d=5, target=NormTarget(d_H=2))
    sim = Simulation(problem, init_sphere_rademacher(16, 5, rng), 0.05, 40)
    mon = LawMonitor(sim, blocks={})
    mon.run()
    rows = mon.report()
    verdicts = [r.verdict() for r in rows]
    judged = [v for v in verdicts if v["ok"] is not None]
    assert {v["criterion"] for v in judged} >= {"sum_of_steps", "ulps", "relative"}
    assert all(v["ok"] for v in judged), verdicts
    for r in rows:
        if r.criterion in ("sum_of_steps", "relative") and r.predicted != 0:
            wrong = dict(r.as_dict(), measured=10 * r.predicted)
            assert law_verdict(wrong)["verdict"] == "FAIL", r


def test_noether_run_saves_structured_verdicts(runs):
    run_dir = runs["noether"]
    verdicts = json.loads((run_dir / "verdicts.json").read_text())
    laws = json.loads((run_dir / "laws.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(verdicts) == len(laws) == summary["n_laws"]
    assert summary["n_fail"] == sum(v["ok"] is False for v in verdicts)
    for v, row in zip(verdicts, laws):
        assert set(v) >= {"law", "integrator", "measured", "predicted", "criterion", "ok"}
        assert v["law"] == row["law"] and v["verdict"] == row["verdict"]
    assert any(v["ok"] is True for v in verdicts)
    assert {v["integrator"] for v in verdicts} >= {"euler", "heun", "rk4", "momentum"}


# ------------------------------------------------------------------------------- figures
@pytest.fixture
def no_flows(monkeypatch):
    """Any attempt to build or advance a solver of the loop fails the test."""
    from meanfield.engine.core import Solver

    def refuse(*args, **kwargs):
        raise AssertionError("a figure was drawn by running a flow")

    monkeypatch.setattr(Solver, "__init__", refuse)
    monkeypatch.setattr(Solver, "advance", refuse)


@pytest.mark.parametrize("experiment", list(FIGURES))
def test_plot_redraws_from_the_saved_run_without_running(experiment, runs, no_flows):
    import importlib

    module, _, pngs = FIGURES[experiment]
    run_dir = runs[experiment]
    for png in pngs:
        (run_dir / png).unlink()
    plots = importlib.import_module("meanfield.plots." + module)
    written = plots.plot(run_dir)
    assert sorted(p.name for p in written) == sorted(pngs) == sorted(plots.PNGS)
    for png in pngs:
        assert (run_dir / png).stat().st_size > 0


def _figure_script(tmp_path, script):
    """The figure script and _regenerate.py copied into a scratch figures/ folder, so that
    the PNGs it copies do not replace the committed ones."""
    figs = tmp_path / "figures"
    figs.mkdir()
    for name in ("_regenerate.py", script):
        shutil.copy2(ROOT / "figures" / name, figs / name)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return figs, env


@pytest.mark.parametrize("experiment", list(FIGURES))
def test_figure_script_redraws_a_run_folder(experiment, runs, tmp_path):
    _, script, pngs = FIGURES[experiment]
    figs, env = _figure_script(tmp_path, script)
    done = subprocess.run([sys.executable, str(figs / script), str(runs[experiment])],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    for png in pngs:
        assert (figs / png).read_bytes() == (runs[experiment] / png).read_bytes()
    assert "redrawn from" in done.stdout


def test_figure_script_names_a_run_without_saved_data(runs, tmp_path):
    """An odd run folder from before the gaps and fits were saved: exit 2, one line."""
    old = tmp_path / "old"
    shutil.copytree(runs["odd"], old)
    with np.load(old / "odd_curves.npz") as data:
        before = {k: data[k] for k in data.files
                  if k not in ("F_star", "widths") and not k.startswith(("gap_", "fit_"))}
    np.savez(old / "odd_curves.npz", **before)
    figs, env = _figure_script(tmp_path, "plot_odd.py")
    done = subprocess.run([sys.executable, str(figs / "plot_odd.py"), str(old)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "rerun" in done.stderr
    assert not list(figs.glob("*.png"))
    # and a folder of another experiment
    done = subprocess.run([sys.executable, str(figs / "plot_odd.py"), str(runs["noether"])],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and "noether" in done.stderr
