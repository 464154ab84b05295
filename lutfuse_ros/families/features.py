"""Low-order image features shared by the model families (PyTorch).

Shapes follow PyTorch's ``(N, C, H, W)`` convention; all images are float32 on [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lutfuse_ros.colour import LUMA_WEIGHTS_RGB

_SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))


def rgb_to_luma(rgb: torch.Tensor) -> torch.Tensor:
    """Full-range BT.601 luminance of an RGB batch.

    Args:
        rgb: ``(N, 3, H, W)`` RGB on [0, 1].

    Returns:
        ``(N, 1, H, W)`` luminance on [0, 1].
    """
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    return LUMA_WEIGHTS_RGB[0] * r + LUMA_WEIGHTS_RGB[1] * g + LUMA_WEIGHTS_RGB[2] * b


def quantise_luma(luma: torch.Tensor) -> torch.Tensor:
    """Round a luminance to the 256 levels of an 8-bit image, straight-through in training.

    The official MMDRFuse student was trained and tested on 8-bit gray images, so its input
    luminance is rounded the same way. The gradient passes through unchanged.

    Args:
        luma: ``(N, 1, H, W)`` on [0, 1].

    Returns:
        ``(N, 1, H, W)`` on [0, 1], multiples of 1/255.
    """
    rounded = torch.round(luma * 255.0) / 255.0
    return luma + (rounded - luma).detach()


def sobel_magnitude(luma: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude with zero padding, as the official LUT-Fuse code computes it.

    Args:
        luma: ``(N, 1, H, W)``.

    Returns:
        ``(N, 1, H, W)`` ``sqrt(gx^2 + gy^2)``, unnormalised.
    """
    kx = torch.tensor(_SOBEL_X, dtype=luma.dtype, device=luma.device).view(1, 1, 3, 3)
    kernels = torch.cat([kx, kx.transpose(2, 3)], dim=0)
    grads = F.conv2d(luma, kernels, padding=1)
    return torch.sqrt(grads[:, 0:1] ** 2 + grads[:, 1:2] ** 2)


def normalised_gradient(luma: torch.Tensor) -> torch.Tensor:
    """The MM-LUT gradient axis: Sobel magnitude, min-max normalised per image.

    A flat image (no gradient at all) maps to 0 instead of NaN.

    Args:
        luma: ``(N, 1, H, W)`` on [0, 1].

    Returns:
        ``(N, 1, H, W)`` on [0, 1].
    """
    magnitude = sobel_magnitude(luma)
    flat = magnitude.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1)
    span = flat.max(dim=1).values.view(-1, 1, 1, 1) - low
    safe_span = torch.where(span > 0, span, torch.ones_like(span))
    return (magnitude - low) / safe_span
