"""Side-by-side comparison grids of several fused folders (``lutfuse eval --grid``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lutfuse_ros.image_io import write_image_atomic
from lutfuse_ros.metrics.fusion_metrics import read_gray
from lutfuse_ros.metrics.report import baseline_images, index_images, pick_image
from lutfuse_ros.visualise import side_by_side, stack_rows


class _IndexedFolder(NamedTuple):
    """A folder of images and its stem index (listed once for all scenes)."""

    role: str
    folder: Path
    index: dict[str, list[Path]]

    @classmethod
    def of(cls, role: str, folder: str | os.PathLike) -> _IndexedFolder:
        folder = Path(folder)
        return cls(role, folder, index_images(folder, role))

    def read(self, stem: str) -> np.ndarray:
        """The scene's image as protocol gray, ``(H, W)`` uint8."""
        return read_gray(pick_image(self.index, stem, self.role, self.folder)).astype(np.uint8)


def _comparison_row(stem: str, infrared: _IndexedFolder, visible: _IndexedFolder,
                    methods: list[_IndexedFolder], baselines: bool, height: int) -> np.ndarray:
    """One scene as ``infrared | visible | method... [| average | max]`` (gray, uint8 BGR)."""
    ir, vi = infrared.read(stem), visible.read(stem)
    panels = [("infrared", ir), ("visible (gray)", vi)]
    panels += [(method.role, method.read(stem)) for method in methods]
    if baselines:
        panels += [(label, np.clip(image, 0, 255).astype(np.uint8))
                   for label, image in baseline_images(ir, vi).items()]
    return side_by_side(panels, height=height)


def write_comparison_grids(out_dir: str | os.PathLike, stems: list[str],
                           methods: dict[str, Path], ir_dir: str | os.PathLike,
                           vi_dir: str | os.PathLike, *, baselines: bool = True,
                           height: int = 240, overwrite: bool = False) -> list[Path]:
    """Write ``<stem>_compare.png`` per scene and ``compare_all.png`` with all rows.

    Each row is ``infrared | visible | method... [| average | max]`` in protocol gray,
    ``(height + 24, W, 3)`` uint8 BGR.

    Args:
        out_dir: folder for the PNGs.
        stems: scene names (image names without suffix) shared by all folders.
        methods: label -> folder of fused images.
        ir_dir: infrared source folder.
        vi_dir: visible source folder.
        baselines: append the trivial average and maximum fusions.
        height: panel height in pixels.
        overwrite: replace existing PNGs.

    Raises:
        InputError: a source or fused image is missing for a stem.
        FileExistsError: a grid exists and ``overwrite`` is False.
    """
    out = Path(out_dir)
    infrared, visible = _IndexedFolder.of("infrared", ir_dir), _IndexedFolder.of("visible", vi_dir)
    fused = [_IndexedFolder.of(label, folder) for label, folder in methods.items()]
    rows, written = [], []
    for stem in stems:
        row = _comparison_row(stem, infrared, visible, fused, baselines, height)
        rows.append(row)
        written.append(write_image_atomic(out / f"{stem}_compare.png", row, overwrite))
    if rows:
        written.append(write_image_atomic(out / "compare_all.png", stack_rows(rows), overwrite))
    return written
