"""Regenerate the E3 figure (full particle flow vs the reduced flows as m grows).

Command (from the repository root)::

    python figures/plot_lowdim_full_vs_reduced.py

Runs ``python -m meanfield.simulate lowdim-full-vs-reduced`` with its default configuration
(d = 30, d_H = 5, widths 32..512, seeds 0 and 1, Heun, dt = 0.02, 500 steps) into runs/figures-lowdim-full-vs-reduced and copies
lowdim_full_vs_reduced.png here.
Runtime: about 9 minutes on 2 shared cores (4.4 minutes with Euler).
"""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "lowdim-full-vs-reduced"


def main():
    out = ROOT / "runs" / f"figures-{EXPERIMENT}"
    cmd = [sys.executable, "-m", "meanfield.simulate", EXPERIMENT, "--out", str(out)]
    if out.exists():  # this script's own scratch folder: start afresh
        shutil.rmtree(out)
    subprocess.run(cmd, cwd=ROOT, check=True)
    for png in sorted(out.glob("*.png")):
        shutil.copy2(png, ROOT / "figures" / png.name)
        print("figures/" + png.name)


if __name__ == "__main__":
    main()
