"""Configuration values for experiments: typed defaults, validation, TOML and ``--set`` parsing.

An experiment declares ``DEFAULTS`` (a flat dict whose values fix each key's type) and
optionally ``CHOICES`` (allowed values for string keys), ``TYPES`` (the type of keys whose
default is None, i.e. "unset": ``{"dt": float}``) and ``check(config)`` for ranges.
Everything that can be wrong with a config is found here, before any work starts, and is
reported as a :class:`ConfigError` naming the key and the accepted values.
"""
import argparse
import json

try:  # Python >= 3.11
    import tomllib
except ImportError:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "resolve_config", "parse_set", "load_toml", "require",
           "check_generic", "check_applies", "config_hash", "MAX_INT"]

#: largest integer a config key may hold (it must fit NumPy's int64 with room for arithmetic).
MAX_INT = 2 ** 53


class ConfigError(ValueError):
    """Invalid configuration: ``key`` is the offending key, the message says what to change."""

    def __init__(self, key, message):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


def _type_name(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "str or empty"
    raise TypeError(type(value))


def coerce(key, value, default, kind=None):
    """Convert ``value`` to the type of ``default`` (or to ``kind``, a type, for a key whose
    default is None; "" and None then mean unset) or raise :class:`ConfigError`."""
    if kind is not None and default is None:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        return coerce(key, value, kind())
    kind = _type_name(default)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(key, f"expected true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                v = float(value)
            except ValueError:
                raise ConfigError(key, f"expected an integer, got {value!r}") from None
            if v.is_integer():
                return int(v)
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if kind == "float":
        if isinstance(value, bool):
            raise ConfigError(key, f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ConfigError(key, f"expected a number, got {value!r}") from None
        raise ConfigError(key, f"expected a number, got {value!r}")
    if kind == "list":
        if isinstance(value, str):
            text = value.strip()
            try:
                value = json.loads(text) if text.startswith("[") else _bare_list(text)
            except json.JSONDecodeError:
                # [sphere, paired]: a bracketed list of bare words (TOML would need quotes)
                if text.startswith("[") and text.endswith("]") and '"' not in text:
                    value = _bare_list(text[1:-1])
                else:
                    raise ConfigError(key, f"expected a list such as [10, 50], got {value!r}") \
                        from None
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list such as [10, 50], got {value!r}")
        if default:
            value = [coerce(key, v, default[0]) for v in value]
        return value
    # strings (and optional strings whose default is None)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {value!r}")
    return value


def _bare_list(text):
    """``10, 50`` or ``sphere, paired``: numbers where they parse, words otherwise."""
    return [json.loads(v) if _is_number(v) else v.strip() for v in text.split(",") if v.strip()]


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def parse_set(items):
    """Parse ``--set KEY=VALUE`` strings into a dict of raw strings.

    Raises
    ------
    ConfigError
        Without ``=``, with an empty key, or when a key is given twice (the first value would
        otherwise be dropped silently, even an invalid one).
    """
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError("--set", f"expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError("--set", f"expects KEY=VALUE, got {item!r} (no key before '=')")
        if key in out:
            raise ConfigError(key, f"given twice with --set ({out[key]!r} and {value.strip()!r}); "
                                   "give each key once")
        out[key] = value.strip()
    return out


def load_toml(path, tables=()):
    """Read a TOML config file (a flat table; an ``[experiment]``-free layout). Tables are
    refused except those named in ``tables`` (``python -m meanfield.sweep`` reads ``[grid]``)."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("--config", f"file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError("--config", f"{path} is a directory; give a .toml file") from None
    except UnicodeDecodeError:
        raise ConfigError("--config", f"{path} is not UTF-8 text; give a .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path} ({exc.strerror})") from None
    for key, value in data.items():
        if isinstance(value, dict) and key not in tables:
            raise ConfigError(key, "tables are not accepted: the config is a flat list of "
                                   "KEY = VALUE lines")
    return data


def resolve_config(defaults, choices=None, *overrides, types=None):
    """Merge ``overrides`` (dicts, later wins) into ``defaults`` with type and choice checks.

    ``types`` gives the type (float, int, ...) of keys whose default is None.

    Raises
    ------
    ConfigError
        On an unknown key (the message lists the known ones), a value of the wrong type,
        or a string outside its ``choices``.
    """
    config = dict(defaults)
    for layer in overrides:
        for key, value in (layer or {}).items():
            if key not in defaults:
                known = ", ".join(sorted(defaults))
                raise ConfigError(key, f"unknown key; accepted keys are: {known}")
            config[key] = coerce(key, value, defaults[key], (types or {}).get(key))
    for key, allowed in (choices or {}).items():
        if key in config and config[key] not in allowed:
            raise ConfigError(key, f"got {config[key]!r}; accepted values are: "
                                   + ", ".join(map(str, allowed)))
    return config


def require(condition, key, message):
    """Raise :class:`ConfigError` for ``key`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(key, message)


def _is_seed(key):
    return key in ("seed", "seeds") or key.endswith("_seed")


def check_generic(config, defaults):
    """Checks every experiment gets, whatever its keys: every number finite, every integer
    within int64 range, every seed >= 0.

    A key added to an experiment's ``DEFAULTS`` is covered automatically (a float default
    makes it a float key, and so on).

    Raises
    ------
    ConfigError
        Naming the first offending key.
    """
    import math

    for key, default in defaults.items():
        value = config.get(key)
        if value is default or (value == default and type(value) is type(default)):
            continue  # an experiment's own default (which may be, say, inf for "no limit")
        items = value if isinstance(value, list) else [value]
        for v in items:
            if isinstance(v, bool):
                continue
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(key, f"must be a finite number, got {v}")
            if isinstance(v, int):
                if abs(v) > MAX_INT:
                    raise ConfigError(key, f"{v:.3g} is too large (at most 2**53 = {MAX_INT:.3g})")
                if _is_seed(key) and v < 0:
                    raise ConfigError(key, f"seeds must be >= 0, got {v}")


def check_applies(config, user_keys, applies=None, implies=None):
    """Enforce that every key the user set takes effect.

    Parameters
    ----------
    config : dict
        The resolved config; updated in place by ``implies``.
    user_keys : set of str
        Keys that came from ``--config`` or ``--set`` (defaults are never refused).
    applies : dict, optional
        ``key -> (condition(config) -> bool, reason)``: a user-set ``key`` is refused with
        ``reason`` when the condition is false.
    implies : dict, optional
        ``key -> (other, value)``: setting ``key`` (to a non-empty value) sets ``other`` to
        ``value``; an explicitly different ``other`` is refused.

    Raises
    ------
    ConfigError
        Naming the key that does not apply and why.
    """
    for key, (other, value) in (implies or {}).items():
        if key in user_keys and config.get(key):
            if other in user_keys and config[other] != value:
                raise ConfigError(key, f"gives the start, so {other} must be {value!r} (or left "
                                       f"out), got {other} = {config[other]!r}")
            config[other] = value
    for key, (condition, reason) in (applies or {}).items():
        if key in user_keys and not condition(config):
            raise ConfigError(key, f"has no effect here: {reason}; remove it or change the "
                                   "setting it depends on")


def config_hash(config):
    """SHA-256 of the config's canonical JSON (sorted keys): what a checkpoint was made with."""
    import hashlib

    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the command's --help, raised as
    :class:`ConfigError` (exit 2, no usage dump); shared by the package's commands."""

    def error(self, message):
        raise ConfigError(None, f"{message} (see {self.prog} --help)")
