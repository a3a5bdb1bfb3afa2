"""The engine: one loop for every model (:mod:`meanfield.engine.core`) and the integrators of
one registry (:mod:`meanfield.engine.integrators`).

A model is a :class:`Field` (state, velocity, projection, conserved quantities, risk);
:class:`Solver` steps any field with any integrator (fixed-step or adaptive) and calls the
observers; :func:`integrate` runs one to the end and returns a :class:`Result`. The engine
knows no model: the particle flow is :mod:`meanfield.models.flow`.
"""
from .core import (DEFAULT_ATOL, DEFAULT_MAX_STEPS, DEFAULT_RTOL, Checkpointer, Field,
                   ProgressObserver, Result, Solver, integrate, snapshot_steps, snapshot_times)

__all__ = ["Field", "Solver", "Result", "integrate", "Checkpointer", "ProgressObserver",
           "snapshot_steps", "snapshot_times", "DEFAULT_RTOL", "DEFAULT_ATOL",
           "DEFAULT_MAX_STEPS"]

#: names that lived here before the particle flow moved to :mod:`meanfield.models.flow`
_MOVED = {"Simulation", "FlowResult", "ParticleField", "init", "predict", "simulate_flow",
          "simulate"}


def __getattr__(name):
    # Old imports (``from meanfield.engine import Simulation``) keep working, with a warning;
    # resolved lazily because the particle flow itself imports the engine.
    if name in _MOVED:
        import warnings

        from ..models import flow

        warnings.warn(f"meanfield.engine.{name} moved: use meanfield.{name if name != 'simulate' else 'simulate_flow'}",
                      DeprecationWarning, stacklevel=2)
        return getattr(flow, "simulate_flow" if name == "simulate" else name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
