"""Export-friendly formulations of the MM-LUT quadrilinear look-up (PyTorch, traced to ONNX).

The reference :func:`lutfuse_ros.families.mmlut.lattice.quadrilinear_lookup` gathers 16
corners from the flattened table with int64 indices built one corner at a time. For
deployment the same arithmetic is written in two shapes that TensorRT 8.6 and 10.x import natively:

* :class:`GatherLookup` (default, ``gather``): the table is re-laid out as one row of its 16
  corner values per lower corner, so one ``Gather`` on int32 flat indices fetches all 16
  corners of a pixel in a single 64-byte read; four linear blends (luminance, gradient,
  context, infrared) finish. Exact up to float32 summation order (~2e-7 relative).
* :class:`GridSampleLookup` (``gridsample``): the context and infrared axes are folded into
  a 2-D image so that one rank-4 ``GridSample`` (bilinear, ``align_corners=True``, border
  padding) interpolates luminance and gradient for the four (context, infrared) corner pairs
  at once; two linear blends finish. A float32 grid on [-1, 1] addresses the folded
  ``(B-1)*B``-pixel image to about 1e-5 of a lattice cell, so on steep tables (the official
  LUT-Fuse table changes by up to 7.7 per cell) it deviates by up to ~4e-5 (measured:
  1.9e-5 on the RoadScene test images), which is why it is not the default.

Both split coordinates with :func:`~lutfuse_ros.families.mmlut.lattice.split_coordinate`
(the official flat-top-bin rule: a coordinate at ``B - 1`` reads the last lattice point).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lutfuse_ros.families.mmlut.lattice import split_coordinate

#: The ``--lut-op`` choices, default first.
LUT_OPS = ("gather", "gridsample")
DEFAULT_LUT_OP = LUT_OPS[0]


def _blend_halves(values: torch.Tensor, frac: torch.Tensor, half: int) -> torch.Tensor:
    """Linear blend of the first and second channel halves: ``lo * (1 - f) + hi * f``.

    Args:
        values: ``(N, 2K, H, W)``; channels ``[0, K)`` hold the lower corner of one axis.
        frac: ``(N, 1, H, W)`` fraction along that axis.
        half: K, a Python constant (so the traced graph has no shape arithmetic).

    Returns:
        ``(N, K, H, W)``.
    """
    low, high = values[:, :half], values[:, half:2 * half]
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
        folded = (bins - 1) * bins
        # Side 2^k + 1: the sampler's unnormalisation ((g + 1) / 2) * (side - 1) is then a
        # power-of-two scaling, exact in float32, and the grid keeps the full precision of a
        # float on [-1, 1]. The padding beyond the folded blocks is never addressed.
        side = 2 ** max(1, math.ceil(math.log2(folded - 1))) + 1
        image = torch.zeros(1, 4, side, side)
        image[0, :, :folded, :folded] = torch.stack(corners)
        self.register_buffer("image", image.contiguous())
        self.scale = 2.0 / (side - 1)

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
        context_low, context_frac = split_coordinate(context, bins)
        infrared_low, infrared_frac = split_coordinate(infrared, bins)
        scale, block = self.scale, self.scale * bins
        # Normalised in two exact steps: (block origin - 1) + position inside the block.
        rows = (context_low * block - 1.0) + torch.clamp(luma, 0.0, last) * scale
        cols = (infrared_low * block - 1.0) + torch.clamp(gradient, 0.0, last) * scale
        grid = torch.cat([cols, rows], dim=1).permute(0, 2, 3, 1)  # (N, H, W, 2): x, y
        corners = F.grid_sample(self.image, grid, mode="bilinear", padding_mode="border",
                                align_corners=True)
        return _blend_halves(_blend_halves(corners, context_frac, 2), infrared_frac, 1)


class GatherLookup(nn.Module):
    """Quadrilinear look-up as one Gather of 16-value corner rows on int32 flat indices.

    Row ``((a * n + b) * n + c) * n + d`` (``n = B - 1``, lower corners on ``[0, B - 2]``)
    holds the 16 corners ``table[a + da, b + db, c + dc, d + dd]`` at position
    ``8 * da + 4 * db + 2 * dc + dd``, so blending channel halves four times, luminance
    first, reduces them to one value.

    Args:
        table: ``(B, B, B, B)`` float32 lattice, axes (luma, gradient, context, infrared).
    """

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        bins = table.shape[0]
        n = bins - 1
        self.bins = bins
        corners = [table[da:da + n, db:db + n, dc:dc + n, dd:dd + n].reshape(-1)
                   for da in (0, 1) for db in (0, 1) for dc in (0, 1) for dd in (0, 1)]
        self.register_buffer("corner_rows", torch.stack(corners, dim=1).contiguous().float())
        self.strides = (n ** 3, n ** 2, n, 1)

    def forward(self, coords: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Interpolate.

        Args:
            coords: ``(luma, gradient, context, infrared)``, each ``(1, 1, H, W)`` float32 in
                lattice units.

        Returns:
            ``(1, 1, H, W)`` float32.
        """
        row = None
        fractions = []
        for stride, coord in zip(self.strides, coords):
            low, frac = split_coordinate(coord, self.bins)
            fractions.append(frac)
            offset = low.to(torch.int32) * stride
            row = offset if row is None else row + offset
        corners = self.corner_rows[row[:, 0]].permute(0, 3, 1, 2)  # (N, 16, H, W)
        for half, frac in zip((8, 4, 2, 1), fractions):
            corners = _blend_halves(corners, frac, half)
        return corners


def make_lookup(table: torch.Tensor, lut_op: str) -> nn.Module:
    """The look-up module for a ``--lut-op`` choice.

    Raises:
        ValueError: unknown ``lut_op``.
    """
    lookups = {"gather": GatherLookup, "gridsample": GridSampleLookup}
    if lut_op in lookups:
        return lookups[lut_op](table)
    raise ValueError(f"lut_op must be one of {LUT_OPS}, got {lut_op!r}")
