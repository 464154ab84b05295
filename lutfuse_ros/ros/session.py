"""What exists while the fusion node is active: topics, synchroniser, worker, diagnostics.

:class:`ActiveSession` is created by ``on_activate`` and closed by ``on_deactivate``. Its
subscription callbacks only validate headers and sizes (no pixel work), pair the messages
and hand the newest pair to a :class:`~lutfuse_ros.fusion_worker.LatestItemWorker`; the
worker thread converts, fuses and publishes, so inference never blocks the executor and the
output never falls behind the input. Bad messages and failed pairs are counted, logged
(throttled per kind) and dropped.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, NamedTuple

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CompressedImage, Image

from lutfuse_ros.errors import LutfuseError
from lutfuse_ros.fusion_worker import LatestItemWorker, RateLimiter
from lutfuse_ros.ros.diagnostics import WARN, MessageThrottle, NodeStatistics, to_diagnostic_array
from lutfuse_ros.ros.fusion_step import FusionStep
from lutfuse_ros.ros.qos import make_qos
from lutfuse_ros.ros.settings import NodeSettings
from lutfuse_ros.sync import MatchedPair, make_synchroniser

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
        step: the configured fusion step (pipeline loaded).
    """

    def __init__(self, node: Any, settings: NodeSettings, step: FusionStep) -> None:
        self._node = node
        self._settings = settings
        self._step = step
        self._logger = node.get_logger()
        sync = settings.sync
        self._pairer = make_synchroniser(
            sync.slop, sync.queue_size, sync.thermal_offset,
            prefer_message_filters=sync.use_message_filters,
            min_visible_interval=sync.min_visible_interval,
            min_thermal_interval=sync.min_thermal_interval)
        self._statistics = NodeStatistics()
        self._throttle = MessageThrottle(settings.diagnostics.log_throttle)
        self._limiter = RateLimiter(settings.output.max_rate)
        self._worker = LatestItemWorker(self._process, self._on_failure, name="lutfuse-fusion")
        self._diagnostics_name = f"{node.get_fully_qualified_name()}: fusion"
        self._hardware_id = f"{step.pipeline.artifact.name} on {step.pipeline.backend.describe()}"

        output_qos = make_qos(settings.qos.output, settings.qos.output_depth)
        self._image_pub = node.create_publisher(Image, FUSED_TOPIC, output_qos)
        self._compressed_pub = (node.create_publisher(CompressedImage, COMPRESSED_TOPIC,
                                                      output_qos) if step.compresses else None)
        self._diagnostics_pub = None
        self._timer = None
        if settings.diagnostics.period > 0:
            self._diagnostics_pub = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
            self._timer = node.create_timer(settings.diagnostics.period, self._publish_diagnostics)
        self._worker.start()
        input_qos = make_qos(settings.qos.input, settings.qos.input_depth)
        self._subscriptions = [
            node.create_subscription(Image, VISIBLE_TOPIC, self._on_visible, input_qos),
            node.create_subscription(Image, THERMAL_TOPIC, self._on_thermal, input_qos),
        ]

    @property
    def statistics(self) -> NodeStatistics:
        """Event counts and latencies of this session."""
        return self._statistics

    def close(self, timeout: float = 10.0) -> None:
        """Stop listening, let the image in progress finish, then release everything."""
        node = self._node
        for subscription in self._subscriptions:
            node.destroy_subscription(subscription)
        self._subscriptions = []
        if not self._worker.stop(timeout):
            self._logger.warning(f"fusion worker did not stop within {timeout} s")
        if self._timer is not None:
            node.destroy_timer(self._timer)
        for publisher in (self._image_pub, self._compressed_pub, self._diagnostics_pub):
            if publisher is not None:
                node.destroy_publisher(publisher)

    # Executor side: cheap checks and pairing only.
    def _on_visible(self, msg: Image) -> None:
        self._on_image(msg, "visible", self._pairer.add_visible)

    def _on_thermal(self, msg: Image) -> None:
        self._on_image(msg, "thermal", self._pairer.add_thermal)

    def _on_image(self, msg: Image, stream: str, add: Any) -> None:
        arrived_ns = time.monotonic_ns()
        self._statistics.count(stream)
        try:
            self._step.check(msg, stream)
        except LutfuseError as error:
            self._statistics.count(f"rejected_{stream}")
            self._warn(f"dropped {stream} image: {error}")
            return
        stamp_ns = msg.header.stamp.sec * _NS_PER_S + msg.header.stamp.nanosec
        for pair in add(stamp_ns, _Received(msg, arrived_ns)):
            self._statistics.count("pairs")
            if self._limiter.allow(pair.visible_stamp_ns):
                self._worker.submit(pair)
            else:
                self._statistics.count("rate_limited")

    # Worker side: conversion, fusion, publication.
    def _process(self, pair: MatchedPair) -> None:
        started_ns = time.monotonic_ns()
        completed_ns = max(pair.visible.arrived_ns, pair.thermal.arrived_ns)
        fused = self._step.fuse(pair.visible.message, pair.thermal.message, self._now)
        self._image_pub.publish(fused.message)
        published_ns = time.monotonic_ns()
        self._statistics.record_output((published_ns - completed_ns) / 1e6,
                                       fused.timings.total_ms, (started_ns - completed_ns) / 1e6)
        if self._compressed_pub is not None and self._compressed_pub.get_subscription_count():
            self._compressed_pub.publish(self._step.compress(fused))

    def _on_failure(self, pair: MatchedPair, error: Exception) -> None:
        self._statistics.count("failed")
        kind = "" if isinstance(error, LutfuseError) else f" ({type(error).__name__})"
        self._warn(f"dropped pair at visible stamp {pair.visible_stamp_ns / 1e9:.3f} s{kind}: "
                   f"{error}")

    def _now(self) -> Any:
        return self._node.get_clock().now().to_msg()

    def _warn(self, message: str) -> None:
        admitted, suppressed = self._throttle.admit(message)
        if admitted:
            more = f" ({suppressed} similar message(s) suppressed)" if suppressed else ""
            self._logger.warning(message + more)

    def _publish_diagnostics(self) -> None:
        extra = {f"sync {name}": value for name, value in asdict(self._pairer.counters).items()}
        extra["queue drops (newer pair won)"] = self._worker.counters.dropped
        report = self._statistics.report(
            warn_fraction=self._settings.diagnostics.warn_fraction,
            max_rate=self._settings.output.max_rate, extra_totals=extra)
        self._diagnostics_pub.publish(to_diagnostic_array(
            report, name=self._diagnostics_name, hardware_id=self._hardware_id,
            stamp=self._now()))
        if report.level >= WARN:
            self._warn(f"diagnostics: {report.message}")
