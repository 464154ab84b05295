"""Reading nested dataclasses from parsed YAML, with errors that name the key path.

Generic: knows nothing of the training configuration itself. Supported field types: the
dataclasses themselves, ``list[X]``, ``tuple[X, ...]``, ``X | None``, ``bool``, ``int``,
``float`` (YAML's ``1e-3`` strings included) and ``str``.
"""

from __future__ import annotations

import dataclasses
import types
import typing

import yaml

from lutfuse_ros.errors import ConfigError


def apply_override(raw: dict, override: str) -> None:
    """Set ``dotted.key=value`` (value parsed as YAML) in a raw mapping, creating sections."""
    key, separator, value = override.partition("=")
    if not separator or not key:
        raise ConfigError(f"override {override!r} must look like dotted.key=value")
    target = raw
    parts = key.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"override {override!r}: {part!r} is not a section")
    target[parts[-1]] = yaml.safe_load(value)


def build_dataclass(cls: type, raw, where: str = ""):
    """Instantiate dataclass ``cls`` from a mapping; ``where`` prefixes error key paths."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "source_text"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    values = {name: coerce(hints[name], value, f"{where}.{name}".lstrip("."))
              for name, value in raw.items()}
    try:
        return cls(**values)
    except ConfigError as error:
        raise ConfigError(f"{where or 'config'}: {error}") from None
    except TypeError as error:
        raise ConfigError(f"{where or 'config'}: {error}") from None


def coerce(hint, value, where: str):
    """Convert one YAML value to the type ``hint``, or raise ConfigError naming ``where``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: must not be empty")
        (inner,) = [a for a in args if a is not type(None)]
        return coerce(inner, value, where)
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value if value is not None else {}, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [coerce(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        inner = args[0] if args else float
        return tuple(coerce(inner, item, f"{where}[{i}]") for i, item in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def check_min(name: str, value: int, minimum: int) -> None:
    """Raise ConfigError unless ``value >= minimum``."""
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
