"""What exists while the fusion node is active: topics, synchroniser, worker, diagnostics.

:class:`ActiveSession` is created by ``on_activate`` and closed by ``on_deactivate``. Its
subscription callbacks only validate headers and sizes (no pixel work), pair the messages
and hand the newest pair to a :class:`~lutfuse_ros.latest_wins_worker.LatestItemWorker`; the
worker thread converts, fuses and publishes, so inference never blocks the executor and the
output never falls behind the input. Bad messages and failed pairs are counted, logged
(throttled per kind) and dropped. The image subscriptions follow the reliability of the
camera publishers (:mod:`lutfuse_ros.ros.input_qos`), and each input's delivery is measured
and reported with the fix when frames go missing (:mod:`lutfuse_ros.ros.input_health`).

Faults (:mod:`lutfuse_ros.ros.faults`) are detected here and recovered from without a
restart: a silent input stream (checked by a timer on the steady clock, so a paused bag or
simulation clock cannot hide it), a clock jump back (the synchroniser resets and pairing
restarts on the new timeline), a run of failed pairs (ERROR until one fuses again), and model
swaps (the worker fuses through a :class:`~lutfuse_ros.ros.model_loading.StepSlot`, which the node
swaps atomically). Each is logged through the per-kind throttle and reported in
``/diagnostics``.

Camera features (``docs/ros_node.md``): each camera arrives raw or compressed
(:mod:`lutfuse_ros.ros.compressed_input`; decoding runs on the worker), ``visible/camera_info``
is carried over to ``fused/camera_info`` (:mod:`lutfuse_ros.ros.camera_info`), pairs are not
fused while nobody subscribes to a fused output (counted as ``idle``), and
:meth:`ActiveSession.apply_settings` applies live parameter changes
(:mod:`lutfuse_ros.ros.live_params`) without stopping.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from functools import partial
from typing import Any, NamedTuple

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.utilities import get_rmw_implementation_identifier
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from lutfuse_ros.errors import LutfuseError
from lutfuse_ros.latest_wins_worker import LatestItemWorker, RateLimiter
from lutfuse_ros.image_codec import DecodeError
from lutfuse_ros.ros.camera_info import (FUSED_CAMERA_INFO_TOPIC, VISIBLE_CAMERA_INFO_TOPIC,
                                         CameraInfoRelay)
from lutfuse_ros.ros.compressed_input import make_inputs
from lutfuse_ros.ros.diagnostics import (ERROR, WARN, MessageThrottle, NodeStatistics,
                                         to_diagnostic_array)
from lutfuse_ros.ros.faults import FaultMonitor
from lutfuse_ros.ros.fastdds_version import detect_fastdds
from lutfuse_ros.ros.fusion_step import FusionStep
from lutfuse_ros.ros.input_health import InputHealth
from lutfuse_ros.ros.input_qos import InputSubscriptions
from lutfuse_ros.ros.model_loading import StepSlot, describe_model, hardware_id
from lutfuse_ros.ros.qos import make_qos
from lutfuse_ros.settings.node_settings import NodeSettings
from lutfuse_ros.sync import MatchedPair

VISIBLE_TOPIC = "visible/image"
THERMAL_TOPIC = "thermal/image"
FUSED_TOPIC = "fused/image"
COMPRESSED_TOPIC = "fused/image/compressed"
DIAGNOSTICS_TOPIC = "/diagnostics"
_NS_PER_S = 1_000_000_000


class _Received(NamedTuple):
    """An incoming message and its arrival time (``time.monotonic_ns``)."""

    message: Image
    arrived_ns: int


class ActiveSession:
    """Subscriptions, publishers, synchroniser, worker and diagnostics of an active node.

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
        self._pairing_lock = threading.Lock()  # pairer and limiter vs. live parameter changes
        self._pairer = self._make_pairer(settings)
        self._retired_sync: dict[str, int] = {}  # counters of synchronisers replaced live
        self._cameras = make_inputs(settings.input.visible_transport,
                                    settings.input.thermal_transport)
        self._camera_info = CameraInfoRelay()
        self._statistics = NodeStatistics()
        self._throttle = MessageThrottle(diagnostics.log_throttle)
        self._limiter = RateLimiter(settings.output.max_rate)
        self._worker = LatestItemWorker(self._process, self._on_failure, name="lutfuse-fusion")
        self._diagnostics_name = f"{node.get_fully_qualified_name()}: fusion"
        self._last_good: tuple[Image, Image] | None = None

        output_qos = make_qos(settings.qos.output, settings.qos.output_depth)
        self._image_pub = node.create_publisher(Image, FUSED_TOPIC, output_qos)
        self._compressed_pub = None
        self._open_compressed_publisher()
        self._camera_info_pub = node.create_publisher(CameraInfo, FUSED_CAMERA_INFO_TOPIC,
                                                      output_qos)
        self._diagnostics_pub = None
        self._timers = []
        self._start_timers(diagnostics)
        self._worker.start()
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
    def last_good_pair(self) -> tuple[Image, Image] | None:
        """``(visible, thermal)`` messages of the last pair fused successfully (or None)."""
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
        with self._pairing_lock:
            if settings.sync != old.sync:
                retired = asdict(self._pairer.counters)
                self._pairer = self._make_pairer(settings, carry_from=self._pairer)
                for name, count in retired.items():
                    self._retired_sync[name] = self._retired_sync.get(name, 0) + count
            if settings.output.max_rate != old.output.max_rate:
                self._limiter = RateLimiter(settings.output.max_rate)
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
        self._open_compressed_publisher()

    def _make_pairer(self, settings: NodeSettings, carry_from: Any = None) -> Any:
        pairer = settings.sync.make_pairer(self._on_clock_jump)
        if carry_from is not None:
            queued = getattr(carry_from, "queued_frames", lambda: [])()
            for stream, stamp_ns, item in queued:
                add = pairer.add_visible if stream == "visible" else pairer.add_thermal
                self._dispatch(add(stamp_ns, item))
        return pairer

    def _open_compressed_publisher(self) -> None:
        if self._compressed_pub is None and self._slot.step.compresses:
            self._compressed_pub = self._node.create_publisher(
                CompressedImage, COMPRESSED_TOPIC,
                make_qos(self._settings.qos.output, self._settings.qos.output_depth))

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

    def _wants_output(self) -> bool:
        """Whether anyone subscribes to a fused output (image, compressed, camera_info)."""
        return any(publisher.get_subscription_count() for publisher in
                   (self._image_pub, self._compressed_pub, self._camera_info_pub)
                   if publisher is not None)

    def close(self, timeout: float = 10.0) -> None:
        """Stop listening, let the image in progress finish, then release everything."""
        node = self._node
        self._inputs.close()
        node.destroy_subscription(self._camera_info_sub)
        if not self._worker.stop(timeout):
            self._logger.warning(f"fusion worker did not stop within {timeout} s")
        for timer in self._timers:
            node.destroy_timer(timer)
        self._timers = []
        for publisher in (self._image_pub, self._compressed_pub, self._camera_info_pub,
                          self._diagnostics_pub):
            if publisher is not None:
                node.destroy_publisher(publisher)

    # Executor side: cheap checks and pairing only.
    def _on_image(self, msg: Any, info: Any, stream: str) -> None:
        arrived_ns = time.monotonic_ns()
        self._statistics.count(stream)
        self._health.arrived(stream, msg, info)
        silent_for = self._faults.streams.arrived(stream)
        if silent_for is not None:
            self._info(f"{stream} stream resumed after {silent_for:.1f} s without images")
        try:
            self._cameras[stream].check(msg)
        except LutfuseError as error:
            self._statistics.count(f"rejected_{stream}")
            self._warn(f"dropped {stream} image: {error}")
            return
        stamp_ns = msg.header.stamp.sec * _NS_PER_S + msg.header.stamp.nanosec
        with self._pairing_lock:
            add = self._pairer.add_visible if stream == "visible" else self._pairer.add_thermal
            self._dispatch(add(stamp_ns, _Received(msg, arrived_ns)))

    def _dispatch(self, pairs: list[MatchedPair]) -> None:
        """Hand synchronised pairs to the worker, unless idle or rate limited."""
        for pair in pairs:
            self._statistics.count("pairs")
            if not self._wants_output():
                self._statistics.count("idle")
            elif self._limiter.allow(pair.visible_stamp_ns):
                self._worker.submit(pair)
            else:
                self._statistics.count("rate_limited")

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

    # Worker side: conversion, fusion, publication.
    def _process(self, pair: MatchedPair) -> None:
        started_ns = time.monotonic_ns()
        completed_ns = max(pair.visible.arrived_ns, pair.thermal.arrived_ns)
        visible, thermal = self._decoded(pair.visible.message, "visible"), \
            self._decoded(pair.thermal.message, "thermal")
        if visible is None or thermal is None:
            return
        with self._slot.use() as step:
            fused = step.fuse(visible, thermal, self._now)
            self._image_pub.publish(fused.message)
            published_ns = time.monotonic_ns()
            info, mismatch = self._camera_info.fused_info(visible, thermal, fused.message,
                                                          step.pipeline.config.alignment)
            if info is not None:
                self._camera_info_pub.publish(info)
            elif mismatch:
                self._warn(mismatch)
            compressed_pub = self._compressed_pub
            if step.compresses and compressed_pub is not None and \
                    compressed_pub.get_subscription_count():
                compressed_pub.publish(step.compress(fused))
        self._statistics.record_output((published_ns - completed_ns) / 1e6,
                                       fused.timings.total_ms, (started_ns - completed_ns) / 1e6)
        self._last_good = (visible, thermal)
        ended = self._faults.failures.succeeded()
        if ended:
            self._info(f"fusion recovered after {ended} consecutive failed pair(s)")

    def _decoded(self, msg: Any, stream: str) -> Image | None:
        """The stream's message as an Image (decoded if compressed); None if undecodable."""
        try:
            return self._cameras[stream].to_image(msg)
        except DecodeError as error:
            self._statistics.count(f"undecodable_{stream}")
            self._warn(f"dropped pair: {stream} compressed image at stamp "
                       f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d} did not decode: "
                       f"{error}")
            return None

    def _on_failure(self, pair: MatchedPair, error: Exception) -> None:
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
        counters = {name: count + self._retired_sync.get(name, 0)
                    for name, count in asdict(self._pairer.counters).items()}
        counters.pop("resets")  # reported as "total clock_jumps" by the fault monitor
        extra = {f"sync {name}": value for name, value in counters.items()}
        extra["queue drops (newer pair won)"] = self._worker.counters.dropped
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
