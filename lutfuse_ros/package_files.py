"""Where the files of ``config/`` are found at run time, however the package was installed.

``config/`` holds the node's defaults (``fuse.yaml``) and the Fast DDS profile: one copy each
in the source tree. The build (``setup.py``) installs them under ``share/lutfuse_ros/config``
for ROS tools and the launch file, and copies them into the package as
``lutfuse_ros/resources/<name>`` so that a pip install without ``AMENT_PREFIX_PATH`` finds
them. A source checkout (editable install, ``colcon build --symlink-install``, ``PYTHONPATH``)
has no such copy and reads ``config/`` itself.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from lutfuse_ros.errors import ConfigError

#: Files of ``config/`` that the build copies into the package (``lutfuse_ros/resources``).
PACKAGED_CONFIG_FILES = ("fuse.yaml", "fastdds_profile.xml")
_SOURCE_CONFIG = Path(__file__).resolve().parent.parent / "config"


def config_file(name: str) -> Path:
    """The installed copy of ``config/<name>``, else the source tree's.

    Args:
        name: one of :data:`PACKAGED_CONFIG_FILES`.

    Raises:
        ConfigError: neither exists (a broken install).
    """
    if name not in PACKAGED_CONFIG_FILES:
        raise ConfigError(f"{name!r} is not a packaged config file ({PACKAGED_CONFIG_FILES})")
    packaged = Path(str(resources.files("lutfuse_ros") / "resources" / name))
    for candidate in (packaged, _SOURCE_CONFIG / name):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"config file {name} is neither package data ({packaged}) nor in a "
                      f"source tree ({_SOURCE_CONFIG}): reinstall lutfuse_ros")
