"""``python -m meanfield.hessian RUN_DIR [--k K] [--polish]`` (see :mod:`meanfield.hessian.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
