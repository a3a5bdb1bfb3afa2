"""Shared helpers of the benchmark scripts: timing, machine description, output rows.

Every script prints a table; with ``--json`` it prints one JSON object per measurement on
stdout instead (keys ``implementation, m, d, median_s, pairs_per_s, rel_err``) and the
table on stderr.
"""
import json
import os
import platform
import sys
import time

import numpy as np

JSON_KEYS = ("implementation", "m", "d", "median_s", "pairs_per_s", "rel_err")


def median_time(fn, repeat, warmup=2):
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` untimed runs
    (the first of which pays any compilation); returns (median_s, first_call_s, result)."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        fn()
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), first, result


def load_average():
    """1-minute load average (the machine is shared: timings above ~1 per core are noisy)."""
    return os.getloadavg()[0]


def machine_lines(threads):
    """Lines describing the machine, thread count and library versions."""
    import numba
    import scipy
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    lines = [f"date {time.strftime('%Y-%m-%d %H:%M')}, {cpu}, {os.cpu_count()} cores, "
             f"{threads} threads, load {load_average():.2f}",
             f"python {platform.python_version()}, numpy {np.__version__}, "
             f"scipy {scipy.__version__}, numba {numba.__version__}"]
    return lines


class Output:
    """Collects rows; prints a table (stdout, or stderr with --json) and JSON lines."""

    def __init__(self, as_json):
        self.as_json = as_json
        self.table = sys.stderr if as_json else sys.stdout

    def say(self, text):
        print(text, file=self.table, flush=True)

    def row(self, implementation, m, d, median_s, pairs, rel_err, note=""):
        pairs_per_s = pairs / median_s if pairs and median_s and median_s > 0 else None
        rel = "" if rel_err is None else f"{rel_err:.1e}"
        pps = "" if pairs_per_s is None else f"{pairs_per_s / 1e6:10.1f}"
        self.say(f"  {implementation:<22} {m:>7} {d:>5} {median_s:>11.4f} {pps:>10} "
                 f"{rel:>9}  {note}")
        if self.as_json:
            print(json.dumps(dict(zip(JSON_KEYS, (implementation, int(m), int(d),
                                                  median_s, pairs_per_s, rel_err)))),
                  flush=True)

    def header(self):
        self.say(f"  {'implementation':<22} {'m':>7} {'d':>5} {'median_s':>11} "
                 f"{'Mpairs/s':>10} {'rel_err':>9}  note")


def parse_list(text, kind=int):
    return [kind(v) for v in str(text).split(",") if v.strip()]
