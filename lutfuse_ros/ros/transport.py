"""The Fast DDS transport profile that lets camera-sized images through.

With Fast DDS's default transports a best-effort subscriber receives only a few percent of
640x480 frames (the default 512 KiB shared-memory segment cannot hold them, and the UDP
fragments are lost; see ``docs/ros_node.md`` for the measurements). The package ships a
participant profile that fixes this; :func:`apply_transport_profile` points Fast DDS at it
through ``FASTDDS_DEFAULT_PROFILES_FILE`` before ``rclpy.init``, unless the user already chose
transports. The profile acts on the participants of the process that loads it, so the camera
drivers publishing into the node should load it too (the launch file exports it).

The profile is shipped twice with identical content: ``config/fastdds_profile.xml`` (the
source, installed under ``share/lutfuse_ros/config``) and a package-data copy under
``lutfuse_ros/resources`` so that a pip install without ``AMENT_PREFIX_PATH`` finds it.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PROFILE_FILE_NAME = "fastdds_profile.xml"
PROFILES_FILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
#: Variables by which a user selects Fast DDS transports; any of them set means "leave it".
USER_TRANSPORT_VARIABLES = (PROFILES_FILE_VARIABLE, "FASTRTPS_DEFAULT_PROFILES_FILE",
                            "FASTDDS_BUILTIN_TRANSPORTS")


@dataclass(frozen=True)
class TransportDecision:
    """What :func:`apply_transport_profile` did.

    Attributes:
        applied: whether it set ``FASTDDS_DEFAULT_PROFILES_FILE``.
        reason: one line for the log.
    """

    applied: bool
    reason: str


def shipped_profile_path() -> Path:
    """Path of the Fast DDS profile shipped as package data."""
    return Path(str(resources.files("lutfuse_ros") / "resources" / PROFILE_FILE_NAME))


def apply_transport_profile(environ: MutableMapping[str, str] | None = None,
                            ) -> TransportDecision:
    """Select the shipped Fast DDS profile unless transports were chosen already.

    Must run before ``rclpy.init`` (the participant reads the variable when it is created).

    Args:
        environ: the environment to edit; ``os.environ`` when None.

    Returns:
        The decision, for logging.
    """
    environ = os.environ if environ is None else environ
    middleware = environ.get("RMW_IMPLEMENTATION", "")
    if middleware and "fastrtps" not in middleware:
        return TransportDecision(False, f"RMW_IMPLEMENTATION={middleware} is not Fast DDS; "
                                        "no transport profile applied")
    for variable in USER_TRANSPORT_VARIABLES:
        if environ.get(variable):
            return TransportDecision(False, f"{variable}={environ[variable]} is set; keeping "
                                            "the user's Fast DDS transport choice")
    profile = shipped_profile_path()
    if not profile.is_file():
        return TransportDecision(False, f"shipped Fast DDS profile {profile} is missing")
    environ[PROFILES_FILE_VARIABLE] = str(profile)
    return TransportDecision(True, f"Fast DDS transports from the shipped profile {profile} "
                                   f"({PROFILES_FILE_VARIABLE})")
