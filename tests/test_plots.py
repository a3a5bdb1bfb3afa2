"""Figures drawn from saved run data, structured verdicts, and the figure scripts' redraw."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hostile import run_cli, sets

ROOT = Path(__file__).resolve().parents[1]

#: experiment -> (plots module, extra --set values, the files its figures are drawn from)
CASES = {
    "flow": ("flow", [], ["trajectory.npz"]),
    "lowdim-1d": ("lowdim_1d", ["sweep=true", "sweep_d=6", "sweep_d_H=[2]", "sweep_steps=10"],
                  ["trajectory.npz", "data.npz"]),
    "lowdim-full-vs-reduced": ("lowdim_full_vs_reduced", [], ["data.npz"]),
    "moments": ("moments", ["controls=[exponential]"], ["results.npz"]),
    "symmetric-boolean": ("symmetric_boolean", ["inits=[invariant,random]"], ["results.npz"]),
}


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """One tiny run per experiment (made once for the module)."""
    runs = {}

    def get(experiment):
        if experiment not in runs:
            out = tmp_path_factory.mktemp(experiment) / "run"
            code, _, err = run_cli(experiment, *sets(experiment, *CASES[experiment][1]),
                                   "--out", str(out), "--quiet", "--threads", "1")
            assert code == 0, err
            runs[experiment] = out
        return runs[experiment]

    return get


@pytest.mark.parametrize("experiment", list(CASES))
def test_plot_redraws_from_saved_files_alone(experiment, tiny_runs, tmp_path):
    """The plots module draws the same PNG names as the run from config.json and the named
    data files alone (parts, checkpoints and sub-runs removed, so nothing can be reloaded or
    recomputed); the run itself had written those PNGs through the same module."""
    import importlib

    module_name, _, files = CASES[experiment]
    run = tiny_runs(experiment)
    written = sorted(p.name for p in run.glob("*.png"))
    assert written, "the run wrote no figures"
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ["config.json", *files]:
        shutil.copy2(run / name, bare / name)
    module = importlib.import_module(f"meanfield.plots.{module_name}")
    paths = module.plot(bare)
    assert sorted(p.name for p in paths) == written
    assert sorted(p.name for p in bare.glob("*.png")) == written
    assert all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.parametrize("experiment", list(CASES))
def test_plot_of_a_folder_without_saved_data_raises_missing_data(experiment, tmp_path,
                                                                 tiny_runs):
    from meanfield.plots._style import MissingData
    import importlib

    module_name, _, files = CASES[experiment]
    run = tiny_runs(experiment)
    shutil.copy2(run / "config.json", tmp_path / "config.json")
    module = importlib.import_module(f"meanfield.plots.{module_name}")
    with pytest.raises(MissingData):
        module.plot(tmp_path)


def _script(name, *args):
    return subprocess.run([sys.executable, str(ROOT / "figures" / f"plot_{name}.py"), *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_figure_script_redraws_a_run_folder_and_refuses_an_old_one(tiny_runs, tmp_path):
    run = tiny_runs("moments")
    dest = tmp_path / "figs"
    dest.mkdir()
    for png in run.glob("*.png"):
        png.unlink()
    done = _script("moments", str(run), "--copy-to", str(dest))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in dest.glob("*.png"))
    assert names == ["moments_error_vs_n.png", "moments_error_vs_noise.png",
                     "moments_vs_gd.png"]
    assert sorted(p.name for p in run.glob("*.png")) == names
    # a folder of an older version: results.npz without what the figures are drawn from
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy2(run / "config.json", old / "config.json")
    with np.load(run / "results.npz") as z:
        np.savez(old / "results.npz", **{k: z[k] for k in z.files if not k.startswith("law_")})
    done = _script("moments", str(old), "--copy-to", str(dest))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "law_names" in done.stderr


def test_moments_verdicts_follow_the_measurement():
    from meanfield.experiments.moments import verdicts

    config = {"laws": ["gaussian", "rademacher"], "controls": ["exponential"]}
    good = {"exact_gaussian_error": 3e-15, "slope_gaussian": -0.49, "slope_rademacher": -0.52,
            "error_exponential_nmax": 0.7}
    v = verdicts(good, config)
    assert [x["quantity"] for x in v] == ["exact_gaussian_error", "slope_gaussian",
                                         "slope_rademacher", "error_exponential_nmax"]
    assert all(x["ok"] for x in v)
    json.dumps(v)  # plain JSON values
    for key, wrong in (("exact_gaussian_error", 1e-4), ("slope_gaussian", -0.2),
                       ("slope_rademacher", -1.0), ("error_exponential_nmax", 0.02)):
        v = verdicts({**good, key: wrong}, config)
        bad = [x for x in v if not x["ok"]]
        assert [x["quantity"] for x in bad] == [key] and bad[0]["measured"] == wrong


def test_symmetric_boolean_verdicts_follow_the_measurement():
    from meanfield.experiments.symmetric_boolean import verdicts

    config = {"targets": ["parity", "majority"], "inits": ["invariant", "random"],
              "n_train": [30, 1000]}
    good = {"test_acc_parity_invariant_N1000": 0.97, "test_acc_parity_random_N1000": 0.5,
            "test_acc_parity_invariant_N30": 0.5}
    assert all(x["ok"] for x in verdicts(good, config))
    v = verdicts({**good, "test_acc_parity_invariant_N1000": 0.55}, config)
    assert [x["ok"] for x in v] == [False, True]
    v = verdicts({**good, "test_acc_parity_random_N1000": 0.95}, config)
    assert [x["ok"] for x in v] == [True, False]
    v = verdicts({**good, "test_acc_parity_invariant_N1000": float("nan")}, config)
    assert not v[0]["ok"]
    assert verdicts(good, {**config, "targets": ["majority"]}) == []


def test_runs_save_their_verdicts(tiny_runs):
    from meanfield.experiments import moments, symmetric_boolean

    for name, module in (("moments", moments), ("symmetric-boolean", symmetric_boolean)):
        run = tiny_runs(name)
        saved = json.loads((run / "verdicts.json").read_text())
        summary = json.loads((run / "summary.json").read_text())
        config = json.loads((run / "config.json").read_text())["config"]
        assert saved and saved == json.loads(json.dumps(module.verdicts(summary, config)))


def test_make_all_lists_every_figure_script():
    sys.path.insert(0, str(ROOT / "figures"))
    try:
        import make_all
    finally:
        sys.path.pop(0)
    names = make_all.scripts()
    expected = sorted(p.stem[5:] for p in (ROOT / "figures").glob("plot_*.py"))
    assert sorted(names) == expected and names[-1] == "films"


@pytest.mark.parametrize("label,text", [
    ("$\\mathdefault{10^{-3}}$", "10⁻³"), ("$\\mathdefault{10^{12}}$", "10¹²"),
    ("$\\mathdefault{2\\times10^{-1}}$", "2×10⁻¹"), ("$\\mathdefault{10^{0}}$", "10⁰"),
    ("", ""), ("$\\mathdefault{1.5}$", "$\\mathdefault{1.5}$")])
def test_log_labels_in_plain_text(label, text):
    from meanfield.plots._style import _plain_text
    assert _plain_text(label) == text


@pytest.mark.parametrize("span", [(2e-3, 7e-3), (0.5, 3.0), (1e-30, 1e3)])
def test_plain_log_labels_label_the_same_ticks_as_matplotlib(span):
    """Same ticks, and a label on the same ones (minor ticks inside a decade too), as
    matplotlib's own log formatter: only the typesetting differs."""
    from meanfield.plots._style import _plain_text, plain_log_labels, pyplot
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.semilogy([0, 1], span)
    fig.canvas.draw()
    axis = ax.yaxis
    want = [[_plain_text(f(v)) for v in locs] for f, locs in (
        (axis.get_major_formatter(), axis.get_majorticklocs()),
        (axis.get_minor_formatter(), axis.get_minorticklocs()))]
    plain_log_labels(axis)
    fig.canvas.draw()
    got = [[f(v) for v in locs] for f, locs in (
        (axis.get_major_formatter(), axis.get_majorticklocs()),
        (axis.get_minor_formatter(), axis.get_minorticklocs()))]
    plt.close(fig)
    assert got == want and any(got[0])
    assert not any("$" in label for labels in got for label in labels)


def test_flow_figures_use_no_mathtext(tiny_runs, tmp_path, monkeypatch):
    """The default job's figures are typeset without matplotlib's TeX parser (building it is
    a third of their drawing time)."""
    import matplotlib.mathtext
    from meanfield.plots import flow

    def refuse(*args, **kwargs):
        raise AssertionError("mathtext was used")
    monkeypatch.setattr(matplotlib.mathtext.MathTextParser, "parse", refuse)
    run = tmp_path / "run"
    shutil.copytree(tiny_runs("flow"), run)
    assert [p.name for p in flow.plot(run)] == ["risk.png", "q_drift.png"]
