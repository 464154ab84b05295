"""A reduced-resolution context encoder for the MM-LUT.

Artifact architecture ``context_reduction > 1``; the package's own design, not in the
LUT-Fuse paper.

The paper's context value is a high-level scene encoding: it varies slowly across the image,
so it need not be computed per full-resolution pixel. This encoder

1. averages the 4-channel input (visible RGB + infrared, 0..255) over ``r x r`` blocks
   (``AveragePool``, ``ceil_mode``: a partial block at the right/bottom edge averages the pixels
   it has, so any size works, also one smaller than ``r``, which becomes a single block);
2. runs the same five-block network as
   :class:`~lutfuse_ros.families.mmlut.context_net.ContextNet` on that
   ``ceil(H / r) x ceil(W / r)`` image - its InstanceNorm statistics are therefore the
   statistics of the reduced image (per frame, as before);
3. adds a learned linear function of the frame's mean level (the per-channel means of the
   reduced image, on [0, 1]) to the network's logit: InstanceNorm removes every absolute
   level from the features, so without it the context could not tell a dark frame from a
   bright one (a global brightness adaptation the table then uses);
4. takes the sigmoid there and upsamples the context *value* bilinearly (half-pixel centres,
   ``align_corners=False``, edge-clamped) to ``H x W``, so the look-up coordinate stays in
   [0, 1] and is smooth across block borders (no blocking in the fused image).

At ``r = 4`` the network sees 1/16 of the pixels: its cost drops 16-fold and the pooling and
upsampling (two memory passes) dominate. The module names are those of ``ContextNet``, so the
state dict layout is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lutfuse_ros.families.mmlut.context_net import ContextNet


def reduced_size(height: int, width: int, reduction: int) -> tuple[int, int]:
    """``(ceil(height / reduction), ceil(width / reduction))``: the context's working size."""
    return -(-height // reduction), -(-width // reduction)


def block_average(image: torch.Tensor, reduction: int) -> torch.Tensor:
    """Mean over ``reduction x reduction`` blocks, partial edge blocks over their own pixels.

    Args:
        image: ``(N, C, H, W)`` float.
        reduction: block side ``r >= 1``.

    Returns:
        ``(N, C, ceil(H / r), ceil(W / r))``.
    """
    if reduction == 1:
        return image
    return F.avg_pool2d(image, reduction, reduction, ceil_mode=True, count_include_pad=False)


def _run_layers(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Apply ``layers``; on a single-pixel map InstanceNorm gives its bias exactly.

    ``(x - mean) / sqrt(var + eps)`` is 0 for one pixel, so the affine output is ``beta``;
    PyTorch refuses that case, ONNX Runtime and the fast path compute it. A frame of at
    most ``r x r`` pixels reduces to one pixel. (Not traced into ONNX graphs, whose
    InstanceNormalization computes the same.)
    """
    if torch.onnx.is_in_onnx_export() or x.shape[-1] * x.shape[-2] != 1:
        return layers(x)
    for layer in layers:
        if isinstance(layer, nn.InstanceNorm2d):
            bias = layer.bias if layer.affine else torch.zeros(layer.num_features)
            x = bias.view(1, -1, 1, 1).to(x.dtype) + 0.0 * x
        else:
            x = layer(x)
    return x


class ReducedContextNet(ContextNet):
    """:class:`ContextNet` computed on an ``r``-times reduced image, value upsampled bilinearly.

    Args:
        channels: hidden width C.
        num_mid: number of middle blocks.
        in_channels: visible RGB + infrared = 4.
        reduction: block side ``r`` (>= 2; 1 would be the plain ``ContextNet``).
    """

    def __init__(self, channels: int = 8, num_mid: int = 3, in_channels: int = 4,
                 reduction: int = 4) -> None:
        if reduction < 2:
            raise ValueError(f"context reduction must be >= 2, got {reduction}")
        super().__init__(channels, num_mid, in_channels)
        self.reduction = reduction
        #: logit += level.weight @ (per-channel mean of the reduced input / 255)
        self.level = nn.Linear(in_channels, 1, bias=False)
        nn.init.zeros_(self.level.weight)

    def reduced(self, visible_rgb255: torch.Tensor, infrared255: torch.Tensor) -> torch.Tensor:
        """The context value at the reduced size.

        Args:
            visible_rgb255: ``(N, 3, H, W)`` RGB on [0, 255].
            infrared255: ``(N, 1, H, W)`` on [0, 255].

        Returns:
            ``(N, 1, ceil(H / r), ceil(W / r))`` on [0, 1].
        """
        pooled = block_average(torch.cat([visible_rgb255, infrared255], dim=1), self.reduction)
        first = _run_layers(self.input_layer, pooled)
        _, out_conv, sigmoid = self.output_layer
        logits = out_conv(first + _run_layers(self.mid_layer, first))
        level = self.level(pooled.mean(dim=(2, 3)) / 255.0)        # (N, 1)
        return sigmoid(logits + level[:, :, None, None])

    def forward(self, visible_rgb255: torch.Tensor, infrared255: torch.Tensor) -> torch.Tensor:
        """Context map at full resolution.

        Args:
            visible_rgb255: ``(N, 3, H, W)`` RGB on [0, 255].
            infrared255: ``(N, 1, H, W)`` on [0, 255].

        Returns:
            ``(N, 1, H, W)`` context on [0, 1].
        """
        size = visible_rgb255.shape[-2:]
        return F.interpolate(self.reduced(visible_rgb255, infrared255), size=size,
                             mode="bilinear", align_corners=False)
