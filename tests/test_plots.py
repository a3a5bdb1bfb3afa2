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


CASES_PLOTS = sorted({module for module, _, _ in CASES.values()})


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


# -- figures drawn by a second process (meanfield/plots/process.py) ---------------------
def _no_fallback(monkeypatch):
    """Make drawing in the calling process fail: what is drawn was drawn by the process."""
    from meanfield.plots import process as P

    def fail(*args):
        raise AssertionError("drawn in the calling process")

    monkeypatch.setattr(P, "draw_in_process", fail)


def _bare_copy(run, files, dest):
    dest.mkdir()
    for name in ["config.json", *files]:
        shutil.copy2(run / name, dest / name)
    return dest


@pytest.mark.parametrize("experiment", list(CASES))
def test_figure_process_draws_the_same_pngs_as_this_process(experiment, tiny_runs, tmp_path,
                                                            monkeypatch):
    """The same PNG bytes as drawn here; the process takes several requests, the second for
    a module it did not import ahead."""
    from meanfield.plots.process import FigureProcess, draw_in_process

    module, _, files = CASES[experiment]
    run = tiny_runs(experiment)
    config = json.loads((run / "config.json").read_text())["config"]
    here = draw_in_process(module, _bare_copy(run, files, tmp_path / "here"), config)
    assert here
    _no_fallback(monkeypatch)
    with FigureProcess(["flow" if module != "flow" else "moments"]) as process:
        for k in range(2):
            there = process.draw(module, _bare_copy(run, files, tmp_path / f"there{k}"),
                                 config)
            assert [p.name for p in there] == [p.name for p in here]
            for a, b in zip(here, there):
                assert a.read_bytes() == b.read_bytes(), a.name


def test_figure_process_imports_neither_numba_nor_scipy():
    """The figure process loads the plotting modules without the package's __init__ (its
    Numba and SciPy would cost the run 0.5 s of CPU)."""
    from meanfield.plots.process import _CHILD

    report = ("replies.write(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] "
              "in ('numba', 'scipy', 'meanfield'))) + '\\n'); replies.flush()\n")
    code = _CHILD.replace("os._exit(0)", report + "os._exit(0)")
    assert code != _CHILD
    modules = list(CASES_PLOTS) + ["noether", "odd", "orthogonal_dependence"]
    r = subprocess.run([sys.executable, "-c", code, str(ROOT), *modules], input="",
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    assert all(f"meanfield.plots.{m}" in loaded for m in modules)
    assert not [m for m in loaded if m.split(".")[0] in ("numba", "scipy")], loaded


def test_figure_process_error_is_raised_here_with_its_own_type(tiny_runs, tmp_path):
    from meanfield.plots._style import MissingData
    from meanfield.plots.process import FigureProcess

    run = tiny_runs("flow")
    shutil.copy2(run / "config.json", tmp_path / "config.json")  # no trajectory.npz
    with FigureProcess(["flow"]) as process:
        with pytest.raises(MissingData):
            process.draw("flow", tmp_path, None)
        assert process.alive  # an error in the figure code does not end the process


def test_figure_process_gone_falls_back_to_this_process(tiny_runs, tmp_path, monkeypatch):
    from meanfield.plots import process as P

    run = _bare_copy(tiny_runs("flow"), ["trajectory.npz"], tmp_path / "run")
    with P.FigureProcess(["flow"]) as process:
        process._proc.kill()
        process._proc.wait()
        paths = process.draw("flow", run, None)
        assert not process.alive and sorted(p.name for p in paths) == ["q_drift.png", "risk.png"]

    def no_process(*args, **kwargs):
        raise OSError("no processes here")

    monkeypatch.setattr(P.subprocess, "Popen", no_process)
    for png in run.glob("*.png"):
        png.unlink()
    with P.FigureProcess(["flow"]) as process:
        assert not process.alive
        assert len(process.draw("flow", run, None)) == 2 and len(list(run.glob("*.png"))) == 2


def test_figure_process_warning_categories():
    from meanfield.plots.process import _warning_class

    def mro(category):
        return [c.__name__ for c in category.__mro__]

    assert _warning_class(mro(RuntimeWarning)) is RuntimeWarning
    own = type("MatplotlibDeprecationWarning", (DeprecationWarning,), {})
    other = _warning_class(mro(own))
    assert other.__name__ == own.__name__ and issubclass(other, DeprecationWarning)
    assert issubclass(_warning_class(["SomeWarning", "object"]), UserWarning)


def test_figure_process_keeps_its_replies_apart_from_printed_output(tiny_runs, tmp_path,
                                                                     monkeypatch):
    """Text a library prints in the figure process does not reach the reply channel."""
    from meanfield.plots import process as P

    noisy = P._CHILD.replace("pyplot()\n", "pyplot()\nprint('{\"paths\": []}', flush=True)\n"
                             "os.write(1, b'noise\\n')\n", 1)
    assert noisy != P._CHILD
    monkeypatch.setattr(P, "_CHILD", noisy)
    _no_fallback(monkeypatch)
    run = _bare_copy(tiny_runs("flow"), ["trajectory.npz"], tmp_path / "run")
    with P.FigureProcess(["flow"]) as process:
        paths = process.draw("flow", run, None)
    assert sorted(p.name for p in paths) == ["q_drift.png", "risk.png"]


def test_command_draws_its_figures_in_the_figure_process(tmp_path, monkeypatch):
    """``main(figure_process=True)`` (what ``python -m meanfield.simulate`` calls) hands the
    run's figures to a FigureProcess started before the run, and closes it afterwards."""
    from meanfield.cli.simulate import main
    from meanfield.plots import process as P

    seen = []

    class Spy(P.FigureProcess):
        def __init__(self, modules=()):
            seen.append(("start", list(modules)))
            super().__init__(modules)

        def draw(self, module, run_dir, config):
            seen.append(("draw", module, self.alive))
            return super().draw(module, run_dir, config)

        def close(self):
            seen.append(("close",))
            super().close()

    monkeypatch.setattr(P, "FigureProcess", Spy)
    _no_fallback(monkeypatch)
    import io

    code = main(["flow", *sets("flow"), "--out", str(tmp_path / "run"), "--quiet"],
                stdout=io.StringIO(), stderr=io.StringIO(), figure_process=True)
    assert code == 0
    assert seen[0] == ("start", ["flow"]) and seen[1] == ("draw", "flow", True)
    assert ("close",) in seen[2:]
    assert sorted(p.name for p in (tmp_path / "run").glob("*.png")) == ["q_drift.png", "risk.png"]


def _pid_part(name, warn=None, fail=None, wait_for=None):
    """A figure part that writes ``name`` holding its process id (and warns, or fails);
    with ``wait_for``, only once another part wrote that file (within 60 s)."""
    import os
    import time
    import warnings

    def part(run_dir, config):
        if warn:
            warnings.warn(warn, RuntimeWarning)
        if fail:
            raise fail
        deadline = time.monotonic() + 60
        while wait_for and not (Path(run_dir) / wait_for).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{wait_for} was not drawn meanwhile")
            time.sleep(0.01)
        path = Path(run_dir) / name
        path.write_text(str(os.getpid()))
        return [path]

    part.__name__ = f"draw_{name}"
    return part


def test_figure_parts_are_drawn_at_once_in_forked_children(tmp_path):
    """A module's FIGURE_PARTS: the first drawn in this process, each other one in a child
    of its own, all at once; the paths in the parts' order, the children's warnings
    returned for the reply. The first part waits for the last one's file: it can only
    finish if the parts run at the same time."""
    import os
    from types import SimpleNamespace

    from meanfield.plots._parts import draw_module

    parts = (_pid_part("a.png", wait_for="c.png"), _pid_part("b.png", warn="from a child"),
             _pid_part("c.png"))
    module = SimpleNamespace(FIGURE_PARTS=parts, plot=None)
    paths, caught = draw_module(module, tmp_path, None)
    assert [Path(p).name for p in paths] == ["a.png", "b.png", "c.png"]
    pids = [int(Path(p).read_text()) for p in paths]
    assert pids[0] == os.getpid() and len(set(pids)) == 3
    assert caught == [[["RuntimeWarning", "Warning", "Exception", "BaseException", "object"],
                       "from a child"]]
    for pid in pids[1:]:  # every child reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_figure_parts_failing_in_a_child_or_here(tmp_path, monkeypatch):
    """A part that fails in a child: RuntimeError naming it (the caller then redraws in a
    process of its own, where the error keeps its type); one that fails here: its own
    error, raised after the children finished. One core, or one part: plot() in order."""
    import os
    from types import SimpleNamespace

    from meanfield.plots import _parts

    bad = SimpleNamespace(FIGURE_PARTS=(_pid_part("a.png"),
                                        _pid_part("b.png", fail=KeyError("no q_drift"))))
    with pytest.raises(RuntimeError, match="draw_b.png: KeyError"):
        _parts.draw_module(bad, tmp_path, None)
    here = SimpleNamespace(FIGURE_PARTS=(_pid_part("a.png", fail=ValueError("here")),
                                         _pid_part("b.png")))
    with pytest.raises(ValueError, match="here"):
        _parts.draw_module(here, tmp_path, None)
    # the child's part was drawn, and the child reaped
    with pytest.raises(ChildProcessError):
        os.waitpid(int((tmp_path / "b.png").read_text()), os.WNOHANG)
    monkeypatch.setattr(_parts, "_cores", lambda: 1)
    calls = []
    serial = SimpleNamespace(FIGURE_PARTS=bad.FIGURE_PARTS,
                             plot=lambda run_dir, config: calls.append(run_dir) or ["x"])
    assert _parts.draw_module(serial, tmp_path, None) == (["x"], []) and calls == [tmp_path]


def test_flow_plot_is_its_parts_in_order(tiny_runs, tmp_path):
    from meanfield.plots import flow

    run = _bare_copy(tiny_runs("flow"), ["trajectory.npz"], tmp_path / "run")
    assert [p.name for p in flow.plot(run)] == list(flow.FIGURES)
    assert [f.__name__ for f in flow.FIGURE_PARTS] == ["plot_risk", "plot_q_drift"]
