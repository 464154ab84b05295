"""Launch tests under pytest: the job of launch_testing's pytest plugin, for pytest 7 to 9.

launch_testing (ROS 2) registers a pytest plugin whose ``pytest_pycollect_makemodule(path,
parent)`` uses the ``path`` argument that pytest 9 removed; setup.cfg blocks it (``-p
no:launch_testing``) and this hook does the same with launch_testing's own collector classes:
a module whose ``generate_test_description`` is marked ``launch_test`` becomes one pytest item
that runs the launch and its tests, carrying the entry point's marks (``ros``, ``slow``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import launch_support
import pytest

launch_support.make_importable()


def pytest_addoption(parser):
    """``--launch-args``, which launch_testing's test items read."""
    parser.addoption("--launch-args", action="append", nargs="*", default=[],
                     help="launch arguments of the launch tests (launch_testing)")


def pytest_configure(config):
    """Register the ``launch_test`` marker of launch_testing."""
    config.addinivalue_line("markers", "launch_test: a launch_testing entry point "
                                       "(generate_test_description)")


def pytest_pycollect_makemodule(module_path: Path, parent):
    """A launch_testing module for files defining a marked ``generate_test_description``."""
    if "def generate_test_description" not in module_path.read_text(errors="replace"):
        return None
    if launch_support.missing_reason() or importlib.util.find_spec("launch_testing") is None:
        return None  # collected as a plain module, which skips with the reason
    from _pytest.pathlib import import_path
    from launch_testing.loader import LoadTestsFromPythonModule
    from launch_testing.pytest.hooks import LaunchTestModule

    launch_support.undo_launch_logging()  # importing launch changed it for the whole session

    try:
        module = import_path(module_path, mode=parent.config.getoption("importmode"),
                             root=parent.config.rootpath, consider_namespace_packages=False)
    except TypeError:  # pytest < 8.1
        module = import_path(module_path, mode=parent.config.getoption("importmode"),
                             root=parent.config.rootpath)
    entrypoint = getattr(module, "generate_test_description", None)
    marks = getattr(entrypoint, "pytestmark", [])
    if not any(mark.name == "launch_test" for mark in marks):
        return None

    class LoadedLaunchTestModule(LaunchTestModule):
        """launch_testing's module collector, given the module imported above."""

        def collect(self):
            yield self.makeitem(name=module.__name__, parent=self,
                                test_runs=LoadTestsFromPythonModule(module, name=module.__name__))

    collector = LoadedLaunchTestModule.from_parent(parent=parent, path=module_path)
    for mark in marks:
        collector.add_marker(getattr(pytest.mark, mark.name).with_args(*mark.args, **mark.kwargs))
    return collector
