"""The Fast DDS profile goes into the variable the running Fast DDS generation reads.

Fast DDS 2.x (Humble, Jazzy) reads only ``FASTRTPS_DEFAULT_PROFILES_FILE``, 3.x (Kilted)
``FASTDDS_DEFAULT_PROFILES_FILE``. These tests check each way of finding the generation on
real files and real metadata, and both decision paths; the XML itself is checked against the
real parsers in test/integration/test_fastdds_profile.py.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import pytest

from lutfuse_ros.ros import fastdds_version
from lutfuse_ros.ros.fastdds_version import (FastDdsInstall, detect_fastdds, from_distributions,
                                             from_library_files, from_loaded_libraries,
                                             from_ros_distro, parse_library_name)
from lutfuse_ros.ros.transport import (BUILTIN_TRANSPORTS_VARIABLE,
                                       LEGACY_PROFILES_FILE_VARIABLE, PROFILES_FILE_VARIABLE,
                                       apply_transport_profile, camera_profile_advice,
                                       shipped_profile_path)

FASTDDS_3 = FastDdsInstall(3, "3.2.3", "test")
FASTDDS_2 = FastDdsInstall(2, "2.14.5", "test")


@pytest.mark.parametrize("name, expected", [
    ("libfastdds.so.3.2.2", (3, "3.2.2")), ("libfastdds.so.3", (3, "3")),
    ("libfastrtps.so.2.14", (2, "2.14")), ("libfastrtps.so.2.14.5", (2, "2.14.5")),
    ("libfastcdr.so.2.2.5", None), ("libfastdds.so", None), ("libfastrtps.a", None)])
def test_library_names_give_the_generation(name, expected):
    assert parse_library_name(name) == expected


def test_library_files_in_a_ros_install_give_the_generation(tmp_path):
    jazzy, kilted, empty = (tmp_path / name / "lib" for name in ("jazzy", "kilted", "empty"))
    for folder, files in ((jazzy, ["libfastrtps.so", "libfastrtps.so.2.14",
                                   "libfastrtps.so.2.14.5", "libfastcdr.so.2.2.5"]),
                          (kilted, ["libfastdds.so.3.2", "libfastdds.so.3.2.2"]), (empty, [])):
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_bytes(b"")
    found = from_library_files([tmp_path / "missing", empty, jazzy, kilted])
    assert (found.major, found.version) == (2, "2.14.5") and str(jazzy) in found.evidence
    assert from_library_files([kilted]).major == 3
    assert from_library_files([empty]) is None
    environ = {"AMENT_PREFIX_PATH": os.pathsep.join([str(tmp_path / "kilted"),
                                                     str(tmp_path / "jazzy")])}
    assert fastdds_version.library_directories(environ)[:2] == [kilted, jazzy]


def test_distribution_metadata_gives_the_generation():
    versions = {"ros-fastrtps": "2.14.5"}

    def version_of(name):
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    assert from_distributions(version_of) == FastDdsInstall(2, "2.14.5",
                                                            "Python distribution ros-fastrtps")
    versions = {"ros-fastdds": "3.2.3"}
    assert from_distributions(version_of).major == 3
    versions = {}
    assert from_distributions(version_of) is None


def test_ros_distro_gives_the_generation():
    assert from_ros_distro({"ROS_DISTRO": "jazzy"}).major == 2
    assert from_ros_distro({"ROS_DISTRO": "humble"}).profile_variable == \
        LEGACY_PROFILES_FILE_VARIABLE
    assert from_ros_distro({"ROS_DISTRO": "kilted"}).profile_variable == PROFILES_FILE_VARIABLE
    assert from_ros_distro({"ROS_DISTRO": "foxy-ish"}) is None and from_ros_distro({}) is None


def test_this_environment_is_detected_like_its_installed_wheel():
    """The installed rmw's Fast DDS (Kilted: 3.x, Jazzy: 2.x) is what detection finds."""
    pytest.importorskip("rclpy", reason="rclpy is not installed")
    installed = from_distributions()
    if installed is None:
        pytest.skip("no Fast DDS wheel in this environment (an apt install)")
    assert detect_fastdds({}).major == installed.major


def test_loaded_library_is_found_in_the_process_maps(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f0000000000-7f0000001000 r-xp 00000000 08:01 1 /usr/lib/libc.so.6\n"
                    "7f0000002000-7f0000003000 r-xp 00000000 08:01 2 "
                    "/opt/ros/jazzy/lib/libfastrtps.so.2.14\n")
    found = from_loaded_libraries(maps)
    assert found.major == 2 and "/opt/ros/jazzy/lib/libfastrtps.so.2.14" in found.evidence
    assert from_loaded_libraries(tmp_path / "absent") is None


@pytest.mark.parametrize("install, variable", [(FASTDDS_3, PROFILES_FILE_VARIABLE),
                                               (FASTDDS_2, LEGACY_PROFILES_FILE_VARIABLE)])
def test_profile_goes_into_the_variable_of_the_generation(install, variable):
    environ: dict[str, str] = {}
    decision = apply_transport_profile(environ, install)
    assert decision.applied and decision.variables == (variable,)
    assert environ == {variable: str(shipped_profile_path())}
    assert shipped_profile_path().is_file()
    assert variable in decision.reason and install.version in decision.reason
    assert variable in camera_profile_advice(install)


def test_unknown_generation_gets_both_variables(monkeypatch):
    for finder in ("from_loaded_libraries", "from_distributions", "from_library_files"):
        monkeypatch.setattr(fastdds_version, finder, lambda *args: None)
    environ: dict[str, str] = {}
    decision = apply_transport_profile(environ)
    assert decision.variables == (PROFILES_FILE_VARIABLE, LEGACY_PROFILES_FILE_VARIABLE)
    assert environ == dict.fromkeys(decision.variables, str(shipped_profile_path()))
    # With ROS_DISTRO, a robot's sourced install, the one variable again.
    environ = {"ROS_DISTRO": "jazzy"}
    assert apply_transport_profile(environ).variables == (LEGACY_PROFILES_FILE_VARIABLE,)


@pytest.mark.parametrize("install", [FASTDDS_2, FASTDDS_3])
def test_a_users_transport_choice_is_kept(install):
    mine = {install.profile_variable: "/etc/mine.xml"}
    for environ in (dict(mine), {BUILTIN_TRANSPORTS_VARIABLE: "LARGE_DATA"},
                    {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}):
        before = dict(environ)
        assert not apply_transport_profile(environ, install).applied
        assert environ == before
    assert apply_transport_profile({"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}, install).applied


def test_a_users_profile_in_the_ignored_variable_is_passed_on():
    # On Fast DDS 2.x the 3.x variable does nothing: the user's file goes where 2.x reads.
    environ = {PROFILES_FILE_VARIABLE: "/etc/mine.xml"}
    decision = apply_transport_profile(environ, FASTDDS_2)
    assert decision.applied and environ == {PROFILES_FILE_VARIABLE: "/etc/mine.xml",
                                            LEGACY_PROFILES_FILE_VARIABLE: "/etc/mine.xml"}
    assert "/etc/mine.xml" in decision.reason
    # Fast DDS 3.x reads the 2.x name only as a deprecated fallback: the same file goes under
    # the current name too.
    environ = {LEGACY_PROFILES_FILE_VARIABLE: "/etc/mine.xml"}
    assert apply_transport_profile(environ, FASTDDS_3).variables == (PROFILES_FILE_VARIABLE,)
    assert environ[PROFILES_FILE_VARIABLE] == "/etc/mine.xml"


def test_launch_file_sets_the_variable_the_node_would():
    source = (Path(__file__).resolve().parents[2] / "launch" / "fuse.launch.py").read_text()
    assert "profile_variables(" in source and "detect_fastdds(" in source
