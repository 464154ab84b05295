"""What exists while the fusion node is active: topics, the fusion stream, diagnostics.

:class:`ActiveSession` is created by ``on_activate`` and closed by ``on_deactivate``. Its
subscription callbacks turn each message into a camera frame
(:mod:`lutfuse_ros.ros.camera_input`: headers and sizes checked, no pixel work) and add it
to the ROS-free :class:`~lutfuse_ros.stream.fusion_stream.FusionStream`, which pairs the
frames and fuses the newest pair on its worker thread; the worker hands the result to
:class:`~lutfuse_ros.ros.fused_output.FusedOutputs`, which publishes it. Inference never
blocks the executor and the output never falls behind the input. Bad messages and failed
pairs are counted, logged (throttled per kind) and dropped. The image subscriptions follow
the reliability of the camera publishers (:mod:`lutfuse_ros.ros.input_qos`), and each
input's delivery is measured and reported with the fix when frames go missing
(:mod:`lutfuse_ros.ros.input_health`).

Faults (:mod:`lutfuse_ros.ros.faults`) are detected here and recovered from without a
restart: a silent input stream (checked by a timer on the steady clock, so a paused bag or
simulation clock cannot hide it), a clock jump back (the synchroniser resets and pairing
restarts on the new timeline), a run of failed pairs (ERROR until one fuses again), and model
swaps (the worker fuses through a :class:`~lutfuse_ros.stream.step_slot.StepSlot`, which the
node swaps atomically). Each is logged through the per-kind throttle and reported in
``/diagnostics``.

Camera features (``docs/ros_node.md``): each camera arrives raw or compressed
(:mod:`lutfuse_ros.ros.camera_input`; decoding runs on the worker), ``visible/camera_info``
is carried over to ``fused/camera_info`` (:mod:`lutfuse_ros.ros.camera_info`), pairs are not
fused while nobody subscribes to a fused output (counted as ``idle``), and
:meth:`ActiveSession.apply_settings` applies live parameter changes
(:mod:`lutfuse_ros.ros.live_params`) without stopping.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.utilities import get_rmw_implementation_identifier
from sensor_msgs.msg import CameraInfo

from lutfuse_ros.errors import LutfuseError
from lutfuse_ros.ros.camera_info import VISIBLE_CAMERA_INFO_TOPIC, CameraInfoRelay
from lutfuse_ros.ros.camera_input import make_inputs
from lutfuse_ros.ros.conversions import ImageConverter
from lutfuse_ros.ros.diagnostics import (ERROR, WARN, MessageThrottle, NodeStatistics,
                                         to_diagnostic_array)
from lutfuse_ros.ros.fastdds_version import detect_fastdds
from lutfuse_ros.ros.faults import FaultMonitor
from lutfuse_ros.ros.fused_output import FusedOutputs
from lutfuse_ros.ros.input_health import InputHealth
from lutfuse_ros.ros.input_qos import InputSubscriptions
from lutfuse_ros.ros.model_loading import describe_model, hardware_id
from lutfuse_ros.ros.qos import make_qos
from lutfuse_ros.settings.node_settings import NodeSettings
from lutfuse_ros.stream.camera_frame import CameraFrame, UndecodableFrame
from lutfuse_ros.stream.fusion_step import FusionStep
from lutfuse_ros.stream.fusion_stream import FusedPair, FusionStream
from lutfuse_ros.stream.pairing import MatchedPair
from lutfuse_ros.stream.step_slot import StepSlot

DIAGNOSTICS_TOPIC = "/diagnostics"


class ActiveSession:
    """Subscriptions, publishers, fusion stream and diagnostics of an active node.

    Args:
        node: the (lifecycle) node that owns the entities.
        settings: validated node settings.
        slot: holds the configured fusion step (pipeline loaded); the node may swap it.
        callback_group: group of the subscriptions and timers (None: the node's default);
            a group of their own lets a multi-threaded executor serve the cameras while a
            parameter or service callback waits for a model load.
    """

    def __init__(self, node: Any, settings: NodeSettings, slot: StepSlot,
                 callback_group: Any = None) -> None:
        self._node = node
        self._settings = settings
        self._slot = slot
        self._group = callback_group
        self._logger = node.get_logger()
        diagnostics = settings.diagnostics
        self._faults = FaultMonitor(diagnostics.stream_timeout, diagnostics.error_after_failures)
        converter = ImageConverter(prefer_cv_bridge=settings.use_cv_bridge)
        self._cameras = make_inputs(settings.input.visible_transport,
                                    settings.input.thermal_transport, converter)
        self._camera_info = CameraInfoRelay()
        self._statistics = NodeStatistics()
        self._throttle = MessageThrottle(diagnostics.log_throttle)
        self._diagnostics_name = f"{node.get_fully_qualified_name()}: fusion"
        self._last_good: tuple[CameraFrame, CameraFrame] | None = None

        self._outputs = FusedOutputs(node, settings.qos, converter, self._camera_info,
                                     self._warn)
        self._open_compressed_output()
        self._stream = FusionStream(
            settings.sync, settings.output.max_rate, slot, deliver=self._publish,
            on_failure=self._on_failure, wants_output=self._outputs.wanted,
            count=self._statistics.count, on_clock_jump=self._on_clock_jump,
            now_ns=lambda: self._node.get_clock().now().nanoseconds)
        self._diagnostics_pub = None
        self._timers = []
        self._start_timers(diagnostics)
        self._stream.start()
        self._health: InputHealth | None = None
        self._inputs = InputSubscriptions(
            node, settings.qos.input, settings.qos.input_depth,
            {stream: (camera.topic, partial(self._on_image, stream=stream))
             for stream, camera in self._cameras.items()},
            on_rematch=self._on_rematch,
            on_lost=lambda stream, count: self._health.lost(stream, count),
            message_types={stream: camera.message_type
                           for stream, camera in self._cameras.items()},
            callback_group=callback_group)
        self._health = InputHealth(self._inputs, get_rmw_implementation_identifier(),
                                   detect_fastdds(), settings.qos.input_depth,
                                   diagnostics.stream_timeout)
        # Best effort matches camera_info publishers of either reliability.
        self._camera_info_sub = node.create_subscription(
            CameraInfo, VISIBLE_CAMERA_INFO_TOPIC, self._camera_info.add,
            make_qos("sensor_data", settings.qos.input_depth), callback_group=callback_group)

    @property
    def inputs(self) -> InputSubscriptions:
        """The image subscriptions (their QoS and publishers)."""
        return self._inputs

    @property
    def statistics(self) -> NodeStatistics:
        """Event counts and latencies of this session."""
        return self._statistics

    @property
    def input_topics(self) -> tuple[str, str]:
        """Resolved names of the visible and thermal topics subscribed to."""
        return tuple(self._node.resolve_topic_name(camera.topic)
                     for camera in self._cameras.values())

    @property
    def last_good_pair(self) -> tuple[CameraFrame, CameraFrame] | None:
        """``(visible, thermal)`` frames of the last pair fused successfully (or None)."""
        return self._last_good

    def model_swapped(self, step: FusionStep) -> None:
        """Note that the node installed ``step`` in the slot (reported in the next window)."""
        self._faults.model_swapped(describe_model(step))

    def model_refused(self, reason: str) -> None:
        """Note a refused model change (reported in the next diagnostics window)."""
        self._faults.model_refused(reason)

    def apply_settings(self, settings: NodeSettings) -> None:
        """Apply live parameter changes (sync, rate limit, diagnostics) without stopping.

        The node installs the matching fusion step (output and pipeline settings) in the slot
        itself. Frames waiting in the synchroniser are re-paired under the new sync settings;
        the pair in progress and the pending one are fused as they are.
        """
        old, self._settings = self._settings, settings
        self._stream.retune(settings.sync, settings.output.max_rate)
        diagnostics = settings.diagnostics
        if diagnostics != old.diagnostics:
            self._faults.retune(diagnostics.stream_timeout, diagnostics.error_after_failures)
            self._throttle = MessageThrottle(diagnostics.log_throttle)
            if (diagnostics.period, diagnostics.stream_timeout) != (
                    old.diagnostics.period, old.diagnostics.stream_timeout):
                for timer in self._timers:
                    self._node.destroy_timer(timer)
                self._timers = []
                self._start_timers(diagnostics)
        self._open_compressed_output()

    def _open_compressed_output(self) -> None:
        if self._slot.step.compresses:
            self._outputs.open_compressed()

    def _start_timers(self, diagnostics: Any) -> None:
        # Steady clock: reports and silence checks go on while a bag or simulation is paused.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if diagnostics.period > 0:
            if self._diagnostics_pub is None:
                self._diagnostics_pub = self._node.create_publisher(
                    DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
            self._timers.append(self._node.create_timer(
                diagnostics.period, self._publish_diagnostics, clock=steady,
                callback_group=self._group))
        if diagnostics.stream_timeout > 0:
            self._timers.append(self._node.create_timer(
                min(max(diagnostics.stream_timeout / 4, 0.05), 1.0), self._check_streams,
                clock=steady, callback_group=self._group))

    def close(self, timeout: float = 10.0) -> None:
        """Stop listening, let the image in progress finish, then release everything."""
        node = self._node
        self._inputs.close()
        node.destroy_subscription(self._camera_info_sub)
        if not self._stream.stop(timeout):
            self._logger.warning(f"fusion worker did not stop within {timeout} s")
        for timer in self._timers:
            node.destroy_timer(timer)
        self._timers = []
        self._outputs.close()
        if self._diagnostics_pub is not None:
            node.destroy_publisher(self._diagnostics_pub)

    # Executor side: cheap checks, then the frame goes to the stream (pairing).
    def _on_image(self, msg: Any, info: Any, stream: str) -> None:
        arrived_ns = time.monotonic_ns()
        self._statistics.count(stream)
        self._health.arrived(stream, msg, info)
        silent_for = self._faults.streams.arrived(stream)
        if silent_for is not None:
            self._info(f"{stream} stream resumed after {silent_for:.1f} s without images")
        try:
            frame = self._cameras[stream].frame(msg, arrived_ns)
        except LutfuseError as error:
            self._statistics.count(f"rejected_{stream}")
            self._warn(f"dropped {stream} image: {error}")
            return
        self._stream.add(frame)

    def _on_rematch(self, stream: str, description: str) -> None:
        self._health.reset(stream)
        self._logger.info(f"{stream} input: {description}")

    def _on_clock_jump(self, stream: str, newest_ns: int, stamp_ns: int) -> None:
        self._warn(self._faults.clock_jump(stream, newest_ns, stamp_ns))

    def _check_streams(self) -> None:
        for stream, seconds in self._faults.streams.check():
            topic = self._node.resolve_topic_name(self._cameras[stream].topic)
            self._warn(f"{stream} stream silent for {seconds:.1f} s (no image on {topic}); "
                       "fusion paused until it resumes")

    # Worker side: the stream fused a pair; publish it and keep the books.
    def _publish(self, pair: FusedPair) -> None:
        published_ns = self._outputs.publish(pair, pair.step.pipeline.config.alignment)
        completed_ns = pair.completed_ns
        self._statistics.record_output((published_ns - completed_ns) / 1e6,
                                       pair.fused.timings.total_ms,
                                       (pair.started_ns - completed_ns) / 1e6)
        self._last_good = (pair.visible, pair.thermal)
        ended = self._faults.failures.succeeded()
        if ended:
            self._info(f"fusion recovered after {ended} consecutive failed pair(s)")

    def _on_failure(self, pair: MatchedPair, error: Exception) -> None:
        if isinstance(error, UndecodableFrame):
            for stream in error.streams:
                self._statistics.count(f"undecodable_{stream}")
            self._warn(f"dropped pair: {error}")
            return
        self._statistics.count("failed")
        kind = "" if isinstance(error, LutfuseError) else f" ({type(error).__name__})"
        self._warn(f"dropped pair at visible stamp {pair.visible_stamp_ns / 1e9:.3f} s{kind}: "
                   f"{error}")
        if self._faults.failures.failed(error):
            fault = self._faults.failures.fault()
            self._error(fault.message if fault else "fusion failing")

    def _now(self) -> Any:
        return self._node.get_clock().now().to_msg()

    # Logging through the per-kind throttle. One call site per severity: rclpy refuses a
    # call site that logs at different severities.
    def _info(self, message: str) -> None:
        text = self._throttled(message)
        if text:
            self._logger.info(text)

    def _warn(self, message: str) -> None:
        text = self._throttled(message)
        if text:
            self._logger.warning(text)

    def _error(self, message: str) -> None:
        text = self._throttled(message)
        if text:
            self._logger.error(text)

    def _throttled(self, message: str) -> str | None:
        """``message`` (with the count of suppressed repeats) if its kind may be logged now."""
        admitted, suppressed = self._throttle.admit(message)
        if not admitted:
            return None
        return message + (f" ({suppressed} similar message(s) suppressed)" if suppressed else "")

    def _publish_diagnostics(self) -> None:
        counters = self._stream.sync_counters()
        counters.pop("resets")  # reported as "total clock_jumps" by the fault monitor
        extra = {f"sync {name}": value for name, value in counters.items()}
        extra["queue drops (newer pair won)"] = self._stream.dropped
        report = self._faults.apply(self._statistics.report(
            warn_fraction=self._settings.diagnostics.warn_fraction,
            max_rate=self._settings.output.max_rate, extra_totals=extra), self._health.faults())
        report.values.update(self._health.values())
        step = self._slot.step
        report.values["model"] = describe_model(step)
        self._diagnostics_pub.publish(to_diagnostic_array(
            report, name=self._diagnostics_name, hardware_id=hardware_id(step),
            stamp=self._now()))
        if report.level >= ERROR:
            self._error(f"diagnostics: {report.message}")
        elif report.level >= WARN:
            self._warn(f"diagnostics: {report.message}")
