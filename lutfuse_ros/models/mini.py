"""The MMDRFuse mini-model: a 113-parameter two-layer CNN (ACM MM 2024).

Module names mirror the official ``student.model`` state dict (``conv1.1``, ``conv2.1``).
"""

from __future__ import annotations

import torch
from torch import nn

from lutfuse_ros.models.features import quantise_luma, rgb_to_luma


class MiniFusionNet(nn.Module):
    """reflect-pad, conv3x3 2->H, ReLU; reflect-pad, conv3x3 H->1, tanh.

    With ``hidden=4`` the network has 4*2*9 + 4 + 1*4*9 + 1 = 113 parameters.

    Args:
        hidden: width of the hidden layer (official: 4).
        quantise_input: round the visible luminance to 8 bits first, as the official model
            saw it (it was trained and tested on uint8 gray images).
    """

    family = "mini"
    default_output_mapping = "clamp"

    def __init__(self, hidden: int = 4, quantise_input: bool = True) -> None:
        super().__init__()
        self.hidden = hidden
        self.quantise_input = quantise_input
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(2, hidden, 3))
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(hidden, 1, 3))

    def architecture(self) -> dict:
        """Constructor arguments, stored in the artifact manifest."""
        return {"hidden": self.hidden, "quantise_input": self.quantise_input}

    def forward_features(self, visible_rgb: torch.Tensor, infrared: torch.Tensor,
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network and also return its hidden features (for distillation).

        Args:
            visible_rgb: ``(N, 3, H, W)`` RGB on [0, 1].
            infrared: ``(N, 1, H, W)`` on [0, 1].

        Returns:
            ``(features, output)``: ``(N, hidden, H, W)`` after ReLU and ``(N, 1, H, W)`` tanh
            output on [-1, 1].
        """
        luma = rgb_to_luma(visible_rgb)
        if self.quantise_input:
            luma = quantise_luma(luma)
        features = torch.relu(self.conv1(torch.cat([infrared, luma], dim=1)))
        return features, torch.tanh(self.conv2(features))

    def forward(self, visible_rgb: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """Fuse a batch; returns ``(N, 1, H, W)`` tanh output on [-1, 1] (clamp to [0, 1])."""
        return self.forward_features(visible_rgb, infrared)[1]

    @torch.no_grad()
    def fill_analytic(self) -> None:
        """Set hand-made weights computing ``tanh(max(infrared, luma))`` (centre taps only).

        Hidden channel 0 is ``relu(luma)``, channel 1 ``relu(infrared - luma)``, their sum the
        maximum. A starting point for shipped defaults before training, not a trained model.
        """
        self.conv1[1].weight.zero_()
        self.conv1[1].bias.zero_()
        self.conv2[1].weight.zero_()
        self.conv2[1].bias.zero_()
        self.conv1[1].weight[0, 1, 1, 1] = 1.0
        self.conv1[1].weight[1, 0, 1, 1] = 1.0
        self.conv1[1].weight[1, 1, 1, 1] = -1.0
        self.conv2[1].weight[0, 0, 1, 1] = 1.0
        self.conv2[1].weight[0, 1, 1, 1] = 1.0
