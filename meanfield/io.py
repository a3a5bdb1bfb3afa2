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

__all__ = ["atomic_savez", "atomic_write_json", "atomic_write_bytes", "load_npz", "load_run", "Run",
           "load_array_file", "remove_stale_temporaries", "file_mode"]


def _umask():
    """The process umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode():
    """Permissions of a new regular file under the current umask (0o666 & ~umask)."""
    return 0o666 & ~_umask()


def _atomic_replace(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; results follow the umask like any other file, so that
        # collaborators sharing the disk can read them
        os.fchmod(fd, file_mode())
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


def remove_stale_temporaries(directory):
    """Delete the temporary files of writes that a killed process left behind
    (``.NAME.*.tmp`` from :func:`_atomic_replace`, ``.STEM.tmp.png`` from figures).
    Returns the removed paths."""
    removed = []
    for pattern in (".*.tmp", ".*.tmp.*"):
        for p in Path(directory).rglob(pattern):
            if p.is_file():
                p.unlink()
                removed.append(p)
    return removed


def load_array_file(path, required, optional=(), shapes=None):
    """Read a user's .npz file of real arrays, refusing anything else with a clear reason.

    Parameters
    ----------
    path : str or Path
    required, optional : sequences of str
        Array names that must / may be present.

    Returns
    -------
    dict
        ``name -> float64 array`` for the present names.

    Raises
    ------
    ValueError
        Missing file, a directory, a .npy or any non-.npz file, a truncated, empty or corrupt
        archive, missing arrays, or arrays that are complex, structured, object, boolean or
        not finite.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give an .npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError, zipfile errors...
        raise ValueError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc})") \
            from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array (.npy); save an .npz with "
                         f"np.savez(file, {', '.join(f'{k}=...' for k in required)})")
    out = {}
    try:
        with loaded as data:
            missing = [k for k in required if k not in data.files]
            if missing:
                raise ValueError(f"{path} lacks array(s) {missing}; it needs "
                                 f"{', '.join(required)}")
            for k in list(required) + [k for k in optional if k in data.files]:
                try:
                    arr = data[k]
                except Exception as exc:
                    raise ValueError(f"array {k!r} of {path} cannot be read ({exc}); the file "
                                     "is truncated or corrupt") from None
                if arr.dtype.fields is not None or arr.dtype.kind not in "iuf":
                    raise ValueError(f"array {k!r} of {path} has dtype {arr.dtype}; give real "
                                     "numbers (float64)")
                arr = arr.astype(np.float64)
                if not np.all(np.isfinite(arr)):
                    raise ValueError(f"array {k!r} of {path} contains NaN or inf")
                out[k] = arr
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc})") \
            from None
    return out


class RunConfig(dict):
    """``config.json`` of a run: provenance keys (``experiment``, ``versions``, ...) and, under
    ``config``, the experiment's keys, which can also be read directly: ``cfg["d"]``."""

    def __missing__(self, key):
        inner = dict.get(self, "config")
        if isinstance(inner, dict) and key in inner:
            return inner[key]
        raise KeyError(key)

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default


class Run(dict):
    """Results of one run folder: ``config``, ``summary``, ``trajectory``, ``arrays``,
    ``parts``, ``tables`` and ``figures``.

    A dict with attribute access; ``run.trajectory`` is a dict of arrays (``t``, ``risk``,
    final ``a``, ``b`` and snapshots) when the experiment writes ``trajectory.npz``.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def load_run(directory):
    """Load a finished (or failed) run folder written by ``python -m meanfield.simulate``.

    Parameters
    ----------
    directory : str or Path
        The run's output folder.

    Returns
    -------
    Run
        ``config`` (config.json; the experiment's keys also directly: ``config["d"]``),
        ``summary`` (summary.json), ``trajectory`` (dict of arrays, empty if absent),
        ``arrays`` (every other result .npz in the folder, by stem), ``parts`` (the finished
        sub-runs of multi-part experiments, by name), ``tables`` (every .csv as a list of
        row dicts and every other .json, by stem, e.g. ``tables["laws"]``) and ``figures``
        (list of PNG paths).
    """
    import csv

    directory = Path(directory)
    if not (directory / "config.json").exists():
        raise FileNotFoundError(f"{directory} is not a run folder (no config.json)")
    run = Run()
    run["path"] = directory
    run["config"] = RunConfig(json.loads((directory / "config.json").read_text()))
    summary = directory / "summary.json"
    run["summary"] = json.loads(summary.read_text()) if summary.exists() else {}
    traj = directory / "trajectory.npz"
    run["trajectory"] = load_npz(traj) if traj.exists() else {}
    run["arrays"] = {p.stem: load_npz(p) for p in sorted(directory.glob("*.npz"))
                     if p.name not in ("trajectory.npz", "checkpoint.npz")}
    run["parts"] = {p.stem: _without_provenance(load_npz(p))
                    for p in sorted((directory / "parts").glob("*.npz"))}
    tables = {}
    for p in sorted(directory.glob("*.csv")):
        with open(p, newline="") as fh:
            tables[p.stem] = list(csv.DictReader(fh))
    for p in sorted(directory.glob("*.json")):
        if p.name not in ("config.json", "summary.json") and p.stem not in tables:
            tables[p.stem] = json.loads(p.read_text())
    run["tables"] = tables
    run["figures"] = sorted(directory.glob("*.png"))
    return run


#: name of the array in checkpoints and parts that records the config they were made with.
CONFIG_ARRAY = "_config_json"


def _without_provenance(arrays):
    arrays.pop(CONFIG_ARRAY, None)
    return arrays
