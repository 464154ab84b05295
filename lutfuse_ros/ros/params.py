"""The fusion node's parameters: declared once, defaults from ``config/fuse.yaml`` only.

:data:`PARAMETERS` is the single table of names, types, ranges, choices and descriptions; the
values live in ``config/fuse.yaml`` (installed under ``share/lutfuse_ros/config``, with an
identical package-data copy under ``lutfuse_ros/resources`` that :func:`default_values`
reads through :mod:`importlib.resources`, so a pip install without ``AMENT_PREFIX_PATH``
works). The node declares each parameter with a ``ParameterDescriptor`` built from the table
(:func:`declare_node_parameters`) and turns the values into a ROS-free
:class:`~lutfuse_ros.ros.settings.NodeSettings` at configure time
(:func:`lutfuse_ros.ros.settings.parse_settings`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from lutfuse_ros.errors import ConfigError

PARAMS_FILE_NAME = "fuse.yaml"

STRING, DOUBLE, INTEGER, BOOL = "string", "double", "integer", "bool"
DOUBLE_ARRAY, INTEGER_ARRAY = "double_array", "integer_array"
_PYTHON_TYPES = {STRING: (str,), DOUBLE: (float,), INTEGER: (int,), BOOL: (bool,),
                 DOUBLE_ARRAY: (float,), INTEGER_ARRAY: (int,)}


@dataclass(frozen=True)
class ParamSpec:
    """Everything about one parameter except its default value.

    Attributes:
        name: dotted ROS parameter name (``sync.slop``).
        kind: one of ``string``, ``double``, ``integer``, ``bool``, ``double_array``,
            ``integer_array``.
        description: one line for ``ros2 param describe`` and the docs table.
        minimum: smallest allowed number (numbers and arrays of numbers), inclusive.
        maximum: largest allowed number, inclusive.
        choices: allowed strings (empty: any string).
        length: required array length.
    """

    name: str
    kind: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    length: int | None = None

    @property
    def is_array(self) -> bool:
        """Whether the value is a list."""
        return self.kind in (DOUBLE_ARRAY, INTEGER_ARRAY)

    def constraints(self) -> str:
        """Human-readable constraints: the descriptor's ``additional_constraints``."""
        parts = []
        if self.choices:
            parts.append(f"one of: {', '.join(self.choices)}")
        if self.minimum is not None:
            parts.append(f"range [{self.minimum}, {self.maximum}]")
        if self.length is not None:
            parts.append(f"exactly {self.length} values")
        return "; ".join(parts)


_S = ParamSpec
#: Every parameter of the fusion node (defaults: config/fuse.yaml).
PARAMETERS: tuple[ParamSpec, ...] = (
    _S("autostart", BOOL, "configure and activate on start (no lifecycle manager needed)"),
    _S("artifact", STRING,
       "model: shipped name (lutfuse-mmlut, lutfuse-mini) or .safetensors path"),
    _S("backend", STRING, "inference runtime: auto, torch, onnxruntime or tensorrt"),
    _S("device", STRING, "cpu or cuda[:N]"),
    _S("backend_threads", INTEGER, "intra-op CPU threads of the runtime; 0 keeps its default",
       0, 256),
    _S("backend_options", STRING, "extra backend keyword options as a YAML mapping, e.g. "
       "'{precision: fp32}' (torch), '{engine_path: /models/x.engine}' (tensorrt)"),
    _S("use_cv_bridge", BOOL, "opt-in: convert images with cv_bridge where it is installed "
       "(default false: the package's own converter)"),
    _S("sync.slop", DOUBLE, "largest visible/thermal stamp difference of a pair (s)", 0.0, 1.0),
    _S("sync.queue_size", INTEGER, "frames held per stream while waiting for a partner", 1, 100),
    _S("sync.thermal_offset", DOUBLE,
       "seconds added to thermal stamps before pairing (thermal clock behind: positive)",
       -10.0, 10.0),
    _S("sync.min_visible_interval", DOUBLE,
       "lower bound of the visible frame gap (s); > 0 emits pairs without waiting for the "
       "next frame (never above the true gap); 0 = exact approximate-time policy", 0.0, 1.0),
    _S("sync.min_thermal_interval", DOUBLE, "the same for the thermal stream (s)", 0.0, 1.0),
    _S("sync.clock_jump_threshold", DOUBLE,
       "a stamp this many seconds older than the newest of its stream is a clock jump back "
       "(bag loop, clock resync): pairing restarts on the new timeline; must exceed sync.slop",
       0.001, 86400.0),
    _S("sync.use_message_filters", BOOL,
       "opt-in: use message_filters.ApproximateTimeSynchronizer where installed (ignores "
       "sync.min_*_interval, counts no drops; default false: the package's own synchroniser)"),
    _S("input.visible_transport", STRING, "raw: visible/image (sensor_msgs/Image); "
       "compressed: visible/image/compressed (sensor_msgs/CompressedImage, JPEG or PNG, "
       "decoded on the worker)", choices=("raw", "compressed")),
    _S("input.thermal_transport", STRING, "the same for thermal/image (16-bit PNG keeps "
       "radiometric counts)", choices=("raw", "compressed")),
    _S("qos.input", STRING, "QoS of the two image subscriptions: auto matches the reliability "
       "of the publishers found (reliable while there is none)",
       choices=("auto", "sensor_data", "reliable")),
    _S("qos.input_depth", INTEGER, "KEEP_LAST depth of the image subscriptions", 1, 100),
    _S("qos.output", STRING, "QoS of the fused image publishers", choices=("sensor_data",
                                                                           "reliable")),
    _S("qos.output_depth", INTEGER, "KEEP_LAST depth of the fused image publishers", 1, 100),
    _S("output.encoding", STRING, "encoding of fused/image", choices=("bgr8", "rgb8", "mono8")),
    _S("output.stamp_source", STRING, "stamp of the fused image: the visible or thermal "
       "message's stamp, or the node clock at publication", choices=("visible", "thermal",
                                                                     "now")),
    _S("output.frame_id", STRING, "frame_id of the fused image; empty = the visible image's"),
    _S("output.max_rate", DOUBLE, "most fused images per second (visible-stamp time); "
       "0 = unlimited", 0.0, 1000.0),
    _S("output.compressed", STRING, "also publish fused/image/compressed (encoded only while "
       "someone subscribes)", choices=("none", "jpeg", "png")),
    _S("output.jpeg_quality", INTEGER, "JPEG quality of fused/image/compressed", 1, 100),
    _S("output.png_compression", INTEGER, "PNG compression level of fused/image/compressed",
       0, 9),
    _S("output.luma_mapping", STRING, "fused luminance to [0, 1]: the artifact's own mapping "
       "or an override", choices=("artifact", "none", "clamp", "minmax")),
    _S("thermal.mode", STRING, "16-bit thermal to 8 bit", choices=("percentile", "minmax",
                                                                   "fixed")),
    _S("thermal.low_percentile", DOUBLE, "lower clip percentile (percentile mode)", 0.0, 100.0),
    _S("thermal.high_percentile", DOUBLE, "upper clip percentile (percentile mode)", 0.0,
       100.0),
    _S("thermal.fixed_range", DOUBLE_ARRAY, "[low, high] raw counts (fixed mode)", 0.0, 65535.0,
       length=2),
    _S("thermal.normalise_8bit", BOOL, "also stretch 8-bit thermal frames"),
    _S("thermal.clahe", BOOL, "CLAHE on the 8-bit thermal image"),
    _S("thermal.clahe_clip_limit", DOUBLE, "CLAHE clip limit", 0.01, 100.0),
    _S("thermal.clahe_tiles", INTEGER, "CLAHE tiles per side", 1, 64),
    _S("thermal.range_smoothing", DOUBLE, "weight of the previous frames in a moving average "
       "of the percentile/minmax range (0 = each frame's own range; 0.9 steadies video)",
       0.0, 0.99),
    _S("alignment.mode", STRING, "registration of thermal to visible", choices=(
        "none", "resize_thermal", "resize_visible", "homography")),
    _S("alignment.homography", DOUBLE_ARRAY, "row-major 3x3 thermal->visible pixel homography "
       "(homography mode)", -1e6, 1e6, length=9),
    _S("alignment.crop", INTEGER_ARRAY, "[x, y, width, height] crop after alignment; "
       "width or height 0 = no crop", 0, 100000, length=4),
    _S("diagnostics.period", DOUBLE, "seconds between /diagnostics messages; 0 = off", 0.0,
       3600.0),
    _S("diagnostics.warn_fraction", DOUBLE, "WARN when the output rate falls below this "
       "fraction of the synchronised input rate", 0.0, 1.0),
    _S("diagnostics.log_throttle", DOUBLE, "seconds between repeated warnings of one kind",
       0.0, 3600.0),
    _S("diagnostics.stream_timeout", DOUBLE, "WARN (and log) when an input stream has been "
       "silent this many seconds while active; 0 = off", 0.0, 3600.0),
    _S("diagnostics.error_after_failures", INTEGER, "ERROR when this many consecutive pairs "
       "failed to fuse; back to OK at the next success", 1, 1_000_000),
)
del _S
SPECS: Mapping[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}


def package_params_file() -> Path:
    """The package-data copy of ``config/fuse.yaml`` (identical content)."""
    return Path(str(resources.files("lutfuse_ros") / "resources" / PARAMS_FILE_NAME))


def read_params_file(path: str | Path, node_name: str = "/**") -> dict[str, Any]:
    """Read a ROS 2 parameters file into flat dotted names.

    Args:
        path: a YAML file of the form ``<node or /**>: {ros__parameters: {...}}``.
        node_name: the key to read; ``/**`` (all nodes) is merged under it when both exist.

    Returns:
        ``{"sync.slop": 0.025, ...}``.

    Raises:
        ConfigError: unreadable file or no ``ros__parameters`` section.
    """
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read parameters file {path}: {error}") from None
    values: dict[str, Any] = {}
    for key in ("/**", node_name):
        section = document.get(key, {}) if isinstance(document, dict) else {}
        parameters = section.get("ros__parameters") if isinstance(section, dict) else None
        if isinstance(parameters, dict):
            values.update(flatten_parameters(parameters))
    if not values:
        raise ConfigError(f"parameters file {path} has no '{node_name}: ros__parameters' section")
    return values


def default_values() -> dict[str, Any]:
    """Defaults of every parameter, from the packaged ``fuse.yaml``.

    Raises:
        ConfigError: the file misses a parameter, names an unknown one, or has a default
            that violates its own spec.
    """
    values = read_params_file(package_params_file())
    missing = sorted(set(SPECS) - set(values))
    unknown = sorted(set(values) - set(SPECS))
    if missing or unknown:
        raise ConfigError(f"{package_params_file()} does not match the parameter table: "
                          f"missing {missing}, unknown {unknown}")
    for name, value in values.items():
        problem = check_value(SPECS[name], value)
        if problem:
            raise ConfigError(f"{package_params_file()}: default of {problem}")
    return values


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """Check one value against its spec.

    Returns:
        ``None`` when valid, else a message naming the parameter, the value and the rule.
    """
    items = value if spec.is_array else [value]
    if spec.is_array and not isinstance(value, (list, tuple)):
        return f"parameter '{spec.name}' must be a list, got {value!r}"
    wanted = _PYTHON_TYPES[spec.kind]
    for item in items:
        exact_bool = isinstance(item, bool)
        if (spec.kind == BOOL) != exact_bool or not isinstance(item, wanted):
            return (f"parameter '{spec.name}' must be of type {spec.kind}, got {value!r} "
                    f"({type(value).__name__})")
        if spec.minimum is not None and not (
                math.isfinite(item) and spec.minimum <= item <= spec.maximum):
            return (f"parameter '{spec.name}' = {value!r} is out of range "
                    f"[{spec.minimum}, {spec.maximum}]")
    if spec.length is not None and len(items) != spec.length:
        return (f"parameter '{spec.name}' needs exactly {spec.length} values, got "
                f"{len(items)}: {value!r}")
    if spec.choices and value not in spec.choices:
        return (f"parameter '{spec.name}' = {value!r} is not one of "
                f"{', '.join(spec.choices)}")
    return None


def make_descriptor(spec: ParamSpec):
    """The ``rcl_interfaces/ParameterDescriptor`` of a spec (type, range, description)."""
    from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                    ParameterType)

    types = {STRING: ParameterType.PARAMETER_STRING, DOUBLE: ParameterType.PARAMETER_DOUBLE,
             INTEGER: ParameterType.PARAMETER_INTEGER, BOOL: ParameterType.PARAMETER_BOOL,
             DOUBLE_ARRAY: ParameterType.PARAMETER_DOUBLE_ARRAY,
             INTEGER_ARRAY: ParameterType.PARAMETER_INTEGER_ARRAY}
    descriptor = ParameterDescriptor(name=spec.name, type=types[spec.kind],
                                     description=spec.description,
                                     additional_constraints=spec.constraints())
    if spec.minimum is not None and spec.kind in (DOUBLE, DOUBLE_ARRAY):
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0)]
    elif spec.minimum is not None:
        descriptor.integer_range = [IntegerRange(from_value=int(spec.minimum),
                                                 to_value=int(spec.maximum), step=1)]
    return descriptor


def declare_node_parameters(node) -> dict[str, str]:
    """Declare every parameter on ``node`` with its descriptor and packaged default.

    An override (params file, ``-p``) that the descriptor rejects (wrong type, out of range)
    does not abort the node: the parameter is declared with its default instead and the
    problem is returned, so that ``on_configure`` can fail naming it, and the user can set a
    valid value and configure again.

    Args:
        node: an ``rclpy`` node.

    Returns:
        Parameter name -> message, for each rejected override.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    problems = {}
    for name, default in default_values().items():
        descriptor = make_descriptor(SPECS[name])
        try:
            node.declare_parameter(name, default, descriptor)
        except (InvalidParameterTypeException, InvalidParameterValueException) as error:
            spec = SPECS[name]
            allowed = "; ".join(filter(None, (spec.kind, spec.constraints())))
            problems[name] = f"parameter '{name}' rejected: {error} (allowed: {allowed})"
            node.declare_parameter(name, default, make_descriptor(SPECS[name]),
                                   ignore_override=True)
    return problems


def node_parameter_values(node) -> dict[str, Any]:
    """Current values of every declared spec parameter, as plain Python values."""
    values = {}
    for name in SPECS:
        value = node.get_parameter(name).value
        values[name] = list(value) if SPECS[name].is_array else value
    return values


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
