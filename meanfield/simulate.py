"""``python -m meanfield.simulate``: the command line (implemented in :mod:`meanfield.cli`).

The library function ``meanfield.simulate`` (a run of the particle flow) lives in
:mod:`meanfield.engine`. Importing this module makes Python bind the name
``meanfield.simulate`` to the module, so the module is made callable and forwards calls to
:func:`meanfield.engine.simulate`: ``meanfield.simulate(...)`` works either way.
"""
import sys
import types

from .cli import main
from .engine import simulate as _simulate


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return _simulate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
