"""Run a launch file through ``launch.LaunchService`` in its own process, as ``ros2 launch`` does.

Usage: ``python launch_runner.py FILE [name:=value ...]``. SIGINT shuts the launch down (the
launched processes get SIGINT, then SIGTERM); the exit code is the LaunchService's.
"""

from __future__ import annotations

import sys

import launch_support


def main(argv: list[str]) -> int:
    """Include ``argv[0]`` with the ``name:=value`` arguments that follow and run it."""
    launch_support.make_importable()
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    path, *pairs = argv
    arguments = [tuple(pair.split(":=", 1)) for pair in pairs]
    service = LaunchService(argv=pairs)
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(path), launch_arguments=arguments)]))
    return service.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
