"""The command line's contract under hostile input: exit 2 with one line naming the key and
nothing written; exit 1 keeping the last good state when a run fails; no folder clobbered;
no resume under changed settings."""
import hashlib
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
from meanfield.cli.progress import Progress

sys.path.insert(0, str(Path(__file__).parent))
from hostile import BAD_VALUES, DIVERGE, FUZZ_FOUND, run_cli, sets  # noqa: E402


def assert_refused(code, err, key, never):
    assert code == 2, err
    assert err.startswith(f"error: {key}:"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not Path(never).exists()


def folder_state(directory):
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(directory).rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- bad values, every experiment
@pytest.mark.parametrize("experiment,extra,key", BAD_VALUES + FUZZ_FOUND,
                         ids=[f"{e}-{'-'.join(x)}" for e, x, _ in BAD_VALUES + FUZZ_FOUND])
def test_bad_value_is_refused_before_anything_is_written(tmp_path, experiment, extra, key):
    code, _, err = run_cli(experiment, *sets(experiment, *extra), "--out", str(tmp_path / "r"))
    assert_refused(code, err, key, tmp_path / "r")


def test_memory_refusal_says_how_much_is_needed(tmp_path):
    code, _, err = run_cli("flow", "--set", "n_particles=1e9", "--out", str(tmp_path / "r"))
    assert_refused(code, err, "n_particles", tmp_path / "r")
    assert "GiB" in err and "available" in err


def test_every_float_key_of_every_experiment_must_be_finite(tmp_path):
    """The generic check covers keys nobody listed: every float key of every experiment."""
    from meanfield import experiments

    for name, module in experiments.available().items():
        for key, default in module.DEFAULTS.items():
            if isinstance(default, float) and not isinstance(default, bool):
                code, _, err = run_cli(name, "--set", f"{key}=nan", "--out",
                                       str(tmp_path / "r"))
                assert code == 2 and err.startswith(f"error: {key}:"), (name, key, err)
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- files the user gives
def _bad_files(tmp_path, d=4):
    np.savez(tmp_path / "complex.npz", a=np.ones(6) + 1j, b=np.ones((6, d)))
    np.save(tmp_path / "single.npy", np.ones(6))
    (tmp_path / "empty.npz").write_bytes(b"")
    np.savez(tmp_path / "good.npz", a=np.ones(6), b=np.ones((6, d)))
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04" + bytes(range(256)))
    np.savez(tmp_path / "structured.npz", a=np.zeros(6, dtype=[("x", "f8"), ("y", "f8")]),
             b=np.ones((6, d)))
    np.savez(tmp_path / "nan.npz", a=np.full(6, np.nan), b=np.ones((6, d)))
    (tmp_path / "folder.npz").mkdir()
    return ["complex.npz", "single.npy", "empty.npz", "truncated.npz", "corrupt.npz",
            "structured.npz", "nan.npz", "folder.npz", "missing.npz"]


@pytest.mark.parametrize("key", ["init_file", "teacher_file"])
def test_unusable_array_files_are_refused(tmp_path, key):
    for name in _bad_files(tmp_path):
        code, _, err = run_cli("flow", "--set", "d=4", "--set", f"{key}={tmp_path / name}",
                               "--out", str(tmp_path / "r"))
        assert_refused(code, err, key, tmp_path / "r")


def test_init_file_fixes_the_number_of_particles(tmp_path):
    _bad_files(tmp_path)
    good = tmp_path / "good.npz"
    code, _, err = run_cli("flow", "--set", "d=4", "--set", f"init_file={good}",
                           "--set", "n_particles=8", "--out", str(tmp_path / "r"))
    assert_refused(code, err, "n_particles", tmp_path / "r")
    code, _, err = run_cli("flow", "--set", "d=4", "--set", f"init_file={good}",
                           "--set", "n_steps=3", "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0, err
    cfg = mf.load_run(tmp_path / "r").config
    assert cfg["n_particles"] == 6 and cfg["init"] == "file"  # what was actually used


# ---------------------------------------------------------------- arguments
@pytest.mark.parametrize("args,key", [
    (["--set", "d=4", "--set", "d=5"], "d"),
    (["--set", "=5"], "--set"),
    (["--set", "nokey"], "--set"),
    (["--out", ""], "--out"),
    (["--out", "/dev/null"], "--out"),
    (["--out", "FILE/sub"], "--out"),
    (["--out", "FILE"], "--out"),
    (["--out", "x" * 300], "--out"),
    (["--config", "DIR"], "--config"),
    (["--config", "LATIN1"], "--config"),
    (["--resume", ""], "--resume"),
    (["--resume", "DIR"], "--resume"),
])
def test_bad_arguments_are_refused(tmp_path, monkeypatch, args, key):
    monkeypatch.chdir(tmp_path)
    Path("FILE").write_text("keep")
    Path("DIR").mkdir()
    Path("LATIN1").write_bytes("d = 4\n# caf\xe9\n".encode("latin-1"))
    argv = ["flow", *args] if args[0] != "--resume" else args
    if "--out" not in args and "--resume" not in args:
        argv += ["--out", "never"]
    code, _, err = run_cli(*argv)
    assert_refused(code, err, key, tmp_path / "never")
    assert Path("FILE").read_text() == "keep" and not any(Path("DIR").iterdir())


def test_bare_word_lists_are_accepted():
    # include_sampled: the odd experiment no longer runs SGD by default (sampled_inits applies)
    code, out, err = run_cli("odd", "--set", "inits=[sphere]", "--set", "sampled_inits=[sphere]",
                             "--set", "include_sampled=true", "--show-config")
    assert code == 0, err
    assert json.loads(out)["inits"] == ["sphere"]


def test_teacher_seed_keeps_the_problem_across_seeds():
    from meanfield.experiments import flow

    cfg = dict(flow.DEFAULTS)
    t0 = flow.build_problem(cfg).target_parts[0].b
    t1 = flow.build_problem({**cfg, "seed": 7}).target_parts[0].b
    t2 = flow.build_problem({**cfg, "teacher_seed": 7}).target_parts[0].b
    np.testing.assert_array_equal(t0, t1)
    assert not np.allclose(t0, t2)
    # teacher_seed = seed reproduces the earlier layout (the target from SeedSequence(seed))
    rng = np.random.default_rng(np.random.SeedSequence(7).spawn(3)[0])
    b = rng.standard_normal((cfg["teacher_units"], cfg["d"]))
    np.testing.assert_array_equal(t2, b / np.linalg.norm(b, axis=1, keepdims=True))


# ---------------------------------------------------------------- divergence, every experiment
@pytest.mark.parametrize("experiment", sorted(DIVERGE))
def test_divergence_fails_with_exit_1_and_keeps_the_folder(tmp_path, experiment):
    code, _, err = run_cli(experiment, *sets(experiment, *DIVERGE[experiment]), "--out",
                           str(tmp_path / "r"), "--quiet")
    assert code == 1, err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("run failed: ")
    run = mf.load_run(tmp_path / "r")
    assert run.summary["status"] == "failed"
    assert "reduce" in run.summary["reason"]


def test_normal_run_prints_work_first_and_no_warnings(tmp_path):
    """noether used to print 13 RuntimeWarnings; they now go to summary.json."""
    code, out, err = run_cli("noether", *sets("noether"), "--out", str(tmp_path / "r"))
    assert code == 0, err
    # stderr holds at most progress lines (one per 10 s when not on a terminal)
    assert all("% (" in line for line in err.splitlines()), err
    assert out.splitlines()[0].startswith("noether: estimated work ")
    assert "pair evaluations x steps" in out.splitlines()[0]
    run = mf.load_run(tmp_path / "r")
    # load_run: config keys directly, attribute errors, parts and tables of multi-part runs
    assert run.config["d"] == run.config["config"]["d"] == 5
    assert not hasattr(run, "no_such_thing")
    assert {"sweep", "time", "defect"} <= set(run.parts)
    assert "_config_json" not in run.parts["sweep"]
    assert run.tables["laws"] and "verdict" in run.tables["laws"][0]


def test_moments_with_one_hidden_unit_runs(tmp_path):
    """k = 1 has a single detector singular value: no (k+1)-th one to report."""
    code, _, err = run_cli("moments", *sets("moments", "k=1"), "--out", str(tmp_path / "r"),
                           "--quiet")
    assert code == 0, err
    assert np.isnan(mf.load_run(tmp_path / "r").summary["exact_gaussian_null_sv_k1"])


# ---------------------------------------------------------------- resume
def _interrupted_flow(tmp_path, **extra):
    """A finished tiny flow run made to look killed (summary removed): its checkpoint is at
    the last step, so a resume would continue from it."""
    run_dir = tmp_path / "r"
    args = sets("flow", "n_steps=30", "checkpoint_every=5", *[f"{k}={v}" for k, v in
                                                               extra.items()])
    code, _, err = run_cli("flow", *args, "--out", str(run_dir), "--quiet")
    assert code == 0, err
    (run_dir / "summary.json").unlink()
    return run_dir


def test_finished_run_is_never_overwritten_by_resume(tmp_path):
    code, _, err = run_cli("flow", *sets("flow"), "--out", str(tmp_path / "r"), "--quiet")
    assert code == 0, err
    before = folder_state(tmp_path / "r")
    code, _, err = run_cli("--resume", str(tmp_path / "r"))
    assert code == 2 and "finished" in err and err.count("\n") == 1
    assert folder_state(tmp_path / "r") == before


@pytest.mark.parametrize("key,value", [("dt", 0.1), ("seed", 3), ("n_steps", 10),
                                       ("integrator", "heun"), ("backend", "sampled")])
def test_resume_with_an_edited_config_is_refused(tmp_path, key, value):
    run_dir = _interrupted_flow(tmp_path)
    saved = json.loads((run_dir / "config.json").read_text())
    saved["config"][key] = value
    (run_dir / "config.json").write_text(json.dumps(saved))
    before = folder_state(run_dir)
    code, _, err = run_cli("--resume", str(run_dir))
    assert code == 2 and err.startswith("error: --resume:") and f"{key} (" in err
    assert err.count("\n") == 1
    assert folder_state(run_dir) == before


def test_odd_parts_made_with_another_dt_are_not_reused(tmp_path):
    run_dir = tmp_path / "r"
    code, _, err = run_cli("odd", *sets("odd"), "--out", str(run_dir), "--quiet")
    assert code == 0, err
    (run_dir / "summary.json").unlink()
    saved = json.loads((run_dir / "config.json").read_text())
    saved["config"]["dt"] = 0.02
    saved.pop("config_sha256")  # even without the hash, the parts carry their config
    (run_dir / "config.json").write_text(json.dumps(saved))
    code, _, err = run_cli("--resume", str(run_dir))
    assert code == 2 and "dt (0.01 -> 0.02)" in err


@pytest.mark.parametrize("damage", ["truncated", "zeroed", "empty", "nan"])
def test_damaged_checkpoint_is_refused_and_the_folder_left_as_it_was(tmp_path, damage):
    run_dir = _interrupted_flow(tmp_path)
    ckpt = run_dir / "checkpoint.npz"
    data = ckpt.read_bytes()
    if damage == "truncated":
        ckpt.write_bytes(data[: len(data) // 3])
    elif damage == "zeroed":
        ckpt.write_bytes(bytes(len(data)))
    elif damage == "empty":
        ckpt.write_bytes(b"")
    else:
        state = dict(np.load(ckpt))
        key = "y_a" if "y_a" in state else "a"  # the loop stores its state as y_<name>
        state[key] = np.full_like(state[key], np.nan)
        np.savez(ckpt, **state)
    before = folder_state(run_dir)
    code, _, err = run_cli("--resume", str(run_dir))
    assert code == 2 and err.startswith("error: --resume:") and "checkpoint.npz" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert folder_state(run_dir) == before


@pytest.mark.parametrize("text", ["{not json", '{"experiment": "flow"}', ""])
def test_unreadable_config_json_is_refused(tmp_path, text):
    run_dir = _interrupted_flow(tmp_path)
    (run_dir / "config.json").write_text(text)
    before = folder_state(run_dir)
    code, _, err = run_cli("--resume", str(run_dir))
    assert code == 2 and err.startswith("error: --resume:") and err.count("\n") == 1
    assert folder_state(run_dir) == before


def test_resume_removes_stale_temporaries_and_records_threads(tmp_path):
    run_dir = _interrupted_flow(tmp_path)
    stale = run_dir / ".checkpoint.npz.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    code, _, err = run_cli("--resume", str(run_dir), "--quiet")
    assert code == 0, err
    assert not stale.exists()
    cfg = json.loads((run_dir / "config.json").read_text())
    import numba

    assert cfg["threads"] == numba.get_num_threads()
    assert cfg["resumed"][-1]["threads"] == numba.get_num_threads()
    if (Path(mf.__file__).resolve().parent.parent / ".git").exists():
        assert len(cfg["versions"]["meanfield_git"].split("-")[0]) == 40


def test_resume_of_a_run_older_than_teacher_seed_keeps_its_teacher(tmp_path):
    """Runs made before teacher_seed existed drew the teacher from seed; resuming one must
    not switch it to teacher_seed's default mid-run."""
    run_dir = _interrupted_flow(tmp_path, seed=5)
    saved = json.loads((run_dir / "config.json").read_text())
    del saved["config"]["teacher_seed"], saved["config_sha256"]
    (run_dir / "config.json").write_text(json.dumps(saved))
    ckpt = np.load(run_dir / "checkpoint.npz")
    state = {k: ckpt[k] for k in ckpt.files if k != "_config_json"}  # a checkpoint of then
    np.savez(run_dir / "checkpoint.npz", **state)
    from meanfield.cli.simulate import _parser, _prepare

    config = _prepare(_parser().parse_args(["--resume", str(run_dir)]))[2]
    assert config["teacher_seed"] == 5
    code, _, err = run_cli("--resume", str(run_dir), "--quiet")
    assert code == 0, err


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        code, _, err = run_cli("flow", *sets("flow"), "--out", str(tmp_path / "r"), "--quiet")
    finally:
        os.umask(old)
    assert code == 0, err
    for name in ("config.json", "summary.json", "trajectory.npz", "checkpoint.npz", "risk.png"):
        assert (tmp_path / "r" / name).stat().st_mode & 0o777 == 0o640, name


def test_progress_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = Progress(10, desc="work", stream=stream, every_s=0.0)
    for _ in range(10):
        bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and lines[-1].startswith("work: 100.0% (10/10)")
    assert "\r" not in stream.getvalue()
    quiet = io.StringIO()
    bar = Progress(10, desc="work", stream=quiet, every_s=1e9)  # slower than the work
    bar.update(10)
    bar.close()
    assert quiet.getvalue() == ""


# ---------------------------------------------------------------- processes
def _spawn(*argv):
    return subprocess.Popen([sys.executable, "-m", "meanfield.simulate", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_runs_started_on_one_folder_exactly_one_runs(tmp_path):
    out = tmp_path / "shared"
    procs = [_spawn("flow", *sets("flow", f"seed={s}"), "--out", str(out),
                    "--quiet") for s in (1, 2)]
    results = [(p.wait(timeout=300), p.stderr.read().decode()) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes == [0, 2], results
    loser = next(err for c, err in results if c == 2)
    assert loser.startswith("error: --out:") and loser.count("\n") == 1
    winner_seed = 1 + [c for c, _ in results].index(0)
    run = mf.load_run(out)
    assert run.config["seed"] == winner_seed and run.summary["status"] == "ok"
    # the trajectory is the winner's: rerun it alone and compare
    code, _, err = run_cli("flow", *sets("flow", f"seed={winner_seed}"), "--out",
                           str(tmp_path / "alone"), "--quiet")
    assert code == 0, err
    np.testing.assert_array_equal(run.trajectory["risk"],
                                  mf.load_run(tmp_path / "alone").trajectory["risk"])


def _wait_for(path, proc, timeout=120):
    start = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() - start < timeout
        time.sleep(0.05)


def test_sigterm_exits_143_with_a_checkpoint(tmp_path):
    out = tmp_path / "t"
    proc = _spawn("flow", "--set", "n_particles=48", "--set", "d=6", "--set", "n_steps=50000",
                  "--set", "checkpoint_every=25", "--out", str(out), "--quiet")
    _wait_for(out / "checkpoint.npz", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert b"Traceback" not in err and b"--resume" in err
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"


def test_ctrl_c_during_start_up_prints_one_line(tmp_path):
    proc = _spawn("flow", "--out", str(tmp_path / "s"))
    maps = Path(f"/proc/{proc.pid}/maps")
    if not maps.exists():
        pytest.skip("needs /proc to see when the imports have begun")
    start = time.time()
    # NumPy is first imported by the package, after its start-up hook: wait until it loads
    while "numpy" not in maps.read_text():
        assert proc.poll() is None and time.time() - start < 60
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and err.count(b"\n") == 1


def test_full_vs_reduced_reports_progress_to_the_callers_stderr(tmp_path, monkeypatch):
    from meanfield.cli import runctx

    def every_update(self, total, desc=""):
        return Progress(total, desc=desc, quiet=self.quiet, every_s=0.0,
                        stream=self.progress_stream)

    monkeypatch.setattr(runctx.RunContext, "progress", every_update)
    code, _, err = run_cli("lowdim-full-vs-reduced", *sets("lowdim-full-vs-reduced"), "--out",
                           str(tmp_path / "r"))
    assert code == 0, err
    # each of the six flows (two widths x full, reduced, 1-D) has its own bar, in PDE time
    # per mille; every one of them reaches the caller's stderr and ends at 100 %
    for m in (8, 16):
        for model in ("full", "reduced", "1D"):
            lines = [x for x in err.splitlines() if x.startswith(f"m{m}_seed0_{model}: ")]
            assert len(lines) >= 2 and "100.0% (1000/1000)" in lines[-1], (m, model, err)
