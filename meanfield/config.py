"""Configuration values for experiments: typed defaults, validation, TOML and ``--set`` parsing.

An experiment declares ``DEFAULTS`` (a flat dict whose values fix each key's type) and
optionally ``CHOICES`` (allowed values for string keys) and ``check(config)`` for ranges.
Everything that can be wrong with a config is found here, before any work starts, and is
reported as a :class:`ConfigError` naming the key and the accepted values.
"""
import json

try:  # Python >= 3.11
    import tomllib
except ImportError:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "resolve_config", "parse_set", "load_toml", "require"]


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


def coerce(key, value, default):
    """Convert ``value`` to the type of ``default`` or raise :class:`ConfigError`."""
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
                value = json.loads(text) if text.startswith("[") else [
                    json.loads(v) if _is_number(v) else v.strip() for v in text.split(",") if v.strip()]
            except json.JSONDecodeError:
                raise ConfigError(key, f"expected a list such as [10, 50], got {value!r}") from None
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


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def parse_set(items):
    """Parse ``--set KEY=VALUE`` strings into a dict of raw strings."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(item, "--set expects KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def load_toml(path):
    """Read a TOML config file (a flat table; an ``[experiment]``-free layout)."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("--config", f"file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML ({exc})") from None
    return data


def resolve_config(defaults, choices=None, *overrides):
    """Merge ``overrides`` (dicts, later wins) into ``defaults`` with type and choice checks.

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
            config[key] = coerce(key, value, defaults[key])
    for key, allowed in (choices or {}).items():
        if key in config and config[key] not in allowed:
            raise ConfigError(key, f"got {config[key]!r}; accepted values are: "
                                   + ", ".join(map(str, allowed)))
    return config


def require(condition, key, message):
    """Raise :class:`ConfigError` for ``key`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(key, message)
