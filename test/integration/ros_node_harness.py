"""Process harness of the fusion-node integration tests: publisher -> node -> recorder.

Each test gets a :class:`RosGraph` (fixture ``ros_graph``): its own ``ROS_DOMAIN_ID`` and
namespace, a temporary folder, and processes that are always stopped at the end (SIGINT,
then SIGTERM, then SIGKILL), supervised by :class:`lutfuse_testing.processes.ProcessGroup`
(also the soak benchmark's supervisor), which also removes the Fast DDS shared-memory files a
SIGKILLed process of the test left behind.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from lutfuse_testing.processes import ProcessGroup
from lutfuse_testing.waiting import wait_for  # noqa: F401 (the tests import it from here)

REPO = Path(__file__).resolve().parents[2]
_COUNTER = itertools.count()
#: Prefixes of the environment variables by which Fast DDS 2.x and 3.x read their settings.
FASTDDS_VARIABLE_PREFIXES = ("FASTDDS_", "FASTRTPS_")


def middleware_default_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` without any Fast DDS variable.

    A process started with it runs on the middleware's defaults, as an ordinary camera
    driver does.
    """
    return {key: value for key, value in env.items()
            if not key.startswith(FASTDDS_VARIABLE_PREFIXES)}


@dataclass
class Recording:
    """What a recorder process saved."""

    stamp_ns: np.ndarray
    receive_ns: np.ndarray
    frame_id: np.ndarray
    images: np.ndarray | None
    diagnostics: list[dict]

    @property
    def measured(self) -> np.ndarray:
        """Mask of the measured messages, those that are not warm-up."""
        return self.frame_id != "warmup"

    def statuses(self, namespace: str) -> list[dict]:
        """Diagnostic statuses published by the node in ``namespace``."""
        return [s for s in self.diagnostics if s["name"].startswith(f"{namespace}/")]


class RosGraph(ProcessGroup):
    """Processes of one test on a private ROS domain and namespace.

    The supervision (logs, orderly stop, shared-memory cleanup, the node's command line) is
    :class:`lutfuse_testing.processes.ProcessGroup`, shared with the soak benchmark; this adds
    the tests' node and camera helpers.

    Args:
        tmp: the test's temporary folder (logs, parameter files, recordings).
        domain_id: ``ROS_DOMAIN_ID`` of every process.
        namespace: ROS namespace of every process.
    """

    def __init__(self, tmp: Path, domain_id: int, namespace: str) -> None:
        super().__init__(tmp, domain_id, namespace)
        self.tmp = tmp

    def write_params(self, parameters: dict[str, Any], name: str = "params.yaml") -> Path:
        """Write a parameters file (nested dicts allowed) for all nodes."""
        path = self.tmp / name
        path.write_text(yaml.safe_dump({"/**": {"ros__parameters": parameters}}))
        return path

    def start_node(self, parameters: dict[str, Any] | None = None, *extra: str,
                   name: str = "node") -> subprocess.Popen:
        """``lutfuse node`` with config/fuse.yaml, then ``parameters``, then ``extra`` args."""
        files = [self.write_params(parameters, f"{name}.yaml")] if parameters else []
        return self.start(name, self.node_command(*files, extra=tuple(extra)))

    def wait_until_active(self, name: str = "node", timeout: float = 90.0) -> None:
        """Wait for the node's ``active:`` log line (or fail with its log if it exits)."""
        process = self.processes[name]

        def active() -> bool:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}:\n{self.log(name)}")
            return "]: active: " in self.log(name)

        wait_for(active, timeout, what=lambda: f"{name} to become active:\n{self.log(name)}")

    def traffic(self, role: str, name: str, *options: str, timeout: float = 120.0,
                middleware_defaults: bool = False, qos: str | None = None,
                depth: int | None = None) -> subprocess.Popen:
        """Start ``python -m lutfuse_testing.camera_traffic <role>`` in this graph.

        With ``middleware_defaults`` the process runs like an ordinary camera driver: no
        Fast DDS profile and no Fast DDS variable in its environment. ``qos`` and ``depth``:
        the role's ``--qos`` and ``--depth`` (``sensor_data`` and 5 when None).
        """
        common = (["--no-fastdds-profile"] if middleware_defaults else []) + \
            (["--qos", qos] if qos else []) + (["--depth", str(depth)] if depth else [])
        command = [sys.executable, "-m", "lutfuse_testing.camera_traffic", *common, "--timeout",
                   str(timeout), role, *options, *self.ros_args()]
        return self.start(name, command,
                          env=middleware_default_env(self.env) if middleware_defaults else None)

    def run_traffic(self, publish: list[str], record: list[str] | None = None,
                    timeout: float = 120.0, also_ready: tuple[Path, ...] = (),
                    camera_middleware_defaults: bool = False, camera_qos: str | None = None,
                    camera_depth: int | None = None, recorder_qos: str | None = None,
                    ) -> tuple[list[dict], Recording]:
        """Publish measured pairs and record ``fused/image``; return the log and recording.

        The recorder starts first; the publisher sends warm-up pairs until the recorder (and
        every recorder whose ready file is in ``also_ready``) has an output, then the
        measured pairs. ``camera_middleware_defaults`` runs the publisher without the Fast
        DDS profile and variables (see :meth:`traffic`); ``camera_qos``, ``camera_depth`` and
        ``recorder_qos`` are their ``--qos`` and ``--depth``.
        """
        ready, done = self.tmp / "ready", self.tmp / "done"
        out, log = self.tmp / "recording.npz", self.tmp / "published.json"
        recorder = self.traffic("record", "recorder", "--ready-file", str(ready), "--done-file",
                                str(done), "--out", str(out), *(record or []),
                                timeout=timeout, qos=recorder_qos)
        publisher = self.traffic("publish", "publisher", "--ready-file", str(ready),
                                 "--done-file", str(done), "--log", str(log),
                                 "--linger-until", str(out), *publish,
                                 *(option for path in also_ready
                                   for option in ("--ready-file", str(path))),
                                 timeout=timeout, qos=camera_qos, depth=camera_depth,
                                 middleware_defaults=camera_middleware_defaults)
        for name, process in (("publisher", publisher), ("recorder", recorder)):
            try:
                code = process.wait(timeout + 30)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} did not finish:\n{self.log(name)}")
            assert code == 0, f"{name} exited with {code}:\n{self.log(name)}\nnode:\n" \
                              f"{self.log('node')}"
        return json.loads(log.read_text())["pairs"], load_recording(out)


def load_recording(path: Path) -> Recording:
    """Read a recorder's ``.npz``."""
    with np.load(path, allow_pickle=True) as data:
        images = data["images"] if "images" in data.files else None
        return Recording(data["stamp_ns"], data["receive_ns"], data["frame_id"], images,
                         json.loads(str(data["diagnostics_json"])))


def open_graph(tmp_path: Path):
    """Generator behind each test module's ``ros_graph`` fixture.

    It gives a private ROS domain and namespace, with cleanup of every started process.
    """
    pytest.importorskip("rclpy", reason="rclpy is not installed")
    index = next(_COUNTER)
    domain_id = 1 + (os.getpid() * 7 + index * 13) % 100
    graph = RosGraph(tmp_path, domain_id, f"/lutfuse_test_{os.getpid()}_{index}")
    try:
        yield graph
    finally:
        graph.close()


class LifecycleClient:
    """Drive a lifecycle node's services from the test process (own rclpy context).

    Args:
        domain_id: the graph's ROS domain.
        node_name: fully qualified node name (``/ns/fusion_node``).
    """

    def __init__(self, domain_id: int, node_name: str) -> None:
        import rclpy
        from lifecycle_msgs.srv import ChangeState, GetState
        from rcl_interfaces.srv import SetParameters
        from rclpy.signals import SignalHandlerOptions

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("lutfuse_test_lifecycle_client", context=self.context)
        self._clients = {
            "change_state": self.node.create_client(ChangeState, f"{node_name}/change_state"),
            "get_state": self.node.create_client(GetState, f"{node_name}/get_state"),
            "set_parameters": self.node.create_client(SetParameters,
                                                      f"{node_name}/set_parameters"),
        }

    def _call(self, name: str, request, timeout: float = 60.0):
        client = self._clients[name]
        if not client.wait_for_service(timeout_sec=timeout):
            pytest.fail(f"service {client.srv_name} did not appear within {timeout} s")
        future = client.call_async(request)
        executor = self._rclpy.executors.SingleThreadedExecutor(context=self.context)
        executor.add_node(self.node)
        try:
            executor.spin_until_future_complete(future, timeout_sec=timeout)
        finally:
            executor.remove_node(self.node)
            executor.shutdown()
        if not future.done():
            pytest.fail(f"service {client.srv_name} did not answer within {timeout} s")
        return future.result()

    def state(self) -> str:
        """Label of the current lifecycle state."""
        from lifecycle_msgs.srv import GetState

        return self._call("get_state", GetState.Request()).current_state.label

    def transition(self, label: str) -> bool:
        """Request a transition by label (``configure``, ``activate`` ...); its success."""
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request()
        request.transition.label = label
        return self._call("change_state", request).success

    def set_parameter(self, name: str, value: Any) -> tuple[bool, str]:
        """Set one parameter; return ``(successful, reason)``."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        message = Parameter(name, value=value).to_parameter_msg()
        request = SetParameters.Request(parameters=[message])
        result = self._call("set_parameters", request).results[0]
        return result.successful, result.reason

    def close(self) -> None:
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)
