"""The fusion node's parameter schema: every name, type, range and meaning, declared once.

:data:`PARAMETERS` is the single table; the default values live in one YAML file,
``config/fuse.yaml`` (read by :func:`lutfuse_ros.settings.params_file.default_values`). From
the two come the node's ``ParameterDescriptor`` objects (:mod:`lutfuse_ros.ros.params`), the
validation of every value (:func:`check_value`, :func:`lutfuse_ros.settings.node_settings.
parse_settings`), the sync settings of replay and training
(:func:`lutfuse_ros.settings.node_settings.parse_sync_settings`) and the parameter table of
``docs/ros_node.md`` (:mod:`lutfuse_ros.settings.docs_table`, checked by a test). Nothing here
imports ROS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

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
        rule: what else is required, for the docs (cross-parameter rules, checked at
            configure), e.g. ``> sync.slop``.
        details: more text for the docs table, after ``description`` (Markdown).
    """

    name: str
    kind: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    length: int | None = None
    rule: str = ""
    details: str = ""

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
    _S("backend", STRING, "inference runtime: auto, torch, onnxruntime or tensorrt",
       rule="auto or a registered backend"),
    _S("device", STRING, "cpu or cuda[:N]"),
    _S("backend_threads", INTEGER, "intra-op CPU threads of the runtime; 0 keeps its default",
       0, 256),
    _S("backend_options", STRING, "extra backend keyword options as a YAML mapping, e.g. "
       "'{precision: fp32}' (torch), '{engine_path: /models/x.engine}' (tensorrt)",
       rule="YAML mapping of scalars",
       details="Default `{precision: auto}`: bf16 where the CPU has native bf16 (>= 55 dB "
       "from fp32, twice as fast for the MM-LUT), fp32 elsewhere (decided by running a tiny "
       "bf16 convolution, not only by the CPU flags), fp16 engines on TensorRT. An explicit "
       "`{precision: bf16}` on a CPU without bf16 convolutions (AVX2-only, e.g. AMD EPYC "
       "before Zen 4: they need AVX512BW+VL+DQ or AVX-NE-CONVERT) fails configure with a "
       "message naming the missing features. `{precision: fp32}` reproduces imported "
       "official checkpoints exactly."),
    _S("use_cv_bridge", BOOL, "opt-in: convert images with cv_bridge where it is installed "
       "(default false: the package's own converter)",
       details="The own converter reads every encoding of the topic table, padded rows and "
       "both endiannesses; see [Optional ROS libraries](#optional-ros-libraries)."),
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
       0.001, 86400.0, rule="> sync.slop"),
    _S("sync.use_message_filters", BOOL,
       "opt-in: use message_filters.ApproximateTimeSynchronizer where installed (ignores "
       "sync.min_*_interval, counts no drops; default false: the package's own synchroniser)",
       details="See [Optional ROS libraries](#optional-ros-libraries)."),
    _S("input.visible_transport", STRING, "raw: visible/image (sensor_msgs/Image); "
       "compressed: visible/image/compressed (sensor_msgs/CompressedImage, JPEG or PNG, "
       "decoded on the worker)", choices=("raw", "compressed")),
    _S("input.thermal_transport", STRING, "the same for thermal/image (16-bit PNG keeps "
       "radiometric counts)", choices=("raw", "compressed")),
    _S("qos.input", STRING, "QoS of the two image subscriptions: auto matches the reliability "
       "of the publishers found (reliable while there is none)",
       choices=("auto", "sensor_data", "reliable"),
       details="`auto` re-matches when the publishers change; see "
       "[QoS and Fast DDS](#qos-and-fast-dds)."),
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
       "or an override", choices=("artifact", "none", "clamp", "minmax"),
       details="`minmax` flickers on video."),
    _S("thermal.mode", STRING, "16-bit thermal to 8 bit", choices=("percentile", "minmax",
                                                                   "fixed")),
    _S("thermal.low_percentile", DOUBLE, "lower clip percentile (percentile mode)", 0.0, 100.0,
       rule="< thermal.high_percentile"),
    _S("thermal.high_percentile", DOUBLE, "upper clip percentile (percentile mode)", 0.0,
       100.0),
    _S("thermal.fixed_range", DOUBLE_ARRAY, "[low, high] raw counts (fixed mode)", 0.0, 65535.0,
       length=2, rule="high > low"),
    _S("thermal.normalise_8bit", BOOL, "also stretch 8-bit thermal frames"),
    _S("thermal.clahe", BOOL, "CLAHE on the 8-bit thermal image"),
    _S("thermal.clahe_clip_limit", DOUBLE, "CLAHE clip limit", 0.01, 100.0),
    _S("thermal.clahe_tiles", INTEGER, "CLAHE tiles per side", 1, 64),
    _S("thermal.range_smoothing", DOUBLE, "weight of the previous frames in a moving average "
       "of the percentile/minmax range (0 = each frame's own range; 0.9 steadies video)",
       0.0, 0.99, details="0.9 removes most of the flicker a per-frame range gives 16-bit "
       "video ([metrics.md](metrics.md#findings))."),
    _S("alignment.mode", STRING, "registration of thermal to visible", choices=(
        "none", "resize_thermal", "resize_visible", "homography")),
    _S("alignment.homography", DOUBLE_ARRAY, "row-major 3x3 thermal->visible pixel homography "
       "(homography mode)", -1e6, 1e6, length=9, rule="non-singular"),
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
