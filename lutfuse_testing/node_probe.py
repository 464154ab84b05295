"""A ROS participant inside the test process that drives and watches a fusion node.

For the fault, camera and live-parameter tests it plays both cameras through a
:class:`~lutfuse_testing.camera_rig.CameraRig` (each stream can be stopped and resumed,
stamps can jump), optionally publishes ``/clock`` from the same stamps, records
``fused/image`` and the node's ``/diagnostics`` statuses, and calls the node's
``~/reload_model`` and ``set_parameters`` services. Everything runs on background threads,
so a test waits for states (counts, levels, messages) instead of sleeping for fixed times.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from lutfuse_ros.stamps import header_stamp_ns
from lutfuse_testing.camera_frames import synthetic_pair
from lutfuse_testing.camera_rig import CameraRig
from lutfuse_testing.waiting import wait_for

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Output:
    """One fused image received.

    Its stamp, content index sent, a digest of its pixels, and its encoding, size and arrival
    time (``time.monotonic``).
    """

    stamp_ns: int
    content: int
    digest: int
    encoding: str = ""
    size: tuple[int, int] = (0, 0)
    received: float = 0.0


@dataclass(frozen=True)
class Status:
    """One diagnostics status of the node, with the monotonic time it was received."""

    received: float
    level: int
    message: str
    hardware_id: str
    values: dict[str, str]


class NodeProbe:
    """Cameras in, fused images and diagnostics out, on one private ROS domain.

    Args:
        domain_id: the test's ROS domain.
        namespace: the node's namespace.
        node_name: the node's name (its services live under it).
        size: ``(width, height)`` of the images.
        rate: pairs per second.
        distinct: distinct image contents, cycled.
        sim_time: also publish ``/clock`` with each pair's stamp (for ``use_sim_time``).
        subscribe: subscribe to ``fused/image`` from the start (else :meth:`subscribe_fused`).
    """

    def __init__(self, domain_id: int, namespace: str, node_name: str = "fusion_node",
                 size: tuple[int, int] = (64, 48), rate: float = 10.0, distinct: int = 3,
                 sim_time: bool = False, subscribe: bool = True) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rcl_interfaces.srv import SetParameters
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions
        from std_srvs.srv import Trigger

        from lutfuse_ros.ros.qos import make_qos

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("lutfuse_fault_probe", namespace=namespace,
                                      context=self.context)
        self._namespace = namespace
        self._rig = CameraRig(self.node, make_qos("sensor_data", 5), clock=sim_time)
        self._sim_time = sim_time
        self._images = [self._rig.prepare(visible, "bgr8", thermal, "mono8")
                        for visible, thermal in (synthetic_pair(i, *size)
                                                 for i in range(distinct))]
        self._fused_subscription = None
        if subscribe:
            self.subscribe_fused()
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        service_base = f"{namespace}/{node_name}"
        self._reload = self.node.create_client(Trigger, f"{service_base}/reload_model")
        self._set_parameters = self.node.create_client(SetParameters,
                                                       f"{service_base}/set_parameters")
        self._lock = threading.Lock()
        self._sent: dict[int, int] = {}  # visible stamp -> content index
        self.published: list[tuple[float, int]] = []  # (time.monotonic, visible stamp)
        self.outputs: list[Output] = []
        self.statuses: list[Status] = []
        self._streams = {"visible": False, "thermal": False}
        self._offset_ns = 0
        self._period = 1.0 / rate
        self._index = 0
        self._stop = threading.Event()
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._threads = [threading.Thread(target=self._spin, daemon=True),
                         threading.Thread(target=self._publish_loop, daemon=True)]
        for thread in self._threads:
            thread.start()

    # Controls.
    def subscribe_fused(self) -> None:
        """Subscribe to ``fused/image`` (the node's first output subscriber, if none before)."""
        from sensor_msgs.msg import Image

        from lutfuse_ros.ros.qos import make_qos

        self._fused_subscription = self.node.create_subscription(
            Image, "fused/image", self._on_fused, make_qos("reliable", 10))

    def fused_matched(self) -> bool:
        """Whether the ``fused/image`` subscription has matched the node's publisher."""
        return self._fused_subscription is not None and \
            self._fused_subscription.get_publisher_count() > 0

    def set_streams(self, visible: bool | None = None, thermal: bool | None = None) -> None:
        """Start or stop publishing on each camera topic (None keeps it as it is)."""
        with self._lock:
            for name, on in (("visible", visible), ("thermal", thermal)):
                if on is not None:
                    self._streams[name] = on

    def jump_clock(self, seconds: float) -> int:
        """Shift every later stamp by ``seconds`` (negative: back).

        Returns:
            The newest stamp sent so far (ns).
        """
        with self._lock:
            self._offset_ns += int(seconds * _NS_PER_S)
            return max(self._sent, default=0)

    def reload_model(self, timeout: float = 60.0) -> tuple[bool, str]:
        """Call ``~/reload_model``; return ``(success, message)``."""
        from std_srvs.srv import Trigger

        result = self._call(self._reload, Trigger.Request(), timeout)
        return result.success, result.message

    def set_parameter(self, name: str, value: Any, timeout: float = 60.0) -> tuple[bool, str]:
        """Set one node parameter; return ``(successful, reason)``."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        request = SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()])
        result = self._call(self._set_parameters, request, timeout).results[0]
        return result.successful, result.reason

    # Observations.
    def outputs_since(self, count: int) -> list[Output]:
        """Outputs received after the first ``count`` ones."""
        with self._lock:
            return self.outputs[count:]

    def output_count(self) -> int:
        """Fused images received so far."""
        with self._lock:
            return len(self.outputs)

    def wait_outputs(self, more: int, timeout: float = 60.0,
                     where: Callable[[Output], bool] = lambda output: True) -> list[Output]:
        """Wait for ``more`` new outputs (after this call) that satisfy ``where``."""
        start = self.output_count()
        wait_for(lambda: sum(map(where, self.outputs_since(start))) >= more, timeout,
                 what=lambda: f"{more} fused images matching the condition (got "
                              f"{sum(map(where, self.outputs_since(start)))}; last status "
                              f"{self.last_status()})")
        return [output for output in self.outputs_since(start) if where(output)]

    def last_status(self) -> Status | None:
        """The newest status of the node (None before the first)."""
        with self._lock:
            return self.statuses[-1] if self.statuses else None

    def wait_status(self, condition: Callable[[Status], bool], timeout: float = 60.0,
                    what: str = "a status") -> Status:
        """Wait for a status received after this call that satisfies ``condition``."""
        since = time.monotonic()
        found: list[Status] = []

        def seen() -> bool:
            with self._lock:
                found.extend(s for s in self.statuses if s.received >= since and condition(s))
            return bool(found)

        wait_for(seen, timeout, what=lambda: f"{what}; last status {self.last_status()}")
        return found[0]

    def wait_ok(self, timeout: float = 60.0) -> Status:
        """Wait for an OK status that reports fusion."""
        return self.wait_status(lambda s: s.level == 0 and "fusing at" in s.message, timeout,
                                "an OK 'fusing at' status")

    def close(self) -> None:
        """Stop publishing and spinning; leave the ROS context."""
        self._stop.set()
        self._executor.shutdown()
        for thread in self._threads:
            thread.join(10)
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)

    # Background threads.
    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # shutdown while spinning
            pass

    def _publish_loop(self) -> None:
        next_time = time.monotonic()
        while not self._stop.is_set():
            next_time += self._period
            with self._lock:
                streams, offset_ns = dict(self._streams), self._offset_ns
                content = self._index % len(self._images)
                self._index += 1
            stamp_ns = time.time_ns() + offset_ns
            if self._sim_time:
                self._rig.publish_clock(stamp_ns)
            visible, thermal = self._rig.messages(self._images[content], stamp_ns, stamp_ns,
                                                  "camera")
            with self._lock:
                self._sent[stamp_ns] = content
                if streams["visible"] and streams["thermal"]:
                    self.published.append((time.monotonic(), stamp_ns))
            self._rig.publish(visible if streams["visible"] else None,
                              thermal if streams["thermal"] else None)
            self._stop.wait(max(0.0, next_time - time.monotonic()))

    def _on_fused(self, msg: Any) -> None:
        stamp_ns = header_stamp_ns(msg.header)
        digest = hash(bytes(msg.data))
        received = time.monotonic()
        with self._lock:
            self.outputs.append(Output(stamp_ns, self._sent.get(stamp_ns, -1), digest,
                                       msg.encoding, (msg.width, msg.height), received))

    def _on_diagnostics(self, msg: Any) -> None:
        received = time.monotonic()
        with self._lock:
            for status in msg.status:
                if status.name.startswith(f"{self._namespace}/"):
                    level = status.level[0] if isinstance(status.level, bytes) \
                        else int(status.level)
                    self.statuses.append(Status(received, level, status.message,
                                                status.hardware_id,
                                                {kv.key: kv.value for kv in status.values}))

    def _call(self, client: Any, request: Any, timeout: float) -> Any:
        if not client.wait_for_service(timeout_sec=timeout):
            raise AssertionError(f"service {client.srv_name} did not appear within {timeout} s")
        future = client.call_async(request)
        wait_for(future.done, timeout, what=f"an answer from {client.srv_name}")
        return future.result()
