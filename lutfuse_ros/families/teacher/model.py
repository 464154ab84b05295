"""The MMDRFuse teacher: a densely connected encoder-decoder fusion network (MM-Net).

Layer names and widths follow the official ``teacher.model`` (base width 32, 556,489
parameters at ``width=32``): a dense encoder with one stride-2 stage, a decoder with skip
connections and bicubic upsampling, then ``conv11`` (-> 4 channels, ReLU) and ``conv00``
(4 -> 1, tanh). Its last two layers mirror the mini-model's two layers, which is what
digestible distillation aligns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lutfuse_ros.families.features import rgb_to_luma


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3, stride))


class FusionTeacher(nn.Module):
    """Dense encoder-decoder teacher.

    Args:
        width: base width W; the encoder uses W and 2W channels (official: 32).
    """

    family = "teacher"
    default_output_mapping = "clamp"

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w, w2 = width, 2 * width
        self.width = width
        self.conv1 = _conv(2, w)
        self.conv2 = _conv(w, w)
        self.conv3 = _conv(2 * w, w2, stride=2)
        self.conv4 = _conv(w2, w2)
        self.conv5 = _conv(2 * w2, w2)
        self.conv6 = _conv(3 * w2, w2)
        self.conv66 = _conv(w2, w2)
        self.conv55 = _conv(2 * w2, w2)
        self.conv44 = _conv(2 * w2, w2)
        self.conv33 = _conv(2 * w2, w2)
        self.conv22 = _conv(w2 + w, w)
        self.conv11 = _conv(2 * w, 4)
        self.conv00 = _conv(4, 1)

    def architecture(self) -> dict:
        """Constructor arguments, stored in the artifact manifest."""
        return {"width": self.width}

    def forward_features(self, visible_rgb: torch.Tensor, infrared: torch.Tensor,
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the teacher and return its 4-channel features and output.

        Args:
            visible_rgb: ``(N, 3, H, W)`` RGB on [0, 1].
            infrared: ``(N, 1, H, W)`` on [0, 1].

        Returns:
            ``(features, output)``: ``(N, 4, H, W)`` after ReLU and ``(N, 1, H, W)`` tanh output.
        """
        act = torch.relu
        x = torch.cat([infrared, rgb_to_luma(visible_rgb)], dim=1)
        e1 = act(self.conv1(x))
        e2 = act(self.conv2(e1))
        e3 = act(self.conv3(torch.cat([e1, e2], 1)))
        e4 = act(self.conv4(e3))
        e5 = act(self.conv5(torch.cat([e3, e4], 1)))
        e6 = act(self.conv6(torch.cat([e3, e4, e5], 1)))
        d6 = act(self.conv66(e6))
        d5 = act(self.conv55(torch.cat([d6, e5], 1)))
        d4 = act(self.conv44(torch.cat([d5, e4], 1)))
        d3 = act(self.conv33(torch.cat([d4, e3], 1)))
        up = F.interpolate(d3, size=x.shape[-2:], mode="bicubic", align_corners=False)
        d2 = act(self.conv22(torch.cat([up, e2], 1)))
        features = act(self.conv11(torch.cat([d2, e1], 1)))
        return features, torch.tanh(self.conv00(features))

    def forward(self, visible_rgb: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """Fuse a batch; returns ``(N, 1, H, W)`` tanh output on [-1, 1]."""
        return self.forward_features(visible_rgb, infrared)[1]
