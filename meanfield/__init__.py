"""meanfield: exact mean-field simulation of infinitely wide two-layer ReLU networks.

Quick start::

    import numpy as np, meanfield as mf
    rng = np.random.default_rng(0)
    problem = mf.Problem(d=10, target=mf.NormTarget(d_H=2))
    mu0 = mf.init_sphere_rademacher(256, 10, rng)
    result = mf.simulate(problem, mu0, dt=0.05, n_steps=200)
    print(result.status, result.risk[0], result.risk[-1])

The command line is ``python -m meanfield.simulate`` (see ``--help``).
"""
from . import _startup  # noqa: F401  (quiet Ctrl-C while `python -m meanfield.*` starts)
from .backends import ExactBackend, SampledBackend, make_backend
from .engine import Field, FlowResult, Result, Simulation, Solver, init, integrate, predict, simulate
from .integrators import INTEGRATORS, get_integrator
from .io import load_run
from .particles import (Particles, init_gaussian, init_paired, init_sphere_rademacher,
                        load_particles, save_particles)
from .problem import (CallableTarget, GaussianLaw, NormTarget, OddPowerTarget, Problem,
                      SampledLaw, SphereLaw, Teacher, boolean_cube_law, norm_target_alpha,
                      odd_cubic_target, rademacher_law, symmetric_mixture_law)

from . import (boolean, conservation, equivalent, hessian, lowdim, moments, odd,  # noqa: E402
               radial1d, reduced, symmetry)
from .conservation import LawMonitor
from .equivalent import canonical_form, count_equivalent_minima
from .odd import odd_reduction
from .radial1d import RadialKernel, simulate_radial
from .reduced import BlockReduction, ReducedBackend, simulate_reduced
from .symmetry import orbit_init, symmetry_defect

__version__ = "0.1.0"


def __getattr__(name):
    # ``meanfield.film`` is imported on first use, so that ``python -m meanfield.film`` does
    # not find it already imported (and matplotlib stays unloaded until a film is made)
    if name == "film":
        import importlib

        return importlib.import_module(".film", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Problem", "GaussianLaw", "SphereLaw", "SampledLaw", "rademacher_law", "boolean_cube_law",
    "symmetric_mixture_law", "Teacher", "NormTarget", "OddPowerTarget", "CallableTarget",
    "odd_cubic_target", "norm_target_alpha",
    "Particles", "init_sphere_rademacher", "init_gaussian", "init_paired", "load_particles",
    "save_particles",
    "ExactBackend", "SampledBackend", "make_backend", "INTEGRATORS", "get_integrator",
    "Simulation", "FlowResult", "simulate", "init", "predict", "load_run", "__version__",
    "Field", "Solver", "Result", "integrate",
    # theory checks and reductions (modules, and their main entry points)
    "odd", "reduced", "radial1d", "lowdim", "conservation", "symmetry", "equivalent", "boolean",
    "moments", "hessian", "odd_reduction", "BlockReduction", "ReducedBackend", "simulate_reduced",
    "RadialKernel", "simulate_radial", "LawMonitor", "symmetry_defect", "orbit_init",
    "count_equivalent_minima", "canonical_form",
]
