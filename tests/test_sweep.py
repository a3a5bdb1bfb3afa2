"""``python -m meanfield.sweep``: grids of runs in this process, on a LocalCluster and on a
real Dask scheduler and worker started as separate processes (all on 127.0.0.1).

Every cluster and process started here is shut down in a ``finally`` or a fixture, with
timeouts. Points are tiny ``flow`` runs; the numbers are compared bit for bit with the same
runs made one by one by ``python -m meanfield.simulate``.
"""
import csv
import gc
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import meanfield as mf
from meanfield.cli import sweep
from meanfield.cli.simulate import main as simulate_main
from meanfield.cli.config import ConfigError
from meanfield.cli.executor import plan_workers

ROOT = Path(__file__).resolve().parents[1]
FLOW = ["--set", "d=4", "--set", "n_steps=60"]
GRID = ["--grid", "n_particles=16,24", "--grid", "seed=0,1"]
POINTS = {f"n_particles-{m}__seed-{s}": (m, s) for m in (16, 24) for s in (0, 1)}
#: seconds any single wait of this file may take before the test fails instead of hanging.
TIMEOUT = 180


def _env():
    """Environment of subprocesses: this source tree first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "")
                                                       .split(os.pathsep) if p])
    env.pop("MPLBACKEND", None)
    env["MPLBACKEND"] = "Agg"
    return env


def run_sweep(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = sweep.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def same_trajectory(dir_a, dir_b):
    a, b = mf.load_run(dir_a).trajectory, mf.load_run(dir_b).trajectory
    assert a and set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=f"{dir_a} {key}")


def read_table(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def log_lines(out):
    path = Path(out) / "sweep.log"
    return path.read_text().splitlines() if path.exists() else []


def snapshot(folder):
    """Every file under ``folder`` with its modification time (ns)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in Path(folder).rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------- processes
class DaskProcesses:
    """``dask scheduler --scheduler-file`` and ``dask worker --scheduler-file`` (one worker
    process with one thread, under a nanny that restarts it when it dies)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.scheduler_file = self.folder / "scheduler.json"
        self.procs = []
        common = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
        self.scheduler = self._start("scheduler", ["scheduler", "--scheduler-file",
                                                   str(self.scheduler_file), "--port", "0",
                                                   *common])
        self.worker = self._start("worker", ["worker", "--scheduler-file",
                                             str(self.scheduler_file), "--nworkers", "1",
                                             "--nthreads", "1", "--memory-limit", "0",
                                             "--death-timeout", "120", *common])
        self._ready = False

    def _start(self, name, args):
        log = open(self.folder / f"{name}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "dask", *args], env=_env(), cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        return proc

    def ready(self):
        """Block until the scheduler file exists and the worker is connected."""
        if self._ready:
            return str(self.scheduler_file)
        deadline = time.monotonic() + TIMEOUT
        while not self.scheduler_file.exists():
            assert self.scheduler.poll() is None, (self.folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.1)
        from distributed import Client

        with Client(scheduler_file=str(self.scheduler_file), timeout="60s",
                    set_as_default=False) as client:
            client.wait_for_workers(1, timeout=TIMEOUT)
        self._ready = True
        return str(self.scheduler_file)

    def listening_addresses(self):
        """IP addresses every process of this cluster listens on."""
        import psutil

        found = set()
        for proc, _ in self.procs:
            for p in [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(True):
                found |= {c.laddr.ip for c in p.net_connections(kind="inet")
                          if c.status == psutil.CONN_LISTEN}
        return found

    def worker_processes(self):
        """The worker process(es) the nanny (``dask worker``) started."""
        import psutil

        kids = psutil.Process(self.worker.pid).children(recursive=True)
        return [k for k in kids if "spawn_main" in " ".join(k.cmdline())]

    def close(self):
        for proc, _ in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, log in reversed(self.procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                import psutil

                for kid in psutil.Process(proc.pid).children(recursive=True):
                    kid.kill()
                proc.kill()
                proc.wait(timeout=30)
            log.close()


@pytest.fixture(scope="module")
def dask_processes(tmp_path_factory):
    procs = DaskProcesses(tmp_path_factory.mktemp("dask"))
    try:
        yield procs
    finally:
        procs.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, dask_processes):
    """The four grid points run by ``python -m meanfield.simulate``, each as its own process
    (started together; the Dask processes start meanwhile)."""
    folder = tmp_path_factory.mktemp("reference")
    procs = []
    try:
        for name, (m, s) in POINTS.items():
            cmd = [sys.executable, "-m", "meanfield.simulate", "flow", *FLOW, "--set",
                   f"n_particles={m}", "--set", f"seed={s}", "--out", str(folder / name),
                   "--quiet", "--threads", "1"]
            procs.append(subprocess.Popen(cmd, env=_env(), cwd=ROOT, stderr=subprocess.PIPE,
                                          text=True))
        for proc in procs:
            _, err = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    return folder


# ------------------------------------------------------------------------ bad input (fast)
@pytest.mark.parametrize("grid, key", [
    (["--grid", "no_such_key=1,2"], "no_such_key"),
    (["--grid", "dt=0.1,fast"], "dt"),
    (["--grid", "dt="], "dt"),
    (["--grid", "dt=0.1,,0.2"], "dt"),
    (["--grid", "dt=0.1,-0.1"], "dt"),          # the experiment's own check, in one point
    (["--grid", "integrator=euler,leapfrog"], "integrator"),
    (["--grid", "seed=1,1"], "seed"),
    (["--grid", "seed=0,1", "--set", "seed=3"], "seed"),
    (["--grid", "seed=0", "--grid", "seed=1"], "seed"),
    ([], "--grid"),
])
def test_bad_grids_exit_2_with_one_line_and_write_nothing(tmp_path, grid, key):
    out = tmp_path / "sweep"
    code, stdout, err = run_sweep("flow", *grid, *FLOW, "--out", str(out))
    assert code == 2
    assert err.count("\n") == 1 and key in err, err
    assert not out.exists()


def test_bad_options_exit_2(tmp_path):
    out = tmp_path / "sweep"
    for extra in (["--workers", "0"], ["--workers", "64"], ["--threads", "0"],
                  ["--scheduler-file", str(tmp_path / "none.json")]):
        code, _, err = run_sweep("flow", "--grid", "seed=0,1", "--out", str(out), *extra)
        assert code == 2 and err.count("\n") == 1, (extra, err)
    assert run_sweep("no-such-experiment", "--grid", "seed=0", "--out", str(out))[0] == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, _, err = run_sweep("flow", "--grid", "seed=0,1", "--out", str(out),
                             "--scheduler-file", str(bad))
    assert code == 2 and err.count("\n") == 1 and "--scheduler-file" in err, err
    assert not out.exists()


def test_toml_grid_table_equals_grid_options(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('d = 4\nn_steps = 60\n[grid]\nn_particles = [16, 24]\nseed = [0, 1]\n')
    spec_a, points_a = sweep.plan("flow", config_file=str(toml))
    spec_b, points_b = sweep.plan("flow", GRID[1::2], ["d=4", "n_steps=60"])
    assert spec_a == spec_b and points_a == points_b
    assert [p.name for p in points_a] == list(POINTS)
    # --grid replaces the file's grid entry of the same key; the grid wins over a fixed key
    spec_c, points_c = sweep.plan("flow", ["seed=5"], config_file=str(toml))
    assert spec_c["grid"] == {"n_particles": [16, 24], "seed": [5]} and len(points_c) == 2
    toml.write_text('seed = 3\n[grid]\nseed = [0, 1]\n')
    assert [p.config["seed"] for p in sweep.plan("flow", config_file=str(toml))[1]] == [0, 1]


def test_point_names_are_safe_and_unique():
    grid = {"init_file": ["a/b.npz", "a_b.npz"], "widths": [[10, 50]]}
    names = sweep.point_names(grid, [("a/b.npz", [10, 50]), ("a_b.npz", [10, 50])])
    assert names == ["init_file-a_b.npz__widths-10_50", "init_file-a_b.npz__widths-10_50-2"]
    long = sweep.point_names({"k": ["x" * 300]}, [("x" * 300,)])[0]
    assert len(long) <= 100
    # list-valued keys: one list per point; each point's --set strings give its config back
    spec, points = sweep.plan("odd", ["widths=10,50", "seeds=[[0],[1,2]]"])
    assert spec["grid"] == {"widths": [[10], [50]], "seeds": [[0], [1, 2]]}
    assert [p.name for p in points][:2] == ["widths-10__seeds-0", "widths-10__seeds-1_2"]
    assert points[1].config["seeds"] == [1, 2] and "seeds=[1, 2]" in points[1].sets


def test_plot_key_templates_take_the_point_values():
    _, points = sweep.plan("odd", ["widths=10,50", "seeds=0,1"])
    assert sweep._summary_key("gap_ode_sphere_m{widths}_mean", points[2]) == \
        "gap_ode_sphere_m50_mean"
    assert sweep._summary_key("risk_final", points[0]) == "risk_final"
    assert sweep._summary_key("x{nope}", points[0]) is None


def test_workers_times_threads_within_cores():
    assert plan_workers(8, cores=2) == (2, 1)
    assert plan_workers(1, cores=2) == (1, 2)       # one point: in process, both cores
    assert plan_workers(8, threads=2, cores=2) == (1, 2)
    assert plan_workers(3, cores=8) == (3, 2)
    assert plan_workers(0, workers=2, cores=4) == (2, 2)
    with pytest.raises(ConfigError):
        plan_workers(4, workers=2, threads=2, cores=2)


# --------------------------------------------------------------------- runs on Dask
def test_local_cluster_equals_single_runs_and_rerun_recomputes_nothing(tmp_path, reference,
                                                                      monkeypatch):
    out = tmp_path / "sweep"
    code, stdout, err = run_sweep("flow", *GRID, *FLOW, "--out", str(out), "--workers", "2")
    assert code == 0, err
    assert "on a local Dask cluster of 2 worker processes" in err
    assert err.count("points done") == 4  # one progress line per point (not a terminal)
    for name in POINTS:
        same_trajectory(out / "points" / name, reference / name)
    rows = read_table(out / "sweep.csv")
    assert [r["point"] for r in rows] == list(POINTS)
    for row, (m, s) in zip(rows, POINTS.values()):
        summary = json.loads((reference / row["point"] / "summary.json").read_text())
        assert (int(row["n_particles"]), int(row["seed"])) == (m, s)
        assert row["status"] == "ok" and row["reason"] == ""
        assert float(row["risk_final"]) == summary["risk_final"]
        assert int(row["steps_done"]) == 60
    assert (out / "sweep_risk_final.png").exists()
    spec = json.loads((out / "sweep.json").read_text())
    assert spec["grid"] == {"n_particles": [16, 24], "seed": [0, 1]}
    assert spec["config"]["d"] == 4 and spec["points"] == list(POINTS)
    pids = {line.split()[-1].split(":")[1] for line in log_lines(out)}
    assert len(log_lines(out)) == 4 and str(os.getpid()) not in pids  # ran in workers

    # the same command again: nothing is run, not even a cluster
    before = snapshot(out / "points")

    class NoExecutor:
        def __init__(self, *a, **k):
            raise AssertionError("a finished sweep started an executor")

    with monkeypatch.context() as mp:
        mp.setattr(sweep, "Executor", NoExecutor)
        code, stdout, err = run_sweep("flow", *GRID, *FLOW, "--out", str(out), "--workers", "2")
    assert code == 0, err
    assert snapshot(out / "points") == before and len(log_lines(out)) == 4

    # a different spec on the same folder: exit 2, one line, nothing touched
    whole = snapshot(out)
    code, _, err = run_sweep("flow", "--grid", "n_particles=16,32", "--grid", "seed=0,1",
                             *FLOW, "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and "n_particles" in err
    code, _, err = run_sweep("flow", *GRID, *FLOW, "--set", "dt=0.01", "--out", str(out))
    assert code == 2 and "dt" in err
    assert snapshot(out) == whole

    # an interrupted point (no final summary) resumes; the others are skipped
    victim = out / "points" / "n_particles-24__seed-1"
    (victim / "summary.json").unlink()
    code, _, err = run_sweep("flow", *GRID, *FLOW, "--out", str(out), "--workers", "1")
    assert code == 0, err
    new = log_lines(out)[4:]
    assert len(new) == 1 and "n_particles-24__seed-1 ok resumed" in new[0]
    same_trajectory(victim, reference / victim.name)


def test_scheduler_file_gives_the_same_numbers(tmp_path, reference, dask_processes):
    scheduler_file = dask_processes.ready()
    out = tmp_path / "sweep"
    code, _, err = run_sweep("flow", *GRID, *FLOW, "--out", str(out), "--threads", "1",
                             "--scheduler-file", scheduler_file)
    assert code == 0, err
    for name in POINTS:
        same_trajectory(out / "points" / name, reference / name)
    worker_pids = {str(p.pid) for p in dask_processes.worker_processes()}
    ran_on = {line.split()[-1].split(":")[1] for line in log_lines(out)}
    assert ran_on == worker_pids  # every point ran in the separate worker process
    assert dask_processes.listening_addresses() == {"127.0.0.1"}


def test_diverging_point_fails_and_the_others_finish(tmp_path, dask_processes):
    scheduler_file = dask_processes.ready()
    out = tmp_path / "sweep"
    code, _, err = run_sweep("flow", "--grid", "dt=1e6,0.02", *FLOW, "--set",
                             "n_particles=16", "--out", str(out), "--quiet",
                             "--scheduler-file", scheduler_file)
    assert code == 1
    assert "point dt-1000000.0: failed: non-finite risk" in err and "reduce dt" in err
    rows = {r["point"]: r for r in read_table(out / "sweep.csv")}
    assert rows["dt-1000000.0"]["status"] == "failed"
    assert "reduce dt" in rows["dt-1000000.0"]["reason"]
    assert rows["dt-0.02"]["status"] == "ok"
    assert float(rows["dt-0.02"]["risk_final"]) < float(rows["dt-0.02"]["risk_initial"])
    # a rerun keeps the failed point as it is, reports it again and still exits 1
    before = snapshot(out / "points")
    code, _, err = run_sweep("flow", "--grid", "dt=1e6,0.02", *FLOW, "--set",
                             "n_particles=16", "--out", str(out), "--quiet",
                             "--scheduler-file", scheduler_file)
    assert code == 1 and "point dt-1000000.0: failed" in err
    assert snapshot(out / "points") == before


def test_killed_worker_point_resumes_from_its_checkpoint(tmp_path, dask_processes):
    """SIGKILL the worker process while a point runs: the nanny starts a new worker, Dask
    reruns the point there, it resumes from its checkpoint and ends as the uninterrupted run."""
    scheduler_file = dask_processes.ready()
    out = tmp_path / "sweep"
    long = ["--set", "n_particles=64", "--set", "d=6", "--set", "n_steps=1500",
            "--set", "checkpoint_every=50"]
    result = []
    thread = threading.Thread(target=lambda: result.append(run_sweep(
        "flow", "--grid", "seed=0,1", *long, "--out", str(out), "--quiet", "--threads", "1",
        "--scheduler-file", scheduler_file)), daemon=True)
    (old_worker,) = dask_processes.worker_processes()
    thread.start()
    victim, deadline = None, time.monotonic() + TIMEOUT
    try:
        while victim is None:
            assert time.monotonic() < deadline and thread.is_alive(), "no point started"
            for d in sorted((out / "points").glob("*")) if (out / "points").exists() else []:
                if (d / "checkpoint.npz").exists() and not (d / "summary.json").exists():
                    victim = d
                    break
            time.sleep(0.02)
        old_worker.kill()
    finally:
        thread.join(TIMEOUT)
    assert not thread.is_alive(), "the sweep did not finish after the worker was killed"
    code, _, err = result[0]
    assert code == 0, err
    assert [r["status"] for r in read_table(out / "sweep.csv")] == ["ok", "ok"]
    lines = [ln for ln in log_lines(out) if victim.name in ln]
    assert len(lines) == 1 and " ok resumed " in lines[0], lines
    assert lines[0].split(":")[-1] != str(old_worker.pid)
    # the resumed point equals the same run made without interruption
    ref = tmp_path / "ref"
    seed = victim.name.split("-")[1]
    assert simulate_main(["flow", *long, "--set", f"seed={seed}", "--out", str(ref),
                          "--quiet"]) == 0
    same_trajectory(victim, ref)


# ------------------------------------------------- experiments made of sub-runs (simulate)
def run_simulate(*argv):
    # Unclosed files left by earlier tests (subprocess pipes) are otherwise collected, and
    # recorded as the run's own ResourceWarnings in summary.json, in the middle of this
    # in-process run: collect them first, so the run reports only what it raised itself.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    out, err = io.StringIO(), io.StringIO()
    code = simulate_main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _timing(key):
    """Keys that hold wall-clock times (they differ between any two runs)."""
    return "wall" in key or key.endswith("_s") or key == "warnings"


def same_run_folder(dir_a, dir_b):
    """Every array of every .npz file (parts, runs/, figures' data) and every summary value
    of two run folders are the same bit for bit, times apart."""
    files = sorted(str(p.relative_to(dir_a)) for p in Path(dir_a).rglob("*.npz"))
    assert files and files == sorted(str(p.relative_to(dir_b))
                                     for p in Path(dir_b).rglob("*.npz"))
    for rel in files:
        with np.load(Path(dir_a) / rel) as a, np.load(Path(dir_b) / rel) as b:
            assert a.files == b.files, rel
            for key in a.files:
                if not _timing(key):
                    np.testing.assert_array_equal(a[key], b[key], err_msg=f"{rel} {key}")
    sa, sb = (json.loads((Path(d) / "summary.json").read_text()) for d in (dir_a, dir_b))
    assert sa["status"] == "ok" and set(sa) == set(sb)
    assert {k: v for k, v in sa.items() if not _timing(k)} == \
        {k: v for k, v in sb.items() if not _timing(k)}
    return files


def tiny(experiment, *extra):
    sys.path.insert(0, str(Path(__file__).parent))
    from hostile import TINY

    given = {kv.split("=")[0] for kv in extra}  # the extra keys replace the tiny ones
    sets = [s for kv in [kv for kv in TINY[experiment] if kv.split("=")[0] not in given]
            + list(extra) for s in ("--set", kv)]
    return [experiment, *sets]


#: tiny configs with several sub-runs each (odd: 3 widths × 2 seeds + paired; lowdim-1d: the
#: exact run, the Monte Carlo run and a 2-point d_H sweep)
SUB_RUN_CONFIGS = {
    "odd": ("widths=[4,6,8]", "seeds=[0,1]"),
    "lowdim-1d": ("monte_carlo=true", "mc_samples=50", "sweep=true", "sweep_d=6",
                  "sweep_d_H=[2,3]", "sweep_steps=10"),
    "lowdim-full-vs-reduced": ("seeds=[0,1]",),
    "noether": (),
}


def test_experiment_on_two_local_workers_equals_in_process(tmp_path):
    args = tiny("odd", *SUB_RUN_CONFIGS["odd"])
    code, _, err = run_simulate(*args, "--out", str(tmp_path / "here"), "--quiet")
    assert code == 0, err
    code, out, err = run_simulate(*args, "--out", str(tmp_path / "workers"), "--workers", "2")
    assert code == 0, err
    assert "sub-runs on a local Dask cluster of 2 worker processes, 1 Numba thread(s)" in out
    # 9 parts (3 widths × (2 random seeds + the paired start)) and the curves
    assert len(same_run_folder(tmp_path / "here", tmp_path / "workers")) == 10
    saved = json.loads((tmp_path / "workers" / "config.json").read_text())
    assert "2 worker processes" in saved["sub_runs"] and "--workers" in saved["command"]
    assert "sub_runs" not in json.loads((tmp_path / "here" / "config.json").read_text())


@pytest.mark.parametrize("experiment", ["lowdim-1d", "lowdim-full-vs-reduced", "noether"])
def test_experiment_on_a_scheduler_equals_in_process(tmp_path, dask_processes, experiment):
    scheduler_file = dask_processes.ready()
    args = tiny(experiment, *SUB_RUN_CONFIGS[experiment])
    code, _, err = run_simulate(*args, "--out", str(tmp_path / "here"), "--quiet")
    assert code == 0, err
    code, _, err = run_simulate(*args, "--out", str(tmp_path / "remote"), "--quiet",
                                "--scheduler-file", scheduler_file)
    assert code == 0, err
    same_run_folder(tmp_path / "here", tmp_path / "remote")


def test_resume_on_workers_skips_finished_sub_runs(tmp_path, dask_processes):
    """A run stopped after some sub-runs (parts kept, no summary) continues on a scheduler's
    worker: the finished parts are not rewritten, the others are made, and the result is
    the uninterrupted run's."""
    scheduler_file = dask_processes.ready()
    args = tiny("odd", *SUB_RUN_CONFIGS["odd"])
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert run_simulate(*args, "--out", str(ref), "--quiet")[0] == 0
    assert run_simulate(*args, "--out", str(run), "--quiet")[0] == 0
    (run / "summary.json").unlink()
    parts = sorted((run / "parts").glob("*.npz"))
    for p in parts[::2]:
        p.unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in parts[1::2]}
    code, _, err = run_simulate("--resume", str(run), "--quiet", "--scheduler-file",
                                scheduler_file)
    assert code == 0, err
    assert {p.name: p.stat().st_mtime_ns for p in parts[1::2]} == kept
    assert all(p.exists() for p in parts)
    same_run_folder(ref, run)


@pytest.mark.parametrize("extra, key", [
    (["flow", "--workers", "2"], "--workers"),             # one run, no sub-runs
    (["flow", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
    (["odd", "--workers", "0"], "--workers"),
    (["odd", "--workers", "100000"], "--workers"),
    (["odd", "--workers", "two"], "--workers"),
    (["odd", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
    (["odd", "--scheduler-file", "none.json"], "--scheduler-file"),
])
def test_bad_worker_options_exit_2_with_one_line(tmp_path, extra, key):
    out = tmp_path / "run"
    code, _, err = run_simulate(*extra, "--out", str(out))
    assert code == 2
    assert err.count("\n") == 1 and key in err, err
    assert not out.exists()
