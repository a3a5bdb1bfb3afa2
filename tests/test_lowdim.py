"""Projection, lifting, reduced sampling and diagnostics (meanfield.models.lowdim)."""
from math import pi

import numpy as np
import pytest
from scipy.stats import ks_2samp

from conftest import KS_P_MIN, LOWDIM_ROUND_OFF
import meanfield as mf
from meanfield.models.lowdim import (angle_law, coupled_distance, distances_to_limit,
                              profile_inputs, radial_from_particles, radial_from_reduced,
                              sample_radial_init, sample_reduced_init, signed_masses,
                              wasserstein_1d, wasserstein_matched)
from meanfield.models.reduced import BlockReduction


def test_reduced_init_has_the_law_of_the_projected_full_init():
    d, d_H, m = 20, 4, 4000
    rng = np.random.default_rng(0)
    full = mf.init_sphere_rademacher(m, d, rng)
    h_full = np.linalg.norm(full.b[:, :d_H], axis=1)
    _, z = sample_reduced_init(m, d, d_H, rng, reduce_H=True)
    assert ks_2samp(h_full, z[:, 0]).pvalue > KS_P_MIN
    _, z_sub = sample_reduced_init(m, d, d_H, rng)
    assert ks_2samp(full.b[:, 0], z_sub[:, 0]).pvalue > KS_P_MIN  # one coordinate of b_H
    _, _, theta = sample_radial_init(m, d, d_H, rng)
    assert ks_2samp(np.arctan2(np.linalg.norm(full.b[:, d_H:], axis=1), h_full),
                    theta).pvalue > KS_P_MIN
    assert np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=LOWDIM_ROUND_OFF)


def test_project_then_lift_keeps_reduced_coordinates():
    rng = np.random.default_rng(1)
    blocks = BlockReduction((2, 3, 1, 4), (False, True, False, True))
    b = rng.standard_normal((5, blocks.d))
    z = blocks.project(b)
    assert z.shape == (5, 2 + 1 + 2)
    assert np.allclose(blocks.project(blocks.lift(z, rng)), z, atol=LOWDIM_ROUND_OFF)
    assert np.allclose(z[:, 2], b[:, 5], atol=0)  # explicit block (size 1) kept as is


def test_radial_coordinates_of_balanced_particles():
    rng = np.random.default_rng(2)
    p = mf.init_sphere_rademacher(50, 9, rng)
    eps, c, theta = radial_from_particles(p, 3)
    assert np.array_equal(eps, np.sign(p.a))
    assert np.allclose(c, 1.0, atol=LOWDIM_ROUND_OFF)
    assert np.all((theta >= 0) & (theta <= 0.5 * pi))
    with pytest.raises(ValueError, match="balanced"):
        radial_from_reduced(np.array([2.0]), np.array([1.0]), np.array([0.0]))


def test_masses_and_angle_law_add_up():
    rng = np.random.default_rng(3)
    eps, c, theta = sample_radial_init(200, 10, 3, rng)
    c = rng.uniform(0, 2, 200)
    w = np.full(200, 1 / 200)
    pos, neg = signed_masses(eps, c, w)
    _, hp, hn = angle_law(eps, c, theta, w, bins=17)
    assert hp.sum() == pytest.approx(pos, abs=LOWDIM_ROUND_OFF)
    assert hn.sum() == pytest.approx(neg, abs=LOWDIM_ROUND_OFF)


def test_distances_to_limit_vanish_at_the_limit():
    alpha = mf.norm_target_alpha(5)
    eps = np.array([1.0, 1.0, -1.0])
    dist = distances_to_limit(eps, np.array([alpha, alpha, 0.3]), np.array([0.0, 0.0, 0.5 * pi]),
                              np.array([0.5, 0.5, 0.0]) + np.array([0, 0, 1e-300]), alpha)
    assert dist["w2_pos"] == 0.0 and dist["mass_gap"] < LOWDIM_ROUND_OFF and dist["w2_neg"] == 0.0
    far = distances_to_limit(eps, np.ones(3), np.array([0.3, 0.3, 0.2]), np.full(3, 1 / 3),
                             alpha)
    assert far["w2_pos"] == pytest.approx(0.3)
    assert far["w2_neg"] == pytest.approx(0.5 * pi - 0.2)


def test_exact_assignment_agrees_with_scipy_in_one_dimension():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal(60), rng.exponential(size=60)
    assert wasserstein_matched(x, y, p=1) == pytest.approx(wasserstein_1d(x, y), abs=LOWDIM_ROUND_OFF)
    X = rng.standard_normal((40, 3))
    perm = rng.permutation(40)
    assert wasserstein_matched(X, X[perm]) < LOWDIM_ROUND_OFF
    assert coupled_distance(X, X[perm]) > 0.5  # the labels matter for the coupling


def test_profile_inputs_see_a_constant_target():
    x = profile_inputs(12, 4, np.linspace(0, 3, 7), np.random.default_rng(5), n_directions=3)
    assert x.shape == (3, 7, 12)
    target = mf.NormTarget(4)
    assert np.allclose(target(x.reshape(-1, 12)), 1.0, atol=LOWDIM_ROUND_OFF)
    assert np.allclose(np.linalg.norm(x[:, :, 4:], axis=2), np.linspace(0, 3, 7), atol=LOWDIM_ROUND_OFF)


@pytest.mark.parametrize("module, overrides, pngs", [
    ("lowdim_1d", {"n_particles": 32, "n_steps": 60, "histogram_steps": [0, 60],
                   "report_steps": [30, 60], "mc_samples": 50, "sweep_d_H": [2, 9],
                   "sweep_d": 10, "sweep_steps": 20, "n_terms": 16, "snapshot_every": 20},
     ["lowdim_1d_risk.png", "lowdim_1d_angles.png", "lowdim_1d_masses.png",
      "lowdim_1d_sweep.png"]),
    ("lowdim_full_vs_reduced", {"d": 8, "d_H": 2, "widths": [8, 16], "seeds": [0],
                                "n_steps": 10, "n_terms": 16},
     ["lowdim_full_vs_reduced.png"]),
    ("orthogonal_dependence", {"d": 8, "d_H": 2, "n_particles": 16, "n_steps": 20,
                               "profile_steps": [0, 20], "n_r": 5, "n_directions": 2},
     ["orthogonal_dependence.png"]),
])
def test_experiments_run_and_write_their_figures(tmp_path, module, overrides, pngs):
    import importlib

    from meanfield.cli.config import resolve_config
    from meanfield.cli.runctx import RunContext

    exp = importlib.import_module(f"meanfield.experiments.{module}")
    config = resolve_config(exp.DEFAULTS, getattr(exp, "CHOICES", {}), overrides)
    exp.check(config)
    summary = exp.run(config, RunContext(tmp_path, quiet=True))
    assert all(np.isfinite(v) for v in summary.values() if isinstance(v, float))
    for png in pngs:
        assert (tmp_path / png).stat().st_size > 0


def test_sub_runs_are_run_folders_the_film_reads(tmp_path):
    """Every sub-run of lowdim-full-vs-reduced (dopri5, its default) is written as
    runs/NAME/trajectory.npz in the snapshot layout of its model."""
    from meanfield.cli.config import resolve_config
    from meanfield.experiments import lowdim_full_vs_reduced as exp
    from meanfield.film import load_film
    from meanfield.cli.runctx import RunContext

    config = resolve_config(exp.DEFAULTS, exp.CHOICES, {"d": 8, "d_H": 2, "widths": [8, 16],
                                                        "seeds": [0], "n_steps": 10,
                                                        "n_terms": 16})
    exp.check(config)
    exp.run(config, RunContext(tmp_path, quiet=True))
    for kind, model in (("full", "full"), ("reduced", "block_reduced"), ("1D", "radial1d")):
        film = load_film(tmp_path / "runs" / f"m8_seed0_{kind}")
        assert film["model"] == model and film["n_frames"] >= 1
