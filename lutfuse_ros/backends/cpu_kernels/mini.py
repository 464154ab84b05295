"""Fast CPU inference of the MMDRFuse mini-model (:class:`~lutfuse_ros.models.MiniFusionNet`).

Float32 throughout (the model is tiny: bf16 would buy nothing and cost precision). With two,
four and one channels, library convolutions waste most of their vector lanes (oneDNN pads the
channel axis to 16, measured 3-4x slower than this), so every (input, output) channel pair
is one OpenCV ``filter2D`` on a float32 plane, vectorised along the image rows, with OpenCV's
``BORDER_REFLECT_101`` being exactly ``nn.ReflectionPad2d(1)``. Biases ride on ``filter2D``'s
``delta``; ReLU and tanh run in place in NumPy.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from lutfuse_ros.backends.frame_inputs import FrameInputs
from lutfuse_ros.models.mini import MiniFusionNet

_UNIT_LEVELS = (np.arange(256, dtype=np.float32) * np.float32(1.0 / 255.0)).reshape(1, 256)
_UNIT_LEVELS.flags.writeable = False
_REFLECT = cv2.BORDER_REFLECT_101
#: Pixels per strip for large frames (the working set of a strip then fits in cache).
STRIP_PIXELS = 400_000


class FastMini:
    """A mini-model prepared for fast CPU inference (float32; ``dtype`` is accepted and ignored).

    Args:
        model: the reference module (its weights are copied).
        dtype: unused; the mini-model always runs in float32.
    """

    def __init__(self, model: MiniFusionNet, dtype: torch.dtype = torch.float32) -> None:
        del dtype
        self.precision = "fp32"
        self.quantise_input = bool(model.quantise_input)
        self._kernels1 = model.conv1[1].weight.detach().float().numpy().copy()  # (hidden, 2, 3, 3)
        self._biases1 = [float(b) for b in model.conv1[1].bias.detach()]
        self._kernels2 = model.conv2[1].weight.detach().float().numpy()[0].copy()  # (hidden, 3, 3)
        self._bias2 = float(model.conv2[1].bias.detach()[0])

    def infer_frame(self, frame: FrameInputs) -> np.ndarray:
        """Fuse one uint8 frame; returns ``(H, W)`` float32 tanh output on [-1, 1]."""
        return self._run(cv2.LUT(frame.thermal, _UNIT_LEVELS), frame.luma)

    def infer(self, visible_rgb: np.ndarray, infrared: np.ndarray) -> np.ndarray:
        """Fuse float inputs: ``(1, 3, H, W)`` RGB and ``(1, 1, H, W)`` infrared on [0, 1]."""
        from lutfuse_ros.models.features import rgb_to_luma

        luma = rgb_to_luma(torch.from_numpy(visible_rgb))[0, 0].numpy()
        return self._run(np.ascontiguousarray(infrared[0, 0], dtype=np.float32), luma)

    def _run(self, infrared: np.ndarray, luma: np.ndarray) -> np.ndarray:
        """``(H, W)`` float32 tanh output from ``(H, W)`` float32 infrared and luma on [0, 1].

        Large frames run in horizontal strips of about :data:`STRIP_PIXELS` pixels, each
        with two halo rows per side (two 3x3 layers), so the four hidden planes stay in cache;
        the halo makes every strip's output rows exact.
        """
        if self.quantise_input:
            luma = np.round(luma * np.float32(255.0))
            luma /= np.float32(255.0)
        height, width = luma.shape
        rows = max(8, STRIP_PIXELS // width)
        if height <= rows + 4:
            return self._run_block(infrared, luma)
        out = np.empty((height, width), np.float32)
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            first, last = max(0, top - 2), min(height, bottom + 2)
            block = self._run_block(infrared[first:last], luma[first:last])
            out[top:bottom] = block[top - first:bottom - first]
        return out

    def _run_block(self, infrared: np.ndarray, luma: np.ndarray) -> np.ndarray:
        """Both layers and tanh on full-width rows (reflection at the block's edges)."""
        inputs = (infrared, luma)  # the official channel order: infrared first
        out = None
        for kernels, bias, weight2 in zip(self._kernels1, self._biases1, self._kernels2):
            hidden = cv2.filter2D(inputs[0], -1, kernels[0], delta=bias, borderType=_REFLECT)
            hidden += cv2.filter2D(inputs[1], -1, kernels[1], borderType=_REFLECT)
            np.maximum(hidden, np.float32(0.0), out=hidden)
            if out is None:
                out = cv2.filter2D(hidden, -1, weight2, delta=self._bias2, borderType=_REFLECT)
            else:
                out += cv2.filter2D(hidden, -1, weight2, borderType=_REFLECT)
        return np.tanh(out, out=out)
