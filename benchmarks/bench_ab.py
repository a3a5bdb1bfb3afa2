"""The pair kernel of a git revision against this tree's, both in one process.

On a machine whose speed drifts by ±30 % within minutes (benchmarks/README.md, section 0),
two processes timed one after the other compare the minutes as much as the code. This
script loads both versions of the exact pair kernel into one process — the revision's
``meanfield/kernels/gaussian.py`` and ``threads.py``, written to a package of their own
next to this tree's — and calls ``interaction(b, b, c)`` (the particle interaction) for
each in turn, swapping which goes first at every repeat, so that both see the same
minutes. For each size it reports both medians, the median of the paired ratios
base/tree (above 1: this tree is faster) with their range, and the largest relative
difference between the two results.

Only those two modules are compared; a change elsewhere (models, engine) is not. The
revision's kernel module must need nothing of the package but ``threads.py``. Its
package is kept under the system's temporary folder, named by the two files' contents,
so that Numba's cache of the base is reused by the next run.

Run::

    python benchmarks/bench_ab.py --base HEAD~1
    python benchmarks/bench_ab.py --base main --sizes 128x10,4096x30 --repeat 21
    python benchmarks/bench_ab.py --smoke --json    # CI: seconds
"""
import argparse
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import Output, load_average, machine_lines  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL_FILES = ("gaussian.py", "threads.py")
#: wall time of one timed batch of calls (a batch, not a call: small sizes take 0.1 ms)
BATCH_S = 0.02


def base_kernels(rev):
    """The revision's kernel module, imported as a package of its own."""
    sources = {}
    for name in KERNEL_FILES:
        sources[name] = subprocess.run(
            ["git", "-C", ROOT, "show", f"{rev}:meanfield/kernels/{name}"],
            check=True, capture_output=True).stdout
    digest = hashlib.sha1(b"".join(sources[n] for n in KERNEL_FILES)).hexdigest()[:12]
    package = f"meanfield_ab_{digest}"
    # the user's own folder (another user's files are never imported)
    user = os.getuid() if hasattr(os, "getuid") else "user"
    folder = os.path.join(tempfile.gettempdir(), f"meanfield-ab-{user}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if hasattr(os, "getuid") and os.stat(folder).st_uid != os.getuid():
        raise SystemExit(f"{folder} belongs to another user: remove it, or set TMPDIR")
    target = os.path.join(folder, package)
    if not os.path.isdir(target):
        # written once per content: a rewritten file would invalidate Numba's cache
        tmp = tempfile.mkdtemp(dir=folder)
        for name, text in sources.items():
            with open(os.path.join(tmp, name), "wb") as fh:
                fh.write(text)
        open(os.path.join(tmp, "__init__.py"), "w").close()
        try:
            os.replace(tmp, target)
        except OSError:  # another run wrote the same content first
            shutil.rmtree(tmp, ignore_errors=True)
    sys.path.insert(0, folder)
    return importlib.import_module(f"{package}.gaussian")


def compare(base, tree, m, d, repeat, seed=0):
    """(base times, tree times, max relative difference of S and G), both (repeat,)."""
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((m, d)) / np.sqrt(d)
    c = rng.standard_normal(m) / m
    s_base, g_base = base.interaction(b, b, c)   # compiles or loads each version
    s_tree, g_tree = tree.interaction(b, b, c)
    diff = max(np.max(np.abs(s_tree - s_base)) / np.max(np.abs(s_base)),
               np.max(np.abs(g_tree - g_base)) / np.max(np.abs(g_base)))
    t0 = time.perf_counter()
    tree.interaction(b, b, c)
    n_calls = max(1, int(BATCH_S / max(time.perf_counter() - t0, 1e-6)))
    times = {"base": [], "tree": []}
    for r in range(repeat):
        order = ("base", "tree") if r % 2 == 0 else ("tree", "base")
        for which in order:
            module = base if which == "base" else tree
            t0 = time.perf_counter()
            for _ in range(n_calls):
                module.interaction(b, b, c)
            times[which].append((time.perf_counter() - t0) / n_calls)
    return np.array(times["base"]), np.array(times["tree"]), float(diff)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare with (default HEAD)")
    ap.add_argument("--sizes", default="64x10,128x10,256x30,260x10,512x10,1024x10,1024x30,"
                    "4096x10,4096x30,4096x100", help="m x d, comma-separated")
    ap.add_argument("--repeat", type=int, default=15, help="timed batches per version and size")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="CI: HEAD at one small size")
    args = ap.parse_args(argv)
    if args.smoke:
        args.sizes, args.repeat = "64x10", 3
    sizes = []
    for item in args.sizes.split(","):
        m, _, d = item.strip().partition("x")
        if not (m.isdigit() and d.isdigit() and int(m) > 0 and int(d) > 0):
            ap.error(f"--sizes: {item!r} is not MxD with positive integers (e.g. 256x10)")
        sizes.append((int(m), int(d)))

    import numba
    if args.threads:
        numba.set_num_threads(args.threads)
    from meanfield.kernels import gaussian as tree
    base = base_kernels(args.base)
    out = Output(args.json)
    for line in machine_lines(numba.get_num_threads()):
        out.say(line)
    out.say(f"base {args.base} ({base.__name__.split('.')[0]}) against this tree; "
            f"{args.repeat} batches each, order swapped every batch")
    out.header()
    for m, d in sizes:
        load = load_average()
        t_base, t_tree, diff = compare(base, tree, m, d, args.repeat)
        ratios = t_base / t_tree
        note = (f"base/tree {np.median(ratios):.3f} (paired; {ratios.min():.2f}–"
                f"{ratios.max():.2f}), max rel diff {diff:.1e}, load {load:.2f}")
        pairs = m * m
        out.row(f"base {args.base}"[:22], m, d, float(np.median(t_base)), pairs, None)
        out.row("tree", m, d, float(np.median(t_tree)), pairs, diff, note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
