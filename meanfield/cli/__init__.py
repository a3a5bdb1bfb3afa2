"""The command lines: ``python -m meanfield.simulate`` (:mod:`.simulate`), its config checks
(:mod:`.config`), run folders (:mod:`.runctx`), progress (:mod:`.progress`), sweeps on Dask
(:mod:`.sweep`, :mod:`.executor`). Kept light: importing it compiles nothing.
"""
