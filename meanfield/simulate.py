"""``python -m meanfield.simulate``: run one experiment (implemented in :mod:`meanfield.cli.simulate`).

This module is the command's entry point only; the library function that runs a particle flow
is :func:`meanfield.simulate_flow`.
"""
if __name__ == "__main__":
    from meanfield.cli._startup import exit_command
    from meanfield.cli.simulate import main

    exit_command(main(figure_process=True))
