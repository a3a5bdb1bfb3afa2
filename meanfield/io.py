"""Files a run leaves behind: atomic writes, checkpoints and the run loader.

Every file is written to a temporary name in the same folder, flushed, fsynced and renamed
over the final name, so a reader (or a resumed run) sees either the old file or the new one,
never a torn one, even if the process is killed with SIGKILL mid-write.
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_savez", "atomic_write_json", "atomic_write_bytes", "load_npz", "load_run", "Run"]


def _atomic_replace(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_savez(path, **arrays):
    """Write arrays to ``path`` (.npz, uncompressed) atomically."""
    return _atomic_replace(path, lambda fh: np.savez(fh, **arrays))


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    return _atomic_replace(path, lambda fh: fh.write(data))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def atomic_write_json(path, obj):
    """Write ``obj`` as indented JSON atomically (NumPy scalars and arrays are converted)."""
    text = json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n"
    return atomic_write_bytes(path, text.encode())


def load_npz(path):
    """Load every array of an .npz file into a dict (the file is closed afterwards)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


class Run(dict):
    """Results of one run folder: ``config``, ``summary``, ``trajectory`` and ``figures``.

    A dict with attribute access; ``run.trajectory`` is a dict of arrays (``t``, ``risk``,
    final ``a``, ``b`` and snapshots) when the experiment writes ``trajectory.npz``.
    """

    __getattr__ = dict.__getitem__


def load_run(directory):
    """Load a finished (or failed) run folder written by ``python -m meanfield.simulate``.

    Parameters
    ----------
    directory : str or Path
        The run's output folder.

    Returns
    -------
    Run
        ``config`` and ``summary`` (dicts from the JSON files), ``trajectory`` (dict of
        arrays, empty if absent), ``arrays`` (every other .npz in the folder, by stem) and
        ``figures`` (list of PNG paths).
    """
    directory = Path(directory)
    if not (directory / "config.json").exists():
        raise FileNotFoundError(f"{directory} is not a run folder (no config.json)")
    run = Run()
    run["path"] = directory
    run["config"] = json.loads((directory / "config.json").read_text())
    summary = directory / "summary.json"
    run["summary"] = json.loads(summary.read_text()) if summary.exists() else {}
    traj = directory / "trajectory.npz"
    run["trajectory"] = load_npz(traj) if traj.exists() else {}
    run["arrays"] = {p.stem: load_npz(p) for p in sorted(directory.glob("*.npz"))
                     if p.name != "trajectory.npz"}
    run["figures"] = sorted(directory.glob("*.png"))
    return run
