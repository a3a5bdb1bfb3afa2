"""Films of the particle measure: ``python -m meanfield.film RUN_DIR``.

Turns the snapshots of a run folder (``trajectory.npz``) into an MP4 (through imageio-ffmpeg,
whose ffmpeg ships inside the wheel) or a GIF (through Pillow). Every frame shows the
particles at one snapshot time next to the risk curve, with a marker at that time; the
frame's title carries t and the risk. The axes are fixed over the whole film.

Views (``--view``; ``auto``: ``subspace`` for f* = ‖x_H‖, ``teacher`` for a target of one
or two directions, else ``pca``; ``subspace`` for block-reduced runs, ``histogram`` for 1-D
runs):

``teacher``   full model, a target with one or two directions (a teacher with ≤ 2 units, a
              linear target β, the odd target's direction w* ∝ z): with two directions, the
              plane they span; with one direction u*, the coordinates (⟨b, u*⟩, ‖b − ⟨b, u*⟩u*‖).
``subspace``  full model with f* = ‖x_H‖ and the block-reduced model: (‖b_H‖, ‖b_⊥‖).
``pca``       full model, any target: the top two principal directions of the snapshots of b
              (uncentred second moment, pooled over time), teacher directions projected in.
``histogram`` 1-D model (ε, c, θ): mass histograms of τ⁺ and τ⁻ in θ ∈ [0, π/2].

In the particle views the marker area is proportional to |a| (the largest |a| of the film
gets the largest marker) and the colour is the sign of a (red a > 0, blue a < 0).

Run-folder format read here: ``snapshot_t`` (s,) and, by ``model`` (a string array; absent
means ``"full"``): full: ``snapshot_a`` (s, m), ``snapshot_b`` (s, m, d); block_reduced:
``snapshot_a`` (s, m), ``snapshot_z`` (s, m, k) (‖b_⊥‖ is the last column of z; the others,
``n_explicit`` coordinates of b_H and then the norms of reduced blocks of H, give ‖b_H‖);
radial1d: ``snapshot_c``, ``snapshot_theta`` (s, m), ``eps`` and ``weights`` (m,; uniform
if absent). ``t`` and ``risk`` (the recorded risk curve) are optional.
Target directions come from an optional ``target_directions`` (k, d) array, else, for runs
of the ``flow`` experiment, from the problem rebuilt from ``config.json``.

Exit status of the command: 0 written; 2 bad input (one line naming what to change; nothing
written); 1 rendering failed.
"""
import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from .cli.config import ConfigError

__all__ = ["render", "main", "load_film", "target_info", "VIEWS", "FORMATS", "MODELS"]

VIEWS = ("auto", "teacher", "subspace", "pca", "histogram")
FORMATS = ("mp4", "gif")
MODELS = ("full", "block_reduced", "radial1d", "odd_moments")
#: views that apply to each model (``auto`` picks among them)
MODEL_VIEWS = {"full": ("teacher", "subspace", "pca"), "block_reduced": ("subspace",),
               "radial1d": ("histogram",), "odd_moments": ()}
MAX_FPS = 60
#: frame size: FIGSIZE inches times ``dpi``; 8 x 4 keeps both sides even (H.264 needs it)
FIGSIZE = (8.0, 4.0)
POS_COLOR = np.array([0.84, 0.15, 0.16, 0.75])   # a > 0
NEG_COLOR = np.array([0.12, 0.47, 0.71, 0.75])   # a < 0
#: rows of pooled snapshots used for the principal directions (a deterministic stride)
PCA_ROWS = 20000


# ----------------------------------------------------------------------------- loading
def _model_name(traj):
    if "model" not in traj:
        return "full"
    return str(np.asarray(traj["model"]).reshape(-1)[0])


def load_film(run_dir):
    """Read what a film needs from a run folder and check it.

    Parameters
    ----------
    run_dir : str or Path

    Returns
    -------
    dict
        ``model`` (str), ``traj`` (dict of arrays), ``config`` (the ``config.json`` content,
        empty if absent), ``n_frames`` (int, the number of snapshots).

    Raises
    ------
    ConfigError
        Not a run folder, no ``trajectory.npz``, no snapshots, or arrays of inconsistent
        shapes; the message says what to change.
    """
    from .io import load_npz

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError("RUN_DIR", f"{run_dir} is not a folder")
    path = run_dir / "trajectory.npz"
    if not path.exists():
        raise ConfigError("RUN_DIR", f"{run_dir} has no trajectory.npz; give the folder of a "
                                     "finished run")
    try:
        traj = load_npz(path)
    except Exception as exc:  # a torn or foreign file: say which
        raise ConfigError("RUN_DIR", f"cannot read {path}: {exc}") from None
    cfg_path = run_dir / "config.json"
    config = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    model = _model_name(traj)
    if model not in MODELS:
        raise ConfigError("RUN_DIR", f"{path} has model {model!r}; films know "
                                     + ", ".join(MODELS))
    if model == "odd_moments":
        raise ConfigError("RUN_DIR", f"{path} is a run of the odd-moment ODE, which has no "
                                     "particles to film; film the particle run instead")
    needed = {"full": ("snapshot_a", "snapshot_b"),
              "block_reduced": ("snapshot_a", "snapshot_z"),
              "radial1d": ("snapshot_c", "snapshot_theta", "eps")}[model]
    missing = [k for k in ("snapshot_t",) + needed if k not in traj]
    if missing:
        raise ConfigError("RUN_DIR", f"{path} has no snapshots ({', '.join(missing)} missing); "
                                     "rerun with snapshots, e.g. --set film=true")
    s = np.asarray(traj["snapshot_t"]).shape[0]
    if s == 0:
        raise ConfigError("RUN_DIR", f"{path} has no snapshots (n_snapshots = 0); rerun with "
                                     "--set n_snapshots=100 or --set film=true")
    for key in needed:
        arr = np.asarray(traj[key])
        if key in ("snapshot_a", "snapshot_b", "snapshot_z", "snapshot_c", "snapshot_theta"):
            if arr.ndim < 2 or arr.shape[0] != s:
                raise ConfigError("RUN_DIR", f"{path}: {key} has shape {arr.shape}, expected "
                                             f"{s} snapshots first")
    return {"model": model, "traj": traj, "config": config, "n_frames": int(s)}


def target_info(run_dir=None, traj=None, config=None):
    """Directions of the target and its subspace H, where the run folder tells them.

    Parameters
    ----------
    run_dir : str or Path, optional
        Read ``trajectory.npz`` and ``config.json`` from here when ``traj`` / ``config``
        are not given.
    traj, config : dict, optional

    Returns
    -------
    dict
        ``directions`` (k, d) unit rows or None, ``labels`` (k names), ``d_H`` (int or
        None, for f* = ‖x_H‖), ``note`` (why nothing was found, or "").
    """
    if traj is None or config is None:
        data = load_film(run_dir)
        traj, config = data["traj"], data["config"]
    info = {"directions": None, "labels": [], "d_H": None, "note": ""}
    if "target_directions" in traj:
        dirs = np.atleast_2d(np.asarray(traj["target_directions"], dtype=np.float64))
        info["directions"] = _unit_rows(dirs)
        info["labels"] = [f"b*{_sub(k + 1)}" for k in range(dirs.shape[0])]
        if "d_H" in traj:
            info["d_H"] = int(traj["d_H"])
        return info
    if config.get("experiment") != "flow":
        info["note"] = "no target directions in this run folder"
        return info
    try:
        from .experiments.flow import build_problem

        problem = build_problem(config["config"])
    except Exception as exc:  # e.g. a teacher_file that has moved: the film still renders
        info["note"] = f"target not rebuilt ({exc})"
        return info
    dirs, labels, d_H = _problem_directions(problem.target)
    info.update(directions=_unit_rows(dirs) if dirs else None, labels=labels, d_H=d_H)
    return info


_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _sub(k):
    return str(k).translate(_SUBSCRIPTS)


def _unit_rows(rows):
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    norms = np.linalg.norm(rows, axis=1)
    keep = norms > 0
    return rows[keep] / norms[keep, None] if np.any(keep) else None


def _problem_directions(target):
    """(list of (d,) directions, their labels, d_H or None) of a target or a sum of them."""
    parts = target if isinstance(target, tuple) else (target,)
    dirs, labels, d_H = [], [], None
    for part in parts:
        for kind, vec in part.directions():
            dirs.append(vec)
            labels.append(f"b*{_sub(len(labels) + 1)}" if kind == "b*" else kind)
        if part.subspace_dim is not None:
            d_H = part.subspace_dim
    return dirs, labels, d_H


# ----------------------------------------------------------------------------- views
def _choose_view(model, view, info):
    allowed = MODEL_VIEWS[model]
    k = 0 if info["directions"] is None else info["directions"].shape[0]
    if view == "auto":
        if model != "full":
            return allowed[0]
        if info["d_H"] is not None:
            return "subspace"
        return "teacher" if 1 <= k <= 2 else "pca"
    if view not in allowed:
        raise ConfigError("--view", f"{view!r} does not apply to a {model} run; accepted "
                                    "here: auto, " + ", ".join(allowed))
    if view == "teacher" and not 1 <= k <= 2:
        why = info["note"] or f"the target has {k} directions"
        other = "subspace or pca" if info["d_H"] is not None else "pca"
        raise ConfigError("--view", f"'teacher' needs a target with 1 or 2 directions ({why}); "
                                    f"use --view {other}")
    if view == "subspace" and model == "full" and info["d_H"] is None:
        raise ConfigError("--view", "'subspace' needs a target f* = ‖x_H‖ (target = 'norm'); "
                                    "use --view pca or teacher")
    return view


def _principal_directions(b_snap):
    """Top two right singular vectors (2, d) of the pooled snapshots (rows subsampled)."""
    rows = b_snap.reshape(-1, b_snap.shape[-1])
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    stride = max(1, rows.shape[0] // PCA_ROWS)
    _, _, vt = np.linalg.svd(rows[::stride], full_matrices=False)
    vt = vt[:2]
    if vt.shape[0] < 2:  # d = 1: the second axis is empty
        vt = np.vstack([vt, np.zeros_like(vt)])
    # fix the sign so that two renders agree: largest entry positive
    idx = np.argmax(np.abs(vt), axis=1)
    vt *= np.sign(vt[np.arange(vt.shape[0]), idx] + (vt[np.arange(vt.shape[0]), idx] == 0))[:, None]
    return vt


def _particle_coords(data, view, info):
    """(xy (s, m, 2), a (s, m), axis labels, drawn directions) of a particle view.

    Drawn directions: a list of (label, (2,) vector in view coordinates, relative length)
    for rays from the origin, or ("H", None, None) for the line ‖b_⊥‖ = 0.
    """
    traj, model = data["traj"], data["model"]
    a = np.asarray(traj["snapshot_a"], dtype=np.float64)
    drawn = []
    if model == "block_reduced":
        z = np.asarray(traj["snapshot_z"], dtype=np.float64)
        xy = np.stack([np.linalg.norm(z[..., :-1], axis=-1), z[..., -1]], axis=-1)
        return xy, a, ("‖b_H‖", "‖b_⊥‖"), [("H", None, None)]
    b = np.asarray(traj["snapshot_b"], dtype=np.float64)
    if view == "subspace":
        d_H = info["d_H"]
        xy = np.stack([np.linalg.norm(b[..., :d_H], axis=-1),
                       np.linalg.norm(b[..., d_H:], axis=-1)], axis=-1)
        return xy, a, ("‖b_H‖", "‖b_⊥‖"), [("H", None, None)]
    dirs, labels = info["directions"], info["labels"]
    if view == "teacher":
        if dirs.shape[0] == 2 and np.linalg.matrix_rank(dirs, tol=1e-10) == 2:
            q, _ = np.linalg.qr(dirs.T)  # (d, 2): orthonormal basis of the span
            q *= np.sign(np.diag(q.T @ dirs.T))[None, :]  # axis k along +b*_k
            xy = b @ q
            for lab, v in zip(labels, dirs @ q):
                drawn.append((lab, v, 1.0))
            return xy, a, (f"⟨b, e₁⟩ ({labels[0]})", "⟨b, e₂⟩"), drawn
        u = dirs[0]
        x = b @ u
        y = np.linalg.norm(b - x[..., None] * u, axis=-1)
        return (np.stack([x, y], axis=-1), a, (f"⟨b, u⟩, u = {labels[0]}/‖{labels[0]}‖",
                                                "‖b − ⟨b, u⟩u‖"),
                [(labels[0], np.array([1.0, 0.0]), 1.0)])
    vt = _principal_directions(b)
    xy = b @ vt.T
    if dirs is not None:
        proj = dirs @ vt.T
        for lab, v in zip(labels, proj):
            drawn.append((lab, v, float(np.linalg.norm(v))))
    return xy, a, ("principal direction 1", "principal direction 2"), drawn


def _limits(values, margin=0.06):
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return -1.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo
    if span <= 0:
        span = max(abs(hi), 1.0)
    return lo - margin * span, hi + margin * span


def _risk_at(traj, t_snap):
    """Risk at the snapshot times (interpolated in the recorded curve) and the curve."""
    if "t" not in traj or "risk" not in traj:
        return None, None, None
    t = np.asarray(traj["t"], dtype=np.float64)
    r = np.asarray(traj["risk"], dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(r)
    if not np.any(ok):
        return None, None, None
    t, r = t[ok], r[ok]
    return t, r, np.interp(t_snap, t, r)


# ----------------------------------------------------------------------------- figure
class _Frames:
    """One matplotlib figure whose artists are updated in place, frame by frame."""

    def __init__(self, data, view, info, dpi):
        # a Figure with its own Agg canvas: no pyplot, so the caller's backend is untouched
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.data = data
        traj = data["traj"]
        self.t_snap = np.asarray(traj["snapshot_t"], dtype=np.float64)
        self.fig = Figure(figsize=FIGSIZE, dpi=dpi)
        self.canvas = FigureCanvasAgg(self.fig)
        self.title = self.fig.text(0.5, 0.955, "", ha="center", va="center", fontsize=10,
                                   family="monospace")
        self.moving = [self.title]
        t_rec, r_rec, self.r_snap = _risk_at(traj, self.t_snap)
        self.view = view
        if view == "histogram":
            self._setup_histogram(info)
        else:
            self._setup_particles(view, info)
        self._setup_risk(t_rec, r_rec)
        self.size = self.canvas.get_width_height()  # (W, H)
        # Blitting: the axes, ticks, labels and the risk curve are drawn once; each frame
        # restores that background and draws only the moving artists (a full redraw spends
        # most of its time laying out tick labels)
        self.moving = [a for a in self.moving if a is not None]
        for artist in self.moving:
            artist.set_animated(True)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    # -- particle views
    def _setup_particles(self, view, info):
        self.xy, a, labels, drawn = _particle_coords(self.data, view, info)
        ax = self.fig.add_axes([0.075, 0.12, 0.42, 0.76])
        xlim, ylim = _limits(self.xy[..., 0]), _limits(self.xy[..., 1])
        if any(v is None for _, v, _ in drawn):
            # (‖b_H‖, ‖b_⊥‖): keep ‖b_⊥‖ = 0, where the target's units live, in view
            xlim = (min(xlim[0], -0.03 * xlim[1]), xlim[1])
            ylim = (min(ylim[0], -0.03 * ylim[1]), ylim[1])
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_xlabel(labels[0], fontsize=8)
        ax.set_ylabel(labels[1], fontsize=8)
        ax.tick_params(labelsize=7)
        amax = float(np.nanmax(np.abs(a))) if np.any(np.isfinite(a)) else 1.0
        m = a.shape[1]
        # largest marker area (pt²): smaller for many particles so the cloud stays readable
        s_max = 40.0 * min(1.0, np.sqrt(256.0 / m))
        self.sizes = s_max * np.abs(np.nan_to_num(a)) / (amax if amax > 0 else 1.0)
        self.colors = np.where((a >= 0)[..., None], POS_COLOR, NEG_COLOR)
        self._draw_directions(ax, drawn)
        self.scatter = ax.scatter(self.xy[0, :, 0], self.xy[0, :, 1], s=self.sizes[0],
                                  c=self.colors[0], linewidths=0, zorder=3)
        self.moving.append(self.scatter)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], ls="", marker="o", color=POS_COLOR[:3], label="a > 0"),
                   Line2D([], [], ls="", marker="o", color=NEG_COLOR[:3], label="a < 0")]
        ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.8,
                  title="area ∝ |a|", title_fontsize=7)
        self.panel = ax

    def _draw_directions(self, ax, drawn):
        xlo, xhi = ax.get_xlim()
        ylo, yhi = ax.get_ylim()
        reach = 0.9 * min(max(abs(xlo), abs(xhi)), max(abs(ylo), abs(yhi)))
        for lab, v, rel in drawn:
            if v is None:  # the target's units live in H: the line ‖b_⊥‖ = 0
                ax.axhline(0.0, color="k", lw=2.0, alpha=0.5, zorder=1)
                ax.text(xhi, 0.0, "H ", ha="right", va="bottom", fontsize=8, alpha=0.7)
                continue
            n = float(np.linalg.norm(v))
            if n == 0:
                continue
            if v[1] == 0 and v[0] > 0:  # the x axis itself (one direction)
                end = np.array([0.95 * xhi if xhi > 0 else 1.0, 0.0])
            else:
                end = v / n * reach * rel
            ax.plot([0.0, end[0]], [0.0, end[1]], color="k", lw=1.4, alpha=0.6, zorder=2)
            ax.text(end[0], end[1], " " + lab, fontsize=8, alpha=0.8, zorder=2)

    # -- 1-D model
    def _setup_histogram(self, info, bins=45):
        from .models.lowdim import angle_law

        traj = self.data["traj"]
        eps = np.asarray(traj["eps"], dtype=np.float64)
        w = (np.asarray(traj["weights"], dtype=np.float64) if "weights" in traj
             else np.full(eps.shape[0], 1.0 / eps.shape[0]))
        c = np.asarray(traj["snapshot_c"], dtype=np.float64)
        th = np.asarray(traj["snapshot_theta"], dtype=np.float64)
        hists = [angle_law(eps, c[i], th[i], w, bins) for i in range(c.shape[0])]
        self.edges = hists[0][0]
        self.h_plus = np.array([h[1] for h in hists])
        self.h_minus = np.array([h[2] for h in hists])
        self.mass_plus = self.h_plus.sum(axis=1)
        self.mass_minus = self.h_minus.sum(axis=1)
        ax_p = self.fig.add_axes([0.085, 0.53, 0.41, 0.36])
        ax_m = self.fig.add_axes([0.085, 0.12, 0.41, 0.36], sharex=ax_p)
        self.stairs = []
        for ax, h, color, name in ((ax_p, self.h_plus, POS_COLOR, "τ⁺"),
                                   (ax_m, self.h_minus, NEG_COLOR, "τ⁻")):
            top = float(np.nanmax(h)) if h.size and np.nanmax(h) > 0 else 1.0
            ax.set_ylim(0.0, 1.05 * top)
            ax.set_ylabel(f"mass of {name}", fontsize=8)
            ax.tick_params(labelsize=7)
            self.stairs.append(ax.stairs(h[0], self.edges, fill=True, color=color[:3],
                                         alpha=0.8))
        self.moving += self.stairs
        ax_m.set_xlim(0.0, 0.5 * np.pi)
        ax_m.set_xticks([0, np.pi / 8, np.pi / 4, 3 * np.pi / 8, np.pi / 2],
                        ["0", "π/8", "π/4", "3π/8", "π/2"])
        ax_m.set_xlabel("θ (angle of b to H)", fontsize=8)
        ax_p.tick_params(labelbottom=False)
        self.panel = ax_p

    # -- risk curve
    def _setup_risk(self, t_rec, r_rec):
        ax = self.fig.add_axes([0.625, 0.12, 0.35, 0.76])
        ax.tick_params(labelsize=7)
        ax.set_xlabel("t", fontsize=8)
        ax.set_ylabel("risk", fontsize=8)
        self.risk_marker = None
        if t_rec is None:
            ax.text(0.5, 0.5, "no risk curve in this run", ha="center", transform=ax.transAxes)
            return
        positive = np.all(r_rec > 0)
        ax.plot(t_rec, r_rec, color="0.3", lw=1.0)
        if positive:
            ax.set_yscale("log")
        t_pos = self.t_snap[self.t_snap > 0]
        t_end = max(float(t_rec.max()), float(self.t_snap.max()))
        # log-spaced snapshots crowd early times: a symlog axis spreads them out
        if t_pos.size >= 3 and np.median(t_pos) < 0.25 * t_end:
            from matplotlib.ticker import FixedLocator, NullLocator

            lin = float(t_pos.min())
            ax.set_xscale("symlog", linthresh=lin, linscale=0.5)
            decades = 10.0 ** np.arange(np.ceil(np.log10(lin) + 0.3), np.log10(t_end) + 1e-9)
            ax.xaxis.set_major_locator(FixedLocator(np.concatenate([[0.0], decades])))
            ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(0.0, t_end)
        self.risk_marker, = ax.plot([self.t_snap[0]], [self.r_snap[0]], "o", ms=6,
                                    color="tab:orange", zorder=3)
        self.moving.append(self.risk_marker)

    # -- one frame
    def frame(self, i):
        """RGB pixels (H, W, 3) uint8 of frame ``i``."""
        t = self.t_snap[i]
        text = f"t = {t:<9.4g}"
        if self.r_snap is not None:
            text += f"   risk = {self.r_snap[i]:.4e}"
        if self.view == "histogram":
            self.stairs[0].set_data(self.h_plus[i])
            self.stairs[1].set_data(self.h_minus[i])
            text += f"   τ⁺ = {self.mass_plus[i]:.3f}  τ⁻ = {self.mass_minus[i]:.3f}"
        else:
            self.scatter.set_offsets(self.xy[i])
            self.scatter.set_sizes(self.sizes[i])
            self.scatter.set_facecolor(self.colors[i])
        if self.risk_marker is not None:
            self.risk_marker.set_data([t], [self.r_snap[i]])
        self.title.set_text(text)
        self.canvas.restore_region(self.background)
        for artist in self.moving:
            self.fig.draw_artist(artist)
        return np.asarray(self.canvas.buffer_rgba())[..., :3]


# ----------------------------------------------------------------------------- writers
def _ffmpeg():
    """imageio-ffmpeg's write_frames, or (None, why) when no ffmpeg writer is usable."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None, "imageio-ffmpeg is not installed"
    try:
        imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # the wheel's binary is missing or not runnable
        return None, f"no ffmpeg executable ({exc})"
    return imageio_ffmpeg.write_frames, ""


def _write_mp4(frames, path, fps, size, write_frames):
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # ffmpeg writes a temporary file next to the target, renamed over it when complete, so
    # a reader never sees a torn film
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        gen = write_frames(str(tmp), size, fps=fps, codec="libx264", macro_block_size=2,
                           quality=7, output_params=["-f", "mp4"])
        gen.send(None)
        try:
            for frame in frames:
                gen.send(np.ascontiguousarray(frame))
        finally:
            gen.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_gif(frames, path, fps):
    from PIL import Image

    from .io import atomic_write_bytes

    images, palette = [], None
    for frame in frames:
        img = Image.fromarray(frame)
        if palette is None:
            # one palette for the whole film, taken from the first frame (it already has
            # every colour: both signs, the curve, the marker); no dithering keeps it small
            palette = img.quantize(colors=128, method=Image.Quantize.MAXCOVERAGE)
        images.append(img.quantize(palette=palette, dither=Image.Dither.NONE))
    buf = io.BytesIO()
    duration = max(20, int(round(1000.0 / fps / 10.0)) * 10)  # GIF counts in 10 ms
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=duration, loop=0, optimize=False)
    return atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------- entry points
def _check_options(fmt, fps, view, out):
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError("--format", f"got {fmt!r}; accepted values are: mp4, gif")
    if isinstance(fps, bool) or not isinstance(fps, (int, np.integer)) or not 1 <= fps <= MAX_FPS:
        raise ConfigError("--fps", f"must be an integer between 1 and {MAX_FPS}, got {fps!r}")
    if view not in VIEWS:
        raise ConfigError("--view", f"got {view!r}; accepted values are: " + ", ".join(VIEWS))
    if out is not None:
        suffix = Path(out).suffix.lower().lstrip(".")
        if suffix not in FORMATS:
            raise ConfigError("--out", f"{out} must end in .mp4 or .gif")
        if fmt is not None and fmt != suffix:
            raise ConfigError("--format", f"{fmt} does not match --out {out}; drop one of them")
        fmt = suffix
    return fmt or "mp4"


def render(run_dir, out=None, fmt=None, fps=10, view="auto", dpi=100, log=None):
    """Render the snapshots of a run folder into a film.

    Parameters
    ----------
    run_dir : str or Path
        A run folder with ``trajectory.npz`` holding snapshots (module docstring).
    out : str or Path, optional
        The film's path (``.mp4`` or ``.gif``); default ``run_dir/film.<fmt>``.
    fmt : {"mp4", "gif"}, optional
        Default: from ``out``'s suffix, else ``mp4``. Without a usable ffmpeg, ``mp4``
        falls back to a GIF next to the requested path (one line through ``log``).
    fps : int
        Frames per second, 1 to 60.
    view : str
        One of :data:`VIEWS`.
    dpi : int
        Pixels per inch of the 8 x 4 inch frame (100: 800 x 400 pixels).
    log : callable, optional
        Receives one-line messages (the fallback); default: print to stderr.

    Returns
    -------
    Path
        The file written: one frame per snapshot.

    Raises
    ------
    ConfigError
        Bad options or a run folder without snapshots, before anything is written.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    fmt = _check_options(fmt, fps, view, out)
    if isinstance(dpi, bool) or not isinstance(dpi, (int, np.integer)) or not 20 <= dpi <= 400:
        raise ConfigError("dpi", f"must be an integer between 20 and 400, got {dpi!r}")
    data = load_film(run_dir)
    info = target_info(traj=data["traj"], config=data["config"])
    view = _choose_view(data["model"], view, info)
    path = Path(out) if out is not None else Path(run_dir) / f"film.{fmt}"
    write_frames = None
    if fmt == "mp4":
        write_frames, why = _ffmpeg()
        if write_frames is None:
            path = path.with_suffix(".gif")
            log(f"film: {why}; writing a GIF instead: {path}")
            fmt = "gif"
    film = _Frames(data, view, info, int(dpi))
    frames = (film.frame(i) for i in range(data["n_frames"]))
    if fmt == "mp4":
        return _write_mp4(frames, path, int(fps), film.size, write_frames)
    return _write_gif(frames, path, int(fps))


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise ConfigError(None, f"{message} (see python -m meanfield.film --help)")


def _parser():
    p = _Parser(prog="python -m meanfield.film",
                description="Render the snapshots of a run folder as a film (MP4 or GIF).",
                epilog="Example: python -m meanfield.film runs/flow-1 --format gif --fps 12")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder with trajectory.npz")
    p.add_argument("--format", choices=None, default=None, help="mp4 (default) or gif")
    p.add_argument("--fps", default="10", help="frames per second, 1 to 60 (default 10)")
    p.add_argument("--view", default="auto", help="auto (default), " + ", ".join(VIEWS[1:]))
    p.add_argument("--out", metavar="FILE", help="output file (default RUN_DIR/film.mp4)")
    p.add_argument("--dpi", default="100", help="pixels per inch of the 8 x 4 in frame")
    return p


def _int_option(key, text):
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(key, f"expected an integer, got {text!r}") from None
    if not value.is_integer():
        raise ConfigError(key, f"expected an integer, got {text!r}")
    return int(value)


def main(argv=None, stdout=None, stderr=None):
    """Command-line entry point; returns the exit status (0 written, 1 failed, 2 bad input)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = _parser().parse_args(argv)
        fps = _int_option("--fps", args.fps)
        dpi = _int_option("--dpi", args.dpi)
        path = render(args.run_dir, out=args.out, fmt=args.format, fps=fps, view=args.view,
                      dpi=dpi, log=lambda msg: stderr.write(msg + "\n"))
    except ConfigError as exc:
        stderr.write(f"error: {exc}\n")
        return 2
    except Exception as exc:  # a rendering failure: nothing partial is left behind
        stderr.write(f"film failed: {type(exc).__name__}: {exc}\n")
        return 1
    stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    from meanfield.cli._startup import exit_command

    exit_command(main())
