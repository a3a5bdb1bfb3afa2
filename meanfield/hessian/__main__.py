"""``python -m meanfield.hessian RUN_DIR [--k K] [--polish]`` (see :mod:`meanfield.hessian.cli`)."""
from .cli import main

if __name__ == "__main__":
    from meanfield.cli._startup import exit_command

    exit_command(main())
