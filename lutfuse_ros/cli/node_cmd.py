r"""``lutfuse node``: run the ROS 2 fusion node without a ROS install (rclpy from PyPI).

Everything from ``--ros-args`` on goes to ``rclpy.init``, as with ``ros2 run``::

    lutfuse node --ros-args --params-file config/fuse.yaml -p artifact:=lutfuse-mini \
        -r visible/image:=/camera/color/image_raw -r __ns:=/front
"""

from __future__ import annotations

import argparse

from lutfuse_ros.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "node", help="run the ROS 2 fusion node (ROS arguments after --ros-args)",
        description=__doc__.splitlines()[0], allow_abbrev=False,
        epilog="example: lutfuse node --ros-args --params-file fuse.yaml -p backend:=torch "
               "-r fused/image:=/fused")
    parser.add_argument("--no-fastdds-profile", action="store_true",
                        help="do not apply the shipped Fast DDS transport profile (it is "
                             "applied only when no FASTDDS_*/FASTRTPS_* transport variable "
                             "is set)")
    parser.set_defaults(handler=run, accepts_extra_args=True)


def run(args: argparse.Namespace) -> int:
    extra = list(args.extra_args)
    if extra and extra[0] != "--ros-args":
        raise ConfigError(f"unrecognised arguments before --ros-args: {' '.join(extra)}; ROS "
                          "arguments (--params-file, -p, -r) must follow --ros-args")
    from lutfuse_ros.ros.node import main

    return main(["lutfuse node", *extra], transport_profile=not args.no_fastdds_profile)
