"""Fast quadrilinear look-up in the MM-LUT table (same result as ``quadrilinear_lookup``).

Two ideas cut the work of the 16-corner gather:

* **Paired corners.** A table whose entry ``k`` holds the two neighbours ``(T[.., c], T[.., c+1])``
  along the context axis, viewed as one float64 per entry, is gathered at the cost of a
  single float: 8 gathers instead of 16, and the context-axis blend works on both halves of the
  gathered pairs at once.
* **8-bit infrared.** When the infrared input is a uint8 image, its axis has only 256 possible
  coordinates: :class:`LatticeLookup` pre-interpolates the table at all 256 levels once, so
  the infrared axis costs one integer index instead of a gather pair and a blend (4 gathers).

Coordinates are split by :func:`~lutfuse_ros.families.mmlut.lattice.split_coordinate`, as
``quadrilinear_lookup`` splits them. Blends use ``torch.lerp``; results agree with the
reference to float32 rounding.
"""

from __future__ import annotations

import torch

from lutfuse_ros.families.mmlut.lattice import split_coordinate

#: Largest pre-interpolated 8-bit-infrared pair table (bytes) built; bigger lattices use the
#: float path only.
MAX_LEVEL_TABLE_BYTES = 64 * 2 ** 20
_LEVELS = 256


def _context_pairs(table: torch.Tensor) -> torch.Tensor:
    """``(..., B - 1, L, 2)`` float32 pairs along axis 2 of a ``(B, B, B, L)`` table."""
    return torch.stack([table[:, :, :-1], table[:, :, 1:]], dim=-1).contiguous()


def _as_pair_words(pairs: torch.Tensor) -> torch.Tensor:
    """View float32 pairs (last axis 2) as one flat float64 word per pair."""
    return pairs.view(torch.float64).reshape(-1)


class LatticeLookup:
    """Quadrilinear interpolation of one ``(B, B, B, B)`` table at per-pixel coordinates.

    Args:
        table: ``(B, B, B, B)`` float32, axes (luma, gradient, context, infrared).
        infrared_levels: ``(256,)`` float32 infrared coordinates (lattice units) of the uint8
            levels, for :meth:`lookup_uint8_infrared`; None disables that path.
    """

    def __init__(self, table: torch.Tensor, infrared_levels: torch.Tensor | None = None,
                 ) -> None:
        table = table.detach().float().contiguous()
        self.bins = bins = table.shape[0]
        self._float_words = _as_pair_words(_context_pairs(table))
        self._level_words = None
        level_bytes = bins * bins * (bins - 1) * _LEVELS * 8
        if infrared_levels is not None and level_bytes <= MAX_LEVEL_TABLE_BYTES:
            lower, fraction = split_coordinate(infrared_levels.float(), bins)
            low, high = table[..., lower.long()], table[..., lower.long() + 1]
            per_level = torch.lerp(low, high, fraction)
            self._level_words = _as_pair_words(_context_pairs(per_level))

    @property
    def has_uint8_infrared(self) -> bool:
        """Whether :meth:`lookup_uint8_infrared` is available."""
        return self._level_words is not None

    def lookup(self, luma: torch.Tensor, gradient: torch.Tensor, context: torch.Tensor,
               infrared: torch.Tensor) -> torch.Tensor:
        """Interpolate at four float coordinate planes.

        Args:
            luma, gradient, context, infrared: float32 ``(H, W)`` coordinates in lattice units.

        Returns:
            ``(H, W)`` float32.
        """
        bins = self.bins
        parts = [split_coordinate(c.reshape(-1), bins) for c in (luma, gradient, context,
                                                                 infrared)]
        (l_lo, l_fr), (g_lo, g_fr), (c_lo, c_fr), (i_lo, i_fr) = parts
        # pair-table layout (l, g, c < B-1, i, 2): strides in pairs
        s_i, s_c = 1, bins
        s_g = (bins - 1) * bins
        s_l = bins * s_g
        base = _flat_index([(l_lo, s_l), (g_lo, s_g), (c_lo, s_c), (i_lo, s_i)])
        corners = self._gather(self._float_words, base,
                               [0, s_i, s_g, s_g + s_i, s_l, s_l + s_i, s_l + s_g,
                                s_l + s_g + s_i])
        blended = torch.lerp(corners[..., 0], corners[..., 1], c_fr)   # (8, N) context
        blended = torch.lerp(blended[0::2], blended[1::2], i_fr)       # (4, N) infrared
        blended = torch.lerp(blended[0::2], blended[1::2], g_fr)       # (2, N) gradient
        return torch.lerp(blended[0], blended[1], l_fr).view(luma.shape)

    def lookup_uint8_infrared(self, luma: torch.Tensor, gradient: torch.Tensor,
                              context: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """Interpolate with the infrared axis given as uint8 levels.

        Args:
            luma, gradient, context: float32 ``(H, W)`` coordinates in lattice units.
            infrared: ``(H, W)`` uint8 levels (mapped through ``infrared_levels``).

        Returns:
            ``(H, W)`` float32.
        """
        if self._level_words is None:
            raise RuntimeError("this lattice has no pre-interpolated 8-bit infrared table")
        bins = self.bins
        parts = [split_coordinate(c.reshape(-1), bins) for c in (luma, gradient, context)]
        (l_lo, l_fr), (g_lo, g_fr), (c_lo, c_fr) = parts
        # pair-table layout (l, g, c < B-1, level, 2)
        s_c = _LEVELS
        s_g = (bins - 1) * _LEVELS
        s_l = bins * s_g
        base = _flat_index([(l_lo, s_l), (g_lo, s_g), (c_lo, s_c),
                            (infrared.reshape(-1), 1)])
        corners = self._gather(self._level_words, base, [0, s_g, s_l, s_l + s_g])
        blended = torch.lerp(corners[..., 0], corners[..., 1], c_fr)   # (4, N) context
        blended = torch.lerp(blended[0::2], blended[1::2], g_fr)       # (2, N) gradient
        return torch.lerp(blended[0], blended[1], l_fr).view(luma.shape)

    @staticmethod
    def _gather(words: torch.Tensor, base: torch.Tensor, offsets: list[int]) -> torch.Tensor:
        """``(len(offsets), N, 2)`` float32 pairs at ``base + offset``."""
        out = torch.empty(len(offsets), base.numel(), dtype=torch.float64)
        for row, offset in enumerate(offsets):
            index = base if offset == 0 else base + offset
            torch.index_select(words, 0, index, out=out[row])
        return out.view(torch.float32).view(len(offsets), base.numel(), 2)


def _flat_index(terms: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    """``sum(index * stride)`` as int32 (exact: int32 arithmetic on integer-valued planes)."""
    total = None
    for plane, stride in terms:
        part = plane.to(torch.int32, copy=True)
        if stride != 1:
            part.mul_(stride)
        total = part if total is None else total.add_(part)
    return total
