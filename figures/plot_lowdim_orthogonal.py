"""Regenerate the E3 predictor figure (orthogonal dependence).

Command (from the repository root)::

    python figures/plot_lowdim_orthogonal.py

Runs ``python -m meanfield.simulate orthogonal-dependence`` with its default configuration
(d = 20, d_H = 5, m = 1024, dt = 0.05, 5000 steps) into runs/figures-orthogonal-dependence and copies
orthogonal_dependence.png here.
Runtime: about 8 minutes on 2 shared cores (the full flow: d = 20, m = 1024, 5000 steps).
"""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "orthogonal-dependence"


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
