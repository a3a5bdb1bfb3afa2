"""Symmetric Boolean targets: S_n-invariant vs random vs small random init (seed 000).

For each target (parity, majority, random g), init and training-set size N, and several seeds,
a one-hidden-layer ReLU network with biases is trained by SGD on N uniform samples of
``{0,1}^n``; training and test accuracy (fresh uniform samples) are recorded every
``eval_every`` epochs, with the final distance of the first layer to the invariant subspace.
The exact population flow (N = ∞) from the invariant init runs beside, its time matched to
SGD at the largest N (one epoch = ``N_max · lr`` units of gradient-flow time). A learning-rate
sweep on parity at the largest N shows how far SGD noise moves the invariant init off its
subspace.

Sub-runs saved as parts: ``<target>-<init>`` (all N and seeds), ``population-<target>``,
``lr-sweep``. Verdicts (:func:`verdicts`, saved as ``verdicts.json``): the invariant start
learns parity, the random start does not. Figures (drawn by
:mod:`meanfield.plots.symmetric_boolean` from ``results.npz``):
``symmetric_boolean_vs_epochs.png``, ``symmetric_boolean_vs_n.png``,
``symmetric_boolean_lr.png``.
"""
from ..cli.config import ConfigError, require

NAME = "symmetric-boolean"
#: the module of meanfield.plots that draws this experiment's figures
FIGURES_MODULE = "symmetric_boolean"
SUMMARY = "parity/majority/random g(|x|) on {0,1}^n: invariant vs random init, train vs test"

DEFAULTS = {
    "n": 20,                    # input dimension
    "width": 64,                # hidden units k (same for every init)
    "targets": ["parity", "majority", "random"],
    "inits": ["invariant", "random", "small"],
    "n_train": [30, 100, 300, 1000],
    "n_seeds": 3,
    "seed": 0,
    "target_seed": 1,           # seed of the random g
    "epochs": 200,
    "lr": 0.001,
    "batch_size": 1,
    "loss": "squared",
    "n_test": 2000,
    "eval_every": 20,
    "invariant_scale": 1.0,     # w_i = s·1, c_i = −s(t_i − ½)
    "a_scale": 0.1,             # a_i ~ N(0, a_scale²/k)
    "small_scale": 0.01,        # "small" = He init × small_scale
    "population_dt": 0.002,     # Euler step of the exact population flow
    "lr_sweep": [0.0005, 0.001, 0.002, 0.005],
}

CHOICES = {"loss": ("squared", "logistic")}

_TARGETS = ("parity", "majority", "random")
_INITS = ("invariant", "random", "small")


APPLIES = {
    "invariant_scale": (lambda c: "invariant" in c["inits"], "no 'invariant' init in inits"),
    "small_scale": (lambda c: "small" in c["inits"], "no 'small' init in inits"),
}


def estimate(config):
    """Memory (bytes) and work (unit evaluations) before the run starts."""
    n, k = config["n"], config["width"]
    n_max = max([int(v) for v in config["n_train"]] or [1])
    runs = len(config["targets"]) * len(config["inits"]) * config["n_seeds"]
    memory = {"n_train": 8 * n_max * (n + 2) * 2, "n_test": 8 * config["n_test"] * (n + 2) * 2,
              "width": 8 * k * (n + 4) * 8}
    work = float(config["epochs"]) * sum(int(v) for v in config["n_train"]) * runs * k * n
    return {"memory": memory, "work": work}


def check(config):
    """Ranges that the type checks cannot see."""
    require(config["n"] >= 2, "n", "must be ≥ 2")
    require(config["width"] >= 1, "width", "must be ≥ 1")
    for key, allowed in (("targets", _TARGETS), ("inits", _INITS)):
        require(len(config[key]) >= 1, key, "give at least one")
        for v in config[key]:
            if v not in allowed:
                raise ConfigError(key, f"unknown {v!r}; accepted: {', '.join(allowed)}")
    require(len(config["n_train"]) >= 1 and all(v >= 1 for v in config["n_train"]), "n_train",
            "give training-set sizes ≥ 1")
    require(config["n_seeds"] >= 1, "n_seeds", "must be ≥ 1")
    require(config["epochs"] >= 1, "epochs", "must be ≥ 1")
    require(config["eval_every"] >= 1 and config["epochs"] % config["eval_every"] == 0,
            "eval_every", "must be ≥ 1 and divide epochs")
    require(config["lr"] > 0, "lr", "must be > 0")
    require(config["batch_size"] >= 1, "batch_size", "must be ≥ 1")
    require(config["n_test"] >= 1, "n_test", "must be ≥ 1")
    require(config["population_dt"] > 0, "population_dt", "must be > 0")
    # the population flow covers epochs · N_max · lr units of time in steps of population_dt
    steps = (config["epochs"] * max(config["n_train"] or [1]) * config["lr"]
             / config["population_dt"])
    require(steps <= 1e9, "population_dt", f"the population flow would take {steps:.3g} steps "
                                           "(more than 1e9); increase population_dt")
    require(all(v > 0 for v in config["lr_sweep"]), "lr_sweep", "learning rates must be > 0")
    require(config["a_scale"] > 0, "a_scale", "must be > 0")
    require(config["invariant_scale"] > 0, "invariant_scale", "must be > 0")
    require(config["small_scale"] > 0, "small_scale", "must be > 0")


def run(config, ctx):
    import numpy as np

    from ..systems import boolean as bl
    from ..cli.runctx import Interrupted

    n, width = config["n"], config["width"]
    n_list = [int(v) for v in config["n_train"]]
    n_seeds, epochs, every = config["n_seeds"], config["epochs"], config["eval_every"]
    n_eval = epochs // every + 1
    init_kw = {"invariant_scale": config["invariant_scale"], "a_scale": config["a_scale"],
               "small_scale": config["small_scale"]}

    def stop_check():
        if ctx.stop_requested():
            raise Interrupted("stopped between sub-runs; finished parts are saved")

    def train_one(target, init, n_train, seed, lr):
        """One SGD run; the same seed gives the same data and test set for every init."""
        g = bl.target_labels(target, n, seed=config["target_seed"])
        data_rng = np.random.default_rng([config["seed"], seed, n_train, 0])
        X = bl.sample_cube(n_train, n, data_rng)
        X_test = bl.sample_cube(config["n_test"], n, data_rng)
        y, y_test = bl.labels(X, g), bl.labels(X_test, g)
        net_rng = np.random.default_rng([config["seed"], seed, n_train, 1 + _INITS.index(init)])
        net = bl.init_network(init, n, width, net_rng, **init_kw)
        train_acc, test_acc = np.full(n_eval, np.nan), np.full(n_eval, np.nan)

        def record(epoch, net):
            stop_check()  # Ctrl-C within a sub-run, not only between sub-runs
            train_acc[epoch // every] = bl.accuracy(net, X, y)
            test_acc[epoch // every] = bl.accuracy(net, X_test, y_test)

        try:
            bl.train_sgd(net, X, y, epochs, lr, net_rng, loss=config["loss"],
                         batch_size=config["batch_size"], eval_every=every, callback=record)
            defect = bl.invariance_defect(net.W)
        except FloatingPointError:
            defect = np.nan   # diverged: accuracies after divergence stay NaN
        return train_acc, test_acc, defect

    # ---- main grid ----------------------------------------------------------------------
    grid = {}
    pairs = [(t, i) for t in config["targets"] for i in config["inits"]]
    with ctx.progress(len(pairs) * len(n_list) * n_seeds, desc="SGD runs") as bar:
        for target, init in pairs:
            stop_check()
            name = f"{target}-{init}"
            part = ctx.load_part(name)
            if part is None:
                shape = (len(n_list), n_seeds)
                part = {"train": np.full(shape + (n_eval,), np.nan),
                        "test": np.full(shape + (n_eval,), np.nan),
                        "defect": np.full(shape, np.nan)}
                for ni, n_train in enumerate(n_list):
                    for s in range(n_seeds):
                        tr, te, de = train_one(target, init, n_train, s, config["lr"])
                        part["train"][ni, s], part["test"][ni, s] = tr, te
                        part["defect"][ni, s] = de
                        bar.update()
                ctx.save_part(name, **part)
            else:
                bar.update(len(n_list) * n_seeds)
            grid[(target, init)] = part
            ctx.log(f"{target:8s} {init:9s} N={n_list[-1]}: train "
                    f"{np.nanmean(part['train'][-1, :, -1]):.3f} test "
                    f"{np.nanmean(part['test'][-1, :, -1]):.3f}")

    # ---- exact population flow from the invariant init ----------------------------------
    population = {}
    time_per_epoch = n_list[-1] * config["lr"]
    steps_per_eval = max(1, int(round(every * time_per_epoch / config["population_dt"])))
    for target in config["targets"]:
        stop_check()
        name = f"population-{target}"
        part = ctx.load_part(name)
        if part is None:
            g = bl.target_labels(target, n, seed=config["target_seed"])
            net = bl.init_network("invariant", n, width,
                                  np.random.default_rng([config["seed"], 0, 0, 1]), **init_kw)
            _, hist = bl.population_flow(net, g, config["population_dt"],
                                         steps_per_eval * (n_eval - 1), loss=config["loss"],
                                         record_every=steps_per_eval)
            risk = hist["risk"]
            if not np.all(np.isfinite(risk)) or np.max(risk) > 10.0 * max(risk[0], 1.0):
                from ..cli.runctx import RunFailed

                raise RunFailed(f"population flow of {target} diverged (risk {risk[0]:.3g} -> "
                                f"{np.nanmax(risk):.3g}); reduce population_dt (now "
                                f"{config['population_dt']:g})")
            part = {"accuracy": hist["accuracy"], "risk": hist["risk"],
                    "time": hist["step"] * config["population_dt"]}
            ctx.save_part(name, **part)
        population[target] = part

    # ---- learning-rate sweep on parity ----------------------------------------------------
    stop_check()
    lrs = [float(v) for v in config["lr_sweep"]]
    sweep_inits = [i for i in ("invariant", "random") if i in config["inits"]]
    part = ctx.load_part("lr-sweep")
    if part is None and lrs and sweep_inits:
        part = {"train": np.full((len(sweep_inits), len(lrs)), np.nan),
                "test": np.full((len(sweep_inits), len(lrs)), np.nan),
                "defect": np.full((len(sweep_inits), len(lrs)), np.nan)}
        with ctx.progress(part["train"].size, desc="lr sweep (parity)") as bar:
            for ii, init in enumerate(sweep_inits):
                for li, lr in enumerate(lrs):
                    tr, te, de = train_one("parity", init, n_list[-1], 0, lr)
                    part["train"][ii, li], part["test"][ii, li] = tr[-1], te[-1]
                    part["defect"][ii, li] = de
                    bar.update()
        ctx.save_part("lr-sweep", **part)
    sweep = part

    # ---- arrays, figures, summary -------------------------------------------------------
    arrays = {"n_train": np.array(n_list), "epochs": np.arange(n_eval) * every,
              "lr_sweep": np.array(lrs)}
    for (target, init), part in grid.items():
        for key, value in part.items():
            arrays[f"{key}_{target}_{init}"] = value
    for target, part in population.items():
        arrays[f"population_accuracy_{target}"] = part["accuracy"]
        arrays[f"population_risk_{target}"] = part["risk"]
    if sweep is not None:
        for key, value in sweep.items():
            arrays[f"lr_sweep_{key}"] = value
    if sweep is not None:
        arrays["lr_sweep_inits"] = np.array(sweep_inits, dtype=str)
    ctx.save_arrays("results.npz", **arrays)

    summary = {}
    for (target, init), part in grid.items():
        for ni, n_train in enumerate(n_list):
            summary[f"train_acc_{target}_{init}_N{n_train}"] = float(
                np.nanmean(part["train"][ni, :, -1]))
            summary[f"test_acc_{target}_{init}_N{n_train}"] = float(
                np.nanmean(part["test"][ni, :, -1]))
        summary[f"defect_{target}_{init}_N{n_list[-1]}"] = float(np.nanmean(part["defect"][-1]))
    for target, part in population.items():
        summary[f"population_acc_{target}"] = float(part["accuracy"][-1])
    if sweep is not None:
        for ii, init in enumerate(sweep_inits):
            for li, lr in enumerate(lrs):
                summary[f"lr_sweep_parity_{init}_lr{lr:g}_test"] = float(sweep["test"][ii, li])
                summary[f"lr_sweep_parity_{init}_lr{lr:g}_train"] = float(sweep["train"][ii, li])
                summary[f"lr_sweep_parity_{init}_lr{lr:g}_defect"] = float(sweep["defect"][ii, li])
    from ..io import atomic_write_json

    atomic_write_json(ctx.path("verdicts.json"), verdicts(summary, config))
    ctx.draw_figures(FIGURES_MODULE, config)
    return summary


#: the invariant start learns parity: final test accuracy at the largest N at least this
#: (measured 0.97 with the default config, n = 20, N = 1000)
LEARNS = 0.9
#: the random start does not: final test accuracy at the largest N at most this (chance is
#: ½; measured 0.50)
CHANCE = 0.6


def verdicts(summary, config):
    """The seed paper's claim on parity, checked on the measured summary: from the
    S_n-invariant start SGD generalises, from a standard random start it does not.

    Parameters
    ----------
    summary : dict
        summary.json of a symmetric-boolean run (keys ``test_acc_parity_<init>_N<N>``).
    config : dict
        its config (``targets``, ``inits``, ``n_train``).

    Returns
    -------
    list of dict
        ``claim``, ``quantity`` (the summary key), ``measured``, ``expected``, ``criterion``
        and ``ok`` (bool) per claim whose runs were made (parity with the invariant and/or
        the random init); plain JSON values, saved as ``verdicts.json``.
    """
    if "parity" not in config["targets"]:
        return []
    n_max = max(int(v) for v in config["n_train"])
    out = []
    if "invariant" in config["inits"]:
        key = f"test_acc_parity_invariant_N{n_max}"
        acc = summary[key]
        out.append({"claim": "from the invariant start SGD learns parity (test accuracy)",
                    "quantity": key, "measured": acc, "expected": f">= {LEARNS:g}",
                    "criterion": f"measured >= {LEARNS:g}", "ok": bool(acc >= LEARNS)})
    if "random" in config["inits"]:
        key = f"test_acc_parity_random_N{n_max}"
        acc = summary[key]
        out.append({"claim": "from a random start SGD does not learn parity (test accuracy "
                             "stays at chance)",
                    "quantity": key, "measured": acc, "expected": 0.5,
                    "criterion": f"measured <= {CHANCE:g}", "ok": bool(acc <= CHANCE)})
    return out
