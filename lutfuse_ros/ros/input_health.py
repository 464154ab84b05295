"""Are the cameras' frames reaching the node? Delivery per input stream, and the fix if not.

:class:`InputHealth` measures each stream's delivery from the stamps of the frames that
arrive (:class:`~lutfuse_ros.ros.delivery.DeliveryMonitor`) and, when frames go missing,
produces a WARN for ``/diagnostics`` (and the throttled log) that names the publishers and
their QoS, the measured delivery ratio and the fix for the middleware in use
(:func:`loss_fix`): the Fast DDS profile variable the running generation reads for the camera
driver's process, reliable publishing, or ``qos.input: auto``. The node cannot repair frames
lost inside a best-effort publisher's process; it can make that visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rclpy.qos import ReliabilityPolicy

from lutfuse_ros.ros.delivery import DeliveryEstimate, DeliveryMonitor
from lutfuse_ros.ros.diagnostics import WARN
from lutfuse_ros.ros.fastdds_version import FastDdsInstall
from lutfuse_ros.ros.faults import STREAMS, Fault
from lutfuse_ros.ros.input_qos import InputSubscriptions, describe_publishers, reliability_name
from lutfuse_ros.ros.transport import camera_profile_advice

_NS_PER_S = 1_000_000_000
#: WARN when fewer than this fraction of a stream's frames arrive ...
LOSS_WARN_RATIO = 0.95
#: ... and at least this many are missing (one late stamp is not a loss).
LOSS_WARN_MISSING = 3


def loss_fix(publishers: Sequence[Any], subscribed: Any, middleware: str,
             install: FastDdsInstall | None, depth: int) -> str:
    """What to change so that a stream's frames arrive (one clause, no trailing period).

    Args:
        publishers: the stream's ``TopicEndpointInfo`` list.
        subscribed: the reliability the node subscribes with.
        middleware: the rmw implementation identifier (``rmw_fastrtps_cpp``).
        install: the Fast DDS generation in use (None: unknown or not Fast DDS).
        depth: the subscription's KEEP_LAST depth (``qos.input_depth``).
    """
    fastdds = "fastrtps" in middleware or "fastdds" in middleware
    transport = (camera_profile_advice(install) if fastdds else
                 f"give {middleware or 'the middleware'} a transport for large samples in the "
                 "camera driver's process")
    best_effort = [p for p in publishers
                   if p.qos_profile.reliability != ReliabilityPolicy.RELIABLE]
    if best_effort:
        return (f"the best-effort publisher(s) {describe_publishers(best_effort)} lose large "
                f"frames in their own process: {transport}, or publish reliable")
    if subscribed != ReliabilityPolicy.RELIABLE and publishers:
        return ("set qos.input to auto or reliable (a best-effort subscription makes the "
                f"reliable publishers send best effort), or {transport}")
    return ("frames are lost although delivery is reliable: the camera skips them, the "
            f"node's queue (qos.input_depth = {depth}) overflows while it is busy, or large "
            "frames on the camera's default transports stall and arrive in bursts (lost UDP "
            f"fragments wait for the next heartbeat): {transport}")


class InputHealth:
    """Delivery monitors of the input streams and their diagnostics.

    Args:
        inputs: the session's subscriptions (publishers and subscribed reliability).
        middleware: rmw implementation identifier.
        install: the Fast DDS generation in use, if known.
        depth: ``qos.input_depth``.
        pause_s: gaps this long are pauses, not losses (``diagnostics.stream_timeout``).
    """

    def __init__(self, inputs: InputSubscriptions, middleware: str,
                 install: FastDdsInstall | None, depth: int, pause_s: float = 2.0) -> None:
        self._inputs = inputs
        self._middleware = middleware
        self._install = install
        self._depth = depth
        self._monitors = {stream: DeliveryMonitor(pause_s=pause_s if pause_s > 0 else 2.0)
                          for stream in STREAMS}

    def arrived(self, stream: str, msg: Any, info: Mapping[str, Any] | None) -> None:
        """Note a frame of ``stream``.

        Args:
            stream: ``visible`` or ``thermal``.
            msg: the ``sensor_msgs/Image`` (its header stamp is used).
            info: the rclpy ``MessageInfo`` of the message (None where rclpy has none).
        """
        stamp = msg.header.stamp
        sequence, publisher = None, None
        if info is not None:
            gid = info.get("publisher_gid")
            publisher = bytes(gid["data"]) if isinstance(gid, Mapping) else None
            # Without the publisher's gid (Jazzy) sequences of several writers would mix.
            if publisher is not None or len(self._inputs.publishers(stream)) <= 1:
                sequence = info.get("publication_sequence_number")
        self._monitors[stream].add(stamp.sec * _NS_PER_S + stamp.nanosec, sequence, publisher)

    def lost(self, stream: str, count: int) -> None:
        """Note ``count`` samples of ``stream`` the middleware reported lost."""
        self._monitors[stream].lost(count)

    def reset(self, stream: str) -> None:
        """Start measuring ``stream`` afresh (its subscription was re-created)."""
        self._monitors[stream].reset()

    def estimate(self, stream: str) -> DeliveryEstimate | None:
        """The current delivery estimate of ``stream``."""
        return self._monitors[stream].estimate()

    def faults(self) -> list[Fault]:
        """A WARN per stream that loses frames."""
        faults = []
        for stream in STREAMS:
            estimate = self.estimate(stream)
            if estimate is None or estimate.ratio >= LOSS_WARN_RATIO or \
                    estimate.expected - estimate.received < LOSS_WARN_MISSING:
                continue
            publishers = self._inputs.publishers(stream)
            subscribed = self._inputs.reliability(stream)
            fix = loss_fix(publishers, subscribed, self._middleware, self._install,
                           self._depth)
            faults.append(Fault(WARN, (
                f"{stream} frames lost before reaching the node: {estimate.describe()} "
                f"arrived; publishers "
                f"{describe_publishers(publishers)}, subscribed "
                f"{reliability_name(subscribed)}; fix: {fix}")))
        return faults

    def values(self) -> dict[str, str]:
        """Diagnostics key/values: subscription, publishers and delivery of each stream."""
        values = {}
        for stream in STREAMS:
            estimate = self.estimate(stream)
            values[f"{stream} subscription"] = self._inputs.describe(stream)
            values[f"{stream} delivery"] = (estimate.describe() if estimate is not None else
                                            "n/a (too few frames or no regular period)")
        return values
