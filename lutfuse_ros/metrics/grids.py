"""Side-by-side comparison grids of several fused folders (``lutfuse eval --grid``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lutfuse_ros.image_io import write_image_atomic
from lutfuse_ros.metrics.fusion_metrics import read_gray
from lutfuse_ros.metrics.report import baseline_images, index_images, pick_image
from lutfuse_ros.visualise import side_by_side, stack_rows


def comparison_rows(stem: str, methods: dict[str, Path], ir_dir: Path, vi_dir: Path,
                    baselines: bool, height: int) -> np.ndarray:
    """One scene as ``infrared | visible | method... [| average | max]`` (gray, uint8 BGR).

    Args:
        stem: the image name shared by the source and fused folders.
        methods: label -> folder of fused images.
        ir_dir: infrared source folder.
        vi_dir: visible source folder.
        baselines: append the trivial average and maximum fusions.
        height: panel height in pixels.

    Returns:
        ``(height + 24, W, 3)`` uint8 BGR.
    """
    ir = read_gray(pick_image(index_images(ir_dir, "infrared"), stem, "infrared", ir_dir))
    vi = read_gray(pick_image(index_images(vi_dir, "visible"), stem, "visible", vi_dir))
    panels = [("infrared", ir.astype(np.uint8)), ("visible (gray)", vi.astype(np.uint8))]
    for label, folder in methods.items():
        fused = read_gray(pick_image(index_images(folder, label), stem, label, folder))
        panels.append((label, fused.astype(np.uint8)))
    if baselines:
        panels += [(label, np.clip(image, 0, 255).astype(np.uint8))
                   for label, image in baseline_images(ir, vi).items()]
    return side_by_side(panels, height=height)


def write_comparison_grids(out_dir: str | os.PathLike, stems: list[str],
                           methods: dict[str, Path], ir_dir: str | os.PathLike,
                           vi_dir: str | os.PathLike, *, baselines: bool = True,
                           height: int = 240, overwrite: bool = False) -> list[Path]:
    """Write ``<stem>_compare.png`` per scene and ``compare_all.png`` with all rows.

    Raises:
        InputError: a source or fused image is missing for a stem.
        FileExistsError: a grid exists and ``overwrite`` is False.
    """
    out = Path(out_dir)
    rows, written = [], []
    for stem in stems:
        row = comparison_rows(stem, methods, Path(ir_dir), Path(vi_dir), baselines, height)
        rows.append(row)
        written.append(write_image_atomic(out / f"{stem}_compare.png", row, overwrite))
    if rows:
        written.append(write_image_atomic(out / "compare_all.png", stack_rows(rows), overwrite))
    return written
