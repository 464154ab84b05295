"""PyTorch model families.

All take ``(visible_rgb, infrared)`` on [0, 1] and return a fused luminance ``(N, 1, H, W)``;
see each class for its output range.
"""

from __future__ import annotations

from torch import nn

from lutfuse_ros.errors import ArtifactError
from lutfuse_ros.models.lut import MMLUT
from lutfuse_ros.models.mini import MiniFusionNet
from lutfuse_ros.models.teacher import FusionTeacher

#: Model family name (as stored in artifact manifests) -> class.
MODEL_FAMILIES: dict[str, type[nn.Module]] = {
    MMLUT.family: MMLUT,
    MiniFusionNet.family: MiniFusionNet,
    FusionTeacher.family: FusionTeacher,
}


def build_model(family: str, architecture: dict) -> nn.Module:
    """Instantiate a model family from its manifest description.

    Args:
        family: a key of :data:`MODEL_FAMILIES`.
        architecture: constructor keyword arguments.

    Raises:
        ArtifactError: unknown family or arguments the class does not accept.
    """
    try:
        model_class = MODEL_FAMILIES[family]
    except KeyError:
        raise ArtifactError(f"unknown model family {family!r}; known: "
                            f"{', '.join(sorted(MODEL_FAMILIES))}") from None
    try:
        return model_class(**architecture)
    except (TypeError, ValueError) as error:
        raise ArtifactError(
            f"invalid architecture for {family!r}: {architecture} ({error})") from None


__all__ = ["MODEL_FAMILIES", "MMLUT", "MiniFusionNet", "FusionTeacher", "build_model"]
