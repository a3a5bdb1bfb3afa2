"""The engine: one loop for every model (:mod:`meanfield.engine.core`) and the particle flow
on top of it (:mod:`meanfield.engine.particle`).

``from meanfield.engine import Simulation, FlowResult, simulate, init, predict`` works as
before; ``Field``, ``Solver``, ``Result`` and ``integrate`` are the loop itself.
"""
from .core import (DEFAULT_ATOL, DEFAULT_MAX_STEPS, DEFAULT_RTOL, Checkpointer, Field,
                   ProgressObserver, Result, Solver, integrate, snapshot_steps, snapshot_times)
from .particle import FlowResult, ParticleField, Simulation, init, predict, simulate

__all__ = ["Field", "Solver", "Result", "integrate", "Checkpointer", "ProgressObserver",
           "snapshot_steps", "snapshot_times", "DEFAULT_RTOL", "DEFAULT_ATOL",
           "DEFAULT_MAX_STEPS", "ParticleField", "Simulation", "FlowResult", "simulate", "init",
           "predict"]
