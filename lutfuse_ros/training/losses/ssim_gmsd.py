"""Differentiable SSIM and GMSD on ``(N, 1, H, W)`` images (PyTorch).

Both are used by the dynamic refresh strategy of MMDRFuse (to score outputs) and as losses.
Images are float tensors on a known range (``data_range``, 1.0 for [0, 1] images).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: GMSD stability constant on a 0..255 scale (Xue et al. 2014).
GMSD_C = 170.0
_EPS = 1e-12


def gaussian_window(size: int, sigma: float = 1.5, device=None, dtype=torch.float32,
                    ) -> torch.Tensor:
    """A normalised 2-D Gaussian window, shape ``(1, 1, size, size)``."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    taps = torch.exp(-coords ** 2 / (2.0 * sigma ** 2))
    taps = taps / taps.sum()
    return torch.outer(taps, taps).to(device=device, dtype=dtype)[None, None]


def ssim_map(first: torch.Tensor, second: torch.Tensor, window_size: int = 11,
             sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Local SSIM map with a Gaussian window (valid positions only, no padding).

    Args:
        first: ``(N, C, H, W)``.
        second: same shape.
        window_size: window side (clipped to the image size).
        sigma: Gaussian standard deviation in pixels.
        data_range: dynamic range of the images (stabilising constants).

    Returns:
        ``(N, C, H - k + 1, W - k + 1)`` SSIM values, at most 1.
    """
    if first.shape != second.shape:
        raise ValueError(f"SSIM needs equal shapes, got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}")
    channels = first.shape[1]
    size = min(window_size, first.shape[-2], first.shape[-1])
    window = gaussian_window(size, sigma, first.device, first.dtype).expand(channels, 1, size, size)
    mu1 = F.conv2d(first, window, groups=channels)
    mu2 = F.conv2d(second, window, groups=channels)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = F.conv2d(first * first, window, groups=channels) - mu1_sq
    sigma2_sq = F.conv2d(second * second, window, groups=channels) - mu2_sq
    sigma12 = F.conv2d(first * second, window, groups=channels) - mu12
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    numerator = (2 * mu12 + c1) * (2 * sigma12 + c2)
    return numerator / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))


def ssim(first: torch.Tensor, second: torch.Tensor, window_size: int = 11, sigma: float = 1.5,
         data_range: float = 1.0, per_sample: bool = False) -> torch.Tensor:
    """Mean SSIM (a scalar, or ``(N,)`` with ``per_sample``); 1 for identical images."""
    values = ssim_map(first, second, window_size, sigma, data_range)
    return values.flatten(1).mean(1) if per_sample else values.mean()


def ssim_loss(first: torch.Tensor, second: torch.Tensor, window_size: int = 11,
              sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """``1 - SSIM``: 0 for identical images, differentiable."""
    return 1.0 - ssim(first, second, window_size, sigma, data_range)


def gmsd(distorted: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0,
         per_sample: bool = True) -> torch.Tensor:
    """Gradient Magnitude Similarity Deviation (Xue et al., 2014); lower is better.

    Both images are rescaled to 0..255, averaged over 2x2 blocks and decimated by 2, then
    compared through Prewitt gradient magnitudes; GMSD is the standard deviation of the
    gradient magnitude similarity map. 0 for identical images.

    Args:
        distorted: ``(N, 1, H, W)``.
        reference: ``(N, 1, H, W)``.
        data_range: range of the inputs (1.0 for [0, 1]).
        per_sample: return ``(N,)`` instead of the batch mean.

    Returns:
        GMSD, ``(N,)`` or a scalar, >= 0.
    """
    if distorted.shape != reference.shape or distorted.shape[1] != 1:
        raise ValueError(f"GMSD needs two (N, 1, H, W) images of one shape, got "
                         f"{tuple(distorted.shape)} and {tuple(reference.shape)}")
    scale = 255.0 / data_range
    average = torch.full((1, 1, 2, 2), 0.25, dtype=distorted.dtype, device=distorted.device)
    prewitt = torch.tensor([[1 / 3, 0, -1 / 3]] * 3, dtype=distorted.dtype,
                           device=distorted.device)
    kernels = torch.stack([prewitt, prewitt.T])[:, None]

    def magnitude(image: torch.Tensor) -> torch.Tensor:
        pooled = F.conv2d(image * scale, average)[:, :, ::2, ::2]
        grads = F.conv2d(pooled, kernels)
        return torch.sqrt(grads[:, :1] ** 2 + grads[:, 1:] ** 2 + 1e-12)

    m_dist, m_ref = magnitude(distorted), magnitude(reference)
    similarity = (2 * m_dist * m_ref + GMSD_C) / (m_dist ** 2 + m_ref ** 2 + GMSD_C)
    flat = similarity.flatten(1)
    variance = ((flat - flat.mean(1, keepdim=True)) ** 2).mean(1)
    # sqrt(v + eps) - sqrt(eps): exactly 0 for identical images, finite gradient at 0.
    deviation = torch.sqrt(variance + _EPS) - math.sqrt(_EPS)
    return deviation if per_sample else deviation.mean()
