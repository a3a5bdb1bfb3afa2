"""End-to-end runs of ``python -m meanfield.simulate`` in temporary folders."""
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import meanfield as mf
import reference as ref
from conftest import FORCED_THREADS, RTOL_KERNEL
from meanfield.cli.simulate import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--set", "n_particles=24", "--set", "n_steps=60", "--set", "d=4"]


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def same_trajectory(dir_a, dir_b):
    a, b = mf.load_run(dir_a).trajectory, mf.load_run(dir_b).trajectory
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_default_run_without_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli()
    assert code == 0, err
    assert "flow: ok" in out and "risk_final" in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = mf.load_run(run_dir)
    assert run.summary["status"] == "ok"
    assert run.summary["risk_final"] < 0.05 * run.summary["risk_initial"]


def test_outputs_exist_and_reload(tmp_path):
    code, out, err = run_cli("flow", *SMALL, "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0, err
    assert out == ""
    run = mf.load_run(tmp_path / "r")
    for name in ("config.json", "summary.json", "trajectory.npz", "risk.png", "q_drift.png"):
        assert (tmp_path / "r" / name).exists(), name
    cfg = run.config
    assert cfg["experiment"] == "flow" and cfg["config"]["n_particles"] == 24
    assert {"numpy", "numba", "scipy", "meanfield"} <= set(cfg["versions"])
    assert cfg["threads"] >= 1 and cfg["seed"] == 0
    s = run.summary
    for key in ("risk_final", "max_abs_Q_drift", "status", "wall_time_s"):
        assert key in s
    t = run.trajectory
    assert t["t"].shape == t["risk"].shape == (61,)
    assert t["a"].shape == (24,) and t["b"].shape == (24, 4)
    assert t["risk"][-1] == s["risk_final"]


def test_config_file_and_set_give_the_same_run(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('n_particles = 24\nn_steps = 60\nd = 4\nintegrator = "heun"\n')
    assert run_cli("flow", "--config", str(toml), "--out", str(tmp_path / "a"), "--quiet")[0] == 0
    assert run_cli("flow", *SMALL, "--set", "integrator=heun", "--out", str(tmp_path / "b"),
                   "--quiet")[0] == 0
    same_trajectory(tmp_path / "a", tmp_path / "b")
    # --set wins over --config
    assert run_cli("flow", "--config", str(toml), "--set", "n_steps=10", "--show-config")[1] \
        .count('"n_steps": 10') == 1


LONG = ["flow", "--set", "n_particles=48", "--set", "d=6", "--set", "n_steps=20000",
        "--set", "checkpoint_every=25", "--set", "backend=sampled", "--set", "batch_size=64",
        "--quiet"]


def _spawn(out_dir, args=LONG):
    return subprocess.Popen([sys.executable, "-m", "meanfield.simulate", *args, "--out",
                             str(out_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_checkpoint(out_dir, proc, timeout=120):
    ckpt = out_dir / "checkpoint.npz"
    start = time.time()
    while not ckpt.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() - start < timeout
        time.sleep(0.05)
    time.sleep(0.3)


def _checkpoint_step(out_dir):
    with np.load(out_dir / "checkpoint.npz") as data:
        return int(data["step_index"])


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    """A run killed with SIGKILL at an arbitrary moment and resumed equals an uninterrupted run
    (sampled backend, so the minibatch generator's state must be restored too)."""
    assert run_cli(*LONG, "--out", str(tmp_path / "full"))[0] == 0
    proc = _spawn(tmp_path / "killed")
    _wait_for_checkpoint(tmp_path / "killed", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = _checkpoint_step(tmp_path / "killed")
    assert 0 < step < 20000, "the run finished before it could be killed: make it longer"
    assert not (tmp_path / "killed" / "summary.json").exists()
    code, _, err = run_cli("--resume", str(tmp_path / "killed"), "--quiet")
    assert code == 0, err
    same_trajectory(tmp_path / "full", tmp_path / "killed")


LONG_ADAPTIVE = ["flow", "--set", "n_particles=64", "--set", "d=6", "--set", "integrator=dopri5",
                 "--set", "t_end=4000", "--set", "rtol=1e-11", "--set", "atol=1e-13",
                 "--set", "checkpoint_every=5", "--set", "n_records=401", "--set",
                 "n_snapshots=9", "--quiet"]


def test_sigkill_then_resume_is_bit_identical_for_dopri5(tmp_path):
    """Adaptive run: the controller state (next step, previous error) and the first-same-as-
    last velocity are in the checkpoint, so a killed and resumed run takes the same steps."""
    assert run_cli(*LONG_ADAPTIVE, "--out", str(tmp_path / "full"))[0] == 0
    proc = _spawn(tmp_path / "killed", LONG_ADAPTIVE)
    _wait_for_checkpoint(tmp_path / "killed", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with np.load(tmp_path / "killed" / "checkpoint.npz") as data:
        t_killed = float(data["t_now"])
    assert 0 < t_killed < 4000, "the run finished before it could be killed: make it longer"
    code, _, err = run_cli("--resume", str(tmp_path / "killed"), "--quiet")
    assert code == 0, err
    same_trajectory(tmp_path / "full", tmp_path / "killed")
    full = mf.load_run(tmp_path / "full").summary
    killed = mf.load_run(tmp_path / "killed").summary
    for key in ("n_evaluations", "n_steps_accepted", "n_steps_rejected"):
        assert full[key] == killed[key], key


def test_ctrl_c_writes_checkpoint_and_exits_cleanly(tmp_path):
    proc = _spawn(tmp_path / "int")
    _wait_for_checkpoint(tmp_path / "int", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert b"Traceback" not in err and b"--resume" in err
    summary = json.loads((tmp_path / "int" / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    step = _checkpoint_step(tmp_path / "int")
    assert 0 < step < 20000
    assert run_cli("--resume", str(tmp_path / "int"), "--quiet")[0] == 0
    assert json.loads((tmp_path / "int" / "summary.json").read_text())["status"] == "ok"


@pytest.mark.parametrize("args,key", [
    (["flow", "--set", "dt=0"], "dt"),
    (["flow", "--set", "dt=abc"], "dt"),
    (["flow", "--set", "n_particles=0"], "n_particles"),
    (["flow", "--set", "target=norm", "--set", "d=3", "--set", "d_H=5"], "d_H"),
    (["flow", "--set", "integrator=leapfrog"], "integrator"),
    (["flow", "--set", "integrator=dopri5", "--set", "n_steps=10"], "n_steps"),
    (["flow", "--set", "integrator=dopri5", "--set", "backend=sampled"], "integrator"),
    (["flow", "--set", "t_end=10", "--set", "n_steps=3"], "t_end"),
    (["flow", "--set", "rtol=0"], "rtol"),
    (["flow", "--set", "colour=blue"], "colour"),
    (["flow", "--set", "init=file", "--set", "init_file=/no/such/file.npz"], "init_file"),
    (["flow", "--set", "backend=exact", "--set", "input=rademacher"], "backend"),
    (["not-an-experiment"], "experiment"),
    (["flow", "--config", "/no/such/config.toml"], "--config"),
    (["flow", "--set", "dt=0.1", "--set", "dt=0.2"], "dt"),
    (["flow", "--set", "batch_size=64"], "batch_size"),
    (["flow", "--set", "n_particles=1e9"], "n_particles"),
    (["flow", "--set", "teacher_file=/no/such/teacher.npz"], "teacher_file"),
    (["flow", "--set", "seed=-1"], "seed"),
    (["flow", "--set", "dt=inf"], "dt"),
])
def test_bad_input_exits_2_names_the_key_and_writes_nothing(tmp_path, args, key):
    out_dir = tmp_path / "never"
    code, out, err = run_cli(*args, "--out", str(out_dir))
    assert code == 2
    assert err.startswith("error: ") and key in err and err.count("\n") == 1
    assert "Traceback" not in err
    assert not out_dir.exists()


def test_malformed_init_file_is_rejected(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.ones(3), b=np.ones((3, 7)))  # wrong d
    code, _, err = run_cli("flow", "--set", "init=file", "--set", f"init_file={bad}",
                           "--out", str(tmp_path / "x"))
    assert code == 2 and "init_file" in err and "d = 7" in err
    assert not (tmp_path / "x").exists()


def _teacher_risk(a, b, w, ta, tb, beta):
    """½ E(f − f*)² for x ∼ N(0, I) from the reference κ, with E[σ(⟨u, x⟩) ⟨β, x⟩] = ⟨u, β⟩/2
    and E⟨β, x⟩² = ‖β‖²."""
    kk = lambda U, V: np.array([[ref.kappa(u, v) for v in V] for u in U])  # noqa: E731
    c = w * a
    ff = c @ kk(b, b) @ c
    fs = c @ kk(b, tb) @ ta + 0.5 * c @ (b @ beta)
    ss = ta @ kk(tb, tb) @ ta + ta @ (tb @ beta) + beta @ beta
    return 0.5 * (ff - 2.0 * fs + ss)


def test_init_and_teacher_files_are_used(tmp_path, rng):
    d = 4
    a0, b0 = np.array([1.0, -1.0, 0.5]), rng.standard_normal((3, d))
    ta, tb, beta = np.array([2.0]), rng.standard_normal((1, d)), rng.standard_normal(d)
    np.savez(tmp_path / "init.npz", a=a0, b=b0)
    np.savez(tmp_path / "teacher.npz", a=ta, b=tb, beta=beta)
    code, _, err = run_cli("flow", "--set", f"d={d}", "--set", "init=file", "--set",
                           f"init_file={tmp_path / 'init.npz'}", "--set",
                           f"teacher_file={tmp_path / 'teacher.npz'}", "--set", "n_steps=5",
                           "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0, err
    run = mf.load_run(tmp_path / "r")
    assert run.config["input"] == "gaussian"
    # the run's first risk is F(μ_0) for exactly these particles and this teacher: a drawn
    # teacher, a dropped linear part or another start would each change it at O(1)
    expected = _teacher_risk(a0, b0, np.full(3, 1 / 3), ta, tb, beta)
    assert run.summary["risk_initial"] == pytest.approx(expected, rel=RTOL_KERNEL)
    assert run.trajectory["a"].shape == (3,)


def test_failed_run_exits_1_and_keeps_last_good_state(tmp_path):
    code, _, err = run_cli("flow", *SMALL, "--set", "dt=50", "--out", str(tmp_path / "f"),
                           "--quiet")
    assert code == 1 and "reduce dt" in err
    run = mf.load_run(tmp_path / "f")
    assert run.summary["status"] == "failed" and "reduce dt" in run.summary["reason"]
    assert np.all(np.isfinite(run.trajectory["a"]))


def test_out_dir_that_exists_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("precious")
    code, _, err = run_cli("flow", "--out", str(tmp_path / "x"))
    assert code == 2 and "--resume" in err
    assert (tmp_path / "x" / "keep.txt").read_text() == "precious"


def _declared_experiments():
    """NAME -> SUMMARY of every experiment module, read from the source files (not through
    the registry that ``--list`` uses)."""
    import ast

    found = {}
    for path in (ROOT / "meanfield" / "experiments").glob("*.py"):
        if path.name.startswith("_"):
            continue
        consts = {}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name) \
                    and node.targets[0].id in ("NAME", "SUMMARY"):
                consts[node.targets[0].id] = ast.literal_eval(node.value)
        if "NAME" in consts:
            found[consts["NAME"]] = consts.get("SUMMARY", "")
    return found


def test_list_names_every_experiment():
    code, out, _ = run_cli("--list")
    assert code == 0
    declared = _declared_experiments()
    assert len(declared) >= 8  # flow, lowdim-1d, ..., symmetric-boolean
    listed = {}
    for line in out.splitlines():
        if line.strip():
            name, _, summary = line.partition(" ")
            listed[name] = summary.strip()
    assert listed.keys() == declared.keys()
    for name, summary in declared.items():
        assert listed[name] == summary, name


def test_module_entry_point_runs(tmp_path):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "meanfield.simulate", "--list"], capture_output=True,
                       env=env, timeout=120)
    assert r.returncode == 0 and b"flow" in r.stdout


def test_simulate_flow_is_the_library_function_and_the_old_name_warns(rng):
    """``meanfield.simulate`` (the command's module name) no longer names the library function:
    ``simulate_flow`` does, and the old call still works with a DeprecationWarning."""
    problem = mf.Problem(3, mf.NormTarget(1))
    r = mf.simulate_flow(problem, mf.init_gaussian(4, 3, rng), 0.1, 2)
    with pytest.warns(DeprecationWarning, match="simulate_flow"):
        old = mf.simulate(problem, mf.init_gaussian(4, 3, np.random.default_rng(0)), 0.1, 2)
    assert r.status == "ok" and old.status == "ok"


def test_folder_in_use_by_another_run_is_refused(tmp_path):
    """The claim is a lock: while another process holds it, a second run exits 2 and leaves
    the folder alone (the deterministic half of the concurrent-start race)."""
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "busy"
    out.mkdir()
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, _, err = run_cli("flow", *SMALL, "--out", str(out), "--quiet")
        assert code == 2 and "in use by another run" in err and err.count("\n") == 1
        assert [p.name for p in out.iterdir()] == [".lock"]
        code, _, err = run_cli("--resume", str(out))
        assert code == 2
    finally:
        os.close(fd)
    code, _, err = run_cli("flow", *SMALL, "--out", str(out), "--quiet")  # lock released
    assert code == 0, err


_THREADS_PROBE = """
import sys, numba
import meanfield.experiments.flow as flow
from meanfield.cli.simulate import main
seen = []
inner = flow.run
def run(config, ctx):
    seen.append(numba.get_num_threads())
    out = inner(config, ctx)
    seen.append(numba.get_num_threads())
    return out
flow.run = run
code = main(sys.argv[1:])
print("THREADS_IN_RUN", *seen)
sys.exit(code)
"""


def test_threads_option_sets_the_threads_of_the_run(tmp_path):
    # 3 Numba threads available (forced), 2 asked for: the run itself computes with 2 and
    # config.json says so; the default would be 3
    env = dict(os.environ, NUMBA_NUM_THREADS=str(FORCED_THREADS))
    out_dir = tmp_path / "t"
    r = subprocess.run([sys.executable, "-c", _THREADS_PROBE, "flow", *SMALL, "--threads", "2",
                        "--out", str(out_dir), "--quiet"], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (line,) = [s for s in r.stdout.splitlines() if s.startswith("THREADS_IN_RUN")]
    assert line.split()[1:] == ["2", "2"]
    assert json.loads((out_dir / "config.json").read_text())["threads"] == 2


def test_run_records_its_numerical_warnings_not_foreign_resource_warnings(tmp_path,
                                                                          monkeypatch):
    """A RuntimeWarning raised by the run is counted in summary.json; a ResourceWarning (the
    garbage collector finding some other object's unclosed file) is not."""
    import warnings

    from meanfield.experiments import flow

    real = flow.run

    def noisy(config, ctx):
        warnings.warn("overflow in the test", RuntimeWarning)
        warnings.warn("unclosed file <_io.BufferedReader name=7>", ResourceWarning)
        return real(config, ctx)

    monkeypatch.setattr(flow, "run", noisy)
    code, _, err = run_cli("--out", str(tmp_path / "r"), *SMALL)
    assert code == 0, err
    recorded = json.loads((tmp_path / "r" / "summary.json").read_text())["warnings"]
    assert recorded == ["RuntimeWarning: overflow in the test"]
