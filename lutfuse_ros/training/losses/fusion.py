"""MMDRFuse comprehensive loss terms (Sec. 3.2): intensity (max) and gradient (max).

All images are ``(N, 1, H, W)`` float tensors; sources on [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def sobel_gradient_magnitude(image: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Sobel gradient magnitude with replicate padding (no artificial border edges).

    Args:
        image: ``(N, 1, H, W)``.
        eps: keeps the square root differentiable on flat regions.

    Returns:
        ``(N, 1, H, W)`` ``sqrt(gx^2 + gy^2 + eps) - sqrt(eps)`` (0 on flat regions).
    """
    kx = torch.tensor(_SOBEL_X, dtype=image.dtype, device=image.device)
    kernels = torch.stack([kx, kx.T])[:, None]
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    grads = F.conv2d(padded, kernels)
    return torch.sqrt(grads[:, :1] ** 2 + grads[:, 1:] ** 2 + eps) - eps ** 0.5


def intensity_max_loss(output: torch.Tensor, infrared: torch.Tensor, visible: torch.Tensor,
                       ) -> torch.Tensor:
    """Eq. 2 of MMDRFuse: ``mean |O - max(IR, VIS)|``; 0 when the output is the maximum."""
    return (output - torch.maximum(infrared, visible)).abs().mean()


def gradient_max_target(infrared: torch.Tensor, visible: torch.Tensor,
                        target: str = "max_of_gradients") -> torch.Tensor:
    """The gradient the fused image should have.

    Args:
        infrared: ``(N, 1, H, W)``.
        visible: ``(N, 1, H, W)`` luminance.
        target: ``max_of_gradients`` (element-wise max of the Sobel magnitudes, the form of
            ALGORITHMS.md / SeAFusion) or ``gradient_of_max`` (Sobel magnitude of
            ``max(IR, VIS)``, the MMDRFuse paper's Eq. 3 and official code).
    """
    if target == "max_of_gradients":
        return torch.maximum(sobel_gradient_magnitude(infrared), sobel_gradient_magnitude(visible))
    if target == "gradient_of_max":
        return sobel_gradient_magnitude(torch.maximum(infrared, visible))
    raise ValueError(f"unknown gradient target {target!r}")


def gradient_max_loss(output: torch.Tensor, infrared: torch.Tensor, visible: torch.Tensor,
                      target: str = "max_of_gradients") -> torch.Tensor:
    """Eq. 3 of MMDRFuse: mean squared difference of the output's gradient and the target's.

    Returns:
        Scalar >= 0; 0 when the output's Sobel magnitude equals :func:`gradient_max_target`.
    """
    return F.mse_loss(sobel_gradient_magnitude(output),
                      gradient_max_target(infrared, visible, target).detach())


def gradient_difference(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference of Sobel magnitudes, ``(N,)`` (refresh L_g)."""
    diff = sobel_gradient_magnitude(first) - sobel_gradient_magnitude(second)
    return (diff ** 2).flatten(1).mean(1)


def l1_distance(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean |O - T|`` (the LUT distillation's intensity term against the teacher)."""
    return (output - target.detach()).abs().mean()
