"""MM-LUT: the learnable 4-D look-up table of LUT-Fuse (ICCV 2025).

The table is indexed per pixel by (visible luminance, visible gradient, context, infrared);
each axis value is divided by tau (the axis range over the number of bins) and the fused
luminance is interpolated from the 2^4 = 16 surrounding lattice points with quadrilinear
weights, exactly as the official code does (its flat top bin included). The lattice rule
itself is :mod:`lutfuse_ros.families.mmlut.lattice`.
"""

from __future__ import annotations

import torch
from torch import nn

from lutfuse_ros.families.features import normalised_gradient, rgb_to_luma
from lutfuse_ros.families.mmlut.context_net import ContextNet
from lutfuse_ros.families.mmlut.lattice import axis_scale, quadrilinear_lookup
from lutfuse_ros.families.mmlut.reduced_context import ReducedContextNet

#: Order of the table axes.
LUT_AXES = ("visible_luma", "visible_gradient", "context", "infrared")


class MMLUT(nn.Module):
    """Multi-modal fusion look-up table with its context encoder.

    Args:
        bins: lattice points per axis (official: 16).
        context_channels: hidden width of the context network (official: 16).
        context_blocks: middle blocks of the context network (official: 3).
        lattice: ``official`` or ``endpoint`` axis layout (see
            :data:`~lutfuse_ros.families.mmlut.lattice.LATTICES`).
        context_reduction: 1 (official) computes the context network per full-resolution
            pixel; ``r >= 2`` computes it on ``r x r`` block averages and upsamples its value
            bilinearly (:class:`~lutfuse_ros.families.mmlut.reduced_context.ReducedContextNet`).
    """

    family = "mm_lut"
    default_output_mapping = "none"

    def __init__(self, bins: int = 16, context_channels: int = 16, context_blocks: int = 3,
                 lattice: str = "official", context_reduction: int = 1) -> None:
        super().__init__()
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        self.scale = axis_scale(bins, lattice)
        self.lattice = lattice
        self.bins = bins
        self.lut = nn.Parameter(torch.zeros(bins, bins, bins, bins))
        if context_reduction < 1:
            raise ValueError(f"context_reduction must be >= 1, got {context_reduction}")
        self.context_reduction = context_reduction
        if context_reduction == 1:
            self.context = ContextNet(channels=context_channels, num_mid=context_blocks)
        else:
            self.context = ReducedContextNet(channels=context_channels, num_mid=context_blocks,
                                             reduction=context_reduction)

    def architecture(self) -> dict:
        """Constructor arguments, stored in the artifact manifest."""
        architecture = {"bins": self.bins, "context_channels": self.context.channels,
                        "context_blocks": self.context.num_mid, "lattice": self.lattice}
        if self.context_reduction != 1:  # older artifacts (and the official one) omit it
            architecture["context_reduction"] = self.context_reduction
        return architecture

    def lattice_coordinates(self, visible_rgb: torch.Tensor, infrared: torch.Tensor,
                            ) -> tuple[torch.Tensor, ...]:
        """The four per-pixel look-up coordinates in lattice units.

        Args:
            visible_rgb: ``(N, 3, H, W)`` RGB on [0, 1].
            infrared: ``(N, 1, H, W)`` on [0, 1].

        Returns:
            ``(luma, gradient, context, infrared)``, each ``(N, 1, H, W)`` in [0, B - 1 + 1).
        """
        luma = rgb_to_luma(visible_rgb)
        gradient = normalised_gradient(luma)
        context = self.context(visible_rgb * 255.0, infrared * 255.0)
        scale = self.scale
        return luma * scale, gradient * scale, context * scale, infrared * scale

    def forward(self, visible_rgb: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """Fuse a batch.

        Args:
            visible_rgb: ``(N, 3, H, W)`` RGB on [0, 1].
            infrared: ``(N, 1, H, W)`` on [0, 1].

        Returns:
            ``(N, 1, H, W)`` fused luminance, unclamped (the official table holds values
            outside [0, 1]; clamping happens after the colour conversion).
        """
        return quadrilinear_lookup(self.lut, self.lattice_coordinates(visible_rgb, infrared))

    @torch.no_grad()
    def fill_analytic(self, rule: str = "max") -> None:
        """Fill the table with a hand-made fusion rule, ignoring gradient and context.

        Used for shipped defaults before training and as the start of distillation.

        Args:
            rule: ``"max"`` (per-pixel maximum of luminance and infrared) or ``"mean"``.
        """
        levels = torch.arange(self.bins, dtype=torch.float32) / self.scale
        luma = levels.view(-1, 1, 1, 1)
        infrared = levels.view(1, 1, 1, -1)
        if rule == "max":
            values = torch.maximum(luma, infrared)
        elif rule == "mean":
            values = 0.5 * (luma + infrared)
        else:
            raise ValueError(f"unknown analytic rule {rule!r}; use 'max' or 'mean'")
        self.lut.copy_(values.expand(self.bins, self.bins, self.bins, self.bins))
