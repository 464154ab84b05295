"""The MM-LUT high-level joint contextual scene encoder (CSE).

Module names mirror the official LUT-Fuse ``generator_context`` state dict
(``input_layer.0``, ``mid_layer.{0,3,6}``, ``output_layer.1`` ...), so the official weights
load with ``load_state_dict`` unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class ContextNet(nn.Module):
    """Five 3x3 conv blocks producing one context value per pixel.

    conv(4->C) LeakyReLU(0.2) InstanceNorm(affine); ``num_mid`` x [conv(C->C) LeakyReLU
    InstanceNorm]; residual add of the first block; dropout(0.5); conv(C->1); sigmoid.
    InstanceNorm uses per-image statistics at inference too, so a pixel's context depends on
    the whole frame.

    Args:
        channels: hidden width C (official: 16).
        num_mid: number of middle blocks (official: 3).
        in_channels: visible RGB + infrared = 4.
    """

    def __init__(self, channels: int = 16, num_mid: int = 3, in_channels: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.num_mid = num_mid
        self.input_layer = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.LeakyReLU(0.2),
            nn.InstanceNorm2d(channels, affine=True))
        mid: list[nn.Module] = []
        for _ in range(num_mid):
            mid += [nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2),
                    nn.InstanceNorm2d(channels, affine=True)]
        self.mid_layer = nn.Sequential(*mid)
        self.output_layer = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(channels, 1, 3, padding=1),
                                          nn.Sigmoid())

    def forward(self, visible_rgb255: torch.Tensor, infrared255: torch.Tensor) -> torch.Tensor:
        """Compute the context map.

        Args:
            visible_rgb255: ``(N, 3, H, W)`` visible RGB on [0, 255] (not normalised, as the
                official network was trained).
            infrared255: ``(N, 1, H, W)`` infrared on [0, 255].

        Returns:
            ``(N, 1, H, W)`` context on [0, 1].
        """
        first = self.input_layer(torch.cat([visible_rgb255, infrared255], dim=1))
        return self.output_layer(first + self.mid_layer(first))
