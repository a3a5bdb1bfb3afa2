"""Tiny configs of every experiment and tables of hostile inputs, shared by
tests/test_reliability.py and benchmarks/hostile_inputs.py."""

#: a few-second config of every experiment (``--set`` arguments)
TINY = {
    "flow": ["d=4", "n_particles=16", "n_steps=20"],
    "lowdim-1d": ["d=6", "d_H=2", "n_particles=16", "n_steps=20", "n_terms=8", "record_every=1",
                  "snapshot_every=10", "histogram_steps=[0,20]", "report_steps=[10,20]",
                  "monte_carlo=false", "sweep=false"],
    "lowdim-full-vs-reduced": ["d=6", "d_H=2", "widths=[8,16]", "seeds=[0]", "n_steps=10",
                               "n_terms=8", "record_every=1", "n_nodes=4"],
    "orthogonal-dependence": ["d=6", "d_H=2", "n_particles=16", "n_steps=20",
                              "profile_steps=[0,20]", "n_r=5", "n_directions=2",
                              "record_every=1"],
    "odd": ["d=6", "widths=[4,8]", "seeds=[0]", "n_steps=20", "include_sampled=false",
            "record_every=2", "n_probe=16"],
    "moments": ["p=4", "k=2", "d=4", "n_samples=[200,400]", "trials=1", "noise_levels=[0,0.1]",
                "noise_n_samples=200", "gd_n_samples=200", "gd_steps=20", "gd_trials=1",
                "laws=[gaussian]", "controls=[]"],
    "symmetric-boolean": ["n=6", "width=8", "targets=[parity]", "inits=[invariant]",
                          "n_train=[16]", "n_seeds=1", "epochs=4", "eval_every=2", "n_test=32",
                          "lr_sweep=[0.001]"],
    "noether": ["m=8", "horizon=0.4", "dts=[0.2,0.1]", "fit_points=2", "time_steps=10",
                "linear_m=4", "linear_dts=[0.1,0.05]", "angmom_m=8", "angmom_steps=5",
                "orbit_base=2", "orbit_steps=5", "defect_ms=[8,16]", "defect_seeds=1",
                "defect_steps=2", "n_projections=8"],
}

#: a setting that makes every experiment's computation diverge (exit 1 expected)
DIVERGE = {
    "flow": ["dt=50"],
    # the flow experiments default to an adaptive pair now: divergence at a huge fixed step
    "lowdim-1d": ["dt=1000", "integrator=euler"],
    "lowdim-full-vs-reduced": ["dt=1e6", "integrator=euler"],
    "orthogonal-dependence": ["dt=1000", "integrator=euler"],
    "odd": ["dt=1000", "integrator=euler"],
    "moments": ["gd_lr=1e6"],
    "symmetric-boolean": ["population_dt=50"],
    "noether": ["horizon=2000", "dts=[1000,500]"],
}

#: (experiment, extra --set values, key the one-line error must name); exit 2 expected.
BAD_VALUES = [
    # values that passed the checks and crashed after config.json was written
    ("flow", ["n_steps=1e300"], "n_steps"),
    ("lowdim-1d", ["dt=inf"], "dt"),
    ("lowdim-1d", ["bins=0"], "bins"),
    ("lowdim-1d", ["seed=-3"], "seed"),
    ("noether", ["dts=[Infinity,0.1]"], "dts"),
    ("orthogonal-dependence", ["dt=inf"], "dt"),
    ("orthogonal-dependence", ["r_max=inf"], "r_max"),
    ("lowdim-full-vs-reduced", ["dt=inf"], "dt"),
    ("lowdim-full-vs-reduced", ["n_terms=0"], "n_terms"),
    ("moments", ["laws=[mixture]", "mixture_scale=inf"], "mixture_scale"),
    ("moments", ["gd_lr=inf"], "gd_lr"),
    ("moments", ["controls=[shifted_gaussian]", "shift=nan"], "shift"),
    ("symmetric-boolean", ["lr=inf"], "lr"),
    ("symmetric-boolean", ["a_scale=nan"], "a_scale"),
    ("flow", ["weight_decay=inf"], "weight_decay"),
    ("flow", ["rate_a=inf"], "rate_a"),
    ("noether", ["friction=inf"], "friction"),
    ("flow", ["seed=-1"], "seed"),
    ("flow", ["input_scale=inf"], "input_scale"),
    ("odd", ["ode_rtol=nan"], "ode_rtol"),
    ("odd", ["dt=-inf"], "dt"),
    # keys that do not apply in the setting (were silently ignored)
    ("flow", ["batch_size=64"], "batch_size"),
    ("flow", ["momentum=0.5"], "momentum"),
    ("flow", ["d_H=2"], "d_H"),
    ("flow", ["target=odd_cubic", "teacher_units=3"], "teacher_units"),
    ("flow", ["target=norm", "teacher_file=t.npz"], "teacher_file"),
    ("flow", ["input=sphere", "input_scale=2"], "input_scale"),
    ("flow", ["target=norm", "teacher_seed=3"], "teacher_seed"),
    ("flow", ["init=gaussian", "init_file=x.npz"], "init_file"),
    ("odd", ["batch_size=64"], "batch_size"),
    ("lowdim-1d", ["mc_samples=10"], "mc_samples"),
    ("moments", ["shift=2"], "shift"),
    ("symmetric-boolean", ["small_scale=0.1"], "small_scale"),
    # sizes that cannot fit in memory
    ("flow", ["n_particles=1e9"], "n_particles"),
    ("flow", ["d=1e9"], "n_particles"),
    ("flow", ["teacher_units=1e9"], "teacher_units"),
    ("flow", ["n_steps=1e12"], "n_steps"),
    ("flow", ["backend=sampled", "batch_size=1e9"], "n_particles"),
    ("flow", ["n_snapshots=1e12"], "n_snapshots"),
    ("odd", ["widths=[1e9,4]"], "widths"),
    ("moments", ["n_samples=[1e12,1e13]"], "n_samples"),
    ("lowdim-1d", ["n_particles=1e9"], "n_particles"),
    ("orthogonal-dependence", ["n_particles=1e10"], "n_particles"),
    ("symmetric-boolean", ["n_train=[1e11]"], "n_train"),
]

#: range errors found by trying 0, -1 and 1e-300 (and [], [0], [-1]) in every numeric key of
#: every experiment; each crashed after config.json was written before its check existed
FUZZ_FOUND = [
    ("moments", ["noise_levels=[]"], "noise_levels"),
    ("noether", ["d_H=1"], "d_H"),
    ("noether", ["horizon=1e-300"], "dts"),
    ("odd", ["ode_rtol=1e-300"], "ode_rtol"),
    ("orthogonal-dependence", ["profile_steps=[]"], "profile_steps"),
    ("orthogonal-dependence", ["record_every=0"], "record_every"),
    ("symmetric-boolean", ["population_dt=1e-300"], "population_dt"),
]


def run_cli(*argv):
    """``python -m meanfield.simulate ARGV`` in-process: (exit code, stdout, stderr)."""
    import io

    from meanfield.cli.simulate import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def sets(experiment, *extra):
    """--set arguments of the tiny config of ``experiment`` with ``extra`` overriding."""
    values = dict(s.split("=", 1) for s in TINY[experiment])
    values.update(dict(s.split("=", 1) for s in extra))
    return [x for k, v in values.items() for x in ("--set", f"{k}={v}")]
