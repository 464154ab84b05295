"""``launch/fuse.launch.py``: consistency everywhere, the real launch system where it exists.

The consistency checks read the file's syntax tree and run everywhere. The launch test
colcon-builds the package and runs the installed launch file through ``launch.LaunchService``
(launch and launch_ros are not on PyPI: a ROS 2 install has them, and launch_support finds
them in ``../shared/vendor``; it skips with a reason where neither is there).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import launch_support
import numpy as np
import pytest
import yaml
from ros_node_harness import open_graph, RosGraph

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "fuse.launch.py"
REQUIRED_ARGUMENTS = {"namespace", "params_file", "artifact", "backend", "device", "autostart",
                      "use_sim_time",
                      "visible_topic", "thermal_topic", "fused_topic"}


def launch_arguments() -> dict[str, ast.AST]:
    """Argument name -> default-value node of the ARGUMENTS table."""
    tree = ast.parse(LAUNCH_FILE.read_text())
    table = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", "") == "ARGUMENTS" for t in node.targets))
    return {entry.elts[0].value: entry.elts[1] for entry in table.elts}


def test_launch_file_declares_the_arguments_and_names_what_the_package_installs():
    arguments = launch_arguments()
    assert REQUIRED_ARGUMENTS <= set(arguments)
    source = LAUNCH_FILE.read_text()
    # The executable is the console script setup.py installs.
    scripts = re.findall(r'"(\w+) = lutfuse_ros\.ros\.node:main"', (REPO / "setup.py").read_text())
    assert scripts == ["fusion_node"] and 'executable="fusion_node"' in source
    # Default files exist in the source tree and are installed by setup.py's data_files.
    for name in ("params_file", "fastdds_profile"):
        parts = [a.value for a in arguments[name].args if isinstance(a, ast.Constant)]
        assert (REPO.joinpath(*parts)).is_file(), parts
    # The node's relative topics are the ones remapped.
    for topic in ("visible/image", "thermal/image", "fused/image", "fused/image/compressed",
                  "visible/image/compressed", "thermal/image/compressed",
                  "visible/camera_info", "fused/camera_info"):
        assert f'("{topic}", ' in source


class MiddlewareDefaultGraph(RosGraph):
    """A graph whose camera and recorder run on the middleware's defaults, publishing reliable.

    No Fast DDS profile and no ``FASTDDS_*`` / ``FASTRTPS_*`` variable in their environment, as
    a user's camera driver runs; ``remaps`` are added to their ``--ros-args``.
    """

    remaps: tuple[str, ...] = ()

    @property
    def env(self) -> dict[str, str]:
        return {key: value for key, value in super().env.items()
                if not key.startswith(("FASTDDS_", "FASTRTPS_"))}

    def traffic(self, role: str, name: str, *options: str, timeout: float = 120.0,
                **_) -> subprocess.Popen:
        command = [sys.executable, "-m", "lutfuse_testing.camera_traffic", "--timeout",
                   str(timeout), "--no-fastdds-profile", "--qos", "reliable", role, *options,
                   *self.ros_args(),
                   *(arg for remap in self.remaps for arg in ("-r", remap))]
        return self.start(name, command)


@pytest.fixture(scope="module")
def installed_prefix(tmp_path_factory) -> Path:
    """The package colcon-built into a workspace (once per module), or skip."""
    launch_support.make_importable()
    reason = launch_support.missing_reason()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("colcon_ros", reason="colcon-ros is not installed")
    return launch_support.colcon_install(tmp_path_factory.mktemp("launch_ws"))


def node_default(name: str):
    """The default of a dotted node parameter in config/fuse.yaml."""
    value = yaml.safe_load((REPO / "config" / "fuse.yaml").read_text())
    value = next(iter(value.values()))["ros__parameters"]
    for part in name.split("."):
        value = value[part]
    return value


@pytest.mark.ros
@pytest.mark.slow
def test_installed_launch_file_serves_a_default_camera_on_namespaced_remapped_topics(
        installed_prefix, tmp_path):
    """The colcon-installed fuse.launch.py, through launch.LaunchService, with arguments.

    A reliable default-middleware camera outside the node's namespace; the node in
    ``front_<pid>``; visible remapped to an absolute topic, thermal and fused to relative ones
    (resolved in the node's namespace); the params file's encoding must reach the node.
    """
    private = next(open_graph(tmp_path))  # a private domain and namespace
    graph = MiddlewareDefaultGraph(tmp_path, private.domain_id, private.namespace)
    try:
        camera_ns = graph.namespace.strip("/")
        node_ns = f"front_{os.getpid()}"
        graph.remaps = ("thermal/image:=" + f"/{node_ns}/thermal_raw",)
        parameters = {"backend_threads": 1, "output": {"encoding": "mono8"}}
        params_file = graph.write_params(parameters, "launch_params.yaml")
        arguments = {"namespace": node_ns, "params_file": str(params_file),
                     "artifact": "lutfuse-mini", "backend": "torch",
                     "visible_topic": f"/{camera_ns}/visible/image",
                     "thermal_topic": "thermal_raw", "fused_topic": "fused/out"}
        launch_file = installed_prefix / "share" / "lutfuse_ros" / "launch" / "fuse.launch.py"
        runner = Path(__file__).with_name("launch_runner.py")
        log = open(tmp_path / "launch.log", "wb")
        graph.processes["launch"] = subprocess.Popen(
            [sys.executable, str(runner), str(launch_file),
             *(f"{name}:={value}" for name, value in arguments.items())],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=launch_support.installed_env(installed_prefix, dict(
                os.environ, ROS_DOMAIN_ID=str(graph.domain_id), PYTHONUNBUFFERED="1")))
        log.close()
        graph.wait_until_active("launch", timeout=150)
        active = next(line for line in graph.log("launch").splitlines() if "]: active: " in line)
        assert (f"/{camera_ns}/visible/image + /{node_ns}/thermal_raw -> /{node_ns}/fused/out"
                in active), active

        published, recording = graph.run_traffic(
            ["--size", "640", "480", "--rate", "10", "--count", "40"],
            ["--topic", f"/{node_ns}/fused/out"], timeout=150)
        sent = {pair["stamp_ns"] for pair in published}
        delivered = {int(s) for s in recording.stamp_ns[recording.measured]} & sent
        assert len(delivered) >= 38, (f"{len(delivered)} of 40 fused pairs back\n"
                                      f"{graph.log('launch')}")
        with np.load(tmp_path / "recording.npz") as data:  # mono8 from the params file
            assert set(data["bytes"][recording.measured].tolist()) == {640 * 480}
        assert graph.stop("launch") == 0, graph.log("launch")
        assert "Traceback" not in graph.log("launch"), graph.log("launch")
    finally:
        graph.close()
