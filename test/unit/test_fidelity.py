"""Imported official checkpoints reproduce the official outputs on the RoadScene test split."""

from __future__ import annotations

import cv2
import numpy as np

from lutfuse_ros.image_io import read_thermal, read_visible
from lutfuse_ros.pipeline import FusionPipeline, PipelineConfig

MIN_PSNR_DB = 45.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _test_pairs(shared_dir):
    folder = shared_dir / "data" / "roadscene" / "test"
    names = sorted(p.stem for p in (folder / "ir").glob("*.jpg"))
    assert len(names) == 50
    return [(n, read_visible(folder / "vi" / f"{n}.jpg"), read_thermal(folder / "ir" / f"{n}.jpg"))
            for n in names]


def test_official_lutfuse_matches_reference_outputs(shared_dir, official_lut_artifact):
    pipeline = FusionPipeline.from_artifact(official_lut_artifact)
    worst = []
    for name, visible, thermal in _test_pairs(shared_dir):
        reference = cv2.imread(str(shared_dir / "reference_outputs" / "lutfuse" / f"{name}.png"))
        fused = pipeline.fuse(visible, thermal)
        assert fused.shape == reference.shape, name
        worst.append((psnr(fused, reference), name))
    assert min(worst)[0] >= MIN_PSNR_DB, f"lowest PSNR {min(worst)}"


def test_official_mmdrfuse_matches_after_official_mapping(shared_dir, official_mini_artifact):
    # The official test script min-max stretches the tanh output to 0..255 and puts it back
    # as Y with OpenCV's YCrCb chroma of the visible image.
    pipeline = FusionPipeline.from_artifact(
        official_mini_artifact, config=PipelineConfig(luma_mapping="minmax", output="mono"))
    worst = []
    for name, visible, thermal in _test_pairs(shared_dir):
        reference = cv2.imread(str(shared_dir / "reference_outputs" / "mmdrfuse" / f"{name}.png"))
        ycrcb = cv2.cvtColor(visible, cv2.COLOR_BGR2YCrCb)
        ycrcb[..., 0] = pipeline.fuse(visible, thermal)
        fused = cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR)
        worst.append((psnr(fused, reference), name))
    assert min(worst)[0] >= MIN_PSNR_DB, f"lowest PSNR {min(worst)}"


def test_truncating_like_the_official_save_is_near_exact(shared_dir, official_lut_artifact):
    pipeline = FusionPipeline.from_artifact(official_lut_artifact,
                                            config=PipelineConfig(rounding="truncate"))
    name, visible, thermal = _test_pairs(shared_dir)[0]
    reference = cv2.imread(str(shared_dir / "reference_outputs" / "lutfuse" / f"{name}.png"))
    assert psnr(pipeline.fuse(visible, thermal), reference) > 80


def test_teacher_checkpoint_imports(shared_dir):
    import torch

    from lutfuse_ros.families.teacher.importer import import_mmdrfuse_teacher

    model, manifest = import_mmdrfuse_teacher(shared_dir / "reference_models" / "mmdrfuse" /
                                              "teacher.model")
    assert manifest["parameters"] == 556489
    with torch.no_grad():
        out = model(torch.rand(1, 3, 31, 45), torch.rand(1, 1, 31, 45))
    assert out.shape == (1, 1, 31, 45)
