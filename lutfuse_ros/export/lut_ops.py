"""Export-friendly formulations of the MM-LUT quadrilinear look-up (PyTorch, traced to ONNX).

The reference :func:`lutfuse_ros.models.lut.quadrilinear_lookup` gathers 16 corners from the
flattened table with int64 indices built one corner at a time. For deployment the same
arithmetic is written in two shapes that TensorRT 8.6 and 10.x import natively:

* :class:`GridSampleLookup` (default): the two outer axes (context, infrared) are folded into a
  2-D image so that one rank-4 ``GridSample`` (bilinear, ``align_corners=True``, border
  padding) interpolates luminance and gradient for the four (context, infrared) corner pairs
  at once (four output channels); two linear blends then interpolate context and infrared.
* :class:`GatherLookup`: one ``Gather`` of 16 corners per pixel on int32 flat indices, then
  four linear blends (luminance, gradient, context, infrared).

Both follow the official flat-top-bin rule: coordinates are clamped to ``[0, B - 1]`` and the
lower corner to ``B - 2``, so a coordinate at ``B - 1`` reads the last lattice point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The ``--lut-op`` choices, default first.
LUT_OPS = ("gridsample", "gather")


def _split_coordinate(coord: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clamp a lattice coordinate and split it into its lower corner and fraction.

    Args:
        coord: ``(N, 1, H, W)`` float32 in lattice units.
        bins: lattice points per axis B.

    Returns:
        ``(low, frac)``: float32 lower corner on ``[0, B - 2]`` and fraction on ``[0, 1]``.
    """
    clamped = torch.clamp(coord, 0.0, bins - 1.0)
    low = torch.clamp(torch.floor(clamped), max=bins - 2.0)
    return low, clamped - low


def _blend_halves(values: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
    """Linear blend of the first and second channel halves: ``lo * (1 - f) + hi * f``.

    Args:
        values: ``(N, 2K, H, W)``; channels ``[0, K)`` hold the lower corner of one axis.
        frac: ``(N, 1, H, W)`` fraction along that axis.

    Returns:
        ``(N, K, H, W)``.
    """
    half = values.shape[1] // 2
    low, high = values[:, :half], values[:, half:]
    return low + (high - low) * frac


class GridSampleLookup(nn.Module):
    """Quadrilinear look-up as one folded rank-4 GridSample plus two linear blends.

    The image has 4 channels, one per (context, infrared) corner offset ``(dc, dd)`` in
    ``{0, 1}^2`` (channel ``2 * dc + dd``), and ``(B - 1) * B`` rows and columns:
    ``image[2 * dc + dd, c * B + a, d * B + b] = table[a, b, c + dc, d + dd]`` for lower corners
    ``c, d`` on ``[0, B - 2]``. Sampling at row ``c_low * B + a`` and column ``d_low * B + b``
    interpolates luminance ``a`` and gradient ``b`` bilinearly inside one block.

    Args:
        table: ``(B, B, B, B)`` float32 lattice, axes (luma, gradient, context, infrared).
    """

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        bins = table.shape[0]
        self.bins = bins
        corners = []
        for dc in (0, 1):
            for dd in (0, 1):
                # (a, b, c, d) -> (c, a, d, b) -> rows c*B + a, columns d*B + b
                block = table[:, :, dc:dc + bins - 1, dd:dd + bins - 1].permute(2, 0, 3, 1)
                corners.append(block.reshape((bins - 1) * bins, (bins - 1) * bins))
        self.register_buffer("image", torch.stack(corners)[None].contiguous().float())
        self.span = float((bins - 1) * bins - 1)

    def forward(self, coords: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Interpolate.

        Args:
            coords: ``(luma, gradient, context, infrared)``, each ``(1, 1, H, W)`` float32 in
                lattice units.

        Returns:
            ``(1, 1, H, W)`` float32.
        """
        bins = self.bins
        luma, gradient, context, infrared = coords
        last = bins - 1.0
        context_low, context_frac = _split_coordinate(context, bins)
        infrared_low, infrared_frac = _split_coordinate(infrared, bins)
        rows = context_low * bins + torch.clamp(luma, 0.0, last)
        cols = infrared_low * bins + torch.clamp(gradient, 0.0, last)
        scale = 2.0 / self.span
        grid = torch.stack([cols[:, 0] * scale - 1.0, rows[:, 0] * scale - 1.0], dim=-1)
        corners = F.grid_sample(self.image, grid, mode="bilinear", padding_mode="border",
                                align_corners=True)
        return _blend_halves(_blend_halves(corners, context_frac), infrared_frac)


class GatherLookup(nn.Module):
    """Quadrilinear look-up as one Gather of 16 corners on int32 flat indices.

    Corner ``k`` (0..15) has offsets ``(k >> 3 & 1, k >> 2 & 1, k >> 1 & 1, k & 1)`` along
    (luma, gradient, context, infrared), so blending channel halves four times, luminance
    first, reduces 16 corners to one value.

    Args:
        table: ``(B, B, B, B)`` float32 lattice, axes (luma, gradient, context, infrared).
    """

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        bins = table.shape[0]
        self.bins = bins
        strides = (bins ** 3, bins ** 2, bins, 1)
        offsets = [sum(((k >> (3 - axis)) & 1) * strides[axis] for axis in range(4))
                   for k in range(16)]
        self.register_buffer("flat_table", table.reshape(-1).contiguous().float())
        self.register_buffer("corner_offsets",
                             torch.tensor(offsets, dtype=torch.int32).view(1, 16, 1, 1))
        self.strides = strides

    def forward(self, coords: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Interpolate.

        Args:
            coords: ``(luma, gradient, context, infrared)``, each ``(1, 1, H, W)`` float32 in
                lattice units.

        Returns:
            ``(1, 1, H, W)`` float32.
        """
        base = None
        fractions = []
        for stride, coord in zip(self.strides, coords):
            low, frac = _split_coordinate(coord, self.bins)
            fractions.append(frac)
            offset = low.to(torch.int32) * stride
            base = offset if base is None else base + offset
        index = base + self.corner_offsets
        values = torch.index_select(self.flat_table, 0, index.reshape(-1)).view(index.shape)
        for frac in fractions:
            values = _blend_halves(values, frac)
        return values


def make_lookup(table: torch.Tensor, lut_op: str) -> nn.Module:
    """The look-up module for a ``--lut-op`` choice.

    Raises:
        ValueError: unknown ``lut_op``.
    """
    if lut_op == "gridsample":
        return GridSampleLookup(table)
    if lut_op == "gather":
        return GatherLookup(table)
    raise ValueError(f"lut_op must be one of {LUT_OPS}, got {lut_op!r}")
