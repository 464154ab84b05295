"""The model-family registry: one folder per family, every part reachable from one table."""

from __future__ import annotations

from pathlib import Path

import pytest

from lutfuse_ros.artifacts import load_artifact
from lutfuse_ros.backends.cpu_kernels import build_fast_model
from lutfuse_ros.errors import ArtifactError
from lutfuse_ros.families import (FAMILIES, MODEL_FAMILIES, STAGE_FAMILIES, build_baseline,
                                  build_model, family_of, get_family)
from lutfuse_ros.training.config import STAGES

FAMILIES_DIR = Path(__file__).resolve().parents[2] / "lutfuse_ros" / "families"
PARTS = ("model", "fast_kernel", "baseline", "importer", "training_stage")


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.name)
def test_every_part_of_a_family_lives_in_its_own_folder(family):
    model_class = family.part("model")
    assert model_class.family == family.name
    folder = None
    for attribute in PARTS:
        reference = getattr(family, attribute)
        if not reference:
            assert family.part(attribute) is None
            continue
        module = reference.partition(":")[0]
        parts = module.split(".")
        assert parts[:2] == ["lutfuse_ros", "families"] and len(parts) == 4, reference
        folder = folder or parts[2]
        assert parts[2] == folder, f"{family.name}: {reference} outside families/{folder}/"
        assert (FAMILIES_DIR / parts[2] / f"{parts[3]}.py").is_file()
        assert family.part(attribute) is not None


def test_the_registry_drives_loading_training_and_benchmarks():
    assert set(MODEL_FAMILIES) == {"mm_lut", "mini", "teacher"}
    assert STAGES == tuple(STAGE_FAMILIES) and set(STAGES) == {"teacher", "lut", "mini"}
    for name in ("lutfuse-mmlut", "lutfuse-mini"):
        model = load_artifact(name).build_model()
        family = family_of(model)
        assert family is get_family(model.family)
        # The torch backend's fast path and lutfuse bench's baseline come from the family.
        assert type(build_fast_model(model, "fp32")) is family.part("fast_kernel")
        assert type(build_baseline(model)) is family.part("baseline")
    teacher = build_model("teacher", {"width": 4})
    assert build_fast_model(teacher, "fp32") is None and build_baseline(teacher) is None


def test_unknown_family_and_bad_architecture_are_named():
    with pytest.raises(ArtifactError, match=r"unknown model family 'nope'; known: mini, mm_lut"):
        build_model("nope", {})
    with pytest.raises(ArtifactError, match=r"invalid architecture for 'mini'"):
        build_model("mini", {"no_such_argument": 1})
