"""Teacher references per training frame.

Precomputed folders, or a live teacher run once on every full frame and cached as 16-bit PNGs
(how the official LUT-Fuse training consumes its teacher).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.training.datasets import FrameStore
from lutfuse_ros.training.distributed import DistContext
from lutfuse_ros.training.teacher import Teacher, read_reference, write_reference

LOG = logging.getLogger(__name__)


def frame_tensors(visible_bgr: np.ndarray, thermal: np.ndarray, device: torch.device,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A preprocessed frame as model inputs: ``(1, 3, H, W)`` RGB and ``(1, 1, H, W)``, [0, 1]."""
    visible = torch.from_numpy(np.ascontiguousarray(visible_bgr[..., ::-1].transpose(2, 0, 1)))
    infrared = torch.from_numpy(np.ascontiguousarray(thermal))
    return (visible[None].float().div(255.0).to(device),
            infrared[None, None].float().div(255.0).to(device))


def attach_source_references(store: FrameStore) -> None:
    """Use each source's precomputed reference folder (a ``folder`` teacher)."""
    def load(key: str, frame) -> np.ndarray:
        index = store.keys.index(key)
        path = store.source_of(index).reference_path(key)
        if path is None:
            raise ConfigError(f"frame {key} has no precomputed teacher reference")
        return read_reference(path)

    store.set_reference_loader(load)


def attach_teacher_references(store: FrameStore, teacher: Teacher, cache_root: Path,
                              dist: DistContext, device: torch.device,
                              progress: bool = True) -> Path:
    """Run the teacher once per full frame (rank 0), cache the outputs, attach them.

    The cache folder is named after the teacher's file hash, so a different teacher never
    reuses stale outputs; a re-run or resumed run reuses them.

    Returns:
        The cache folder.
    """
    from tqdm import tqdm

    fingerprint = teacher.describe().get("sha256") or "teacher"
    folder = cache_root / hashlib.sha256(fingerprint.encode()).hexdigest()[:16]

    def path_of(key: str) -> Path:
        return folder / (key.replace("/", "__") + ".png")

    if dist.is_main:
        missing = [i for i, key in enumerate(store.keys) if not path_of(key).is_file()]
        if missing:
            LOG.info("running the teacher on %d full frames -> %s", len(missing), folder)
        for index in tqdm(missing, desc="teacher outputs", unit="frame",
                          disable=not progress or not missing):
            frame = store.get(index)
            visible, infrared = frame_tensors(frame.visible_bgr, frame.thermal, device)
            luma = teacher.fuse_luma(visible, infrared)[0, 0].float().cpu().numpy()
            write_reference(path_of(frame.key), luma)
    dist.barrier()
    store.set_reference_loader(lambda key, frame: read_reference(path_of(key)))
    return folder
