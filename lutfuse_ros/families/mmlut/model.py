"""MM-LUT: the learnable 4-D look-up table of LUT-Fuse (ICCV 2025).

The table is indexed per pixel by (visible luminance, visible gradient, context, infrared);
each axis value is divided by tau (the axis range over the number of bins) and the fused
luminance is interpolated from the 2^4 = 16 surrounding lattice points with quadrilinear
weights, exactly as the official code does (its flat top bin included).
"""

from __future__ import annotations

import torch
from torch import nn

from lutfuse_ros.families.mmlut.context_net import ContextNet
from lutfuse_ros.families.features import normalised_gradient, rgb_to_luma
from lutfuse_ros.families.mmlut.reduced_context import ReducedContextNet

#: Order of the table axes.
LUT_AXES = ("visible_luma", "visible_gradient", "context", "infrared")


#: Lattice layouts: ``official`` puts 1.0 at 255 * B / 256 (inside a flat top bin, as the
#: official checkpoint was trained); ``endpoint`` puts 1.0 exactly on the last lattice point,
#: so the whole [0, 1] range interpolates (used by the package's own models).
LATTICES = ("official", "endpoint")


def axis_scale(bins: int, lattice: str = "official") -> float:
    """Lattice units per unit of a [0, 1] feature.

    ``official``: ``255 / tau`` with ``tau = 256 / bins`` (16 bins: 255 / 16, so 1.0 maps to
    15.94, inside the flat top bin). ``endpoint``: ``bins - 1``.
    """
    if lattice == "endpoint":
        return float(bins - 1)
    if lattice != "official":
        raise ValueError(f"lattice must be one of {LATTICES}, got {lattice!r}")
    return 255.0 * bins / 256.0


def quadrilinear_lookup(table: torch.Tensor, coords: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Interpolate a 4-D lattice at fractional coordinates.

    Coordinates are clamped to ``[0, B - 1]``; values at or above ``B - 1`` therefore read the
    last lattice point, which equals the official ``hi = min(lo + 1, B - 1)`` rule. The result
    is differentiable with respect to the table and to the coordinates.

    Args:
        table: ``(B, B, B, B)`` lattice values, axes in :data:`LUT_AXES` order.
        coords: four tensors of one shape, in lattice units (0 .. B - 1).

    Returns:
        Interpolated values with the coordinates' shape.
    """
    bins = table.shape[0]
    strides = (bins ** 3, bins ** 2, bins, 1)
    flat = table.reshape(-1)
    base = None
    lower_weights, upper_weights = [], []
    for axis, coord in enumerate(coords):
        clamped = coord.clamp(0.0, bins - 1.0)
        low = clamped.floor().clamp(max=bins - 2)
        frac = clamped - low
        offset = low.long() * strides[axis]
        base = offset if base is None else base + offset
        lower_weights.append(1.0 - frac)
        upper_weights.append(frac)
    result = torch.zeros_like(coords[0])
    for corner in range(16):
        index = base
        weight = None
        for axis in range(4):
            upper = (corner >> (3 - axis)) & 1
            if upper:
                index = index + strides[axis]
            axis_weight = upper_weights[axis] if upper else lower_weights[axis]
            weight = axis_weight if weight is None else weight * axis_weight
        result = result + weight * flat[index]
    return result


class MMLUT(nn.Module):
    """Multi-modal fusion look-up table with its context encoder.

    Args:
        bins: lattice points per axis (official: 16).
        context_channels: hidden width of the context network (official: 16).
        context_blocks: middle blocks of the context network (official: 3).
        lattice: ``official`` or ``endpoint`` axis layout (see :data:`LATTICES`).
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
