"""package.xml: verified rosdep keys only, each one used, and every import accounted for.

``test/data/rosdep_keys.json`` lists the keys that rosdep resolved to apt packages on Humble
(Ubuntu 22.04), Jazzy and Kilted (24.04), with the rosdistro commit it read; it is made by
``scripts/check_rosdep_keys.py`` (re-run it after adding a dependency). What has no apt key is
installed by the pip step of requirements/robot.txt (and cpu.txt for PyTorch).
"""

from __future__ import annotations

import ast
import json
import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS_FILE = REPO / "test" / "data" / "rosdep_keys.json"
DISTRIBUTIONS = ("humble", "jazzy", "kilted")
RUN_TAGS = ("depend", "exec_depend")
TEST_TAGS = ("test_depend",)
# System keys -> the module the package imports for them (ROS keys are their module name).
MODULE_OF_KEY = {"python3-numpy": "numpy", "python3-opencv": "cv2", "python3-yaml": "yaml",
                 "python3-tqdm": "tqdm", "python3-pytest": "pytest",
                 "python3-hypothesis": "hypothesis"}
# Declared dependencies that no module imports by their name, and why they are declared.
NOT_IMPORTED = {
    "lifecycle_msgs": "the node's lifecycle services (change_state, get_state) are "
                      "lifecycle_msgs; rclpy.lifecycle imports it",
    "ros2launch": "provides `ros2 launch`, the README's way to start the node",
}
# pip distributions of requirements/robot.txt and cpu.txt -> the module they provide.
MODULE_OF_PIP = {"safetensors": "safetensors", "onnxruntime": "onnxruntime", "onnx": "onnx",
                 "rosbags": "rosbags", "torch": "torch", "numpy": "numpy"}
# Imports that are neither declared nor pip-installed on a robot, and why.
OPTIONAL_IMPORTS = {
    "cv_bridge": "opt-in (use_cv_bridge): apt ros-<distro>-cv-bridge",
    "message_filters": "opt-in (use_message_filters): apt ros-<distro>-message-filters",
    "tensorrt": "backend tensorrt only: ships with JetPack / NVIDIA's TensorRT packages",
    "matplotlib": "plots of `lutfuse replay`, bench and train (skipped without it): "
                  "requirements/common.txt",
    "skimage": "`lutfuse eval` metrics: requirements/common.txt",
    "lutfuse_ros": "the package itself",
}


def dependencies(tags: tuple[str, ...]) -> list[str]:
    """Keys of package.xml under the given dependency tags."""
    root = ElementTree.parse(REPO / "package.xml").getroot()
    return [element.text.strip() for tag in tags for element in root.iter(tag)]


def imported_modules(*folders: str) -> set[str]:
    """Top-level module names imported anywhere (also inside functions) under ``folders``."""
    modules = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return modules


def pip_requirements(name: str) -> set[str]:
    """Distribution names a requirements file (and the files it includes) asks for."""
    names = set()
    for line in (REPO / "requirements" / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= pip_requirements(line[3:].strip())
        elif line:
            names.add(re.split(r"[<>=!~\[; ]", line)[0].lower())
    return names


def test_every_key_is_a_rosdep_key_verified_on_humble_jazzy_and_kilted():
    verified = json.loads(KEYS_FILE.read_text())
    assert verified["source"].startswith("github.com/ros/rosdistro ") and verified["checked_on"]
    keys = verified["keys"]
    declared = dependencies(("depend", "exec_depend", "build_depend", "buildtool_depend",
                             "build_export_depend", "test_depend", "doc_depend"))
    assert len(declared) == len(set(declared)), "a key is declared twice"
    for key in declared:
        assert key in keys, (f"{key} is not in {KEYS_FILE.name}: check it with "
                             "scripts/check_rosdep_keys.py (rosdep, offline)")
        for distro in DISTRIBUTIONS:
            assert keys[key][distro].startswith("apt: "), (key, distro, keys[key][distro])


def test_every_run_dependency_is_imported_by_the_package_or_explained():
    used = imported_modules("lutfuse_ros", "launch")
    for key in dependencies(RUN_TAGS):
        module = MODULE_OF_KEY.get(key, key)
        assert module in used or key in NOT_IMPORTED, f"{key} is declared but never imported"
    for key in NOT_IMPORTED:
        assert key in dependencies(RUN_TAGS), f"{key} is explained but not declared"


def test_every_test_dependency_is_imported_by_the_tests():
    used = imported_modules("test")
    for key in dependencies(TEST_TAGS):
        assert MODULE_OF_KEY.get(key, key) in used, f"{key} is a test_depend no test imports"


def test_every_third_party_import_is_declared_or_pip_installed_or_optional():
    declared = {MODULE_OF_KEY.get(key, key) for key in dependencies(RUN_TAGS)}
    pip = {MODULE_OF_PIP[name] for name in pip_requirements("robot.txt")
           | pip_requirements("cpu.txt")}
    assert {"torch", "safetensors", "onnxruntime", "rosbags"} <= pip
    third_party = imported_modules("lutfuse_ros", "launch") - set(sys.stdlib_module_names)
    unaccounted = third_party - declared - pip - set(OPTIONAL_IMPORTS)
    assert not unaccounted, (f"imported but neither in package.xml, requirements/robot.txt nor "
                             f"OPTIONAL_IMPORTS: {sorted(unaccounted)}")
    # Declared keys are not pip-installed a second time (numpy is pinned only, see robot.txt).
    assert not (declared & pip) - {"numpy"}


def test_removed_keys_do_not_resolve_to_apt():
    """The recorded reasons for what package.xml no longer declares still hold."""
    removed = json.loads(KEYS_FILE.read_text())["removed_keys"]
    for key in ("rclpy_lifecycle", "python3-safetensors-pip", "python3-onnx-pip"):
        assert all(removed[key][distro] is None for distro in DISTRIBUTIONS), key
    assert not set(removed) & set(dependencies(RUN_TAGS + TEST_TAGS))
