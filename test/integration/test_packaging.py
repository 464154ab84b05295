"""Packaging: pip wheel contents and a real colcon build of the ament_python package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_every_source_folder_is_a_regular_package():
    for folder in (REPO / "lutfuse_ros").rglob("*"):
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py")):
            assert (folder / "__init__.py").is_file(), f"{folder} lacks __init__.py"


def _clean_copy(destination: Path) -> Path:
    """The checkout's files without build outputs (a stale build/ would leak into a wheel)."""
    shutil.copytree(REPO, destination, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "install", "log", "runs", "reports", "__pycache__",
        "*.egg-info"))
    return destination


def test_wheel_ships_models_and_entry_point(tmp_path):
    source = _clean_copy(tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(source)], check=True, timeout=300,
                   cwd=tmp_path)
    wheel = next(tmp_path.glob("lutfuse_ros-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "lutfuse_ros/pipeline.py" in names
    # The product only: no test or benchmark tooling.
    tooling = [n for n in names if n.startswith(("lutfuse_testing/", "test/", "benchmarks/"))
               or "traffic" in n or "shm_segments" in n]
    assert not tooling, tooling
    assert "lutfuse_ros/resources/models/lutfuse-mmlut.safetensors" in names
    assert "lutfuse_ros/resources/models/lutfuse-mini.safetensors" in names
    # config/ written once, shipped as package data by the build, byte for byte.
    for name in ("fuse.yaml", "fastdds_profile.xml"):
        assert zipfile.ZipFile(wheel).read(f"lutfuse_ros/resources/{name}") == \
            (REPO / "config" / name).read_bytes()
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    entry_points_text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "lutfuse = lutfuse_ros.cli.main:main" in entry_points_text


def test_colcon_builds_the_ament_python_package(tmp_path):
    pytest.importorskip("colcon_core", reason="colcon-core is not installed")
    pytest.importorskip("colcon_ros", reason="colcon-ros is not installed")
    _clean_copy(tmp_path / "src" / "lutfuse_ros")
    result = subprocess.run(
        [sys.executable, "-m", "colcon", "--log-base", str(tmp_path / "log"), "build",
         "--base-paths", str(tmp_path / "src"), "--build-base", str(tmp_path / "build"),
         "--install-base", str(tmp_path / "install")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    prefix = tmp_path / "install" / "lutfuse_ros"
    share = prefix / "share" / "lutfuse_ros"
    ament_index = prefix / "share" / "ament_index" / "resource_index"
    assert (ament_index / "packages" / "lutfuse_ros").is_file()
    assert (share / "package.xml").is_file()
    assert (share / "hook" / "ament_prefix_path.dsv").is_file(), "not built as ament_python"
    assert list((share / "launch").glob("*.launch.py")), "launch files not installed"
    assert (share / "config" / "fuse.yaml").is_file()
    site = next(prefix.glob("lib/python3*/site-packages"))
    assert not (site / "lutfuse_testing").exists()
    assert (site / "lutfuse_ros" / "resources" / "models" / "lutfuse-mmlut.safetensors").is_file()
    assert (site / "lutfuse_ros" / "resources" / "fuse.yaml").read_bytes() == \
        (REPO / "config" / "fuse.yaml").read_bytes()
    script = prefix / "lib" / "lutfuse_ros" / "lutfuse"
    assert script.is_file()
    env = dict(os.environ, PYTHONPATH=str(site))
    listing = subprocess.run([sys.executable, str(script), "info"], capture_output=True, text=True,
                             timeout=120, env=env, cwd=tmp_path)
    assert listing.returncode == 0 and "lutfuse-mmlut" in listing.stdout, listing.stderr
