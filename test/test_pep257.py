"""ament_pep257 over the package: Google-convention docstrings (D100-D107 not required)."""

from __future__ import annotations

import logging

import pytest
from lint_scope import EXCLUDED_NAMES, PACKAGE_ROOT, linted_paths

try:
    from ament_pep257.main import main
except ImportError:  # no ROS install and no ros-ament-pep257 wheel
    main = None

# The ament convention's ignores of missing docstrings (public modules, classes, methods,
# functions, packages, magic methods, nested classes, __init__), added to the Google
# convention that the docstrings follow.
MISSING_DOCSTRING_CODES = ("D100", "D101", "D102", "D103", "D104", "D105", "D106", "D107")


@pytest.mark.linter
@pytest.mark.skipif(main is None,
                    reason="ament_pep257 not installed (apt ros-<distro>-ament-pep257 or "
                           "pip install ros-ament-pep257, see requirements/dev.txt)")
def test_pep257(monkeypatch, capsys, caplog):
    """Every docstring follows PEP 257 as the Google convention reads it."""
    monkeypatch.chdir(PACKAGE_ROOT)
    caplog.set_level(logging.WARNING, logger="pydocstyle")  # not one INFO line per file
    rc = main(argv=["--convention", "google", "--add-ignore", *MISSING_DOCSTRING_CODES,
                    "--exclude", *EXCLUDED_NAMES, "--", *linted_paths()])
    assert rc == 0, "Found docstring style errors:\n" + capsys.readouterr().err
