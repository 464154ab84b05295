"""Import the official LUT-Fuse checkpoint (``fine_tuned_lut.npy``, ``generator_context.pth``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lutfuse_ros.artifacts import MAX_ARCHITECTURE_INT, make_manifest
from lutfuse_ros.checkpoint_files import (built_to_fit, fingerprints, load_into,
                                          load_npy, load_state_dict, shape_of)
from lutfuse_ros.errors import ArtifactError
from lutfuse_ros.families.mmlut.model import MMLUT


def import_lutfuse(lut_path: str | Path, context_path: str | Path) -> tuple[MMLUT, dict]:
    """Build an MM-LUT from the official ``fine_tuned_lut.npy`` + ``generator_context.pth``.

    Args:
        lut_path: float32 ``(B, B, B, B[, 1])`` table, axes [luma, gradient, context, infrared].
        context_path: the context network's state dict.

    Returns:
        ``(model, manifest)`` ready for :func:`lutfuse_ros.artifacts.save_artifact`.
    """
    table = load_npy(Path(lut_path))
    if table.ndim == 5 and table.shape[-1] == 1:
        table = table[..., 0]
    if table.ndim != 4 or len(set(table.shape)) != 1:
        raise ArtifactError(f"{lut_path}: LUT must be (B,B,B,B) or (B,B,B,B,1), got {table.shape}")
    if table.shape[0] < 2:
        raise ArtifactError(f"{lut_path}: LUT needs at least 2 bins per axis, got {table.shape}")
    state = load_state_dict(Path(context_path))
    channels = shape_of(state, "input_layer.0.weight", context_path)[0]
    blocks = sum(1 for key, value in state.items()
                 if key.startswith("mid_layer.") and key.endswith(".weight") and value.ndim == 4)
    if blocks > MAX_ARCHITECTURE_INT:
        raise ArtifactError(f"{context_path}: {blocks} context blocks; at most "
                            f"{MAX_ARCHITECTURE_INT} are supported (corrupt checkpoint?)")
    model = built_to_fit(context_path, state, lambda: MMLUT(
        bins=table.shape[0], context_channels=channels, context_blocks=blocks),
        part=lambda lut: lut.context)
    load_into(model.context, state, context_path)
    with torch.no_grad():
        model.lut.copy_(torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32)))
    manifest = make_manifest(
        model, name="lutfuse-official", output_mapping="none",
        description="Official LUT-Fuse (ICCV 2025) MM-LUT and context network, imported.",
        provenance={"source": "official LUT-Fuse checkpoint (MIT licence)",
                    "files": fingerprints(lut_path, context_path)})
    return model.eval(), manifest
