"""The Fast DDS transport profile that lets camera-sized images through.

With Fast DDS's default transports a best-effort subscriber receives only a few percent of
640x480 frames (the default 512 KiB shared-memory segment cannot hold them, and the UDP
fragments are lost; see ``docs/ros_node.md`` for the measurements). The package ships a
participant profile that fixes this; :func:`apply_transport_profile` points Fast DDS at it
before ``rclpy.init``, unless the user already chose transports. The profile acts on the
participants of the process that loads it, so camera drivers publishing best effort into the
node should load it too (the launch file exports it).

Fast DDS 2.x (Humble, Jazzy) reads the profile only from ``FASTRTPS_DEFAULT_PROFILES_FILE``,
3.x (Kilted) from ``FASTDDS_DEFAULT_PROFILES_FILE`` (its rmw still reads the old name, with a
deprecation warning). The variable of the generation found by
:func:`~lutfuse_ros.ros.fastdds_version.detect_fastdds` is set; where nothing tells, both are
(each generation then reads the one it knows; the shipped XML is valid for both, which a test
checks).

The profile is written once, ``config/fastdds_profile.xml``; the build installs it under
``share/lutfuse_ros/config`` and copies it into the package (:mod:`lutfuse_ros.package_files`)
so that a pip install without ``AMENT_PREFIX_PATH`` finds it.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from lutfuse_ros.package_files import config_file
from lutfuse_ros.ros.fastdds_version import PROFILE_VARIABLES, FastDdsInstall, detect_fastdds

PROFILE_FILE_NAME = "fastdds_profile.xml"
#: The profile variable of Fast DDS 3.x (Kilted and later).
PROFILES_FILE_VARIABLE = PROFILE_VARIABLES[3]
#: The profile variable of Fast DDS 2.x (Humble, Jazzy).
LEGACY_PROFILES_FILE_VARIABLE = PROFILE_VARIABLES[2]
BUILTIN_TRANSPORTS_VARIABLE = "FASTDDS_BUILTIN_TRANSPORTS"
#: Variables by which a user selects Fast DDS transports.
USER_TRANSPORT_VARIABLES = (PROFILES_FILE_VARIABLE, LEGACY_PROFILES_FILE_VARIABLE,
                            BUILTIN_TRANSPORTS_VARIABLE)


@dataclass(frozen=True)
class TransportDecision:
    """What :func:`apply_transport_profile` did.

    Attributes:
        applied: whether it set a profile variable.
        reason: one line for the log.
        variables: the variables it set (empty when it set none).
    """

    applied: bool
    reason: str
    variables: tuple[str, ...] = ()


def shipped_profile_path() -> Path:
    """Path of the shipped Fast DDS profile (package data, or ``config/`` of a checkout)."""
    return config_file(PROFILE_FILE_NAME)


def profile_variables(install: FastDdsInstall | None) -> tuple[str, ...]:
    """The variable(s) to set so that ``install`` reads a profile (both when unknown)."""
    if install is None:
        return (PROFILES_FILE_VARIABLE, LEGACY_PROFILES_FILE_VARIABLE)
    return (install.profile_variable,)


def camera_profile_advice(install: FastDdsInstall | None) -> str:
    """How a camera driver's process loads the shipped profile on this install (one line)."""
    variables = profile_variables(install)
    where = (f"{install.describe()} reads {variables[0]}" if install is not None else
             f"Fast DDS 2.x reads {LEGACY_PROFILES_FILE_VARIABLE}, 3.x {PROFILES_FILE_VARIABLE}")
    return (f"export {variables[0]}=<share>/lutfuse_ros/config/{PROFILE_FILE_NAME} in the "
            f"camera driver's environment ({where})")


def apply_transport_profile(environ: MutableMapping[str, str] | None = None,
                            install: FastDdsInstall | None = None) -> TransportDecision:
    """Select the shipped Fast DDS profile unless transports were chosen already.

    Must run before ``rclpy.init`` (the participant reads the variable when it is created).
    A user's profile given in the variable the running generation ignores (for example
    ``FASTDDS_DEFAULT_PROFILES_FILE`` on Fast DDS 2.x) is passed on in the variable it reads.

    Args:
        environ: the environment to edit; ``os.environ`` when None.
        install: the Fast DDS generation; None detects it
            (:func:`~lutfuse_ros.ros.fastdds_version.detect_fastdds`).

    Returns:
        The decision, for logging.
    """
    environ = os.environ if environ is None else environ
    middleware = environ.get("RMW_IMPLEMENTATION", "")
    if middleware and "fastrtps" not in middleware:
        return TransportDecision(False, f"RMW_IMPLEMENTATION={middleware} is not Fast DDS; "
                                        "no transport profile applied")
    install = detect_fastdds(environ) if install is None else install
    wanted = profile_variables(install)
    for variable in (*wanted, BUILTIN_TRANSPORTS_VARIABLE):
        if environ.get(variable):
            return TransportDecision(False, f"{variable}={environ[variable]} is set; keeping "
                                            "the user's Fast DDS transport choice")
    ignored = [variable for variable in USER_TRANSPORT_VARIABLES if environ.get(variable)]
    if ignored:   # set, but not read by this generation: pass the user's file on
        user_file = environ[ignored[0]]
        for variable in wanted:
            environ[variable] = user_file
        return TransportDecision(True, f"{ignored[0]} is set but {install.describe()} reads "
                                       f"{wanted[0]}: the user's profile {user_file} is passed "
                                       f"on through it", wanted)
    profile = shipped_profile_path()
    if not profile.is_file():
        return TransportDecision(False, f"shipped Fast DDS profile {profile} is missing")
    for variable in wanted:
        environ[variable] = str(profile)
    found = install.describe() if install is not None else "Fast DDS generation unknown"
    return TransportDecision(True, f"Fast DDS transports from the shipped profile {profile} "
                                   f"({' and '.join(wanted)}; {found})", wanted)
