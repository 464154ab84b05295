"""Import the official MMDRFuse teacher (``teacher.model``), for comparisons."""

from __future__ import annotations

from pathlib import Path

from lutfuse_ros.artifacts import make_manifest
from lutfuse_ros.checkpoint_files import (built_to_fit, fingerprints, load_into,
                                          load_state_dict, shape_of)
from lutfuse_ros.families.teacher.model import FusionTeacher


def import_mmdrfuse_teacher(teacher_path: str | Path) -> tuple[FusionTeacher, dict]:
    """Build the MMDRFuse teacher from the official ``teacher.model`` (for comparisons)."""
    state = load_state_dict(Path(teacher_path))
    width = shape_of(state, "conv1.1.weight", teacher_path)[0]
    model = built_to_fit(teacher_path, state, lambda: FusionTeacher(width=width))
    load_into(model, state, teacher_path)
    manifest = make_manifest(
        model, name="mmdrfuse-teacher-official", output_mapping="clamp",
        description="Official MMDRFuse teacher, imported.",
        provenance={"source": "official MMDRFuse teacher weights",
                    "files": fingerprints(teacher_path)})
    return model.eval(), manifest
