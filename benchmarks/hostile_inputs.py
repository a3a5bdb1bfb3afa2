"""Hostile and mistaken inputs to ``python -m meanfield.simulate``, counted by category.

Every case states the contract's answer (exit 2 with one line naming the key and nothing
written; exit 1 keeping the last good state; or the specific behaviour) and is counted as
handled only when the command gives exactly that. Prints a table (category, tried,
handled) and every case not handled.

    python benchmarks/hostile_inputs.py            # about 3 minutes on 2 busy cores
    python benchmarks/hostile_inputs.py --json
"""
import argparse
import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from hostile import BAD_VALUES, DIVERGE, FUZZ_FOUND, sets  # noqa: E402
from hostile import run_cli as cli  # noqa: E402

import meanfield as mf  # noqa: E402

RESULTS = []  # (category, case, handled, detail)


def state(directory):
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(directory).rglob("*")) if p.is_file()}


def record(category, case, handled, detail=""):
    RESULTS.append((category, case, bool(handled), detail.strip().splitlines()[-1][:160]
                    if detail.strip() else ""))


def refused(category, case, argv, key, tmp, must_not_exist=None, folder=None):
    before = state(folder) if folder else None
    code, _, err = cli(*argv)
    ok = (code == 2 and err.count("\n") == 1 and "Traceback" not in err
          and (key is None or err.startswith(f"error: {key}:")))
    if must_not_exist is not None:
        ok = ok and not Path(must_not_exist).exists()
    if folder is not None:
        ok = ok and state(folder) == before
    record(category, case, ok, f"exit {code}: {err}")


def finished_flow(tmp, name="r", **extra):
    run_dir = Path(tmp) / name
    args = sets("flow", "n_steps=30", "checkpoint_every=5",
                *[f"{k}={v}" for k, v in extra.items()])
    assert cli("flow", *args, "--out", str(run_dir), "--quiet")[0] == 0
    return run_dir


def spawn(*argv):
    return subprocess.Popen([sys.executable, "-m", "meanfield.simulate", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# ------------------------------------------------------------------------------ categories
def data_loss(tmp, races):
    cat = "1 data loss"
    for i in range(races):
        out = Path(tmp) / f"race{i}"
        procs = [spawn("flow", *sets("flow", f"seed={s}", "n_steps=200"), "--out", str(out),
                       "--quiet") for s in (1, 2)]
        codes = [p.wait(timeout=600) for p in procs]
        ok = sorted(codes) == [0, 2]
        if ok:
            run = mf.load_run(out)
            ok = run.config["seed"] == 1 + codes.index(0) and run.summary["status"] == "ok"
        record(cat, f"two runs on one --out (try {i + 1})", ok, f"exit codes {codes}")
    run_dir = finished_flow(tmp, "fin")
    refused(cat, "--resume on a finished run", ["--resume", str(run_dir)], "--resume", tmp,
            folder=run_dir)
    for key, value in (("n_steps", 10), ("dt", 0.1), ("seed", 4)):
        cfg = json.loads((run_dir / "config.json").read_text())
        cfg["config"][key] = value
        (run_dir / "config.json").write_text(json.dumps(cfg))
        refused(cat, f"--resume on a finished run with {key} edited", ["--resume", str(run_dir)],
                "--resume", tmp, folder=run_dir)


def wrong_results(tmp):
    cat = "2 wrong results silently"
    for key, value in (("dt", 0.1), ("seed", 3), ("integrator", "heun"), ("backend", "sampled"),
                       ("n_steps", 10), ("teacher_seed", 5)):
        run_dir = finished_flow(tmp, f"edit-{key}")
        (run_dir / "summary.json").unlink()
        cfg = json.loads((run_dir / "config.json").read_text())
        cfg["config"][key] = value
        (run_dir / "config.json").write_text(json.dumps(cfg))
        refused(cat, f"--resume mid-run with {key} edited", ["--resume", str(run_dir)],
                "--resume", tmp, folder=run_dir)
    run_dir = Path(tmp) / "odd"
    cli("odd", *sets("odd"), "--out", str(run_dir), "--quiet")
    (run_dir / "summary.json").unlink()
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["config"]["dt"] = 0.02
    (run_dir / "config.json").write_text(json.dumps(cfg))
    refused(cat, "odd: --resume reusing parts made with another dt", ["--resume", str(run_dir)],
            "--resume", tmp, folder=run_dir)
    for exp, extra, key in BAD_VALUES:
        if any(s.split("=")[0] == key for s in extra) and key in (
                "batch_size", "momentum", "d_H", "teacher_units", "teacher_file", "input_scale",
                "teacher_seed", "init_file", "mc_samples", "shift", "small_scale"):
            if key == "input_scale" and "input=sphere" not in extra:
                continue
            refused(cat, f"ignored key: {exp} {' '.join(extra)}",
                    [exp, *sets(exp, *extra), "--out", f"{tmp}/never"], key, tmp,
                    f"{tmp}/never")
    d = 4
    np.savez(f"{tmp}/six.npz", a=np.ones(6), b=np.ones((6, d)))
    refused(cat, "init file with 6 particles, n_particles = 8",
            ["flow", "--set", f"d={d}", "--set", f"init_file={tmp}/six.npz", "--set",
             "n_particles=8", "--out", f"{tmp}/never"], "n_particles", tmp, f"{tmp}/never")
    np.savez(f"{tmp}/cplx.npz", a=np.ones(6) + 1j, b=np.ones((6, d)))
    np.savez(f"{tmp}/tcplx.npz", a=np.ones(2), b=np.ones((2, d)) * (1 + 1j))
    refused(cat, "complex init_file", ["flow", "--set", f"d={d}", "--set",
                                       f"init_file={tmp}/cplx.npz", "--out", f"{tmp}/never"],
            "init_file", tmp, f"{tmp}/never")
    refused(cat, "complex teacher_file", ["flow", "--set", f"d={d}", "--set",
                                          f"teacher_file={tmp}/tcplx.npz", "--out",
                                          f"{tmp}/never"], "teacher_file", tmp, f"{tmp}/never")
    for value in ("50", "inf"):
        code, _, err = cli("symmetric-boolean", *sets("symmetric-boolean",
                                                      f"population_dt={value}"),
                           "--out", f"{tmp}/sb{value}", "--quiet")
        record(cat, f"symmetric-boolean population_dt = {value}", code in (1, 2)
               and "Traceback" not in err, f"exit {code}: {err}")
    from meanfield.experiments import flow

    same = np.array_equal(flow.build_problem({**flow.DEFAULTS, "seed": 0}).target_parts[0].b,
                          flow.build_problem({**flow.DEFAULTS, "seed": 9}).target_parts[0].b)
    record(cat, "flow: a seed sweep keeps the teacher (teacher_seed)", same)


def tracebacks(tmp):
    cat = "3 traceback / exit 1 instead of exit 2"
    t = Path(tmp)
    (t / "cfgdir").mkdir()
    (t / "latin1.toml").write_bytes("d = 4\n# caf\xe9\n".encode("latin-1"))
    refused(cat, "--config is a directory", ["flow", "--config", str(t / "cfgdir"), "--out",
                                             f"{tmp}/never"], "--config", tmp, f"{tmp}/never")
    refused(cat, "--config not UTF-8", ["flow", "--config", str(t / "latin1.toml"), "--out",
                                        f"{tmp}/never"], "--config", tmp, f"{tmp}/never")
    d = 4
    np.save(t / "one.npy", np.ones(6))
    np.savez(t / "good.npz", a=np.ones(6), b=np.ones((6, d)))
    data = (t / "good.npz").read_bytes()
    (t / "trunc.npz").write_bytes(data[: len(data) // 2])
    (t / "empty.npz").write_bytes(b"")
    (t / "corrupt.npz").write_bytes(b"PK\x03\x04" + bytes(range(256)))
    (t / "dir.npz").mkdir()
    np.savez(t / "struct.npz", a=np.zeros(6, dtype=[("x", "f8"), ("y", "f8")]), b=np.ones((6, d)))
    for key in ("init_file", "teacher_file"):
        for name in ("one.npy", "trunc.npz", "empty.npz", "corrupt.npz", "dir.npz", "struct.npz"):
            refused(cat, f"{key} = {name}", ["flow", "--set", f"d={d}", "--set",
                                             f"{key}={t / name}", "--out", f"{tmp}/never"],
                    key, tmp, f"{tmp}/never")
    (t / "afile").write_text("keep")
    for label, out in (("an existing file", str(t / "afile")), ("/dev/null", "/dev/null"),
                       ("under a file", str(t / "afile" / "sub")),
                       ("a 300-character name", str(t / ("x" * 300)))):
        refused(cat, f"--out {label}", ["flow", *sets("flow"), "--out", out], "--out", tmp)
    if os.geteuid() != 0:
        (t / "ro").mkdir(mode=0o500)
        refused(cat, "--out unwritable", ["flow", *sets("flow"), "--out", str(t / "ro" / "r")],
                "--out", tmp)
    for label, text in (("not JSON", "{nope"), ("lacking keys", '{"experiment": "flow"}')):
        run_dir = finished_flow(tmp, f"cj-{label[:3]}")
        (run_dir / "summary.json").unlink()
        (run_dir / "config.json").write_text(text)
        refused(cat, f"--resume with config.json {label}", ["--resume", str(run_dir)],
                "--resume", tmp, folder=run_dir)
    for damage in ("truncated", "zeroed", "empty", "NaN"):
        run_dir = finished_flow(tmp, f"ck-{damage}")
        (run_dir / "summary.json").unlink()
        ckpt = run_dir / "checkpoint.npz"
        raw = ckpt.read_bytes()
        if damage == "truncated":
            ckpt.write_bytes(raw[: len(raw) // 3])
        elif damage == "zeroed":
            ckpt.write_bytes(bytes(len(raw)))
        elif damage == "empty":
            ckpt.write_bytes(b"")
        else:
            arrays = dict(np.load(ckpt))
            arrays["b"] = arrays["b"] * np.nan
            np.savez(ckpt, **arrays)
        refused(cat, f"--resume with a {damage} checkpoint", ["--resume", str(run_dir)],
                "--resume", tmp, folder=run_dir)
    for exp, extra, key in BAD_VALUES[:21]:  # values that crashed after config.json
        refused(cat, f"{exp} {' '.join(extra)}", [exp, *sets(exp, *extra), "--out",
                                                   f"{tmp}/never"], key, tmp, f"{tmp}/never")


def divergence(tmp):
    cat = "3b divergence: exit 1, last good state"
    for exp, extra in sorted(DIVERGE.items()):
        code, _, err = cli(exp, *sets(exp, *extra), "--out", f"{tmp}/div-{exp}", "--quiet")
        ok = code == 1 and err.startswith("run failed:") and err.count("\n") == 1
        ok = ok and mf.load_run(f"{tmp}/div-{exp}").summary["status"] == "failed"
        record(cat, f"{exp} {' '.join(extra)}", ok, f"exit {code}: {err}")
    np.savez(f"{tmp}/big.npz", a=np.full(6, 1e300), b=np.full((6, 4), 1e300))
    code, _, err = cli("flow", "--set", "d=4", "--set", f"init_file={tmp}/big.npz", "--set",
                       "n_steps=5", "--out", f"{tmp}/div-big", "--quiet")
    record(cat, "flow from an init file with values 1e300", code == 1 and
           err.startswith("run failed:"), f"exit {code}: {err}")


def sizes(tmp):
    cat = "4 fail fast on sizes"
    for exp, extra, key in BAD_VALUES[33:]:
        refused(cat, f"{exp} {' '.join(extra)}", [exp, *sets(exp, *extra), "--out",
                                                   f"{tmp}/never"], key, tmp, f"{tmp}/never")
    code, out, _ = cli("flow", "--set", "n_particles=10000000", "--show-config")
    code, out, err = cli("flow", *sets("flow"), "--out", f"{tmp}/work")
    record(cat, "estimated work in the run's first line",
           out.splitlines()[0].startswith("flow: estimated work"), out.splitlines()[0])


def smaller(tmp):
    cat = "5 smaller things"
    never = f"{tmp}/never"
    for exp, extra, key in [("flow", ["seed=-1"], "seed"), ("flow", ["input_scale=inf"],
                                                            "input_scale")]:
        refused(cat, f"message names {key}", [exp, *sets(exp, *extra), "--out", never], key, tmp,
                never)
    refused(cat, "teacher_file error names teacher_file",
            ["flow", "--set", "teacher_file=/no/file.npz", "--out", never], "teacher_file", tmp,
            never)
    refused(cat, "--set =5", ["flow", "--set", "=5", "--out", never], "--set", tmp, never)
    refused(cat, "duplicate --set", ["flow", "--set", "dt=0", "--set", "dt=0.1", "--out", never],
            "dt", tmp, never)
    refused(cat, '--out ""', ["flow", "--out", ""], "--out", tmp)
    code, out, err = cli("odd", "--set", "inits=[sphere]", "--set", "sampled_inits=[sphere]",
                         "--show-config")
    record(cat, "inits=[sphere] accepted", code == 0, err)
    old = os.umask(0o022)
    try:
        cli("flow", *sets("flow"), "--out", f"{tmp}/umask", "--quiet")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in Path(f"{tmp}/umask").iterdir()
             if p.is_file() and p.name != ".lock"}
    record(cat, "files follow the umask (0644 under 022)", set(modes.values()) == {0o644},
           str(modes))
    run_dir = finished_flow(tmp, "stale")
    (run_dir / "summary.json").unlink()
    (run_dir / ".checkpoint.npz.x.tmp").write_bytes(b"x")
    code, _, err = cli("--resume", str(run_dir), "--quiet")
    record(cat, "stale .tmp removed on resume", code == 0 and not
           (run_dir / ".checkpoint.npz.x.tmp").exists(), err)
    cfg = json.loads((run_dir / "config.json").read_text())
    import numba

    record(cat, "config.json records threads on resume", cfg["threads"] ==
           numba.get_num_threads() and cfg["resumed"], "")
    record(cat, "config.json records the git commit of a checkout",
           "meanfield_git" in cfg["versions"] or not (HERE.parent / ".git").exists(), "")
    run_dir = finished_flow(tmp, "nsteps")
    (run_dir / "summary.json").unlink()
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["config"]["n_steps"] = 10
    (run_dir / "config.json").write_text(json.dumps(cfg))
    refused(cat, "resume with n_steps below the checkpoint", ["--resume", str(run_dir)],
            "--resume", tmp, folder=run_dir)
    out = Path(tmp) / "term"
    proc = spawn("flow", "--set", "n_particles=48", "--set", "d=6", "--set", "n_steps=50000",
                 "--set", "checkpoint_every=25", "--out", str(out), "--quiet")
    while not (out / "checkpoint.npz").exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    record(cat, "SIGTERM exits 143", proc.returncode == 143, err.decode())
    proc = spawn("flow", "--out", str(Path(tmp) / "early"))
    maps = Path(f"/proc/{proc.pid}/maps")
    while proc.poll() is None and "numpy" not in maps.read_text():
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    record(cat, "SIGINT during start-up: no traceback", proc.returncode == 130
           and b"Traceback" not in err, err.decode())
    out = Path(tmp) / "sbint"
    proc = spawn("symmetric-boolean", "--set", "n_train=[1000]", "--set", "targets=[parity]",
                 "--set", "inits=[random]", "--set", "n_seeds=1", "--set", "epochs=4000",
                 "--set", "eval_every=20", "--set", "lr_sweep=[0.001]", "--out", str(out),
                 "--quiet")
    while not (out / "config.json").exists() and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(3.0)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=300)
    late = time.time() - t0
    record(cat, "symmetric-boolean stops promptly on Ctrl-C", proc.returncode == 130 and late < 5,
           f"stopped {late:.2f} s after Ctrl-C, exit {proc.returncode}")
    with contextlib.redirect_stderr(io.StringIO()):
        code, _, err = cli("noether", *sets("noether"), "--out", f"{tmp}/noe", "--quiet")
    record(cat, "no warnings on stderr in a normal run (noether)", code == 0 and err == "", err)
    run = mf.load_run(f"{tmp}/noe")
    record(cat, "load_run: config['d']", run.config["d"] == 5)
    record(cat, "load_run: hasattr does not raise", hasattr(run, "nothing") is False)
    record(cat, "load_run: parts and laws.csv of multi-part runs",
           bool(run.parts) and bool(run.tables.get("laws")))
    from meanfield.cli.progress import Progress

    stream = io.StringIO()
    bar = Progress(3, "x", stream=stream, every_s=0.0)
    bar.update(3)
    record(cat, "progress lines when not on a terminal", stream.getvalue().startswith("x:"))
    code, out, err = cli("lowdim-full-vs-reduced", *sets("lowdim-full-vs-reduced"), "--out",
                         f"{tmp}/lfr")
    record(cat, "lowdim-full-vs-reduced reports progress", code == 0, err)


def fuzz_found(tmp):
    cat = "6 found by fuzzing every numeric key"
    for exp, extra, key in FUZZ_FOUND:
        refused(cat, f"{exp} {' '.join(extra)}", [exp, *sets(exp, *extra), "--out",
                                                   f"{tmp}/never"], key, tmp, f"{tmp}/never")
    code, _, err = cli("moments", *sets("moments", "k=1"), "--out", f"{tmp}/k1", "--quiet")
    record(cat, "moments k = 1 runs", code == 0, err)


def main_():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--races", type=int, default=6, help="concurrent-start tries")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            for fn in (lambda t: data_loss(t, args.races), wrong_results, tracebacks, divergence,
                       sizes, smaller, fuzz_found):
                fn(tmp)
        finally:
            os.chdir(cwd)
    table = {}
    for cat, _, ok, _ in RESULTS:
        tried, handled = table.get(cat, (0, 0))
        table[cat] = (tried + 1, handled + ok)
    if args.json:
        print(json.dumps({"table": table, "not_handled": [r for r in RESULTS if not r[2]]},
                         indent=1))
        return
    print(f"{'category':42s} {'tried':>5s} {'handled':>7s}")
    for cat, (tried, handled) in sorted(table.items()):
        print(f"{cat:42s} {tried:5d} {handled:7d}")
    total = sum(t for t, _ in table.values()), sum(h for _, h in table.values())
    print(f"{'total':42s} {total[0]:5d} {total[1]:7d}")
    for cat, case, ok, detail in RESULTS:
        if args.verbose:
            print(f"{'handled' if ok else 'NOT HANDLED':11s} [{cat}] {case}: {detail}")
        elif not ok:
            print(f"NOT HANDLED [{cat}] {case}: {detail}")


if __name__ == "__main__":
    main_()
