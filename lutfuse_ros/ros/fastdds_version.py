"""Which Fast DDS generation the running ROS 2 middleware links: 2.x or 3.x.

The two generations read their XML profile from different environment variables: Fast DDS
2.x (ROS 2 Humble, Jazzy) only from ``FASTRTPS_DEFAULT_PROFILES_FILE``; Fast DDS 3.x (Kilted,
Rolling) from ``FASTDDS_DEFAULT_PROFILES_FILE`` (its ``rmw_fastrtps`` still reads the old name
but warns that it is deprecated). The library itself was renamed too, ``libfastrtps.so.2.*``
became ``libfastdds.so.3.*``, which is the most reliable evidence of the generation.

:func:`detect_fastdds` looks, in this order, at

1. the Fast DDS library already mapped into this process (``/proc/self/maps``; after
   ``rclpy.init`` it is there);
2. the Python distribution that ships it (the ROS 2 wheels: ``ros-fastdds`` 3.x for Kilted,
   ``ros-fastrtps`` 2.x for Jazzy), via :mod:`importlib.metadata`;
3. the library files in the ROS install (``$AMENT_PREFIX_PATH/lib``, ``$LD_LIBRARY_PATH``,
   the Python environment's ``lib``): an apt install has no Python metadata for it;
4. ``ROS_DISTRO`` (humble, iron, jazzy: 2.x; kilted and later: 3.x).

It never imports or starts the middleware, so it can run before ``rclpy.init``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

#: Profile variable each generation reads (major version -> variable).
PROFILE_VARIABLES = {2: "FASTRTPS_DEFAULT_PROFILES_FILE", 3: "FASTDDS_DEFAULT_PROFILES_FILE"}
#: Python distributions of the Fast DDS library in the ROS 2 wheels.
FASTDDS_DISTRIBUTIONS = ("ros-fastdds", "ros-fastrtps")
#: ROS 2 distributions by the Fast DDS generation they ship.
DISTRO_GENERATIONS = {"humble": 2, "iron": 2, "jazzy": 2, "kilted": 3, "rolling": 3}
_LIBRARY = re.compile(r"lib(fastdds|fastrtps)\.so\.(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


@dataclass(frozen=True)
class FastDdsInstall:
    """The Fast DDS found, and how it was found.

    Attributes:
        major: 2 or 3 (another number only for an unknown future generation).
        version: the version as found (``3.2.3``, ``2.14``; just the major from ROS_DISTRO).
        evidence: where it was found, for the log.
    """

    major: int
    version: str
    evidence: str

    @property
    def profile_variable(self) -> str:
        """The variable this generation reads its profile from (3.x naming beyond 3)."""
        return PROFILE_VARIABLES.get(self.major, PROFILE_VARIABLES[3])

    def describe(self) -> str:
        """``Fast DDS 3.2.3 (from ...)``."""
        return f"Fast DDS {self.version} ({self.evidence})"


def parse_library_name(name: str) -> tuple[int, str] | None:
    """``libfastdds.so.3.2.2`` -> ``(3, "3.2.2")``; None for any other file name."""
    match = _LIBRARY.search(name)
    if match is None:
        return None
    version = ".".join(part for part in match.groups()[1:] if part is not None)
    return int(match.group(2)), version


def from_loaded_libraries(maps: Path = Path("/proc/self/maps")) -> FastDdsInstall | None:
    """The Fast DDS library mapped into this process, if any."""
    try:
        text = maps.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        path = line.rsplit(" ", 1)[-1]
        found = parse_library_name(Path(path).name)
        if found:
            return FastDdsInstall(found[0], found[1], f"loaded library {path}")
    return None


def from_distributions(version_of: Callable[[str], str] = metadata.version,
                       ) -> FastDdsInstall | None:
    """The Fast DDS wheel installed in this Python environment, if any."""
    for name in FASTDDS_DISTRIBUTIONS:
        try:
            version = version_of(name)
        except metadata.PackageNotFoundError:
            continue
        major = version.split(".", 1)[0]
        if major.isdigit():
            return FastDdsInstall(int(major), version, f"Python distribution {name}")
    return None


def library_directories(environ: Mapping[str, str]) -> list[Path]:
    """Where a ROS install keeps its libraries, most specific first."""
    directories = [Path(prefix) / "lib" for prefix in
                   environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if prefix]
    directories += [Path(entry) for entry in
                    environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if entry]
    directories.append(Path(sys.prefix) / "lib")
    return directories


def from_library_files(directories: Iterable[Path]) -> FastDdsInstall | None:
    """The first Fast DDS library file in ``directories`` (highest version within one)."""
    for directory in directories:
        try:
            names = [path.name for path in directory.iterdir()]
        except OSError:
            continue
        found = sorted((parsed, name) for name in names
                       if (parsed := parse_library_name(name)) is not None)
        if found:
            (major, version), name = found[-1]
            return FastDdsInstall(major, version, f"library {directory / name}")
    return None


def from_ros_distro(environ: Mapping[str, str]) -> FastDdsInstall | None:
    """The generation a known ``ROS_DISTRO`` ships."""
    distro = environ.get("ROS_DISTRO", "").strip().lower()
    major = DISTRO_GENERATIONS.get(distro)
    if major is None:
        return None
    return FastDdsInstall(major, f"{major}.x", f"ROS_DISTRO={distro}")


def detect_fastdds(environ: Mapping[str, str] | None = None) -> FastDdsInstall | None:
    """Find the Fast DDS generation of this ROS 2 install (see the module docstring).

    Args:
        environ: the environment to read; ``os.environ`` when None.

    Returns:
        What was found, or None when nothing tells.
    """
    environ = os.environ if environ is None else environ
    return (from_loaded_libraries() or from_distributions()
            or from_library_files(library_directories(environ)) or from_ros_distro(environ))
