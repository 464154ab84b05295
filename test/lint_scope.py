"""What the linter tests check: the package's own Python, as colcon would lint it."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]

# The Python in the package tree; build/install/log and virtual environments are outside
# these folders or excluded below.
LINTED_PATHS = ("lutfuse_ros", "lutfuse_testing", "test", "launch", "setup.py", "benchmarks",
                "scripts")

# Folders a checkout may hold inside the linted paths that are not the package's code.
EXCLUDED_NAMES = ("build", "install", "log", ".venv", "__pycache__")


def linted_paths() -> list[str]:
    """The linted files and folders that exist in this checkout, relative to its root."""
    return [name for name in LINTED_PATHS if (PACKAGE_ROOT / name).exists()]
