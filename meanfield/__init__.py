"""meanfield: exact mean-field simulation of infinitely wide two-layer ReLU networks.

Quick start::

    import numpy as np, meanfield as mf
    rng = np.random.default_rng(0)
    problem = mf.Problem(d=10, target=mf.NormTarget(d_H=2))
    mu0 = mf.init_sphere_rademacher(256, 10, rng)
    result = mf.simulate_flow(problem, mu0, dt=0.05, n_steps=200)
    print(result.status, result.risk[0], result.risk[-1])

The command line is ``python -m meanfield.simulate`` (see ``--help``); sweeps are
``python -m meanfield.sweep``, films ``python -m meanfield.film``, Hessian spectra
``python -m meanfield.hessian``.

Layout (each folder one layer; a layer imports from the layers listed above it and from
``io``; the exceptions, all lazy, are listed in the README's Layout section):

``kernels/``
    private Numba code: the exact arc-cosine tiles, the block-reduced and sampled kernels,
    Hessian-vector tiles, the thread pool.
``engine/``
    the one loop: fields, integrators, observers, one result type (knows no model).
``models/``
    the problem (input laws, targets, teacher), the particle measure, the backends, the
    particle flow (``flow``) and the reduced models: block-reduced, 1-D radial, odd-target
    moment ODE, and the maps between them (``lowdim``).
``theory/``
    the checks of the seed papers' theory: conservation laws, symmetries, distances between
    measures (on POT), the power-law fitter.
``systems/``
    the other seed papers' systems: symmetric Boolean functions, method of moments,
    equivalent minima.
``hessian/``
    the Hessian at a measure: products, spectra, polishing, zero modes.
``plots/``
    figures drawn from a run folder's saved data alone.
``experiments/``
    the experiments of ``python -m meanfield.simulate``: analysis, saved arrays, verdicts.
``cli/``
    the command lines: argument parsing, config checks, run folders, progress, sweeps.
``verify/``
    ``python -m meanfield.verify``: every claim of the papers checked against runs of the
    experiments, in one report (uses all of the above).

The public API is what this module exports (``__all__``); everything else may move.
"""
import warnings as _warnings

from .cli import _startup  # noqa: F401  (quiet Ctrl-C while `python -m meanfield.*` starts)
from .engine import Field, Result, Solver, integrate
from .engine.integrators import INTEGRATORS, get_integrator
from .io import load_run
from .models.backends import ExactBackend, SampledBackend, make_backend
from .models.flow import FlowResult, Simulation, init, predict, simulate_flow
from .models.particles import (Particles, init_gaussian, init_paired, init_sphere_rademacher,
                               load_particles, save_particles)
from .models.problem import (CallableTarget, GaussianLaw, NormTarget, OddPowerTarget, Problem,
                             SampledLaw, SphereLaw, Teacher, boolean_cube_law,
                             norm_target_alpha, odd_cubic_target, rademacher_law,
                             symmetric_mixture_law)
from .models.targets import TargetPart, TargetSum
from . import hessian  # noqa: E402
from .models import lowdim, odd, radial1d, reduced  # noqa: E402
from .systems import boolean, equivalent, moments  # noqa: E402
from .theory import conservation, symmetry  # noqa: E402
from .models.odd import odd_reduction
from .models.radial1d import RadialKernel, simulate_radial
from .models.reduced import BlockReduction, ReducedBackend, simulate_reduced
from .systems.equivalent import canonical_form, count_equivalent_minima
from .theory.conservation import LawMonitor
from .theory.symmetry import orbit_init, symmetry_defect

__version__ = "0.2.0"


def simulate(*args, **kwargs):
    """Deprecated name of :func:`simulate_flow` (``meanfield.simulate`` is the command line's
    module, ``python -m meanfield.simulate``); calls it with the same arguments."""
    _warnings.warn("meanfield.simulate(...) is deprecated; call meanfield.simulate_flow(...)",
                   DeprecationWarning, stacklevel=2)
    return simulate_flow(*args, **kwargs)


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
    "odd_cubic_target", "norm_target_alpha", "TargetPart", "TargetSum",
    "Particles", "init_sphere_rademacher", "init_gaussian", "init_paired", "load_particles",
    "save_particles",
    "ExactBackend", "SampledBackend", "make_backend", "INTEGRATORS", "get_integrator",
    "Simulation", "FlowResult", "simulate_flow", "simulate", "init", "predict", "load_run",
    "__version__", "Field", "Solver", "Result", "integrate",
    # theory checks and reductions (modules, and their main entry points)
    "odd", "reduced", "radial1d", "lowdim", "conservation", "symmetry", "equivalent", "boolean",
    "moments", "hessian", "odd_reduction", "BlockReduction", "ReducedBackend", "simulate_reduced",
    "RadialKernel", "simulate_radial", "LawMonitor", "symmetry_defect", "orbit_init",
    "count_equivalent_minima", "canonical_form",
]
