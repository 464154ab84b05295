"""The MM-LUT's lattice rule, written once: axis scale, coordinate split, interpolation.

A [0, 1] feature becomes a lattice coordinate by :func:`axis_scale`; :func:`split_coordinate`
clamps it to ``[0, B - 1]`` and splits it into a lower corner on ``[0, B - 2]`` and a
fraction (so a coordinate at ``B - 1`` reads the last lattice point: the official flat-top-bin
rule); the value is the quadrilinear blend of the 16 surrounding lattice points
(:func:`quadrilinear_lookup`, the reference). The fast CPU look-ups
(:mod:`~lutfuse_ros.families.mmlut.fast_lattice`,
:mod:`~lutfuse_ros.families.mmlut.fast_grid_lattice`) and the export graphs
(:mod:`~lutfuse_ros.families.mmlut.export_ops`) split coordinates with the same function and
gather the corners in their own layouts; tests hold each of them to the reference.
"""

from __future__ import annotations

import torch


def split_coordinate(coord: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clamp a lattice coordinate and split it into its lower corner and fraction.

    Differentiable with respect to ``coord`` (through the fraction) and traceable to ONNX.

    Args:
        coord: float32 coordinates in lattice units (any shape).
        bins: lattice points on the axis, B.

    Returns:
        ``(lower, fraction)``, float32 of ``coord``'s shape: ``lower`` holds integers on
        ``[0, B - 2]``, ``fraction`` lies on ``[0, 1]``.
    """
    clamped = torch.clamp(coord, 0.0, bins - 1.0)
    lower = torch.clamp(torch.floor(clamped), max=bins - 2.0)
    return lower, clamped - lower


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
        table: ``(B, B, B, B)`` lattice values, axes in the model's ``LUT_AXES`` order.
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
        low, frac = split_coordinate(coord, bins)
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
