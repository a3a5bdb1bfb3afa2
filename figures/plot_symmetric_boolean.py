"""Regenerate figures/symmetric_boolean_*.png (seed 000: symmetric vs random initialisation).

Runs the ``symmetric-boolean`` experiment with its default config into a run folder and copies
its PNGs here::

    python figures/plot_symmetric_boolean.py [--out RUN_DIR]

Runtime: about 30 s on 2 cores (Numba compile included); the run folder (default: a new
temporary directory) keeps ``results.npz`` and the per-sub-run parts.
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from meanfield.config import resolve_config  # noqa: E402
from meanfield.experiments import symmetric_boolean as experiment  # noqa: E402
from meanfield.io import atomic_write_json  # noqa: E402
from meanfield.runctx import RunContext  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="run folder (default: a new temporary directory)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="symmetric-boolean-"))
    out.mkdir(parents=True, exist_ok=True)
    config = resolve_config(experiment.DEFAULTS, experiment.CHOICES)
    experiment.check(config)
    atomic_write_json(out / "config.json", config)
    start = time.perf_counter()
    summary = experiment.run(config, RunContext(out))
    atomic_write_json(out / "summary.json", summary)
    for png in sorted(out.glob("symmetric_boolean_*.png")):
        shutil.copy(png, HERE / png.name)
        print("wrote", HERE / png.name)
    print(f"run folder {out}, {time.perf_counter() - start:.1f} s")
    print(json.dumps({k: v for k, v in summary.items() if k.startswith("test_acc")}, indent=1))


if __name__ == "__main__":
    main()
