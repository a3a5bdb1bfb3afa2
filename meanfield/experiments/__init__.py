"""Experiments runnable from ``python -m meanfield.simulate``.

Each module in this package whose top level defines ``NAME`` is an experiment. Contract:

``NAME`` : str
    The command-line name (e.g. ``"odd"``).
``SUMMARY`` : str
    One line for ``--list``: what the experiment shows.
``DEFAULTS`` : dict
    Flat dict of config keys and their defaults; a default's type fixes the key's type
    (int, float, str, bool, or list of one of those). ``None`` means an optional string.
``CHOICES`` : dict, optional
    Allowed values of string keys.
``check(config)`` : optional
    Raise :class:`meanfield.cli.config.ConfigError` for out-of-range values (called before any
    work starts or any file is written). Generic checks come first and need no code: every
    float finite, every integer within int64, every seed (``seed``, ``seeds``, ``*_seed``) >= 0.
``APPLIES`` : dict, optional
    ``key -> (condition(config), reason)``: a key the user sets where the condition is false
    has no effect and is refused with the reason (defaults are never refused).
``IMPLIES`` : dict, optional
    ``key -> (other, value)``: setting ``key`` sets ``other`` (``init_file`` means
    ``init = "file"``); an explicitly different ``other`` is refused.
``ADDED_KEYS`` : dict, optional
    ``key -> f(saved_config)``: for a key added after runs were made, the value an older run
    used, so that resuming it does not switch to the new key's default mid-run.
``resolve(config, user_keys)`` : optional
    Fill in keys fixed by others (an init file fixes the number of particles).
``estimate(config)`` : optional
    ``{"memory": {key: bytes}, "work": pair evaluations × steps}``: the run is refused when
    the memory exceeds what is available (naming the key that uses most), and the work is
    printed in the run's first line.
``SUB_RUNS`` : bool, optional
    True when ``run`` hands its independent sub-runs to
    :func:`meanfield.experiments._common.map_sub_runs`; then ``--workers`` and
    ``--scheduler`` of ``python -m meanfield.simulate`` apply (others refuse them).
``FIGURES_MODULE`` : str, optional
    The module of :mod:`meanfield.plots` that draws the experiment's figures; ``run`` draws
    them with ``ctx.draw_figures(FIGURES_MODULE, config)``, and the command line imports
    that module ahead in a second process (:mod:`meanfield.plots.process`).
``run(config, ctx)`` -> dict
    Do the work with the :class:`meanfield.cli.runctx.RunContext` ``ctx``; return flat scalar
    results for ``summary.json``. Raise :class:`meanfield.cli.runctx.RunFailed` when the run
    itself fails. Save resumable state with ``ctx.save_part`` / ``ctx.save_checkpoint``
    (they record the config, so a resume under other settings is refused).

Module import must stay light (no compilation, no heavy work): ``--list`` imports them all.
"""
import importlib
import pkgutil

__all__ = ["available", "get", "DEFAULT_EXPERIMENT"]

#: what ``python -m meanfield.simulate`` runs without arguments.
DEFAULT_EXPERIMENT = "flow"


def available():
    """Dict ``name -> module`` of every experiment, sorted by name."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "NAME", None)
        if name:
            found[name] = module
    return dict(sorted(found.items()))


def get(name):
    """The experiment module called ``name``; ValueError listing the known names otherwise."""
    experiments = available()
    if name not in experiments:
        raise KeyError(name)
    return experiments[name]
