"""Hand-made (untrained) models that fuse to max(luma, infrared): predictable references.

Useful as a starting point and in tests whose expectations follow from the rule; the shipped
defaults are trained models (docs/training.md). Their manifests say they are untrained.
"""

from __future__ import annotations

import os
from pathlib import Path

from lutfuse_ros.artifacts import make_manifest, save_artifact
from lutfuse_ros.families.mini.model import MiniFusionNet
from lutfuse_ros.families.mmlut.model import MMLUT

_PROVENANCE = {"source": "analytic initialisation (not trained)", "rule": "max(luma, infrared)"}


def save_analytic_models(folder: str | os.PathLike, *, context_channels: int = 16,
                         context_blocks: int = 3, overwrite: bool = False) -> dict[str, Path]:
    """Write ``analytic-mmlut.safetensors`` and ``analytic-mini.safetensors`` into ``folder``.

    Args:
        folder: output folder (created if needed).
        context_channels: width of the MM-LUT's context network (its output does not depend
            on it: the table ignores the context axis).
        context_blocks: depth of that network.
        overwrite: replace existing files (otherwise FileExistsError).

    Returns:
        ``{"mmlut": path, "mini": path}``.
    """
    lut = MMLUT(bins=17, context_channels=context_channels, context_blocks=context_blocks,
                lattice="endpoint")
    lut.fill_analytic("max")
    mini = MiniFusionNet()
    mini.fill_analytic()
    models = {
        "mmlut": (lut, "MM-LUT filled analytically with max(luma, infrared); untrained."),
        "mini": (mini, "113-parameter mini-model computing tanh(max(luma, infrared)); "
                       "untrained."),
    }
    paths = {}
    for key, (model, description) in models.items():
        paths[key] = save_artifact(model, Path(folder) / f"analytic-{key}.safetensors",
                                   make_manifest(model, name=f"analytic-{key}",
                                                 provenance=_PROVENANCE,
                                                 description=description),
                                   overwrite=overwrite)
    return paths
