"""VGG-19 perceptual features and the MMDRFuse perceptual losses.

ImageNet weights cannot be downloaded by this package: the user supplies a weights file (a
state dict in torchvision's ``vgg19`` layout, ``features.N.weight`` / ``features.N.bias``;
other keys such as the classifier are ignored). It is read with ``weights_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lutfuse_ros.errors import ConfigError

#: VGG-19 convolution widths, "M" = 2x2 max-pool (torchvision configuration "E").
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
#: ``features`` indices after which the five depths are read (relu1_2, relu2_2, relu3_4,
#: relu4_4, relu5_4): the official code's ``features[:4]``, ``[:9]``, ``[:18]``, ``[:27]``,
#: ``[:36]``.
DEPTH_ENDS = (4, 9, 18, 27, 36)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """The convolutional part of VGG-19 returning the five depths' activations.

    Gray inputs are replicated to three channels, as the official MMDRFuse code does.

    Args:
        imagenet_normalise: subtract the ImageNet mean and divide by its std first.
    """

    def __init__(self, imagenet_normalise: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in VGG19_LAYOUT:
            if width == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=False)]
                channels = width
        self.features = nn.Sequential(*layers[:DEPTH_ENDS[-1]])
        self.imagenet_normalise = imagenet_normalise
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, gray: torch.Tensor) -> list[torch.Tensor]:
        """Features of a gray batch.

        Args:
            gray: ``(N, 1, H, W)`` on [0, 1] (or ``(N, 3, H, W)``).

        Returns:
            Five tensors, depth 1 (``(N, 64, H, W)``) to depth 5 (``(N, 512, H/8, W/8)``).
        """
        x = gray.expand(-1, 3, -1, -1) if gray.shape[1] == 1 else gray
        if self.imagenet_normalise:
            x = (x - self.mean) / self.std
        outputs, start = [], 0
        for end in DEPTH_ENDS:
            x = self.features[start:end](x)
            outputs.append(x)
            start = end
        return outputs

    def train(self, mode: bool = True) -> "VGG19Features":
        """Always stays in eval mode (a fixed feature extractor)."""
        return super().train(False)


def load_vgg19(weights_path: str | os.PathLike | None, imagenet_normalise: bool = False,
               ) -> VGG19Features:
    """Build :class:`VGG19Features` with user-supplied weights.

    Args:
        weights_path: a torchvision-layout VGG-19 state dict (``.pth``).
        imagenet_normalise: see :class:`VGG19Features`.

    Raises:
        ConfigError: no path, a missing file, a file that is not a weights-only state dict, or
            tensors that do not fit VGG-19 (the message says which).
    """
    if not weights_path:
        raise ConfigError("the perceptual loss needs VGG-19 ImageNet weights, which cannot be "
                          "downloaded here: set loss.perceptual_weights to a torchvision-layout "
                          "vgg19 state dict file, or leave it empty to train without the term")
    path = Path(weights_path)
    if not path.is_file():
        raise ConfigError(f"VGG-19 weights file {path} not found (loss.perceptual_weights); "
                          "supply the file or remove the setting to train without the "
                          "perceptual term")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or unsafe files
        raise ConfigError(f"VGG-19 weights {path} are not a weights-only state dict "
                          f"({type(error).__name__}: {str(error).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise ConfigError(f"VGG-19 weights {path}: expected a state dict, got "
                          f"{type(state).__name__}")
    features = {k.removeprefix("module."): v for k, v in state.items()
                if k.removeprefix("module.").startswith("features.")}
    model = VGG19Features(imagenet_normalise)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(features))
    if missing:
        raise ConfigError(f"VGG-19 weights {path} lack {len(missing)} tensor(s) of the "
                          f"convolutional layers, e.g. {missing[:3]}")
    try:
        model.load_state_dict({k: features[k] for k in expected}, strict=True)
    except RuntimeError as error:
        raise ConfigError(f"VGG-19 weights {path} do not fit VGG-19: "
                          f"{str(error).splitlines()[0]}") from None
    return model


def perceptual_max_loss(output_features: list[torch.Tensor], ir_features: list[torch.Tensor],
                        vi_features: list[torch.Tensor]) -> torch.Tensor:
    """Eq. 4 of MMDRFuse: mean over depths of MSE(phi(O), max(phi(IR), phi(VIS))).

    Args:
        output_features: :class:`VGG19Features` output of the fused image.
        ir_features: of the infrared image (no gradient needed).
        vi_features: of the visible luminance.

    Returns:
        Scalar loss, 0 when the output's features equal the element-wise maximum.
    """
    terms = [F.mse_loss(out, torch.maximum(ir, vi))
             for out, ir, vi in zip(output_features, ir_features, vi_features)]
    return torch.stack(terms).mean()


def feature_distance(first: list[torch.Tensor], second: list[torch.Tensor],
                     depths: tuple[int, ...]) -> torch.Tensor:
    """Per-sample mean squared feature difference averaged over the given depths (1-based).

    Used by the refresh losses: depths (4, 5) for L_s, (1, 2, 3) for L_g.

    Returns:
        ``(N,)`` distances.
    """
    terms = [((first[d - 1] - second[d - 1]) ** 2).flatten(1).mean(1) for d in depths]
    return torch.stack(terms).mean(0)
