"""Reading ROS 2 parameter files, and the node's defaults from ``config/fuse.yaml``.

The defaults are written once, in ``config/fuse.yaml`` (found through
:func:`lutfuse_ros.package_files.config_file`); :func:`default_values` checks them against the
schema. :func:`load_parameters` applies what a user gives the node, in the order ROS applies
it: defaults, then each ``--params-file``, then ``-p name:=value`` overrides; replay uses it
to predict the node's pairing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Mapping

import yaml

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.package_files import config_file
from lutfuse_ros.settings.schema import SPECS, check_value

PARAMS_FILE_NAME = "fuse.yaml"


def defaults_file() -> Path:
    """``config/fuse.yaml``: the installed copy, else the source tree's."""
    return config_file(PARAMS_FILE_NAME)


def flatten_parameters(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested ``ros__parameters`` mapping as ``{"sync.slop": 0.025, ...}`` (dotted names)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_parameters(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _read_document(path: str | os.PathLike[str]) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read parameters file {path}: {error}") from None


def read_params_file(path: str | os.PathLike[str], node_name: str = "/**") -> dict[str, Any]:
    """Read the sections of one node from a ROS 2 parameters file, as flat dotted names.

    Args:
        path: a YAML file of the form ``<node or /**>: {ros__parameters: {...}}``.
        node_name: the key to read; ``/**`` (all nodes) is merged under it when both exist.

    Returns:
        ``{"sync.slop": 0.025, ...}``.

    Raises:
        ConfigError: unreadable file or no ``ros__parameters`` section.
    """
    document = _read_document(path)
    values: dict[str, Any] = {}
    for key in ("/**", node_name):
        section = document.get(key, {}) if isinstance(document, dict) else {}
        parameters = section.get("ros__parameters") if isinstance(section, dict) else None
        if isinstance(parameters, dict):
            values.update(flatten_parameters(parameters))
    if not values:
        raise ConfigError(f"parameters file {path} has no '{node_name}: ros__parameters' section")
    return values


def read_all_sections(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Every ``ros__parameters`` section of a ROS 2 parameter file, flattened (later win).

    Raises:
        ConfigError: the file is unreadable or has no ``ros__parameters`` section.
    """
    document = _read_document(path)
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


def default_values() -> dict[str, Any]:
    """Defaults of every parameter, from ``config/fuse.yaml``.

    Raises:
        ConfigError: the file misses a parameter, names an unknown one, or has a default
            that violates its own spec.
    """
    path = defaults_file()
    values = read_params_file(path)
    missing = sorted(set(SPECS) - set(values))
    unknown = sorted(set(values) - set(SPECS))
    if missing or unknown:
        raise ConfigError(f"{path} does not match the parameter table: "
                          f"missing {missing}, unknown {unknown}")
    for name, value in values.items():
        problem = check_value(SPECS[name], value)
        if problem:
            raise ConfigError(f"{path}: default of {problem}")
    return values


def load_parameters(params_file: str | os.PathLike[str] | None = None,
                    overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The values a node started with these arguments would have (not yet validated).

    Args:
        params_file: a ``--params-file`` (every ``ros__parameters`` section is read), or
            ``None``.
        overrides: ``name:=value`` strings, as given with ``-p``.

    Raises:
        ConfigError: a file cannot be read or an override is malformed.
    """
    parameters = default_values()
    if params_file is not None:
        parameters.update(read_all_sections(params_file))
    parameters.update(parse_override(text) for text in overrides)
    return parameters
