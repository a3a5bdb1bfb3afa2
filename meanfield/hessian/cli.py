"""``python -m meanfield.hessian RUN_DIR [--k K] [--polish]``: the Hessian at the end of a run.

Reads the final state (``a``, ``b``, ``weights`` of ``RUN_DIR/trajectory.npz``) of a ``flow``
run, rebuilds its problem from ``RUN_DIR/config.json`` (``experiments.flow.build_problem``),
optionally polishes it to a critical point (``--polish``: trust-krylov on exact gradients
and Hessian-vector products, then Newton–MINRES, one line per iteration), and writes

* ``hessian.json``: ``eigenvalues`` of H = D^{-1/2} ∇²F D^{-1/2} (= m ∇²F for uniform
  weights; ascending: all of them when the dense matrix is cheap (n ≤ ``--dense-max``
  parameters) and ``--k`` is not given, else the k smallest then the k largest, k = 20 by
  default, by ``--method lobpcg`` (stored pair geometry, LOBPCG with the two-level
  per-particle preconditioner of :mod:`meanfield.hessian.lobpcg`; the default when the 4 m²
  doubles fit and k < m; ``residuals`` and ``lobpcg_converged`` say how far it got) or
  ``--method lanczos`` (ARPACK on tiled products)), ``n_zero_modes`` (spectral-gap count), ``n_zero_modes_predicted`` (the
  cluster rule of :mod:`meanfield.hessian`), ``n_zero_modes_symmetry``, ``spectral_gap``,
  ``n_negative``, ``n_positive``, ``gradient_norm``, ``risk`` and, with ``--polish``, the
  iteration history;
* ``spectrum.png``: the eigenvalues on a symmetric-log scale with the zero band;
* with ``--polish``, ``hessian_polished.npz`` (the polished ``a``, ``b``, ``weights``).

With ``--deflate`` the k smallest eigenvalues are those of H on the orthogonal complement of
the m rescaling directions (zero modes at any critical point; ``rescaling_residual`` says
how null they are at this state), and ``n_zero_modes`` is m plus the zero eigenvalues found
there: with m ≫ k this is the way to compare the count with the prediction.

Nothing is overwritten: if ``hessian.json`` exists, the outputs of this analysis get the
first free suffix (``hessian-2.json``, ``spectrum-2.png``, ``hessian_polished-2.npz``, ...)
and the path is printed. Exit status: 0 done; 2 bad input (no final state, not an exact
problem, bad ``--k``), one line on stderr, nothing written.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]

EXIT_OK, EXIT_INVALID = 0, 2


class _Invalid(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise _Invalid(f"{message} (see python -m meanfield.hessian --help)")


def _parser():
    p = _Parser(prog="python -m meanfield.hessian",
                description="Spectrum and zero modes of the Hessian at the final state of a "
                            "flow run; writes RUN_DIR/hessian.json and spectrum.png.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished `flow` run folder")
    p.add_argument("--k", type=int, default=None,
                   help="Lanczos: the K smallest and K largest eigenvalues (default: all by "
                        "a dense eigh when there are at most --dense-max parameters, else 20)")
    p.add_argument("--deflate", action="store_true",
                   help="Lanczos on the complement of the m rescaling directions (zero "
                        "modes at any critical point); n_zero_modes then counts them plus "
                        "the zero eigenvalues found")
    p.add_argument("--method", choices=("lobpcg", "lanczos"), default=None,
                   help="eigensolver when not dense: lobpcg (stored pair geometry, 4 m^2 "
                        "doubles, two-level preconditioner; the default when it fits in "
                        "memory) or lanczos (ARPACK on tiled products)")
    p.add_argument("--rtol", type=float, default=1e-8,
                   help="lobpcg: residual tolerance relative to the largest eigenvalue "
                        "(default 1e-8)")
    p.add_argument("--stored-dtype", choices=("float64", "float32"), default="float64",
                   help="lobpcg: precision of the stored pair matrices (float32: half the "
                        "memory and product time, products to ~1e-8 relative; default "
                        "float64)")
    p.add_argument("--polish", action="store_true",
                   help="first converge to a critical point (trust-krylov + Newton-MINRES)")
    p.add_argument("--polish-maxiter", type=int, default=200,
                   help="trust-krylov iterations of --polish (default 200)")
    p.add_argument("--polish-max-products", type=int, default=None,
                   help="Hessian-vector products allowed to trust-krylov, and to each Newton "
                        "step, of --polish (default: no limit)")
    p.add_argument("--dense-max", type=int, default=None,
                   help="largest number of parameters for the dense spectrum (default 5000)")
    p.add_argument("--angle-tol", type=float, default=1e-6,
                   help="directions closer than this (radians) form one cluster")
    p.add_argument("--quiet", action="store_true", help="no per-iteration lines")
    return p


def _load(run_dir):
    """(config dict, a, b, weights) of a run folder, or raise _Invalid naming the problem."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise _Invalid(f"RUN_DIR: {run_dir} is not a folder; give a finished flow run folder")
    cfg_file = run_dir / "config.json"
    traj = run_dir / "trajectory.npz"
    if not cfg_file.exists():
        raise _Invalid(f"RUN_DIR: {run_dir} has no config.json; give a folder written by "
                       "python -m meanfield.simulate flow")
    saved = json.loads(cfg_file.read_text())
    if saved.get("experiment") != "flow":
        raise _Invalid(f"RUN_DIR: {run_dir} is a {saved.get('experiment')!r} run; the Hessian "
                       "reads the final particle state of a 'flow' run")
    if not traj.exists():
        raise _Invalid(f"RUN_DIR: {run_dir} has no final state (trajectory.npz); finish the "
                       f"run first (python -m meanfield.simulate --resume {run_dir})")
    try:
        with np.load(traj, allow_pickle=False) as data:
            if not {"a", "b"} <= set(data.files):
                raise _Invalid(f"RUN_DIR: {traj} lacks the final state (arrays a and b)")
            a, b = data["a"], data["b"]
            w = data["weights"] if "weights" in data.files else None
    except (OSError, EOFError, ValueError) as exc:
        raise _Invalid(f"RUN_DIR: {traj} is not a readable .npz file ({exc})") from None
    return saved, a, b, w


def _free_name(run_dir):
    """'' if hessian.json is free, else the first '-N' suffix with every output free."""
    run_dir = Path(run_dir)

    def free(suffix):
        return not any((run_dir / f"{stem}{suffix}{ext}").exists() for stem, ext in
                       (("hessian", ".json"), ("spectrum", ".png"),
                        ("hessian_polished", ".npz")))

    if free(""):
        return ""
    i = 2
    while not free(f"-{i}"):
        i += 1
    return f"-{i}"


def _plot(path, result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_write_bytes
    import io

    ev = np.asarray(result["eigenvalues"])
    thr = result["zero_threshold"]
    if result["method"] == "dense":
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(np.arange(ev.size), ev, ".", ms=3)
        ax.set_xlabel("index (ascending)")
        axes = [ax]
    else:
        k = ev.size // 2
        fig, axes = plt.subplots(1, 2, figsize=(9, 4))
        axes[0].plot(np.arange(k), ev[:k], ".", ms=4)
        axes[0].set_xlabel(f"{k} smallest (Lanczos)")
        axes[1].plot(np.arange(k), ev[k:], ".", ms=4)
        axes[1].set_xlabel(f"{k} largest (Lanczos)")
    for ax in axes:
        ax.set_yscale("symlog", linthresh=max(thr, 1e-300))
        ax.axhspan(-thr, thr, color="0.85", zorder=0, label="zero band (spectral gap)")
        ax.set_ylabel("eigenvalue of H = D^-1/2 ∇²F D^-1/2")
    axes[0].legend(fontsize=8)
    gap = result["spectral_gap"]
    fig.suptitle(f"m = {result['m']}, d = {result['d']}: {result['n_negative']} negative, "
                 f"{result['n_zero_modes']} zero (predicted {result['n_zero_modes_predicted']}; "
                 f"gap ×{gap:.3g}), |grad| = {result['gradient_norm']:.2e}", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main(argv=None, stdout=None, stderr=None):
    """Entry point; returns the exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = _parser().parse_args(argv)
        saved, a, b, w = _load(args.run_dir)
        from ..experiments.flow import build_problem
        from . import DENSE_MAX

        try:
            problem = build_problem(saved["config"])
        except ValueError as exc:
            raise _Invalid(f"RUN_DIR: its config does not rebuild a problem ({exc})") from None
        cfg = saved["config"]
        if not problem.exact:
            raise _Invalid(f"RUN_DIR: the exact Hessian needs Gaussian inputs (or spherical "
                           f"with a teacher/norm target) and activation relu or linear; this "
                           f"run has input={cfg.get('input')!r}, activation="
                           f"{cfg.get('activation')!r}")
        if b.ndim != 2 or b.shape[1] != problem.d or a.shape != (b.shape[0],):
            raise _Invalid(f"RUN_DIR: final state has shapes a {a.shape}, b {b.shape}; "
                           f"expected (m,) and (m, {problem.d})")
        m, d = b.shape
        n = m * (d + 1)
        dense_max = DENSE_MAX if args.dense_max is None else args.dense_max
        if args.dense_max is not None and args.dense_max < 1:
            raise _Invalid("--dense-max: must be >= 1")
        k = args.k
        if k is None and (n > dense_max or args.deflate):
            k = min(20, n // 2 - 1)
        if k is not None and not 1 <= k < n // 2:
            raise _Invalid(f"--k: must be between 1 and {n // 2 - 1} for this run's {n} "
                           f"parameters, got {k}")
        if args.method == "lobpcg" and k is not None and k >= m:
            raise _Invalid(f"--k: --method lobpcg needs k < m = {m} (one coarse vector per "
                           f"particle), got {k}; use --method lanczos")
        if not (0 < args.rtol < 1):
            raise _Invalid("--rtol: must be in (0, 1)")
        if args.polish_maxiter < 1:
            raise _Invalid("--polish-maxiter: must be >= 1")
        if args.polish_max_products is not None and args.polish_max_products < 1:
            raise _Invalid("--polish-max-products: must be >= 1")
        if not (args.angle_tol > 0):
            raise _Invalid("--angle-tol: must be > 0")
        if w is not None and np.any(np.asarray(w) <= 0):
            raise _Invalid("RUN_DIR: the final state has particles of zero weight; the "
                           "Hessian is scaled by w^(-1/2): drop them first")
    except _Invalid as exc:
        stderr.write(f"error: {exc}\n")
        return EXIT_INVALID

    from . import analyse, polish
    from ..io import atomic_savez, atomic_write_json

    run_dir = Path(args.run_dir)
    suffix = _free_name(run_dir)
    log = (lambda msg: None) if args.quiet else (lambda msg: stdout.write(msg + "\n"))
    start = time.perf_counter()
    record = {"run_dir": str(run_dir), "experiment": saved.get("experiment"),
              "command": ["python", "-m", "meanfield.hessian"] + list(
                  argv if argv is not None else sys.argv[1:]),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "load_average_1min": os.getloadavg()[0]}
    import numba

    record["threads"] = numba.get_num_threads()
    if args.polish:
        log(f"polishing {m} particles in d = {d} ({n} parameters)")
        pol = polish(problem, a, b, w, maxiter=args.polish_maxiter, log=log,
                     max_products=args.polish_max_products)
        a, b = pol["a"], pol["b"]
        record["polish"] = {"history": [list(h) for h in pol["history"]],
                            "message": pol["message"], "n_products": pol["n_products"],
                            "seconds": pol["seconds"]}
        atomic_savez(run_dir / f"hessian_polished{suffix}.npz", a=a, b=b,
                     weights=w if w is not None else np.full(m, 1.0 / m))
    method = args.method
    if method is None:
        from .stored import STORED_MAX_BYTES, stored_bytes

        item = np.dtype(args.stored_dtype).itemsize
        method = "lobpcg" if (stored_bytes(m) * item // 8 <= STORED_MAX_BYTES and k is not None
                              and k < m) else "lanczos"
    res = analyse(problem, a, b, w, k=k, dense_max=dense_max, angle_tol=args.angle_tol,
                  deflate_rescaling=args.deflate, method=method, rtol=args.rtol, log=log,
                  stored_dtype=np.dtype(args.stored_dtype))
    record.update(res)
    record["k"] = k
    record["spectral_gap"] = None if not np.isfinite(res["spectral_gap"]) else \
        res["spectral_gap"]
    record["wall_time_s"] = time.perf_counter() - start
    json_path = run_dir / f"hessian{suffix}.json"
    atomic_write_json(json_path, record)
    _plot(run_dir / f"spectrum{suffix}.png", {**res, "spectral_gap": res["spectral_gap"]})
    stdout.write(
        f"{json_path}: {res['method']}, {n} parameters, {res['n_negative']} negative, "
        f"{res['n_zero_modes']}{'+' if res['saturated'] else ''} zero (predicted "
        f"{res['n_zero_modes_predicted']}, symmetries {res['n_zero_modes_symmetry']}), "
        f"{res['n_positive']} positive; gap ×{res['spectral_gap']:.3g}; "
        f"|grad| = {res['gradient_norm']:.3e}; F = {res['risk']:.10g}\n")
    return EXIT_OK
