"""Random training crops of preprocessed frames, reproducible from a seed.

The crop plan (which frame, where, which flips) is a pure function of ``(seed, epoch)``
(``fixed`` plans ignore the epoch: the same crops every epoch, as the MMDRFuse paper's pre-cut
patches), so a resumed or multi-process run sees exactly the crops a single uninterrupted run
would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from lutfuse_ros.training.datasets.frames import FrameStore


class CropDataset(Dataset):
    """Square crops with flips, as tensors.

    Args:
        store: the frames.
        crop_size: crop side in pixels (frames are at least this large: see
            :class:`FrameStore` ``min_side``).
        crops_per_epoch: dataset length.
        fixed: the same plan every epoch.
        flips: random horizontal / vertical flips.
        seed: plan seed.
        with_reference: also return the frame's teacher reference crop.

    Items are dicts: ``index`` (int), ``visible`` ``(3, c, c)`` RGB float32 on [0, 1],
    ``infrared`` ``(1, c, c)`` float32 on [0, 1] and, with ``with_reference``, ``reference``
    ``(1, c, c)`` float32 teacher luminance.
    """

    def __init__(self, store: FrameStore, crop_size: int, crops_per_epoch: int,
                 fixed: bool = False, flips: bool = True, seed: int = 0,
                 with_reference: bool = False) -> None:
        self.store = store
        self.crop_size = crop_size
        self.length = crops_per_epoch
        self.fixed = fixed
        self.flips = flips
        self.seed = seed
        self.with_reference = with_reference
        self.plan = self._make_plan(0)

    def set_epoch(self, epoch: int) -> None:
        """Select the crop plan of ``epoch`` (no-op for fixed plans)."""
        if not self.fixed:
            self.plan = self._make_plan(epoch)

    def _make_plan(self, epoch: int) -> np.ndarray:
        """``(length, 5)`` float64 rows: frame index, y and x fractions, h-flip, v-flip."""
        rng = np.random.default_rng([self.seed, 0 if self.fixed else epoch])
        plan = np.empty((self.length, 5))
        plan[:, 0] = rng.integers(0, len(self.store), self.length)
        plan[:, 1:3] = rng.random((self.length, 2))
        plan[:, 3:5] = rng.integers(0, 2, (self.length, 2)) if self.flips else 0
        return plan

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        frame_index, fy, fx, hflip, vflip = self.plan[index]
        frame = self.store.get(int(frame_index))
        height, width = frame.thermal.shape
        size = self.crop_size
        y = min(int(fy * (height - size + 1)), height - size)
        x = min(int(fx * (width - size + 1)), width - size)
        window = (slice(y, y + size), slice(x, x + size))
        visible = frame.visible_bgr[window][..., ::-1]  # BGR -> RGB
        thermal = frame.thermal[window]
        reference = frame.reference[window] if self.with_reference else None
        if hflip:
            visible, thermal = visible[:, ::-1], thermal[:, ::-1]
            reference = reference[:, ::-1] if reference is not None else None
        if vflip:
            visible, thermal = visible[::-1], thermal[::-1]
            reference = reference[::-1] if reference is not None else None
        item = {
            "index": index,
            "visible": torch.from_numpy(np.ascontiguousarray(visible.transpose(2, 0, 1))).float()
            / 255.0,
            "infrared": torch.from_numpy(np.ascontiguousarray(thermal))[None].float() / 255.0,
        }
        if self.with_reference:
            if reference is None:
                raise RuntimeError(f"frame {frame.key} has no teacher reference attached")
            item["reference"] = torch.from_numpy(np.ascontiguousarray(reference))[None].float()
        return item
