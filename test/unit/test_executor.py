"""The node's executor on a real rclpy graph: cameras inline, slow services off their thread."""

from __future__ import annotations

import os
import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")


@pytest.fixture
def context():
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=1 + (os.getpid() * 17) % 100,
               signal_handler_options=SignalHandlerOptions.NO)
    yield context
    rclpy.try_shutdown(context=context)


def spin_until(executor, condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return condition()


def test_camera_callbacks_run_inline_while_a_slow_service_runs_on_the_helper(context):
    from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import UInt32
    from std_srvs.srv import Trigger

    from lutfuse_ros.ros.executor import CameraFirstExecutor

    node = rclpy.create_node("executor_test", namespace="/executor", context=context)
    client_node = rclpy.create_node("executor_client", namespace="/executor", context=context)
    cameras = MutuallyExclusiveCallbackGroup()
    received: list[tuple[float, str]] = []
    service_ran: list[tuple[float, float, str]] = []

    def slow_service(request, response):
        start = time.monotonic()
        time.sleep(0.8)   # like a model load and warm-up
        service_ran.append((start, time.monotonic(), threading.current_thread().name))
        response.success = True
        return response

    node.create_subscription(UInt32, "camera", lambda m: received.append(
        (time.monotonic(), threading.current_thread().name)), 50, callback_group=cameras)
    node.create_service(Trigger, "slow", slow_service)
    publisher = client_node.create_publisher(UInt32, "camera", 50)
    client = client_node.create_client(Trigger, "slow")
    executor = CameraFirstExecutor([cameras], context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, name="spinner", daemon=True)
    spinner.start()
    client_executor = SingleThreadedExecutor(context=context)
    client_executor.add_node(client_node)
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        deadline = time.monotonic() + 10.0
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        future = client.call_async(Trigger.Request())
        for index in range(60):   # 50 Hz for 1.2 s, across the 0.8 s service call
            publisher.publish(UInt32(data=index))
            time.sleep(0.02)
        while not future.done() and time.monotonic() < deadline:
            client_executor.spin_once(timeout_sec=0.05)
        assert future.done() and future.result().success
    finally:
        executor.shutdown()
        client_executor.shutdown()
        spinner.join(5.0)
        node.destroy_node()
        client_node.destroy_node()

    (start, end, service_thread), = service_ran
    assert service_thread.startswith("lutfuse-services")
    assert {thread for _, thread in received} == {"spinner"}   # inline: no hand-off
    during = [t for t, _ in received if start < t < end]
    assert len(during) >= 20, f"only {len(during)} camera callbacks during the 0.8 s service"
    assert not spinner.is_alive()


def test_an_exception_in_an_inline_callback_reaches_the_spinning_thread(context):
    from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

    from lutfuse_ros.ros.executor import CameraFirstExecutor

    node = rclpy.create_node("executor_error_test", context=context)
    cameras = MutuallyExclusiveCallbackGroup()

    def broken():
        raise RuntimeError("camera callback failed")

    node.create_timer(0.01, broken, callback_group=cameras)
    executor = CameraFirstExecutor([cameras], context=context)
    executor.add_node(node)
    try:
        with pytest.raises(RuntimeError, match="camera callback failed"):
            spin_until(executor, lambda: False, timeout=5.0)
    finally:
        executor.shutdown()
        node.destroy_node()
