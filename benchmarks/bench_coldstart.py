"""A new user's first run: ``python -m meanfield.simulate`` from an empty Numba cache, and again.

* ``cold``: a fresh process with ``NUMBA_CACHE_DIR`` set to a new empty folder and the
  package's bytecode (``*.pyc``) removed, so every kernel the run uses is compiled and
  every module of the package byte-compiled, as on a new user's first run from a fresh
  clone (each repeat gets its own empty folder).
* ``warm``: the same command again with the cache and the bytecode in place. Bytecode is
  written whatever ``PYTHONDONTWRITEBYTECODE`` says outside: with it set, every run would
  re-compile the package's sources (0.15–0.25 s), which a user's second run does not.
* ``compile``: in one more fresh process with an empty cache, the default job's compile
  time per kernel (Numba's compile events; the time of a kernel excludes the kernels it
  compiled for its callees, so the rows add up to the total).

Wall time is what a user waits; CPU time (user + sys of the child) is reported beside it
because on a shared machine it is the steadier number. Every time is a median over
``--repeat`` runs; the 1-minute load average is printed with each.

Run::

    python benchmarks/bench_coldstart.py                 # the default job, 3 repeats
    python benchmarks/bench_coldstart.py --args "flow --set n_particles=1024"
    python benchmarks/bench_coldstart.py --smoke --json  # CI: one short run each
"""
import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import Output, load_average, machine_lines  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: the child that reports each kernel's compile time (default job, Numba compile events)
_COMPILE_PROBE = r"""
import json, sys, time
from numba.core import event
stack, own = [], {}
class Listener(event.Listener):
    def on_start(self, ev):
        stack.append([time.perf_counter(), 0.0])
    def on_end(self, ev):
        t0, inner = stack.pop()
        total = time.perf_counter() - t0
        name = getattr(ev.data["dispatcher"], "py_func", None)
        name = f"{name.__module__}.{name.__qualname__}" if name else "?"
        own[name] = own.get(name, 0.0) + total - inner
        if stack:
            stack[-1][1] += total
event.register("numba:compile", Listener())
from meanfield.cli.simulate import main
t0 = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"compile": own, "wall": time.perf_counter() - t0, "code": code}))
"""


def run_child(argv, cache_dir, out_dir, code=None):
    """(wall s, cpu s) of one child process with Numba's cache in ``cache_dir``; raises if
    it fails."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, MPLBACKEND="Agg")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable] + (["-c", code] if code else ["-m", "meanfield.simulate"])
    cmd += list(argv) + ["--quiet", "--out", out_dir]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def clear_bytecode():
    """Remove the package's bytecode (``*.pyc``; a fresh clone has none, the next run writes
    it again). Only those files: ``__pycache__`` also holds Numba's own cache of the
    user's runs, which is left alone."""
    for folder, _, files in os.walk(os.path.join(ROOT, "meanfield")):
        if os.path.basename(folder) == "__pycache__":
            for name in files:
                if name.endswith(".pyc"):
                    os.remove(os.path.join(folder, name))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--args", default="",
                        help="arguments of python -m meanfield.simulate (default: none, the "
                             "default job)")
    parser.add_argument("--repeat", type=int, default=3, help="cold and warm runs each (median)")
    parser.add_argument("--no-compile-table", action="store_true",
                        help="skip the per-kernel compile times")
    parser.add_argument("--json", action="store_true",
                        help="JSON lines on stdout (the table goes to stderr)")
    parser.add_argument("--smoke", action="store_true",
                        help="CI: a 20-step flow, one cold and one warm run, no compile table")
    args = parser.parse_args(argv)
    if args.smoke:
        args.args, args.repeat, args.no_compile_table = "flow --set n_steps=20", 1, True
    job = shlex.split(args.args)
    out = Output(args.json)
    for line in machine_lines(int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count()))):
        out.say(line)
    label = "python -m meanfield.simulate " + (args.args or "(default job)")
    out.say(f"{label}: cold = empty NUMBA_CACHE_DIR, no bytecode of the "
            "package; warm = both as the cold run left them")
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="mf-coldstart-") as tmp:
        for r in range(max(1, args.repeat)):
            cache = os.path.join(tmp, f"cache{r}")
            os.makedirs(cache)
            load0 = load_average()
            clear_bytecode()
            cold.append(run_child(job, cache, os.path.join(tmp, f"cold{r}"))[:2])
            warm.append(run_child(job, cache, os.path.join(tmp, f"warm{r}"))[:2])
            out.say(f"  run {r}: cold {cold[-1][0]:.2f} s wall ({cold[-1][1]:.2f} s cpu), warm "
                    f"{warm[-1][0]:.2f} s wall ({warm[-1][1]:.2f} s cpu); load {load0:.2f} → "
                    f"{load_average():.2f}")
        out.header()
        for name, runs in (("meanfield-cold", cold), ("meanfield-warm", warm)):
            wall = float(np.median([w for w, _ in runs]))
            cpu = float(np.median([c for _, c in runs]))
            out.row(name, 0, 0, wall, None, None, f"wall median of {len(runs)}; cpu {cpu:.2f} s")
        if not args.no_compile_table:
            cache = os.path.join(tmp, "cache-probe")
            os.makedirs(cache)
            _, _, stdout = run_child(job, cache, os.path.join(tmp, "probe"), _COMPILE_PROBE)
            import json
            own = json.loads(stdout.strip().splitlines()[-1])["compile"]
            total = sum(own.values())
            out.say(f"compile time per kernel from an empty cache (own time, callees apart; "
                    f"total {total:.2f} s, load {load_average():.2f}):")
            for name, sec in sorted(own.items(), key=lambda kv: -kv[1]):
                out.say(f"  {name:<50} {sec:7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
