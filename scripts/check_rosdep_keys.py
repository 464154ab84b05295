#!/usr/bin/env python3
"""Resolve every ``package.xml`` dependency with rosdep, offline, on Humble, Jazzy and Kilted.

rosdep cannot reach the network here, so it is pointed at a local checkout of
``github.com/ros/rosdistro`` (``rosdep/base.yaml``, ``rosdep/python.yaml`` and the
``<distro>/distribution.yaml`` files) through a private sources list, rosdistro index and
``ROS_HOME`` under ``--work``. Each key must resolve to apt packages (not to pip, which a
robot's Ubuntu 24.04 refuses system-wide) for the Ubuntu release of each distribution.

The result is written to ``test/data/rosdep_keys.json`` (``--write``), which
``test/unit/test_package_xml.py`` reads: the keys verified, where and when. Without
``--write`` the script only reports and exits 1 when a key does not resolve.

Usage::

    pip install rosdep            # into any virtual environment
    git clone https://github.com/ros/rosdistro /path/rosdistro
    python scripts/check_rosdep_keys.py --rosdistro /path/rosdistro --work /path/scratch --write
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_XML = REPO / "package.xml"
RESULT_FILE = REPO / "test" / "data" / "rosdep_keys.json"
# ROS 2 distribution -> the Ubuntu release its binary packages are built for (REP 2000).
PLATFORMS = {"humble": "jammy", "jazzy": "noble", "kilted": "noble"}
# Keys the README tells users to install for opt-in features (use_cv_bridge,
# use_message_filters): recorded as verified too, not declared in package.xml.
OPTIONAL_KEYS = ("cv_bridge", "message_filters")
# Keys package.xml once declared and why they went: recorded with what rosdep says of them.
REMOVED_KEYS = ("rclpy_lifecycle", "python3-safetensors-pip", "python3-onnx-pip",
                "python3-onnxruntime-pip", "python3-rosbags-pip", "python3-torch", "ros2bag")
DEPENDENCY_TAGS = ("depend", "exec_depend", "build_depend", "buildtool_depend",
                   "build_export_depend", "test_depend", "doc_depend")


def package_keys(package_xml: Path = PACKAGE_XML) -> list[str]:
    """Every dependency key of a ``package.xml`` (format 3), sorted, without duplicates."""
    root = ElementTree.parse(package_xml).getroot()
    return sorted({element.text.strip() for tag in DEPENDENCY_TAGS for element in root.iter(tag)})


def _rosdistro_commit(rosdistro: Path) -> str:
    """The checkout's commit and date, or ``unknown`` where it is not a git checkout."""
    try:
        return subprocess.run(["git", "-C", str(rosdistro), "log", "-1", "--format=%H %cs"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def prepare_offline_rosdep(rosdistro: Path, work: Path) -> dict[str, str]:
    """Write a sources list and rosdistro index pointing at ``rosdistro``; run rosdep update.

    Returns:
        The environment under which ``rosdep`` reads only these local files.
    """
    work.mkdir(parents=True, exist_ok=True)
    sources = work / "sources.list.d"
    sources.mkdir(exist_ok=True)
    (sources / "20-local.list").write_text(
        "".join(f"yaml file://{rosdistro / 'rosdep' / name}\n"
                for name in ("base.yaml", "python.yaml")))
    index = work / "index-v4.yaml"
    index.write_text("%YAML 1.1\n---\ndistributions:\n" + "".join(
        f"  {distro}:\n    distribution: [file://{rosdistro / distro / 'distribution.yaml'}]\n"
        f"    distribution_status: active\n    distribution_type: ros2\n    python_version: 3\n"
        for distro in PLATFORMS) + "type: index\nversion: 4\n")
    env = dict(os.environ, ROSDEP_SOURCE_PATH=str(sources), ROS_HOME=str(work / "ros_home"),
               ROSDISTRO_INDEX_URL=f"file://{index}")
    env.pop("ROS_DISTRO", None)
    shutil.rmtree(work / "ros_home", ignore_errors=True)
    subprocess.run(["rosdep", "update"], env=env, check=True, capture_output=True, text=True)
    return env


def resolve(key: str, distro: str, env: dict[str, str]) -> str | None:
    """``"apt: pkg ..."`` (or ``"pip: ..."``) as rosdep resolves ``key``; ``None``: no rule."""
    result = subprocess.run(
        ["rosdep", "resolve", key, f"--rosdistro={distro}", f"--os=ubuntu:{PLATFORMS[distro]}"],
        env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return None
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    # Output: "#apt" (the installer) then the packages, one block per installer.
    if not lines or not lines[0].startswith("#"):
        return None
    return f"{lines[0][1:]}: " + " ".join(lines[1:])


def main(argv: list[str] | None = None) -> int:
    """Resolve the keys; print a table; write the result file with ``--write``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rosdistro", type=Path, required=True,
                        help="checkout of github.com/ros/rosdistro")
    parser.add_argument("--work", type=Path, required=True,
                        help="scratch folder for rosdep's sources list and cache")
    parser.add_argument("--write", action="store_true", help=f"write {RESULT_FILE.name}")
    args = parser.parse_args(argv)
    if shutil.which("rosdep") is None:
        parser.error("rosdep is not on PATH (pip install rosdep)")
    rosdistro = args.rosdistro.resolve()
    env = prepare_offline_rosdep(rosdistro, args.work.resolve())
    keys: dict[str, dict[str, str | None]] = {}
    for key in (*package_keys(), *OPTIONAL_KEYS, *REMOVED_KEYS):
        keys[key] = {distro: resolve(key, distro, env) for distro in PLATFORMS}
        print(f"{key:28s} " + "  ".join(f"{d}: {keys[key][d] or 'UNRESOLVED'}" for d in PLATFORMS))
    # A verified key resolves to apt packages everywhere (rosdep's pip installs fail on noble).
    verified = {key: by_distro for key, by_distro in keys.items() if key not in REMOVED_KEYS
                and all((value or "").startswith("apt: ") for value in by_distro.values())}
    unresolved = [key for key in (*package_keys(), *OPTIONAL_KEYS) if key not in verified]
    version = subprocess.run(["rosdep", "--version"], env=env, capture_output=True,
                             text=True).stdout.strip()
    if args.write:
        RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
        RESULT_FILE.write_text(json.dumps({
            "source": f"github.com/ros/rosdistro {_rosdistro_commit(rosdistro)}: "
                      "rosdep/base.yaml, rosdep/python.yaml, "
                      + ", ".join(f"{d}/distribution.yaml" for d in PLATFORMS),
            "tool": f"rosdep {version} resolve --os=ubuntu:<release> --rosdistro=<distro>, offline",
            "checked_on": datetime.date.today().isoformat(),
            "platforms": PLATFORMS,
            "keys": verified,
            "optional_keys": list(OPTIONAL_KEYS),
            "removed_keys": {key: keys[key] for key in REMOVED_KEYS},
        }, indent=1, sort_keys=True) + "\n")
        print(f"wrote {RESULT_FILE}")
    if unresolved:
        print("UNRESOLVED: " + ", ".join(unresolved), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
