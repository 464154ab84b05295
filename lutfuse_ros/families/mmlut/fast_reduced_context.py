"""Fast inference of the reduced-resolution context encoder.

The encoder is :class:`~lutfuse_ros.families.mmlut.reduced_context.ReducedContextNet`.

Same function as the module, to float32 rounding:

* the ``r x r`` block average reads the uint8 frame once: OpenCV's ``INTER_AREA`` resize is an
  exact block mean when both sides are multiples of ``r`` (the usual camera sizes); other
  sizes take PyTorch's ``avg_pool2d`` with ``ceil_mode``, the module's own operator;
* the network runs on the reduced image through :class:`~.context.FastContextNet` (folded
  InstanceNorm, fused LeakyReLU, channels-last), its statistics being those of that image;
* the frame-level term (a dot product of the reduced image's channel means) is added to
  the logits; the sigmoid and the lattice scale are applied at the reduced size, then OpenCV's
  ``INTER_LINEAR`` resize upsamples (half-pixel centres and edge clamping, as
  ``F.interpolate(..., align_corners=False)``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from lutfuse_ros.families.mmlut.fast_context import FastContextNet
from lutfuse_ros.families.mmlut.reduced_context import ReducedContextNet, reduced_size


class FastReducedContext:
    """The context value of a reduced-resolution MM-LUT context, in lattice units.

    Args:
        network: the reference module (weights are copied).
        dtype: storage dtype of the network's feature maps (float32 or bfloat16).
        scale: lattice units per unit of context (the MM-LUT's axis scale).
    """

    def __init__(self, network: ReducedContextNet, dtype: torch.dtype, scale: float) -> None:
        self.reduction = int(network.reduction)
        self.scale = float(scale)
        self.dtype = dtype
        self.network = FastContextNet(network, dtype)
        rgb_ir = network.level.weight.detach().double()[0] / 255.0       # (4,) RGB + infrared
        self._level_weights = {"rgb": rgb_ir.numpy(), "bgr": rgb_ir[[2, 1, 0, 3]].numpy(),
                               "gray": np.array([float(rgb_ir[:3].sum()), float(rgb_ir[3])])}

    def block_average_uint8(self, stacked: np.ndarray) -> np.ndarray:
        """Block means of a uint8 frame.

        ``(H, W, C)`` or ``(H, W)`` uint8 -> ``(ceil(H / r), ceil(W / r), C)`` float32
        (C = 1 for a 2-D input).
        """
        if stacked.ndim == 2:
            stacked = stacked[..., None]
        height, width = stacked.shape[:2]
        small_height, small_width = reduced_size(height, width, self.reduction)
        if height % self.reduction == 0 and width % self.reduction == 0:
            pooled = cv2.resize(stacked.astype(np.float32), (small_width, small_height),
                                interpolation=cv2.INTER_AREA)
            return pooled.reshape(small_height, small_width, -1)
        planar = torch.from_numpy(stacked).permute(2, 0, 1)[None].float()
        pooled = F.avg_pool2d(planar, self.reduction, self.reduction, ceil_mode=True,
                              count_include_pad=False)
        return pooled[0].permute(1, 2, 0).contiguous().numpy()

    def from_uint8(self, visible: np.ndarray, thermal: np.ndarray, order: str) -> torch.Tensor:
        """Context coordinates from the pipeline's uint8 images.

        Args:
            visible: ``(H, W, 3)`` uint8 in ``order`` or ``(H, W)`` gray.
            thermal: ``(H, W)`` uint8.
            order: ``rgb``, ``bgr`` or ``gray``.

        Returns:
            ``(H, W)`` float32 context in lattice units (``value * scale``).
        """
        # pooled apart and merged at the reduced size: no full-resolution 4-channel copy
        pooled = np.concatenate([self.block_average_uint8(visible),
                                 self.block_average_uint8(thermal)], axis=2)
        network_input = torch.from_numpy(pooled[None]).permute(0, 3, 1, 2).to(self.dtype)
        level = float(pooled.reshape(-1, pooled.shape[2]).mean(0, dtype=np.float64)
                      @ self._level_weights[order])
        return self._upsample(self.network.forward(network_input, order), thermal.shape, level)

    def from_float(self, visible_rgb: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """Context coordinates from float tensors.

        Takes ``(1, 3, H, W)`` RGB and ``(1, 1, H, W)`` infrared on [0, 1]; returns
        ``(H, W)`` float32 in lattice units.
        """
        stacked = torch.cat([visible_rgb, infrared], dim=1) * 255.0
        pooled = F.avg_pool2d(stacked, self.reduction, self.reduction, ceil_mode=True,
                              count_include_pad=False)
        network_input = pooled.to(self.dtype).contiguous(memory_format=torch.channels_last)
        level = float(pooled[0].double().mean((1, 2)).numpy() @ self._level_weights["rgb"])
        return self._upsample(self.network.forward(network_input, "rgb"), infrared.shape[-2:],
                              level)

    def _upsample(self, logits: torch.Tensor, size: tuple[int, int], level: float,
                  ) -> torch.Tensor:
        """Level term, sigmoid and scale at the reduced size, then bilinear to ``(H, W)``."""
        value = torch.sigmoid(logits.float().add_(level)).mul_(self.scale).numpy()
        height, width = int(size[0]), int(size[1])
        if value.shape == (1, 1):
            return torch.full((height, width), float(value[0, 0]), dtype=torch.float32)
        full = cv2.resize(np.ascontiguousarray(value), (width, height),
                          interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(full.reshape(height, width))
