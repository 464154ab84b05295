"""Proof of life of the installed launch file, the ROS way: launch_testing + launch_testing_ros.

``generate_test_description`` colcon-builds the package, includes the installed
``fuse.launch.py`` (namespace ``pol_<pid>``, lutfuse-mini) and a camera process on the
middleware's defaults (no Fast DDS profile or variable, reliable, 640x480 at 10 Hz), then
``ReadyToTest``. The active test waits for fused images with ``WaitForTopics`` and for the
camera to finish; after shutdown every process must have exited with 0. pytest collects this
file through test/integration/conftest.py (launch_testing's own plugin does not load on
pytest 9); it skips with a reason where the launch system is not installed and
``../shared/vendor`` is missing.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

import launch_support
import pytest

launch_support.make_importable()
_REASON = launch_support.missing_reason() or (
    None if importlib.util.find_spec("launch_testing_ros") else "launch_testing_ros is missing")
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)
pytest.importorskip("colcon_ros", reason="colcon-ros is not installed")

import launch  # noqa: E402 (after the skip: not importable everywhere)
import launch.actions  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch_testing_ros import WaitForTopics  # noqa: E402

launch_support.undo_launch_logging()  # importing launch changed it

NAMESPACE = f"pol_{os.getpid()}"
SIZE = (640, 480)
# The environment before generate_test_description pointed it at the colcon install.
_SAVED_ENV = dict(os.environ)


@pytest.mark.launch_test
@pytest.mark.ros
@pytest.mark.slow
def generate_test_description():
    """The installed launch file, a default-middleware camera, then ReadyToTest."""
    workspace = Path(tempfile.mkdtemp(prefix="lutfuse_launch_testing_"))
    atexit.register(shutil.rmtree, workspace, ignore_errors=True)
    prefix = launch_support.colcon_install(workspace)
    # The launch file is evaluated in this process (FindPackageShare, the node's executable);
    # the launched processes inherit this environment. Restored after shutdown.
    os.environ.update(launch_support.installed_env(prefix, os.environ),
                      ROS_DOMAIN_ID=str(1 + (os.getpid() * 11) % 100), PYTHONUNBUFFERED="1")
    fuse = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(prefix / "share" / "lutfuse_ros" / "launch" /
                                          "fuse.launch.py")),
        launch_arguments={"namespace": NAMESPACE, "artifact": "lutfuse-mini",
                          "backend": "torch"}.items())
    camera_env = {key: value for key, value in os.environ.items()
                  if not key.startswith(("FASTDDS_", "FASTRTPS_"))}
    camera = launch.actions.ExecuteProcess(
        cmd=[sys.executable, "-m", "lutfuse_testing.camera_traffic", "--timeout", "180",
             "--no-fastdds-profile", "--qos", "reliable", "publish", "--size", *map(str, SIZE),
             "--rate", "10", "--count", "50", "--ros-args", "-r", f"__ns:=/{NAMESPACE}"],
        env=camera_env, name="camera", output="screen")
    return (launch.LaunchDescription([fuse, camera, launch_testing.actions.ReadyToTest()]),
            {"camera": camera})


class TestFusedImagesArrive(unittest.TestCase):
    """While the launch runs."""

    def test_fused_images_arrive_on_the_namespaced_topic(self, proc_info, camera):
        from sensor_msgs.msg import Image

        topic = f"/{NAMESPACE}/fused/image"
        with WaitForTopics([(topic, Image)], timeout=150.0) as waited:
            fused = waited.received_messages(topic)
        self.assertTrue(fused)
        self.assertEqual((fused[0].width, fused[0].height), SIZE)
        proc_info.assertWaitForShutdown(process=camera, timeout=120)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """After the launch shut down."""

    @classmethod
    def tearDownClass(cls):
        os.environ.clear()
        os.environ.update(_SAVED_ENV)
        launch_support.undo_launch_logging()  # the launch run changed it again

    def test_every_process_exited_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
