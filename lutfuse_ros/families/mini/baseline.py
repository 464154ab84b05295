"""The mini-model run as the official MMDRFuse test code runs it: ``lutfuse bench``'s baseline.

Not an inference path of the package: OpenCV YCrCb and the plain PyTorch module in float32,
uint8 BGR in and out like ``FusionPipeline.fuse``.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np
import torch

from lutfuse_ros.families.mini.model import MiniFusionNet


class OfficialApproachMini:
    """The mini-model run as the official MMDRFuse test code runs it (plain module, float32).

    Args:
        model: the mini-model whose weights to use (copied).
    """

    def __init__(self, model: MiniFusionNet) -> None:
        self.model = copy.deepcopy(model).float().eval()

    @torch.inference_mode()
    def fuse(self, visible: np.ndarray, thermal: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 BGR + ``(H, W)`` uint8 infrared -> ``(H, W, 3)`` uint8 BGR."""
        ycrcb = cv2.cvtColor(visible, cv2.COLOR_BGR2YCrCb)
        luma = torch.from_numpy(ycrcb[..., 0])[None, None].float() / 255.0
        infrared = torch.from_numpy(thermal)[None, None].float() / 255.0
        x = torch.cat([infrared, luma], dim=1)
        fused = torch.tanh(self.model.conv2(torch.relu(self.model.conv1(x))))
        ycrcb[..., 0] = (fused[0, 0].clamp(0.0, 1.0) * 255.0).to(torch.uint8).numpy()
        return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR)
