"""The generic experiment: one particle flow of the whole problem, configured by keys.

Default: a ReLU teacher with 4 units in d = 10 (x ∼ N(0, I)) learned by 256 particles from
the seed paper's start (a = ±1, b uniform on the sphere) with exact population gradients.
"""
import numpy as np

from ..cli.config import ConfigError, require
from ..engine.integrators import INTEGRATORS
from ._common import TIME_DEFAULTS, TIME_TYPES, check_time, run_solver, time_options, \
    trajectory_arrays

NAME = "flow"
#: the module of meanfield.plots that draws this experiment's figures
FIGURES_MODULE = "flow"
SUMMARY = "one mean-field particle flow of a configurable problem (teacher, norm, odd cubic, ...)"

#: fixed-step defaults of dt and n_steps (their keys default to unset)
DT_DEFAULT, N_STEPS_DEFAULT = 0.05, 2000

DEFAULTS = {
    "d": 10,
    "n_particles": 256,
    "dt": None,
    "n_steps": None,
    "seed": 0,
    "teacher_seed": 0,
    "integrator": "euler",
    "backend": "exact",
    "batch_size": 512,
    "target": "teacher",
    "teacher_units": 4,
    "teacher_file": None,
    "d_H": 2,
    "input": "gaussian",
    "input_scale": 1.0,
    "activation": "relu",
    "init": "sphere",
    "init_file": None,
    "weight_decay": 0.0,
    "rate_a": 1.0,
    "rate_b": 1.0,
    "momentum": 0.9,
    "record_every": None,
    "n_snapshots": 6,
    "snapshot_spacing": "log",
    "checkpoint_every": 500,
    "film": False,
    **TIME_DEFAULTS,
}

#: snapshots taken for a film when n_snapshots is left at its default
FILM_SNAPSHOTS = 100

#: keys whose default is unset: dt (0.05 for fixed-step integrators, automatic first trial step
#: for adaptive ones), n_steps (2000; fixed-step only), t_end, record_every (1; fixed-step
#: only), n_records
TYPES = {**TIME_TYPES, "record_every": int}

CHOICES = {
    "integrator": list(INTEGRATORS),
    "backend": ["exact", "sampled"],
    "target": ["teacher", "norm", "odd_cubic", "linear"],
    "input": ["gaussian", "sphere", "rademacher", "mixture"],
    "activation": ["relu", "linear", "leaky_relu", "tanh"],
    "init": ["sphere", "gaussian", "paired", "file"],
    "snapshot_spacing": ["linear", "log"],
}


def _draws_teacher(c):
    return c["target"] in ("odd_cubic", "linear") or (c["target"] == "teacher"
                                                      and not c["teacher_file"])


#: keys that only take effect in some settings: a key the user sets where it has no effect is
#: refused (meanfield.cli.config.check_applies), so no setting is ignored silently.
APPLIES = {
    "batch_size": (lambda c: c["backend"] == "sampled",
                   "only the sampled backend draws minibatches (backend = 'exact')"),
    "momentum": (lambda c: c["integrator"] == "momentum",
                 "only integrator = 'momentum' uses it"),
    "d_H": (lambda c: c["target"] == "norm", "only target = 'norm' uses it"),
    "teacher_file": (lambda c: c["target"] == "teacher", "only target = 'teacher' uses it"),
    "teacher_units": (lambda c: c["target"] == "teacher" and not c["teacher_file"],
                      "only a drawn teacher (target = 'teacher' without teacher_file) uses it"),
    "teacher_seed": (_draws_teacher, "the target is not drawn at random (norm target or "
                                     "teacher_file)"),
    "input_scale": (lambda c: c["input"] == "gaussian", "only input = 'gaussian' uses it"),
}

#: keys added after runs were made with this experiment: the value an older run used (a
#: resume of such a run continues with it)
ADDED_KEYS = {"teacher_seed": lambda c: c.get("seed", 0)}

#: init_file given means the start comes from it.
IMPLIES = {"init_file": ("init", "file")}


def resolve(config, user_keys):
    """Settings fixed by others: an init file fixes the number of particles m."""
    if config["init"] == "file" and config["init_file"]:
        try:
            m = _read_particles(config).m
        except ValueError as exc:
            raise ConfigError("init_file", str(exc)) from None
        if "n_particles" in user_keys and config["n_particles"] != m:
            raise ConfigError("n_particles", f"init_file {config['init_file']} holds m = {m} "
                                             f"particles, got n_particles = "
                                             f"{config['n_particles']}; leave n_particles out")
        config["n_particles"] = m


def estimate(config):
    """Memory (bytes) and work (pair evaluations × steps) of a run, before it starts."""
    m, d = config["n_particles"], config["d"]
    integ = INTEGRATORS[config["integrator"]]
    opts = time_options(config, DT_DEFAULT, N_STEPS_DEFAULT)
    if integ.adaptive:  # the steps are not known in advance: a rough 1000
        n = 1000
        records = config["n_records"] or 101
    else:
        n = opts["n_steps"]
        records = (config["n_records"] if config["n_records"] else
                   n // max(config["record_every"] or 1, 1) + 2)
    k = config["teacher_units"] if config["target"] == "teacher" else 1
    snaps = min(config["n_snapshots"], n + 1)
    stages = integ.evaluations
    per_step = (config["batch_size"] * (m + k) if config["backend"] == "sampled"
                else m * (m + k))
    memory = {"n_particles": 12 * 8 * m * (d + 1) + (config["batch_size"] * m * 8
                                                     if config["backend"] == "sampled" else 0),
              "n_snapshots": 8 * config["n_snapshots"] + 8 * snaps * m * (d + 1),
              "n_steps": 8 * 5 * records,
              "teacher_units": 8 * k * d,
              "batch_size": 8 * config["batch_size"] * (d + 2)
              if config["backend"] == "sampled" else 0}
    return {"memory": memory, "work": float(per_step) * d * stages * n}


def check(config):
    """Range checks and file checks, before any work starts."""
    require(config["d"] >= 1, "d", f"must be >= 1, got {config['d']}")
    require(config["n_particles"] >= 1, "n_particles", f"must be >= 1, got {config['n_particles']}")
    check_time(config, DT_DEFAULT, N_STEPS_DEFAULT)
    adaptive = INTEGRATORS[config["integrator"]].adaptive
    if adaptive and config["backend"] == "sampled":
        raise ConfigError("integrator", f"{config['integrator']!r} is adaptive, but the sampled "
                                        "backend draws fresh batches at every evaluation (an "
                                        "error estimate of noise is meaningless); choose one of "
                                        + ", ".join(n for n, c in INTEGRATORS.items()
                                                    if not c.adaptive))
    if adaptive and config["record_every"] is not None:
        raise ConfigError("record_every", "counts steps, which an adaptive integrator chooses "
                                          "itself; use n_records")
    if config["record_every"] is not None and config["n_records"] is not None:
        raise ConfigError("n_records", "give record_every or n_records, not both")
    require(config["batch_size"] >= 1, "batch_size", f"must be >= 1, got {config['batch_size']}")
    require(config["teacher_units"] >= 0, "teacher_units", "must be >= 0")
    require(1 <= config["d_H"] <= config["d"], "d_H",
            f"must be between 1 and d = {config['d']}, got {config['d_H']}")
    require(config["input_scale"] > 0, "input_scale", "must be > 0")
    require(config["weight_decay"] >= 0, "weight_decay", "must be >= 0")
    require(config["rate_a"] > 0, "rate_a", "must be > 0")
    require(config["rate_b"] > 0, "rate_b", "must be > 0")
    require(0 <= config["momentum"] < 1, "momentum", "must be in [0, 1)")
    require(config["record_every"] is None or config["record_every"] >= 1, "record_every",
            "must be >= 1")
    require(config["n_snapshots"] >= 0, "n_snapshots", "must be >= 0")
    require(config["checkpoint_every"] >= 1, "checkpoint_every", "must be >= 1")
    if config["film"]:
        require(config["n_snapshots"] != 0, "n_snapshots", "film = true needs snapshots; "
                "leave n_snapshots unset (100 are taken) or set it >= 1")
        if config["n_snapshots"] == DEFAULTS["n_snapshots"]:
            # a film needs more frames than the default six: resolved here, so that
            # config.json records what was run
            config["n_snapshots"] = FILM_SNAPSHOTS
    require(config["init"] != "file" or config["init_file"], "init_file",
            "init = 'file' needs init_file (an .npz with arrays a (m,) and b (m, d))")
    require(config["init"] != "paired" or config["n_particles"] % 2 == 0, "n_particles",
            "init = 'paired' needs an even number of particles")
    if config["init"] == "file":
        try:
            p = _read_particles(config)
        except ValueError as exc:
            raise ConfigError("init_file", str(exc)) from None
        require(p.m == config["n_particles"], "n_particles",
                f"init_file holds m = {p.m} particles, got n_particles = "
                f"{config['n_particles']}")
    if config["target"] == "teacher" and config["teacher_file"]:
        try:
            _read_teacher(config)
        except ValueError as exc:
            raise ConfigError("teacher_file", str(exc)) from None
    try:
        problem = build_problem(config)
    except ValueError as exc:
        raise ConfigError("target", str(exc)) from None
    if config["backend"] == "exact" and not problem.exact:
        raise ConfigError("backend", f"'exact' does not apply to input={config['input']!r}, "
                                     f"target={config['target']!r}, activation="
                                     f"{config['activation']!r}; accepted values here: sampled")


def _streams(config):
    """Independent generators for the target, the initial particles and the minibatches.

    The target's stream comes from ``teacher_seed`` and the others from ``seed``, each as the
    corresponding child of ``SeedSequence(seed)``: with ``teacher_seed = seed`` this is the
    layout of earlier versions, and a sweep over ``seed`` keeps the problem fixed."""
    t = np.random.SeedSequence(config.get("teacher_seed", config["seed"])).spawn(3)[0]
    _, i, b = np.random.SeedSequence(config["seed"]).spawn(3)
    return np.random.default_rng(t), np.random.default_rng(i), int(b.generate_state(1)[0])


def _read_particles(config):
    from ..models.particles import load_particles

    return load_particles(config["init_file"], config["d"])


def _read_teacher(config):
    """Teacher arrays from ``teacher_file``: a (k,), b (k, d), optional beta (d,)."""
    from ..io import load_array_file

    data = load_array_file(config["teacher_file"], ("a", "b"), ("beta",))
    a, b = data["a"], data["b"]
    if a.ndim != 1 or b.ndim != 2 or b.shape[0] != a.shape[0]:
        raise ValueError(f"{config['teacher_file']} needs 'a' of shape (k,) and 'b' of shape "
                         f"(k, d); got {a.shape} and {b.shape}")
    if b.shape[1] != config["d"]:
        raise ValueError(f"{config['teacher_file']} has d = {b.shape[1]}, expected "
                         f"d = {config['d']}")
    beta = data.get("beta")
    if beta is not None and beta.shape != (config["d"],):
        raise ValueError(f"{config['teacher_file']}: 'beta' must have shape (d,) = "
                         f"({config['d']},), got {beta.shape}")
    return a, b, beta


def build_problem(config):
    """The :class:`~meanfield.models.problem.Problem` a config describes (deterministic in seed)."""
    from ..models import problem as P
    from ..models.particles import load_particles

    d = config["d"]
    rng_target, _, _ = _streams(config)
    law = {"gaussian": lambda: P.GaussianLaw(config["input_scale"]),
           "sphere": P.SphereLaw,
           "rademacher": P.rademacher_law,
           "mixture": P.symmetric_mixture_law}[config["input"]]()
    kind = config["target"]
    if kind == "teacher":
        if config["teacher_file"]:
            target = P.Teacher(*_read_teacher(config))
        else:
            k = config["teacher_units"]
            b = rng_target.standard_normal((k, d))
            b /= np.linalg.norm(b, axis=1, keepdims=True)
            target = P.Teacher(np.ones(k), b)
    elif kind == "norm":
        target = P.NormTarget(config["d_H"])
    elif kind == "odd_cubic":
        target = P.odd_cubic_target(d, rng_target)
    else:  # linear
        beta = rng_target.standard_normal(d)
        target = P.Teacher(np.zeros(0), np.zeros((0, d)), beta / np.linalg.norm(beta))
    del load_particles
    return P.Problem(d, target, law, config["activation"])


def build_particles(config, rng=None):
    from ..models.particles import make_init

    if rng is None:
        _, rng, _ = _streams(config)
    return make_init(config["init"], config["n_particles"], config["d"], rng, config["init_file"])


def build_simulation(config):
    from ..models.flow import Simulation

    _, rng_init, batch_seed = _streams(config)
    problem = build_problem(config)
    particles = build_particles(config, rng_init)
    return Simulation(problem, particles, **time_options(config, DT_DEFAULT, N_STEPS_DEFAULT),
                      integrator=config["integrator"], backend=config["backend"],
                      batch_size=config["batch_size"], weight_decay=config["weight_decay"],
                      rate_a=config["rate_a"], rate_b=config["rate_b"],
                      momentum=config["momentum"], seed=batch_seed,
                      record_every=config["record_every"], n_records=config["n_records"],
                      n_snapshots=config["n_snapshots"],
                      snapshot_spacing=config["snapshot_spacing"],
                      exact_risk_every=10 if config["backend"] == "sampled" else None)


CHECKPOINT = "checkpoint.npz"


def run_simulation(sim, ctx, checkpoint_every, desc=""):
    """Advance ``sim`` to its end with progress, periodic atomic checkpoints and Ctrl-C
    handling (checkpoint, then :class:`~meanfield.cli.runctx.Interrupted`); see
    :func:`meanfield.experiments._common.run_solver`."""
    return run_solver(sim, ctx, CHECKPOINT, checkpoint_every, desc)


def run(config, ctx):
    sim = build_simulation(config)
    result = run_simulation(sim, ctx, config["checkpoint_every"], desc=NAME)
    step = (f"rtol = {sim.rtol:g}" if sim.adaptive else f"dt = {sim.dt:g}")
    title = (f"{config['target']} target, d = {config['d']}, m = {config['n_particles']}, "
             f"{config['integrator']}, {step}, {config['backend']}")
    # the figures are drawn from this file alone (meanfield.plots.flow)
    ctx.save_arrays("trajectory.npz", **trajectory_arrays(result, "full", title=np.array(title)))
    ctx.draw_figures(FIGURES_MODULE, config)
    summary = {
        "status": "ok" if result.status == "ok" else "failed",
        "risk_initial": float(result.risk[0]) if result.risk.size else float("nan"),
        "risk_final": result.risk_final,
        "risk_exact_final": float(sim.backend.risk(sim.a, sim.b, sim.weights))
        if config["backend"] == "sampled" else result.risk_final,
        "max_abs_Q_drift": result.max_abs_Q_drift,
        "steps_done": result.steps_done,
        "t_final": result.t_final,
        **result.stats(),
        "simulation_wall_time_s": result.wall_time_s,
        "message": result.message,
    }
    if result.status != "ok":
        from ..cli.runctx import RunFailed

        raise RunFailed(result.message, **{k: v for k, v in summary.items() if k != "status"})
    # a short readable risk curve for the terminal
    idx = np.unique(np.round(np.linspace(0, result.t.size - 1, 6)).astype(int))
    for i in idx:
        ctx.log(f"  t = {result.t[i]:8.3f}   risk = {result.risk[i]:.6e}")
    if config["film"]:
        from ..film import render

        summary["film"] = render(ctx.out_dir, out=ctx.path("film.mp4")).name
    return summary
