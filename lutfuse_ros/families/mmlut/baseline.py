"""The MM-LUT computed the way the official LUT-Fuse test code does: ``lutfuse bench``'s baseline.

Not an inference path of the package: ``lutfuse bench`` reports, in the same run, how much
faster the package is. Float tensors in NCHW, YCbCr in torch, the full-resolution context
network in float32 NCHW, and the look-up as 16 advanced-index gathers over the 5-D
``(B, B, B, B, 1)`` table with ``lo = floor(v)``, ``hi = min(lo + 1, B - 1)``. The official
code has no reduced-resolution context: for such a model the baseline runs the official
context architecture (16 channels, 3 middle blocks, per full-resolution pixel; weights do not
change the time) - what the official approach costs for the same table. Takes the pipeline's
uint8 images and returns uint8 BGR, like ``FusionPipeline.fuse``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from lutfuse_ros.colour import (CB_TO_B, CB_TO_G, CB_WEIGHTS_RGB, CR_TO_G, CR_TO_R,
                                CR_WEIGHTS_RGB, LUMA_WEIGHTS_RGB)
from lutfuse_ros.families.mmlut.context_net import ContextNet
from lutfuse_ros.families.mmlut.model import MMLUT
from lutfuse_ros.families.mmlut.reduced_context import ReducedContextNet


class OfficialApproachMMLUT:
    """An MM-LUT run the way the official LUT-Fuse test code runs it (float32, NCHW).

    Args:
        model: the MM-LUT whose weights to use (copied).
    """

    def __init__(self, model: MMLUT) -> None:
        if isinstance(model.context, ReducedContextNet):
            self.context = ContextNet(channels=16, num_mid=3).eval()
        else:
            self.context = copy.deepcopy(model.context).float().eval()
        self.lut = model.lut.detach().clone().float()[..., None]
        self.bins = int(model.bins)
        self.scale = float(model.scale)
        sobel = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
        self.sobel = torch.stack([sobel, sobel.t()])[:, None]

    @torch.inference_mode()
    def fuse(self, visible: np.ndarray, thermal: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 BGR + ``(H, W)`` uint8 infrared -> ``(H, W, 3)`` uint8 BGR."""
        rgb = torch.from_numpy(np.ascontiguousarray(visible[..., ::-1])).permute(2, 0, 1)
        rgb = rgb[None].float() / 255.0
        infrared = torch.from_numpy(thermal)[None, None].float() / 255.0
        r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
        y = LUMA_WEIGHTS_RGB[0] * r + LUMA_WEIGHTS_RGB[1] * g + LUMA_WEIGHTS_RGB[2] * b
        cb = 0.5 + CB_WEIGHTS_RGB[0] * r + CB_WEIGHTS_RGB[1] * g + CB_WEIGHTS_RGB[2] * b
        cr = 0.5 + CR_WEIGHTS_RGB[0] * r + CR_WEIGHTS_RGB[1] * g + CR_WEIGHTS_RGB[2] * b
        grads = F.conv2d(y, self.sobel, padding=1)
        gradient = torch.sqrt(grads[:, 0:1] ** 2 + grads[:, 1:2] ** 2)
        gradient = (gradient - gradient.min()) / (gradient.max() - gradient.min())
        context = self.context(rgb * 255.0, infrared * 255.0)
        fused = self._lookup([y, gradient, context, infrared])
        out = torch.cat([fused + CR_TO_R * (cr - 0.5),
                         fused + CB_TO_G * (cb - 0.5) + CR_TO_G * (cr - 0.5),
                         fused + CB_TO_B * (cb - 0.5)], dim=1).clamp(0.0, 1.0)
        return (out[0].permute(1, 2, 0).flip(-1) * 255.0).to(torch.uint8).numpy()

    def _lookup(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Sixteen advanced-index gathers over the 5-D table, as the official code does."""
        top = self.bins - 1
        lows, highs, fracs = [], [], []
        for feature in features:
            value = (feature * self.scale).clamp(0.0, float(top))
            low = torch.floor(value)
            lows.append(low.long())
            highs.append((low + 1).clamp(max=top).long())
            fracs.append(value - low)
        fused = torch.zeros_like(features[0])
        for corner in range(16):
            index, weight = [], None
            for axis in range(4):
                upper = (corner >> (3 - axis)) & 1
                index.append(highs[axis] if upper else lows[axis])
                w = fracs[axis] if upper else 1.0 - fracs[axis]
                weight = w if weight is None else weight * w
            fused = fused + weight * self.lut[index[0], index[1], index[2], index[3], 0]
        return fused
