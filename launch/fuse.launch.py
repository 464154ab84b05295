r"""Start the lutfuse fusion node with ``config/fuse.yaml``.

Example::

    ros2 launch lutfuse_ros fuse.launch.py namespace:=front \
        visible_topic:=/camera/color/image_raw thermal_topic:=/thermal/image_raw \
        artifact:=lutfuse-mini backend:=auto

Arguments are remaps and a few common parameter overrides only; every default lives in the
parameters file. The node configures and activates itself (parameter ``autostart``). The
shipped Fast DDS profile is exported for the processes this launch starts (unless a Fast
DDS transport variable is already set) so that large images survive best-effort topics;
camera drivers started by a launch file that includes this one after it inherit it too. It
goes into the variable the installed Fast DDS reads (2.x, Humble/Jazzy:
``FASTRTPS_DEFAULT_PROFILES_FILE``; 3.x, Kilted: ``FASTDDS_DEFAULT_PROFILES_FILE``; both where
the generation cannot be told).
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from lutfuse_ros.ros.fastdds_version import detect_fastdds
from lutfuse_ros.ros.transport import USER_TRANSPORT_VARIABLES, profile_variables

PACKAGE = "lutfuse_ros"


def _share(*parts):
    return PathJoinSubstitution([FindPackageShare(PACKAGE), *parts])


ARGUMENTS = (
    ("namespace", "", "namespace of the node and its relative topics"),
    ("params_file", _share("config", "fuse.yaml"), "parameters file of the node"),
    ("artifact", "", "model (shipped name or .safetensors path); empty keeps the params file's"),
    ("backend", "", "auto, torch, onnxruntime or tensorrt; empty keeps the params file's"),
    ("device", "", "cpu or cuda[:N]; empty keeps the params file's"),
    ("autostart", "", "true: configure and activate at start; false: wait for a lifecycle "
     "manager; empty keeps the params file's"),
    ("use_sim_time", "false", "use /clock (bag replay with --clock)"),
    ("visible_topic", "visible/image", "visible camera image topic"),
    ("thermal_topic", "thermal/image", "thermal camera image topic"),
    ("fused_topic", "fused/image", "fused image topic (its compressed form: <topic>/compressed)"),
    ("visible_camera_info_topic", "visible/camera_info", "visible camera's CameraInfo topic"),
    ("fused_camera_info_topic", "fused/camera_info", "CameraInfo of the fused image"),
    ("visible_transport", "", "raw or compressed (<visible_topic>/compressed); empty keeps the "
     "params file's"),
    ("thermal_transport", "", "raw or compressed (<thermal_topic>/compressed); empty keeps the "
     "params file's"),
    ("fastdds_profile", _share("config", "fastdds_profile.xml"),
     "Fast DDS profile to export when no transport variable is set; empty: none"),
)


def _is_true(text):
    return text.lower() in ("true", "1", "yes")


def _launch_setup(context):
    """Build the actions from the evaluated arguments (no side effects)."""
    def value(name):
        return LaunchConfiguration(name).perform(context)

    actions = []
    profile = value("fastdds_profile")
    if profile and not any(os.environ.get(name) for name in USER_TRANSPORT_VARIABLES):
        actions += [SetEnvironmentVariable(variable, profile)
                    for variable in profile_variables(detect_fastdds())]
    overrides = {"use_sim_time": _is_true(value("use_sim_time"))}
    for name in ("artifact", "backend", "device"):
        if value(name):
            overrides[name] = value(name)
    if value("autostart"):
        overrides["autostart"] = _is_true(value("autostart"))
    for stream in ("visible", "thermal"):
        if value(f"{stream}_transport"):
            overrides[f"input.{stream}_transport"] = value(f"{stream}_transport")
    fused = value("fused_topic")
    actions.append(Node(
        package=PACKAGE, executable="fusion_node", name="fusion_node",
        namespace=value("namespace"), output="screen", emulate_tty=True,
        parameters=[value("params_file"), overrides],
        remappings=[("visible/image", value("visible_topic")),
                    ("thermal/image", value("thermal_topic")),
                    ("fused/image", fused),
                    ("fused/image/compressed", f"{fused}/compressed"),
                    ("visible/image/compressed", f"{value('visible_topic')}/compressed"),
                    ("thermal/image/compressed", f"{value('thermal_topic')}/compressed"),
                    ("visible/camera_info", value("visible_camera_info_topic")),
                    ("fused/camera_info", value("fused_camera_info_topic"))]))
    return actions


def generate_launch_description():
    """Declare the arguments and start the node."""
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS]
        + [OpaqueFunction(function=_launch_setup)])
