"""The ROS 2 launch system for tests: where it comes from, and a colcon-installed package.

``launch``, ``launch_ros``, ``launch_testing`` and ``launch_testing_ros`` are not on PyPI. A
robot's ROS install has them; here the Makefile pip-installs them from
``../shared/vendor/ros2_launch`` into the test environments. Where that did not happen but the
folder exists, its package folders are put on the import path (and on ``PYTHONPATH`` for
processes the tests start). Nothing of it is in this repository. ``composition_interfaces``
(a message package ``launch_ros.actions`` imports for composable nodes only) gets the stand-in
in ``stand_ins/`` where no real one is importable.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO.parent / "shared" / "vendor" / "ros2_launch"
VENDOR_PACKAGES = ("launch", "launch_xml", "launch_yaml", "launch_testing", "launch_ros",
                   "launch_testing_ros")
STAND_INS = Path(__file__).resolve().parent / "stand_ins"
# Python packages the launch system needs from PyPI (requirements/common.txt).
LAUNCH_REQUIREMENTS = {"osrf_pycommon": "osrf-pycommon", "lark": "lark", "rclpy": "ros-rclpy"}


def _importable(module: str) -> bool:
    """Whether ``module`` is a real module or package (not the repo's ``launch/`` folder)."""
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.origin is not None


def extra_paths() -> list[str]:
    """Folders to add to the import path so that ``import launch_ros.actions`` works."""
    paths = []
    if not _importable("launch") and VENDOR.is_dir():
        paths += [str(VENDOR / name) for name in VENDOR_PACKAGES]
    if not _importable("composition_interfaces"):
        paths.append(str(STAND_INS))
    return paths


def make_importable() -> None:
    """Extend ``sys.path`` and ``PYTHONPATH`` (for child processes) by :func:`extra_paths`."""
    paths = [path for path in extra_paths() if path not in sys.path]
    sys.path.extend(paths)
    if paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [os.environ.get("PYTHONPATH"), *paths]))


def missing_reason() -> str | None:
    """Why the launch system cannot run here, or None where it can."""
    if not _importable("launch"):
        return (f"the ROS 2 launch system is not installed and {VENDOR} is missing "
                "(it is not on PyPI; a ROS 2 install has it)")
    missing = [pip for module, pip in LAUNCH_REQUIREMENTS.items() if not _importable(module)]
    if missing:
        return f"the launch system needs {', '.join(missing)} (requirements/common.txt)"
    return None


# The logger class and root level before anything imported ``launch`` (conftest.py imports
# this module first).
_LOGGING_BEFORE_LAUNCH = (logging.getLoggerClass(), logging.root.level)


def undo_launch_logging() -> None:
    """Undo what importing or running ``launch`` does to the whole process's logging.

    ``launch.logging`` makes every logger created afterwards a non-propagating
    ``LaunchLogger`` and sets the root level: later tests in the same pytest process (and
    ``caplog``, which listens on the root logger) would no longer see the package's logs.
    """
    import launch.logging

    logger_class, root_level = _LOGGING_BEFORE_LAUNCH
    logging.setLoggerClass(logger_class)
    for logger in launch.logging.LaunchLogger.all_loggers:
        if not logger.name.startswith("launch"):
            logger.propagate = True
    logging.root.setLevel(root_level)


def colcon_install(workspace: Path) -> Path:
    """``colcon build`` this package in ``workspace``; return its install prefix.

    Raises:
        AssertionError: the build failed (with colcon's output).
    """
    source = workspace / "src" / "lutfuse_ros"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "install", "log", "runs", "__pycache__", "*.egg-info",
        "lutfuse_demo", "reports", "bench", "soak_results"))
    result = subprocess.run(
        [sys.executable, "-m", "colcon", "--log-base", str(workspace / "log"), "build",
         "--base-paths", str(workspace / "src"), "--build-base", str(workspace / "build"),
         "--install-base", str(workspace / "install")],
        capture_output=True, text=True, timeout=600, cwd=workspace)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workspace / "install" / "lutfuse_ros"


def installed_env(prefix: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` as ``source install/setup.bash`` would make it for the installed package.

    The installed package's site-packages comes first on ``PYTHONPATH``, so that the launched
    node runs the installed code, and ``AMENT_PREFIX_PATH`` lets ``FindPackageShare`` and
    launch_ros find the package's share folder and executables.
    """
    site = next(prefix.glob("lib/python3*/site-packages"))
    env = dict(env)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(filter(None, [str(prefix),
                                                             env.get("AMENT_PREFIX_PATH")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return env
