"""The classic non-learnable *quantisation* LUT (LUT-Fuse Table 5 baseline).

Each lattice point holds the teacher's mean output for the training pixels whose
(visible luminance, visible gradient, infrared) fall next to it: every sampled pixel is
splatted onto its 8 surrounding points with the trilinear weights the look-up uses, and each
point's weighted mean is taken. Points no pixel reached are filled from their neighbours
(repeated averaging of filled neighbours). A quantisation LUT has no learned context, so the
table is constant along the context axis (the context network then has no effect); LUT
distillation starts from this table by default.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from lutfuse_ros.families.features import normalised_gradient, rgb_to_luma
from lutfuse_ros.families.mmlut.lattice import axis_scale
from lutfuse_ros.training.datasets import FrameStore
from lutfuse_ros.training.references import frame_tensors

#: a lattice point counts as observed when its splatted weight reaches this.
MIN_WEIGHT = 0.5


def splat_statistics(coords: torch.Tensor, values: torch.Tensor, bins: int,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Accumulate trilinear-weighted sums on a 3-D lattice.

    Args:
        coords: ``(P, 3)`` lattice coordinates in ``[0, bins - 1]``.
        values: ``(P,)`` values.
        bins: lattice points per axis.

    Returns:
        ``(weighted_sum, weight)``, each ``(bins, bins, bins)`` float64.
    """
    coords = coords.clamp(0.0, bins - 1.0)
    low = coords.floor().clamp(max=bins - 2)
    frac = coords - low
    low = low.long()
    total = torch.zeros(bins ** 3, dtype=torch.float64)
    weight = torch.zeros(bins ** 3, dtype=torch.float64)
    strides = torch.tensor([bins * bins, bins, 1])
    for corner in range(8):
        offsets = torch.tensor([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        corner_weight = torch.prod(torch.where(offsets.bool(), frac, 1.0 - frac), dim=1)
        index = ((low + offsets) * strides).sum(1)
        weight.index_add_(0, index, corner_weight.double())
        total.index_add_(0, index, (corner_weight * values).double())
    shape = (bins, bins, bins)
    return total.view(shape), weight.view(shape)


def fill_unobserved(values: torch.Tensor, observed: torch.Tensor, max_rounds: int = 1000,
                    ) -> torch.Tensor:
    """Fill unobserved lattice points with the mean of their filled axis neighbours, repeatedly.

    Args:
        values: ``(B, B, B)`` with valid entries where ``observed``.
        observed: ``(B, B, B)`` bool, at least one True.

    Returns:
        ``(B, B, B)`` fully filled.
    """
    if not observed.any():
        raise ValueError("no lattice point was observed; the training data reached no cell")
    values = torch.where(observed, values, torch.zeros_like(values))
    known = observed.clone()
    for _ in range(max_rounds):
        if known.all():
            break
        total = torch.zeros_like(values)
        count = torch.zeros_like(values)
        for axis in range(3):
            for shift in (1, -1):
                valid = _roll_valid(values.shape, axis, shift)
                total += torch.roll(values * known, shift, axis) * valid
                count += torch.roll(known.to(values.dtype), shift, axis) * valid
        new = (~known) & (count > 0)
        values = torch.where(new, total / count.clamp_min(1), values)
        known = known | new
    return values


def _roll_valid(shape, axis: int, shift: int) -> torch.Tensor:
    """Mask that removes the wrapped-around slice of ``torch.roll``."""
    mask = torch.ones(shape)
    index = [slice(None)] * 3
    index[axis] = 0 if shift > 0 else shape[axis] - 1
    mask[tuple(index)] = 0
    return mask


@torch.no_grad()
def quantisation_table(store: FrameStore, bins: int, lattice: str, pixels_per_frame: int,
                       seed: int = 0, progress: bool = True) -> torch.Tensor:
    """Build the quantisation LUT from the teacher references attached to ``store``.

    Args:
        store: frames with references attached.
        bins: lattice points per axis.
        lattice: ``official`` or ``endpoint``.
        pixels_per_frame: random pixels sampled per frame (all pixels if the frame is smaller).
        seed: pixel sampling seed.

    Returns:
        ``(B, B, B, B)`` float32 table, axes [luminance, gradient, context, infrared], constant
        along the context axis.
    """
    scale = axis_scale(bins, lattice)
    rng = np.random.default_rng(seed)
    total = torch.zeros(bins, bins, bins, dtype=torch.float64)
    weight = torch.zeros_like(total)
    for index in tqdm(range(len(store)), desc="quantisation LUT", unit="frame",
                      disable=not progress):
        frame = store.get(index)
        visible, infrared = frame_tensors(frame.visible_bgr, frame.thermal, torch.device("cpu"))
        luma = rgb_to_luma(visible)
        gradient = normalised_gradient(luma)
        axes = torch.stack([luma.flatten(), gradient.flatten(), infrared.flatten()], 1) * scale
        reference = torch.from_numpy(frame.reference).flatten()
        if axes.shape[0] > pixels_per_frame:
            chosen = torch.from_numpy(rng.choice(axes.shape[0], pixels_per_frame, replace=False))
            axes, reference = axes[chosen], reference[chosen]
        frame_total, frame_weight = splat_statistics(axes, reference, bins)
        total += frame_total
        weight += frame_weight
    observed = weight >= MIN_WEIGHT
    table3 = fill_unobserved(total / weight.clamp_min(1e-12), observed)
    # axes [luma, gradient, infrared] -> [luma, gradient, context, infrared]
    return table3.float()[:, :, None, :].expand(bins, bins, bins, bins).contiguous()
