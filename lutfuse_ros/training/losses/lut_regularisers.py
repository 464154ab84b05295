"""LUT regularisers of LUT-Fuse: smoothness and monotonicity of the 4-D lattice."""

from __future__ import annotations

import torch


def _axis_differences(table: torch.Tensor) -> list[torch.Tensor]:
    """``table[k] - table[k + 1]`` along each of the four axes (positive = decrease)."""
    return [table.narrow(axis, 0, table.shape[axis] - 1)
            - table.narrow(axis, 1, table.shape[axis] - 1) for axis in range(4)]


def lut_smoothness(table: torch.Tensor, end_weight: float = 2.0) -> torch.Tensor:
    """Mean squared difference of lattice neighbours, summed over the four axes.

    The first and last differences along each axis are weighted by ``end_weight`` (the
    official recipe uses 2).

    Args:
        table: ``(B, B, B, B)`` lattice values.

    Returns:
        Scalar >= 0; 0 for a constant table.
    """
    total = table.new_zeros(())
    for axis, difference in enumerate(_axis_differences(table)):
        weight = torch.ones(difference.shape[axis], dtype=table.dtype, device=table.device)
        weight[0] = end_weight
        weight[-1] = end_weight
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        total = total + (difference ** 2 * weight.view(shape)).mean()
    return total


def lut_monotonicity(table: torch.Tensor, axes: tuple[int, ...] = (0, 1, 2, 3)) -> torch.Tensor:
    """Mean ReLU of each lattice value minus its successor, summed over ``axes``.

    Penalises any decrease along an axis (the official recipe constrains all four).

    Args:
        table: ``(B, B, B, B)``.
        axes: which axes must be non-decreasing.

    Returns:
        Scalar >= 0; 0 for a table non-decreasing along every axis in ``axes``.
    """
    differences = _axis_differences(table)
    total = table.new_zeros(())
    for axis in axes:
        total = total + torch.relu(differences[axis]).mean()
    return total
