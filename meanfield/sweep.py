"""``python -m meanfield.sweep``: one experiment at every point of a grid, on Dask
(implemented in :mod:`meanfield.cli.sweep`)."""
if __name__ == "__main__":
    from meanfield.cli._startup import exit_command
    from meanfield.cli.sweep import main

    exit_command(main())
