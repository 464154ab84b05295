"""Input QoS matching and delivery measurement: stamps, sequence numbers, the reported fix.

The estimators are checked on stamp series with known losses; the subscription matching on a
real rclpy graph (publishers of each reliability appearing and going away).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from lutfuse_ros.ros.delivery import (DeliveryMonitor, estimate_delivery, estimate_from_sequences,
                                      estimate_period)
from lutfuse_ros.ros.fastdds_version import FastDdsInstall

S = 1_000_000_000


def camera_stamps(period_s: float, count: int, keep: float, jitter_s: float, seed: int,
                  ) -> tuple[np.ndarray, int]:
    """Stamps of the frames a lossy link delivers, and how many were delivered."""
    rng = np.random.default_rng(seed)
    stamps = np.arange(count) * period_s + rng.uniform(-jitter_s, jitter_s, count)
    kept = rng.random(count) < keep
    kept[0] = kept[-1] = True   # the window spans the whole series
    return (stamps[kept] * S).astype(np.int64), int(kept.sum())


@pytest.mark.parametrize("period_s", [1 / 30, 0.1])
@pytest.mark.parametrize("keep", [1.0, 0.8, 0.3])
def test_stamp_gaps_measure_the_delivery_ratio(period_s, keep):
    for seed in range(5):
        stamps, received = camera_stamps(period_s, 200, keep, 0.05 * period_s, seed)
        estimate = estimate_delivery(stamps, pause_s=0)
        assert estimate is not None
        assert estimate.received == received and estimate.expected == 200, (seed, estimate)
        assert estimate.period_s == pytest.approx(period_s, rel=0.02)


def test_period_is_the_largest_that_explains_the_gaps():
    period = 0.1
    gaps = np.array([2, 3, 5, 7, 2, 4, 9, 3, 2, 11, 6], dtype=float) * period
    assert estimate_period(gaps) == pytest.approx(period)   # never observed directly
    assert estimate_period(np.array([])) is None


def test_pauses_are_not_losses_and_irregular_streams_give_no_estimate():
    stamps = np.concatenate([np.arange(20) * 0.1, 10 + np.arange(20) * 0.1]) * S
    estimate = estimate_delivery(stamps.astype(np.int64), pause_s=2.0)
    assert estimate.received == estimate.expected == 40
    irregular = np.cumsum(np.random.default_rng(3).exponential(0.1, 50)) * S
    assert estimate_delivery(irregular.astype(np.int64)) is None


def test_sequence_numbers_count_each_publisher_separately():
    clock = [0.0]
    monitor = DeliveryMonitor(window_s=100.0, clock=lambda: clock[0])
    for sequence in range(1, 41):
        clock[0] += 0.1
        if sequence % 4:                          # every fourth frame of camera a lost
            monitor.add(int(clock[0] * S), sequence, b"camera-a")
        if sequence <= 10:                        # camera b loses nothing
            monitor.add(int(clock[0] * S) + 1, 100 + sequence, b"camera-b")
    estimate = monitor.estimate()
    assert estimate.evidence == "publication sequence numbers" and estimate.period_s is None
    # a: 30 received of 1..39 (40 was lost after the last one received); b: 10 of 10
    assert (estimate.received, estimate.expected) == (30 + 10, 39 + 10)
    assert "40 of ~49 frames (82%)" in estimate.describe()
    assert estimate_from_sequences({"a": [(0.0, 7)]}) is None   # one frame tells nothing


def test_lost_sample_events_count_frames_that_never_arrived():
    clock = [0.0]
    monitor = DeliveryMonitor(window_s=20.0, clock=lambda: clock[0])
    monitor.lost(8)                              # before the first complete frame
    for sequence in range(9, 41):
        clock[0] += 0.1
        if sequence % 3 == 0:
            monitor.add(int(clock[0] * S), sequence)
        else:
            monitor.lost(1)
    estimate = monitor.estimate()
    # 11 arrived (9, 12, ... 39): the sequence numbers see 20 lost between them, the
    # events all 8 + 21 = 29, the before-first and after-last ones included.
    assert estimate.evidence == "lost-sample events"
    assert (estimate.received, estimate.expected) == (11, 40)
    only_lost = DeliveryMonitor(clock=lambda: clock[0])
    only_lost.lost(12)                           # not one frame complete: still measured
    assert (only_lost.estimate().received, only_lost.estimate().expected) == (0, 12)
    clock[0] += 30.0
    assert monitor.estimate() is None            # all of it left the window


def test_a_restarted_writer_and_the_window_restart_the_count():
    clock = [0.0]
    monitor = DeliveryMonitor(window_s=2.0, clock=lambda: clock[0])
    for sequence in (1, 2, 5, 9, 10):
        clock[0] += 0.1
        monitor.add(int(clock[0] * S), sequence)
    assert monitor.estimate() is None or monitor.estimate().expected >= 8
    for sequence in range(1, 11):                # same key, numbering restarts at 1
        clock[0] += 0.1
        monitor.add(int(clock[0] * S), sequence)
    estimate = monitor.estimate()
    assert (estimate.received, estimate.expected) == (10, 10)
    clock[0] += 10.0                             # everything left the window
    assert monitor.estimate() is None or monitor.estimate().evidence != \
        "publication sequence numbers"


def test_frames_without_sequence_numbers_use_the_stamps():
    monitor = DeliveryMonitor()
    stamps, received = camera_stamps(0.1, 60, 0.5, 0.002, seed=1)
    for stamp in stamps:
        monitor.add(int(stamp), None)
    estimate = monitor.estimate()
    assert estimate.evidence == "gaps between stamps"
    assert (estimate.received, estimate.expected) == (received, 60)


rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")


def endpoint(reliability, node="camera"):
    from rclpy.qos import QoSProfile
    from rclpy.topic_endpoint_info import TopicEndpointInfo

    info = TopicEndpointInfo()
    info.node_name, info.node_namespace = node, "/robot"
    info.qos_profile = QoSProfile(depth=5, reliability=reliability)
    return info


def test_matched_reliability_follows_the_publishers():
    from rclpy.qos import ReliabilityPolicy

    from lutfuse_ros.ros.input_qos import (NO_PUBLISHER_RELIABILITY, describe_publishers,
                                           matched_reliability)

    reliable, best_effort = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT
    assert matched_reliability([endpoint(reliable), endpoint(reliable)]) == reliable
    assert matched_reliability([endpoint(reliable), endpoint(best_effort)]) == best_effort
    assert matched_reliability([]) == NO_PUBLISHER_RELIABILITY == reliable
    assert describe_publishers([endpoint(best_effort, "cam")]) == "/robot/cam (best effort)"


@pytest.mark.parametrize("install, variable", [
    (FastDdsInstall(2, "2.14.5", "test"), "FASTRTPS_DEFAULT_PROFILES_FILE"),
    (FastDdsInstall(3, "3.2.3", "test"), "FASTDDS_DEFAULT_PROFILES_FILE")])
def test_the_fix_names_what_the_middleware_in_use_needs(install, variable):
    from rclpy.qos import ReliabilityPolicy

    from lutfuse_ros.ros.input_health import loss_fix

    reliable, best_effort = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT
    fix = loss_fix([endpoint(best_effort)], best_effort, "rmw_fastrtps_cpp", install, 10)
    assert f"export {variable}=" in fix and "or publish reliable" in fix
    assert "/robot/camera (best effort)" in fix
    fix = loss_fix([endpoint(reliable)], best_effort, "rmw_fastrtps_cpp", install, 10)
    assert "qos.input to auto or reliable" in fix
    fix = loss_fix([endpoint(reliable)], reliable, "rmw_fastrtps_cpp", install, 10)
    assert "qos.input_depth = 10" in fix
    assert "arrive in bursts" in fix and f"export {variable}=" in fix
    fix = loss_fix([endpoint(best_effort)], best_effort, "rmw_cyclonedds_cpp", None, 10)
    assert "PROFILES_FILE" not in fix and "rmw_cyclonedds_cpp" in fix


def test_subscriptions_rematch_when_publishers_come_and_go():
    import os

    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    from lutfuse_ros.ros.input_qos import InputSubscriptions

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=1 + (os.getpid() * 11) % 100,
               signal_handler_options=SignalHandlerOptions.NO)
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=context)
    try:
        node = rclpy.create_node("lutfuse_input_test", namespace="/qos_test", context=context)
        camera = rclpy.create_node("camera", namespace="/qos_test", context=context)
        executor.add_node(node)
        received, rematched = [], []
        inputs = InputSubscriptions(node, "auto", 10,
                                    {"visible": ("visible/image", lambda m, i: received.append(i)),
                                     "thermal": ("thermal/image", lambda m, i: None)},
                                    on_rematch=lambda stream, text: rematched.append(text))

        def spin_until(condition, timeout=10.0):
            deadline = time.monotonic() + timeout
            while not condition() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            return condition()

        assert inputs.reliability("visible") == ReliabilityPolicy.RELIABLE   # no publisher
        best_effort = camera.create_publisher(
            Image, "visible/image", QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
        assert spin_until(lambda: inputs.reliability("visible") ==
                          ReliabilityPolicy.BEST_EFFORT), rematched
        assert inputs.reliability("thermal") == ReliabilityPolicy.RELIABLE
        assert spin_until(lambda: best_effort.get_subscription_count() == 1)
        best_effort.publish(Image(height=1, width=1, encoding="mono8", step=1, data=b"\x07"))
        assert spin_until(lambda: received), "no message through the matched subscription"
        info = received[0]
        assert info is None or info.get("publication_sequence_number") == 1
        camera.destroy_publisher(best_effort)
        reliable = camera.create_publisher(Image, "visible/image", 10)
        assert spin_until(lambda: inputs.reliability("visible") == ReliabilityPolicy.RELIABLE
                          and len(inputs.publishers("visible")) == 1), rematched
        assert "(reliable)" in inputs.describe("visible") and reliable is not None
        assert any("best effort" in text for text in rematched)
        inputs.close()
    finally:
        executor.shutdown()
        rclpy.try_shutdown(context=context)


def test_fixed_presets_keep_their_reliability_and_report_the_publishers():
    import os

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    from lutfuse_ros.ros.input_qos import InputSubscriptions

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=1 + (os.getpid() * 13) % 100,
               signal_handler_options=SignalHandlerOptions.NO)
    executor = SingleThreadedExecutor(context=context)
    try:
        node = rclpy.create_node("lutfuse_fixed_qos_test", namespace="/fixed", context=context)
        camera = rclpy.create_node("camera", namespace="/fixed", context=context)
        executor.add_node(node)
        inputs = InputSubscriptions(node, "sensor_data", 5,
                                    {"visible": ("visible/image", lambda m, i: None)})
        camera.create_publisher(Image, "visible/image", 10)   # reliable
        deadline = time.monotonic() + 10
        while not inputs.publishers("visible") and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert inputs.reliability("visible") == ReliabilityPolicy.BEST_EFFORT
        assert not inputs.matching
        assert inputs.describe("visible") == ("/fixed/visible/image subscribed best effort "
                                              "(qos.input sensor_data; publishers "
                                              "/fixed/camera (reliable))")
        inputs.close()
    finally:
        executor.shutdown()
        rclpy.try_shutdown(context=context)
