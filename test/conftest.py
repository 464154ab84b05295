"""Shared fixtures: the ../shared folder (skip with a reason where it is missing).

Also puts the checkout's root on ``sys.path`` and ``PYTHONPATH`` (for the processes tests
start): the test tooling (:mod:`lutfuse_testing`) is not installed with the package.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(REPO) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO),
                                                             os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The development data folder beside the checkout, or skip."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"../shared not found at {SHARED}: reference data and models unavailable")
    return SHARED


@pytest.fixture(scope="session")
def official_lut_artifact(shared_dir, tmp_path_factory) -> Path:
    """The official LUT-Fuse checkpoint imported once per session."""
    from lutfuse_ros.artifacts import save_artifact
    from lutfuse_ros.families.mmlut.importer import import_lutfuse

    models = shared_dir / "reference_models" / "lutfuse"
    model, manifest = import_lutfuse(models / "fine_tuned_lut.npy",
                                     models / "generator_context.pth")
    return save_artifact(model, tmp_path_factory.mktemp("official") / "lutfuse.safetensors",
                         manifest)


@pytest.fixture(scope="session")
def official_mini_artifact(shared_dir, tmp_path_factory) -> Path:
    """The official MMDRFuse student imported once per session."""
    from lutfuse_ros.artifacts import save_artifact
    from lutfuse_ros.families.mini.importer import import_mmdrfuse

    model, manifest = import_mmdrfuse(
        shared_dir / "reference_models" / "mmdrfuse" / "student.model")
    return save_artifact(model, tmp_path_factory.mktemp("official") / "mini.safetensors", manifest)


@pytest.fixture(scope="session")
def analytic_artifacts(tmp_path_factory) -> dict[str, Path]:
    """Hand-made (untrained) max(luma, infrared) models whose behaviour tests can predict.

    Returns:
        ``{"mmlut": path, "mini": path}`` of artifacts in a temporary folder.
    """
    from lutfuse_ros.analytic_models import save_analytic_models

    return save_analytic_models(tmp_path_factory.mktemp("analytic_models"), context_channels=4,
                                context_blocks=1)
