"""ROS-free settings of the fusion node, parsed from its flat parameter values.

:func:`parse_settings` turns ``{"sync.slop": 0.025, ...}`` (the node's parameters, or a
parameters file read with :func:`lutfuse_ros.settings.params_file.read_params_file`) into a
frozen :class:`NodeSettings`. Every problem raises :class:`~lutfuse_ros.errors.ConfigError`
with a message that starts with the parameter's name, so the node can fail ``configure`` with
it. :func:`parse_sync_settings` reads only the ``sync.*`` part, with the same checks: replay
predicts the node's pairs and training pairs bag frames with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any, Callable, Mapping

import yaml

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.pipeline import PipelineConfig
from lutfuse_ros.preprocessing import AlignmentConfig, ThermalConfig
from lutfuse_ros.settings.params_file import default_values, load_parameters
from lutfuse_ros.settings.schema import SPECS, check_value

#: Parameters of :class:`SyncSettings`, in field order.
SYNC_PARAMETERS = ("sync.slop", "sync.queue_size", "sync.thermal_offset",
                   "sync.min_visible_interval", "sync.min_thermal_interval",
                   "sync.use_message_filters", "sync.clock_jump_threshold")


@dataclass(frozen=True)
class SyncSettings:
    """Approximate-time pairing (see :class:`lutfuse_ros.stream.pairing.ApproximateTimePairer`).

    The one record of the ``sync.*`` parameters: the node, replay's prediction of its pairs
    and training's rosbag pairing all use it (defaults: ``config/fuse.yaml``).

    Attributes:
        slop: largest stamp difference of a pair, seconds.
        queue_size: frames held per stream.
        thermal_offset: seconds added to thermal stamps before matching.
        min_visible_interval: lower bound of the visible frame gap, seconds (0 = wait).
        min_thermal_interval: the same for thermal frames.
        use_message_filters: prefer ``message_filters`` where installed.
        clock_jump_threshold: seconds a stamp may go back on its stream before the pairing
            restarts (a clock jump back); > ``slop``.
    """

    slop: float
    queue_size: int
    thermal_offset: float
    min_visible_interval: float
    min_thermal_interval: float
    use_message_filters: bool
    clock_jump_threshold: float

    def make_pairer(self, on_clock_jump: Callable[[str, int, int], None] | None = None, *,
                    allow_message_filters: bool = True) -> Any:
        """The synchroniser these settings describe.

        Args:
            on_clock_jump: called with (stream, newest ns, new stamp ns) on a clock jump back.
            allow_message_filters: honour ``use_message_filters``; ``False`` always gives the
                package's own :class:`~lutfuse_ros.stream.pairing.ApproximateTimePairer`
                (replay's prediction, training).

        Returns:
            An object with ``add_visible``, ``add_thermal`` and ``counters``
            (:func:`lutfuse_ros.stream.pairing.make_synchroniser`).
        """
        from lutfuse_ros.stream.pairing import make_synchroniser

        return make_synchroniser(
            self.slop, self.queue_size, self.thermal_offset,
            prefer_message_filters=self.use_message_filters and allow_message_filters,
            min_visible_interval=self.min_visible_interval,
            min_thermal_interval=self.min_thermal_interval,
            jump_back_reset=self.clock_jump_threshold, on_clock_jump=on_clock_jump)


@dataclass(frozen=True)
class InputSettings:
    """How each camera arrives: ``raw`` (``sensor_msgs/Image``) or ``compressed``."""

    visible_transport: str
    thermal_transport: str


@dataclass(frozen=True)
class QosSettings:
    """QoS presets (``sensor_data`` | ``reliable``) and KEEP_LAST depths."""

    input: str  # noqa: A003 (the qos.input parameter's name)
    input_depth: int
    output: str
    output_depth: int


@dataclass(frozen=True)
class OutputSettings:
    """How the fused image is published.

    Attributes:
        encoding: ``bgr8``, ``rgb8`` or ``mono8``.
        stamp_source: ``visible``, ``thermal`` or ``now``.
        frame_id: output frame id; empty keeps the visible image's.
        max_rate: most images per second (0 = unlimited).
        compressed: ``none``, ``jpeg`` or ``png`` on ``fused/image/compressed``.
        jpeg_quality: 1..100.
        png_compression: 0..9.
    """

    encoding: str
    stamp_source: str
    frame_id: str
    max_rate: float
    compressed: str
    jpeg_quality: int
    png_compression: int


@dataclass(frozen=True)
class DiagnosticsSettings:
    """``/diagnostics`` publication and warning throttling.

    Attributes:
        period: seconds between reports (0 = off).
        warn_fraction: WARN when output rate < this fraction of the expected rate.
        log_throttle: seconds between repeated warnings of one kind.
        stream_timeout: seconds of silence on an input stream before it is reported (0 = off).
        error_after_failures: consecutive failed pairs that make the status ERROR.
    """

    period: float
    warn_fraction: float
    log_throttle: float
    stream_timeout: float
    error_after_failures: int


@dataclass(frozen=True)
class NodeSettings:
    """Everything the fusion node needs, validated.

    Attributes:
        artifact: shipped model name or artifact path.
        backend: ``auto`` or a registered backend name.
        device: ``cpu`` or ``cuda[:N]``.
        backend_options: keyword options for the backend (``backend_options`` plus
            ``threads`` from ``backend_threads``).
        use_cv_bridge: prefer ``cv_bridge`` for conversions.
        sync: pairing settings.
        qos: QoS settings.
        output: publication settings.
        pipeline: pre/post-processing of :class:`~lutfuse_ros.pipeline.FusionPipeline`
            (always BGR colour order; ``mono`` output for ``mono8``).
        diagnostics: diagnostics settings.
        input: camera transports.
    """

    artifact: str
    backend: str
    device: str
    backend_options: Mapping[str, Any]
    use_cv_bridge: bool
    sync: SyncSettings
    qos: QosSettings
    output: OutputSettings
    pipeline: PipelineConfig
    diagnostics: DiagnosticsSettings
    input: InputSettings  # noqa: A003 (the input.* parameters' name)


def parse_settings(values: Mapping[str, Any], *, fill_defaults: bool = False) -> NodeSettings:
    """Validate parameter values and build the settings.

    Args:
        values: flat dotted parameter names -> values.
        fill_defaults: take missing parameters from the packaged defaults (for parameters
            files that set only a few values); otherwise every parameter must be present.

    Returns:
        The settings.

    Raises:
        ConfigError: an unknown, missing or invalid parameter, or an inconsistent
            combination; the message names the parameter(s).
    """
    unknown = sorted(set(values) - set(SPECS))
    if unknown:
        raise ConfigError(f"unknown parameter(s): {', '.join(unknown)}")
    merged = {**default_values(), **values} if fill_defaults else dict(values)
    missing = sorted(set(SPECS) - set(merged))
    if missing:
        raise ConfigError(f"missing parameter(s): {', '.join(missing)}")
    for name, value in merged.items():
        problem = check_value(SPECS[name], value)
        if problem:
            raise ConfigError(problem)
    v = merged
    _check_backend(v["backend"])
    for name in ("artifact", "device"):
        if not v[name].strip():
            raise ConfigError(f"parameter '{name}' must not be empty")
    return NodeSettings(
        artifact=v["artifact"], backend=v["backend"], device=v["device"],
        backend_options=_backend_options(v["backend_options"], v["backend_threads"]),
        use_cv_bridge=v["use_cv_bridge"],
        sync=_sync_settings(v),
        qos=QosSettings(v["qos.input"], v["qos.input_depth"], v["qos.output"],
                        v["qos.output_depth"]),
        output=OutputSettings(v["output.encoding"], v["output.stamp_source"],
                              v["output.frame_id"], v["output.max_rate"],
                              v["output.compressed"], v["output.jpeg_quality"],
                              v["output.png_compression"]),
        pipeline=_pipeline_config(v),
        diagnostics=DiagnosticsSettings(v["diagnostics.period"], v["diagnostics.warn_fraction"],
                                        v["diagnostics.log_throttle"],
                                        v["diagnostics.stream_timeout"],
                                        v["diagnostics.error_after_failures"]),
        input=InputSettings(v["input.visible_transport"], v["input.thermal_transport"]),
    )


def parse_sync_settings(values: Mapping[str, Any] | None = None) -> SyncSettings:
    """The ``sync.*`` part of the node's parameters, checked as :func:`parse_settings` does.

    Args:
        values: flat parameter values (other names are ignored); a missing ``sync.*``
            parameter takes its default from ``config/fuse.yaml``.

    Raises:
        ConfigError: a ``sync.*`` value is invalid, named as the node names it.
    """
    values = values or {}
    merged = {name: values[name] if name in values else default
              for name, default in default_values().items() if name in SYNC_PARAMETERS}
    for name, value in merged.items():
        problem = check_value(SPECS[name], value)
        if problem:
            raise ConfigError(problem)
    return _sync_settings(merged)


def load_sync_settings(params_file: str | os.PathLike[str] | None = None,
                       overrides: Iterable[str] = ()) -> SyncSettings:
    """The sync settings of a node started with ``--params-file`` and ``-p`` overrides.

    Args:
        params_file: the node's parameter file (every ``ros__parameters`` section), or
            ``None`` for the defaults.
        overrides: ``name:=value`` strings given to the node with ``-p``.

    Raises:
        ConfigError: a file cannot be read, an override is malformed, or a ``sync.*`` value is
            invalid.
    """
    return parse_sync_settings(load_parameters(params_file, overrides))


def _sync_settings(v: Mapping[str, Any]) -> SyncSettings:
    if not v["sync.clock_jump_threshold"] > v["sync.slop"]:
        raise ConfigError(f"parameter 'sync.clock_jump_threshold' = "
                          f"{v['sync.clock_jump_threshold']} must exceed 'sync.slop' = "
                          f"{v['sync.slop']}")
    return SyncSettings(*(v[name] for name in SYNC_PARAMETERS))


def _backend_options(text: str, threads: int) -> dict[str, Any]:
    """Parse ``backend_options`` (a YAML mapping of scalars) and add ``threads``."""
    try:
        options = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        raise ConfigError(f"parameter 'backend_options' = {text!r} is not a YAML mapping: "
                          f"{error}") from None
    options = {} if options is None else options
    if not isinstance(options, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, (str, int, float, bool)))
            for k, v in options.items()):
        raise ConfigError(f"parameter 'backend_options' = {text!r} must be a mapping of names "
                          "to scalars, e.g. '{precision: fp32}'")
    if threads:
        if "threads" in options:
            raise ConfigError("parameters 'backend_threads' and 'backend_options' both set "
                              "threads; set one of them")
        options["threads"] = threads
    return options


def _check_backend(name: str) -> None:
    from lutfuse_ros.backends import BACKENDS

    if name != "auto" and name not in BACKENDS:
        raise ConfigError(f"parameter 'backend' = {name!r} is not a registered backend; choose "
                          f"one of {', '.join(['auto', *BACKENDS])}")


def _pipeline_config(v: Mapping[str, Any]) -> PipelineConfig:
    """The pipeline part, re-raising the pipeline's own checks with parameter names."""
    low, high = v["thermal.low_percentile"], v["thermal.high_percentile"]
    if not low < high:
        raise ConfigError(f"parameters 'thermal.low_percentile' ({low}) and "
                          f"'thermal.high_percentile' ({high}) must satisfy low < high")
    fixed_low, fixed_high = v["thermal.fixed_range"]
    if not fixed_high > fixed_low:
        raise ConfigError(f"parameter 'thermal.fixed_range' = {list(v['thermal.fixed_range'])} "
                          "must be [low, high] with high > low")
    crop = tuple(v["alignment.crop"])
    try:
        alignment = AlignmentConfig(mode=v["alignment.mode"],
                                    homography=[float(x) for x in v["alignment.homography"]],
                                    crop=crop if min(crop[2:]) > 0 else None)
    except ConfigError as error:
        name = "alignment.crop" if "crop" in str(error) else "alignment.homography"
        raise ConfigError(f"parameter '{name}': {error}") from None
    thermal = ThermalConfig(mode=v["thermal.mode"], low_percentile=low, high_percentile=high,
                            fixed_range=(fixed_low, fixed_high),
                            normalise_8bit=v["thermal.normalise_8bit"], clahe=v["thermal.clahe"],
                            clahe_clip_limit=v["thermal.clahe_clip_limit"],
                            clahe_tiles=v["thermal.clahe_tiles"],
                            range_smoothing=v["thermal.range_smoothing"])
    mapping = v["output.luma_mapping"]
    return PipelineConfig(colour_order="bgr",
                          output="mono" if v["output.encoding"] == "mono8" else "colour",
                          luma_mapping=None if mapping == "artifact" else mapping,
                          thermal=thermal, alignment=alignment)
