"""The fusion node's synchronisation parameters as ``lutfuse replay`` needs them.

Replay predicts the node's pairs (expected outputs, flow control) with the same synchroniser
and parameters as the node: the defaults of ``config/fuse.yaml`` (read through
:func:`lutfuse_ros.ros.params.default_values`), then the ``--params-file``, then
``-p name:=value`` overrides, in the order ROS applies them. Every ``ros__parameters``
section of the parameter file is read (the node's own name and ``/**`` alike).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lutfuse_ros.bag.player import SyncSettings
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.ros.params import default_values, flatten_parameters

#: node parameter name -> :class:`SyncSettings` field.
SYNC_PARAMETERS = MappingProxyType({
    "sync.slop": "slop", "sync.queue_size": "queue_size", "sync.thermal_offset": "offset",
    "sync.min_visible_interval": "min_visible_interval",
    "sync.min_thermal_interval": "min_thermal_interval",
    "sync.clock_jump_threshold": "clock_jump_threshold"})
_TYPES = MappingProxyType({"slop": float, "queue_size": int, "offset": float,
                           "min_visible_interval": float, "min_thermal_interval": float,
                           "clock_jump_threshold": float})


def read_all_sections(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Every ``ros__parameters`` section of a ROS 2 parameter file, flattened (later win).

    Raises:
        ConfigError: the file is unreadable or has no ``ros__parameters`` section.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read parameter file {path}: {error}") from error
    parameters: dict[str, Any] = {}
    sections = document.values() if isinstance(document, Mapping) else ()
    for section in sections:
        if isinstance(section, Mapping) and isinstance(section.get("ros__parameters"), Mapping):
            parameters.update(flatten_parameters(section["ros__parameters"]))
    if not parameters:
        raise ConfigError(f"parameter file {path} has no '<node>: ros__parameters' section")
    return parameters


def parse_override(text: str) -> tuple[str, Any]:
    """``name:=value`` as ``(name, value)`` with the value typed as YAML (like ``-p``)."""
    name, separator, value = text.partition(":=")
    if not separator or not name.strip():
        raise ConfigError(f"node parameter {text!r} must be NAME:=VALUE")
    try:
        return name.strip(), yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"node parameter {text!r} has an unreadable value: {error}") from error


def load_sync_settings(params_file: str | os.PathLike[str] | None,
                       overrides: Iterable[str] = ()) -> SyncSettings:
    """The node's slop, queue size, thermal offset, minimum frame intervals, jump threshold.

    Args:
        params_file: the parameter file given to the node, or ``None``.
        overrides: ``name:=value`` strings given to the node with ``-p``.

    Raises:
        ConfigError: a file cannot be read or a value has the wrong type.
    """
    parameters = dict(default_values())
    if params_file is not None:
        parameters.update(read_all_sections(params_file))
    parameters.update(parse_override(text) for text in overrides)
    values: dict[str, Any] = {}
    for name, field_name in SYNC_PARAMETERS.items():
        if name not in parameters:
            continue
        value = parameters[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        values[field_name] = _TYPES[field_name](value)
    return SyncSettings(**values)
