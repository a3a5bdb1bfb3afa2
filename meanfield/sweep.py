"""``python -m meanfield.sweep``: one experiment at every point of a grid, on Dask
(implemented in :mod:`meanfield.cli.sweep`)."""
import sys

if __name__ == "__main__":
    from meanfield.cli.sweep import main

    sys.exit(main())
