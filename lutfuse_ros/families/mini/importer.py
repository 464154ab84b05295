"""Import the official MMDRFuse student (``student.model``) as a mini-model."""

from __future__ import annotations

from pathlib import Path

from lutfuse_ros.artifacts import make_manifest
from lutfuse_ros.checkpoint_files import (built_to_fit, fingerprints, load_into,
                                          load_state_dict, shape_of)
from lutfuse_ros.families.mini.model import MiniFusionNet


def import_mmdrfuse(student_path: str | Path) -> tuple[MiniFusionNet, dict]:
    """Build the 113-parameter mini-model from the official MMDRFuse ``student.model``."""
    state = load_state_dict(Path(student_path))
    hidden = shape_of(state, "conv1.1.weight", student_path)[0]
    model = built_to_fit(student_path, state,
                         lambda: MiniFusionNet(hidden=hidden, quantise_input=True))
    load_into(model, state, student_path)
    manifest = make_manifest(
        model, name="mmdrfuse-official", output_mapping="clamp",
        description="Official MMDRFuse (ACM MM 2024) student, imported; its official test "
                    "script min-max stretches each output (luma_mapping: minmax reproduces it).",
        provenance={"source": "official MMDRFuse student weights",
                    "files": fingerprints(student_path)})
    return model.eval(), manifest
