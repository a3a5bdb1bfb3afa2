"""Films of run folders (``python -m meanfield.film``): frames, files, views, errors, fallback."""
import io
import json
import sys

import numpy as np
import pytest

imageio = pytest.importorskip("imageio")
import imageio.v3 as iio  # noqa: E402

from meanfield import film  # noqa: E402
from meanfield.cli.config import ConfigError  # noqa: E402

#: small frames keep the tests fast: 8 x 4 inches at 30 dpi = 240 x 120 pixels
DPI = 30
FRAME_HW = (4 * DPI, 8 * DPI)


def run_film(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = film.main([str(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _write(folder, config=None, **arrays):
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "trajectory.npz", **arrays)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return folder


def full_folder(folder, s=5, m=12, d=3, seed=0, **extra):
    """A full-model folder in today's flow format (no ``model`` array)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 2.0, 21)
    return _write(folder, t=t, risk=np.exp(-t), snapshot_step=np.arange(s),
                  snapshot_t=np.linspace(0.0, 2.0, s),
                  snapshot_a=rng.choice([-1.0, 1.0], (s, m)) * (1 + rng.random((s, m))),
                  snapshot_b=rng.standard_normal((s, m, d)), **extra)


def reduced_folder(folder, s=4, m=10, k=3, seed=1):
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, 11)
    return _write(folder, model=np.array("block_reduced"), t=t, risk=1.0 + t,
                  snapshot_t=np.linspace(0.0, 1.0, s), snapshot_a=rng.standard_normal((s, m)),
                  snapshot_z=np.abs(rng.standard_normal((s, m, k))), n_explicit=np.array(2))


def radial_folder(folder, s=6, m=40, seed=2, theta=None):
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 3.0, 31)
    if theta is None:
        theta = rng.uniform(0.0, 0.5 * np.pi, (s, m))
    return _write(folder, model=np.array("radial1d"), t=t, risk=0.1 + np.exp(-t),
                  snapshot_t=np.linspace(0.0, 3.0, theta.shape[0]),
                  snapshot_c=1.0 + rng.random(theta.shape), snapshot_theta=theta,
                  eps=np.where(np.arange(theta.shape[1]) % 2 == 0, 1.0, -1.0),
                  weights=np.full(theta.shape[1], 1.0 / theta.shape[1]))


@pytest.mark.parametrize("make, s", [(full_folder, 5), (reduced_folder, 4), (radial_folder, 6)])
def test_one_frame_per_snapshot_and_frame_size(tmp_path, make, s):
    run = make(tmp_path / "run")
    path = film.render(run, fmt="gif", dpi=DPI)
    assert path == run / "film.gif"
    frames = iio.imread(path, index=None)
    assert frames.shape[:3] == (s,) + FRAME_HW
    # the frames differ from one another: the moving artists are redrawn each frame
    assert all(np.any(frames[i] != frames[i + 1]) for i in range(s - 1))


def test_gif_is_deterministic(tmp_path):
    run = full_folder(tmp_path / "run")
    a = film.render(run, out=tmp_path / "a.gif", dpi=DPI).read_bytes()
    b = film.render(run, out=tmp_path / "b.gif", dpi=DPI).read_bytes()
    assert a == b


def _red_centroid_x(frame):
    """Mean column of the strongly red pixels (particles with a > 0) in an RGB frame."""
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    mask = (r > 150) & (g < 110) & (b < 110)
    assert mask.sum() > 0
    return np.nonzero(mask)[1].mean()


def test_particles_move_with_the_snapshots(tmp_path):
    # frame 0: every particle (a > 0) at x = -1; frame 1: at x = +1 (same y): the red cloud
    # must move right on the screen, which fails if the scatter is not updated per frame
    m, d = 8, 3
    b = np.zeros((2, m, d))
    b[0, :, 0], b[1, :, 0] = -1.0, 1.0
    b[:, :, 1] = np.linspace(-0.5, 0.5, m)
    run = _write(tmp_path / "run", snapshot_t=np.array([0.0, 1.0]),
                 snapshot_a=np.ones((2, m)), snapshot_b=b,
                 target_directions=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    frames = iio.imread(film.render(run, fmt="gif", dpi=60), index=None)
    left, right = _red_centroid_x(frames[0]), _red_centroid_x(frames[1])
    # the particle panel spans about 0.42 of the 480-pixel width; x moves by 2 of ~2.24
    assert right - left > 0.3 * 0.42 * frames.shape[2]


def test_histogram_follows_the_angles(tmp_path):
    # all of τ⁺ at θ near 0 in frame 0, near π/2 in frame 1: the red bars move right
    m = 20
    theta = np.array([np.full(m, 0.05), np.full(m, 1.5)])
    run = radial_folder(tmp_path / "run", theta=theta)
    frames = iio.imread(film.render(run, fmt="gif", dpi=60), index=None)
    assert _red_centroid_x(frames[1]) - _red_centroid_x(frames[0]) > 0.3 * 0.41 * 480


def test_block_reduced_coordinates(tmp_path):
    run = reduced_folder(tmp_path / "run")
    data = film.load_film(run)
    z = data["traj"]["snapshot_z"]
    xy, a, labels, _ = film._particle_coords(data, "subspace", film.target_info(run))
    np.testing.assert_allclose(xy[..., 0], np.hypot(z[..., 0], z[..., 1]))
    np.testing.assert_array_equal(xy[..., 1], z[..., 2])
    assert labels == ("‖b_H‖", "‖b_⊥‖")


def test_teacher_view_coordinates(tmp_path):
    # directions e1 + e2 and e2: the view's axes are their orthonormalised span
    dirs = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    run = full_folder(tmp_path / "run", d=4, target_directions=dirs)
    data = film.load_film(run)
    info = film.target_info(run)
    assert film._choose_view("full", "auto", info) == "teacher"
    xy, _, _, drawn = film._particle_coords(data, "teacher", info)
    b = data["traj"]["snapshot_b"]
    e1 = np.array([1.0, 1.0, 0.0, 0.0]) / np.sqrt(2)
    e2 = np.array([-1.0, 1.0, 0.0, 0.0]) / np.sqrt(2)
    np.testing.assert_allclose(xy[..., 0], b @ e1, atol=1e-12)
    np.testing.assert_allclose(xy[..., 1], b @ e2, atol=1e-12)
    np.testing.assert_allclose(drawn[1][1], [1 / np.sqrt(2), 1 / np.sqrt(2)], atol=1e-12)


def test_flow_targets_give_directions_and_views(tmp_path):
    from meanfield.experiments import flow

    def info_for(**keys):
        cfg = {**flow.DEFAULTS, **keys}
        return film.target_info(traj={}, config={"experiment": "flow", "config": cfg}), cfg

    info, cfg = info_for(teacher_units=2)
    teacher_b = flow.build_problem(cfg).target.b
    np.testing.assert_allclose(info["directions"], teacher_b / np.linalg.norm(
        teacher_b, axis=1, keepdims=True))
    assert film._choose_view("full", "auto", info) == "teacher"
    assert film._choose_view("full", "auto", info_for(teacher_units=4)[0]) == "pca"
    norm = info_for(target="norm", d_H=3)[0]
    assert norm["d_H"] == 3 and film._choose_view("full", "auto", norm) == "subspace"
    odd, cfg = info_for(target="odd_cubic", d=6)
    z = flow.build_problem(cfg).target.z
    np.testing.assert_allclose(odd["directions"][0], z / np.linalg.norm(z))
    with pytest.raises(ConfigError, match="--view"):
        film._choose_view("full", "teacher", info_for(teacher_units=4)[0])


def test_pca_view_spans_the_moving_plane(tmp_path):
    # particles only ever move in coordinates 2 and 3 of d = 5: the principal plane is theirs
    rng = np.random.default_rng(3)
    b = np.zeros((4, 30, 5))
    b[..., 2] = 3.0 * rng.standard_normal((4, 30))
    b[..., 3] = rng.standard_normal((4, 30))
    run = _write(tmp_path / "run", snapshot_t=np.arange(4.0), snapshot_a=np.ones((4, 30)),
                 snapshot_b=b)
    vt = film._principal_directions(b)
    plane = np.zeros((5, 5))
    plane[2, 2] = plane[3, 3] = 1.0
    np.testing.assert_allclose(vt.T @ vt, plane, atol=1e-12)  # the same plane, any basis
    assert film._choose_view("full", "auto", film.target_info(run)) == "pca"


def test_run_without_snapshots_is_a_clear_error(tmp_path):
    run = full_folder(tmp_path / "run")
    np.savez(run / "trajectory.npz", t=np.arange(3.0), risk=np.ones(3),
             snapshot_t=np.zeros(0), snapshot_a=np.zeros((0, 4)), snapshot_b=np.zeros((0, 4, 2)))
    code, out, err = run_film(run)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no snapshots" in err
    assert not (run / "film.mp4").exists() and not (run / "film.gif").exists()
    np.savez(run / "trajectory.npz", t=np.arange(3.0), risk=np.ones(3))  # none at all
    code, _, err = run_film(run)
    assert code == 2 and err.count("\n") == 1 and "no snapshots" in err
    code, _, err = run_film(tmp_path / "nowhere")
    assert code == 2 and err.count("\n") == 1


@pytest.mark.parametrize("args, key", [
    (["--fps", "0"], "--fps"), (["--fps", "61"], "--fps"), (["--fps", "2.5"], "--fps"),
    (["--fps", "abc"], "--fps"), (["--view", "sideways"], "--view"),
    (["--view", "histogram"], "--view"), (["--format", "avi"], "--format"),
    (["--out", "x.avi"], "--out"), (["--format", "gif", "--out", "x.mp4"], "--format"),
    (["--bogus"], "unrecognized")])
def test_bad_options_exit_2_with_one_line(tmp_path, args, key):
    run = full_folder(tmp_path / "run")
    code, out, err = run_film(run, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and key in err, err
    assert sorted(p.name for p in run.iterdir()) == ["trajectory.npz"]


def test_odd_moments_run_has_no_particles_to_film(tmp_path):
    run = _write(tmp_path / "run", model=np.array("odd_moments"), snapshot_t=np.arange(3.0))
    code, _, err = run_film(run)
    assert code == 2 and "no particles" in err


def test_mp4_reads_back(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as iio2

    run = full_folder(tmp_path / "run", s=7)
    code, out, err = run_film(run, "--dpi", DPI, "--fps", 5)
    assert code == 0, err
    assert out.strip() == f"wrote {run / 'film.mp4'}"
    with iio2.get_reader(run / "film.mp4", format="FFMPEG") as reader:
        frames = [f for f in reader]
        fps = reader.get_meta_data()["fps"]
    assert len(frames) == 7 and frames[0].shape == FRAME_HW + (3,)
    assert fps == 5
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []  # no temp file


def test_missing_mp4_writer_falls_back_to_gif(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails as if absent
    run = full_folder(tmp_path / "run", s=3)
    code, out, err = run_film(run, "--dpi", DPI)
    assert code == 0
    assert err.count("\n") == 1 and "imageio-ffmpeg is not installed" in err and "GIF" in err
    assert not (run / "film.mp4").exists()
    assert iio.imread(run / "film.gif", index=None).shape[0] == 3
    assert out.strip() == f"wrote {run / 'film.gif'}"


def test_flow_film_key(tmp_path):
    from meanfield.cli.simulate import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["flow", "--set", "d=3", "--set", "n_particles=8", "--set", "n_steps=150",
                 "--set", "film=true", "--out", str(tmp_path / "r"), "--quiet"],
                stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert cfg["film"] is True and cfg["n_snapshots"] == film_snapshots()
    traj = np.load(tmp_path / "r" / "trajectory.npz")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    path = tmp_path / "r" / summary["film"]
    assert path.name in ("film.mp4", "film.gif") and path.exists()
    import imageio.v2 as iio2

    with iio2.get_reader(path) as reader:
        n_frames = sum(1 for _ in reader)
    # log spacing over 150 steps rounds some of the 100 times to the same step
    assert n_frames == traj["snapshot_t"].shape[0] > 50


def film_snapshots():
    from meanfield.experiments.flow import FILM_SNAPSHOTS

    return FILM_SNAPSHOTS


def test_flow_film_needs_snapshots(tmp_path):
    from meanfield.cli.simulate import main

    err = io.StringIO()
    code = main(["flow", "--set", "film=true", "--set", "n_snapshots=0", "--out",
                 str(tmp_path / "r")], stdout=io.StringIO(), stderr=err)
    assert code == 2 and "n_snapshots" in err.getvalue() and not (tmp_path / "r").exists()


def test_command_line_entry_point(tmp_path):
    # one subprocess only (importing the package takes seconds): the exit-2 paths are
    # tested through main() above
    import os
    import subprocess

    run = full_folder(tmp_path / "run", s=2)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    good = subprocess.run([sys.executable, "-m", "meanfield.film", str(run), "--format", "gif",
                           "--dpi", str(DPI)], capture_output=True, text=True, env=env)
    assert good.returncode == 0, good.stderr
    assert good.stderr == ""  # no warning (e.g. about the module being imported twice)
    assert iio.imread(run / "film.gif", index=None).shape[:3] == (2,) + FRAME_HW
