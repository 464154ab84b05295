"""ament_flake8 over the package, with the limits of setup.cfg's [flake8] section."""

from __future__ import annotations

import pytest
from lint_scope import EXCLUDED_NAMES, PACKAGE_ROOT, linted_paths

try:
    from ament_flake8.main import main_with_errors
except ImportError:  # no ROS install and no ros-ament-flake8 wheel
    main_with_errors = None


@pytest.mark.linter
@pytest.mark.skipif(main_with_errors is None,
                    reason="ament_flake8 not installed (apt ros-<distro>-ament-flake8 or "
                           "pip install ros-ament-flake8, see requirements/dev.txt)")
def test_flake8(monkeypatch):
    """The package has no flake8 error under the configuration in setup.cfg."""
    monkeypatch.chdir(PACKAGE_ROOT)  # ament_flake8 looks for AMENT_IGNORE below the cwd
    rc, errors = main_with_errors(argv=["--config", str(PACKAGE_ROOT / "setup.cfg"),
                                        "--exclude", *EXCLUDED_NAMES, "--", *linted_paths()])
    assert rc == 0, f"Found {len(errors)} code style errors / warnings:\n" + "\n".join(errors)
