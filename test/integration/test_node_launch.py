"""``launch/fuse.launch.py``: consistency everywhere, a real launch where launch_ros exists.

launch_ros cannot be installed from PyPI, so the real launch test runs only in a ROS 2
install (after ``colcon build``); the consistency checks read the file's syntax tree and run
everywhere.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "fuse.launch.py"
REQUIRED_ARGUMENTS = {"namespace", "params_file", "artifact", "backend", "use_sim_time",
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


@pytest.mark.ros
def test_launch_starts_an_active_node(monkeypatch):
    if importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch_ros is not installed (not on PyPI); runs in a ROS 2 install")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("lutfuse_ros")
    except PackageNotFoundError:
        pytest.skip("lutfuse_ros is not installed in an ament prefix (colcon build first)")
    import os

    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from ros_node_harness import LifecycleClient, wait_for

    domain_id = 1 + os.getpid() % 100
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
    namespace = f"lutfuse_launch_{os.getpid()}"
    service = LaunchService()
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={"namespace": namespace, "artifact": "lutfuse-mini",
                          "backend": "torch"}.items())]))
    runner = threading.Thread(target=service.run, kwargs={"shutdown_when_idle": False})
    runner.start()
    client = LifecycleClient(domain_id, f"/{namespace}/fusion_node")
    try:
        wait_for(lambda: client.state() == "active", 120, interval=0.5,
                 what="the launched node to become active")
    finally:
        client.close()
        service.shutdown()
        runner.join(60)
    assert not runner.is_alive()
