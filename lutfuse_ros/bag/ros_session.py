"""The ROS side of ``lutfuse replay``: publishers, the fused and diagnostics subscriptions.

:class:`RosReplaySession` owns a private ``rclpy`` context on one ``ROS_DOMAIN_ID`` (no
global ``rclpy.init``, no signal handlers of its own: the caller decides what Ctrl-C does), a
node ``lutfuse_replay`` spun by a single-threaded executor in a background thread, publishers
of the node's two input topics and, once the fusion node is seen, subscriptions to its fused
output (raw CDR, so nothing is deserialised on the hot path) and to ``/diagnostics``.

Images are published as raw CDR bytes with reliable, keep-last QoS (compatible with both
reliable and best-effort subscriptions). Subscriptions copy the reliability the node's
publisher offers, so they match whatever QoS the node was configured with.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from lutfuse_ros.bag.common import THERMAL, VISIBLE, BagError

LOG = logging.getLogger(__name__)
DIAGNOSTICS_TOPIC = "/diagnostics"
NODE_NAME = "lutfuse_replay"
#: seconds to wait after our endpoints matched the node's: our side sees the match before
#: the node's subscriptions have matched our publishers (no rmw call observes the remote
#: side), and a best-effort reader discards samples of writers it has not matched yet.
#: Measured: without it the first 2-3 messages were lost; discovery completes in well
#: under this on one host.
SETTLE_S = 0.5


def configure_transport(environ: MutableMapping[str, str] = os.environ) -> str:
    """Give this process the node's Fast DDS transport profile (large best-effort frames).

    Same rule as the node (:func:`lutfuse_ros.ros.transport.apply_transport_profile`): the
    shipped profile unless the user chose transports. The publishing side matters most: its
    shared-memory segment must hold whole frames. Must run before the context is created.

    Returns:
        One line saying what was decided.
    """
    from lutfuse_ros.ros.transport import apply_transport_profile

    return apply_transport_profile(environ).reason


def topic_in_namespace(namespace: str, relative: str) -> str:
    """The absolute name a node in ``namespace`` gives the relative topic ``relative``."""
    namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{namespace}/{relative}"


class RosReplaySession:
    """Publish a bag's images to a fusion node and collect what it sends back.

    Args:
        domain_id: ``ROS_DOMAIN_ID`` of the private context.
        namespace: namespace of the fusion node (its relative topics resolve under it).
        on_fused: called from the executor thread with ``(cdr_bytes, receive_monotonic_s)``
            for every fused image.
        on_diagnostics: called from the executor thread with each ``DiagnosticArray``.
        depth: history depth of the image publishers.
    """

    def __init__(self, domain_id: int, namespace: str,
                 on_fused: Callable[[bytes, float], None],
                 on_diagnostics: Callable[[Any], None], depth: int = 10) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from rclpy.signals import SignalHandlerOptions
        from sensor_msgs.msg import Image

        LOG.info("replay transport: %s", configure_transport())
        self.topics = {VISIBLE: topic_in_namespace(namespace, "visible/image"),
                       THERMAL: topic_in_namespace(namespace, "thermal/image"),
                       "fused": topic_in_namespace(namespace, "fused/image")}
        self._on_fused = on_fused
        self._on_diagnostics = on_diagnostics
        self._context = rclpy.Context()
        rclpy.init(context=self._context, domain_id=domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(NODE_NAME, context=self._context,
                                      start_parameter_services=False)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
        self._publishers = {stream: self.node.create_publisher(Image, self.topics[stream], qos)
                            for stream in (VISIBLE, THERMAL)}
        self._fused_subscription = None
        self.callback_error: BaseException | None = None
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, name="lutfuse-replay-spin",
                                         daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def wait_for_node(self, timeout_s: float, failure: Callable[[], str | None],
                      stop: threading.Event) -> bool:
        """Wait until the fusion node subscribes to both inputs and publishes fused images.

        Then subscribe to the fused topic and ``/diagnostics``, wait for the match, and give
        the node :data:`SETTLE_S` to match our publishers in turn.

        Args:
            timeout_s: give up after this many seconds.
            failure: returns a message when waiting is pointless (the node process died).
            stop: set to abandon waiting.

        Returns:
            ``False`` when ``stop`` was set.

        Raises:
            BagError: timeout (naming what is missing) or ``failure()`` reported a message.
        """
        deadline = time.monotonic() + timeout_s
        fused = self.topics["fused"]
        while not self._inputs_and_output_seen():
            self._check_waiting(deadline, timeout_s, failure, "the fusion node")
            if stop.wait(0.1):
                return False
        self._subscribe(fused)
        while self._fused_subscription.get_publisher_count() < 1:
            self._check_waiting(deadline, timeout_s, failure, f"a match on {fused}")
            if stop.wait(0.05):
                return False
        return not stop.wait(SETTLE_S)

    def _inputs_and_output_seen(self) -> bool:
        return (all(p.get_subscription_count() >= 1 for p in self._publishers.values())
                and self.node.count_publishers(self.topics["fused"]) >= 1)

    def _check_waiting(self, deadline: float, timeout_s: float,
                       failure: Callable[[], str | None], what: str) -> None:
        message = failure()
        if message:
            raise BagError(message)
        if time.monotonic() > deadline:
            state = ", ".join(f"{self.topics[s]}: {p.get_subscription_count()} subscriber(s)"
                              for s, p in self._publishers.items())
            publishers = self.node.count_publishers(self.topics["fused"])
            raise BagError(f"gave up after {timeout_s:.0f} s waiting for {what} ({state}; "
                           f"{self.topics['fused']}: {publishers} publisher(s)); is a fusion "
                           "node running in this namespace and ROS_DOMAIN_ID?")

    def _subscribe(self, fused: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        offered = [info.qos_profile.reliability
                   for info in self.node.get_publishers_info_by_topic(fused)]
        reliability = (ReliabilityPolicy.RELIABLE
                       if offered and all(r == ReliabilityPolicy.RELIABLE for r in offered)
                       else ReliabilityPolicy.BEST_EFFORT)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=reliability,
                         durability=DurabilityPolicy.VOLATILE)
        self._fused_subscription = self.node.create_subscription(
            Image, fused, self._fused_callback, qos, raw=True)
        diagnostics_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=20,
                                     reliability=ReliabilityPolicy.BEST_EFFORT)
        self.node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC,
                                      self._diagnostics_callback, diagnostics_qos)

    def _diagnostics_callback(self, message: Any) -> None:
        try:
            self._on_diagnostics(message)
        except Exception as error:  # noqa: BLE001 - see _fused_callback
            LOG.warning("ignoring a /diagnostics message that could not be read: %r", error)

    def _fused_callback(self, data: bytes) -> None:
        when = time.monotonic()
        try:
            self._on_fused(data, when)
        except Exception as error:  # noqa: BLE001 - an escaping error would kill the spin thread
            if self.callback_error is None:
                self.callback_error = error
                LOG.error("handling a fused image failed: %r", error)

    def publish(self, stream: str, cdr: bytes) -> None:
        """Publish a serialised Image on the node's ``stream`` input."""
        self._publishers[stream].publish(cdr)

    def close(self) -> None:
        """Stop spinning and destroy the node and the context (idempotent)."""
        if self._context.ok():
            self._executor.shutdown(timeout_sec=2.0)
            self.node.destroy_node()
            self._context.try_shutdown()
        self._spinner.join(timeout=5.0)
