"""Intrinsics of the fused image.

A point projected with the fused camera model lands where the alignment really moved the
visible pixels (measured on rendered images, not formulas).
"""

from __future__ import annotations

import numpy as np
import pytest

from lutfuse_ros.camera_geometry import (CameraModel, alignment_transform, fused_camera_model,
                                         project)
from lutfuse_ros.preprocessing import AlignmentConfig, Aligner

VISIBLE_SIZE = (160, 120)
POINTS = np.array([[0.0, 0.0, 2.0], [0.31, -0.2, 1.5], [-0.4, 0.25, 2.5], [0.12, 0.18, 1.0]])


def camera(width: int = 160, height: int = 120, **options) -> CameraModel:
    fx, fy, cx, cy = 150.0, 140.0, width / 2 + 4.3, height / 2 - 2.7
    return CameraModel(width, height, (fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0),
                       (fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0), **options)


def render_blobs(size: tuple[int, int], centres: np.ndarray, sigma: float = 2.5) -> np.ndarray:
    """A gray ``(H, W)`` uint8 image with one Gaussian blob per sub-pixel centre."""
    ys, xs = np.mgrid[0:size[1], 0:size[0]].astype(np.float64)
    image = np.zeros((size[1], size[0]))
    for u, v in centres:
        image += 230 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma ** 2))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def blob_centre(image: np.ndarray, near: np.ndarray, radius: int = 7) -> np.ndarray:
    """Intensity-weighted centroid of the blob around ``near`` (pixel-centre coordinates)."""
    u0, v0 = int(round(near[0])), int(round(near[1]))
    patch = image[v0 - radius:v0 + radius + 1, u0 - radius:u0 + radius + 1].astype(np.float64)
    ys, xs = np.mgrid[v0 - radius:v0 + radius + 1, u0 - radius:u0 + radius + 1]
    weights = np.clip(patch - 5, 0, None)
    return np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()


@pytest.mark.parametrize("alignment, thermal_size", [
    (AlignmentConfig(mode="resize_visible"), (80, 60)),
    (AlignmentConfig(mode="resize_visible"), (96, 72)),
    (AlignmentConfig(mode="none", crop=(17, 9, 120, 96)), VISIBLE_SIZE),
    (AlignmentConfig(mode="resize_visible", crop=(6, 4, 64, 48)), (80, 60)),
    (AlignmentConfig(mode="resize_thermal", crop=(10, 12, 130, 100)), (40, 30)),
    (AlignmentConfig(mode="homography", homography=[2.0, 0, 3, 0, 2.0, 1, 0, 0, 1]), (80, 60)),
])
def test_points_project_where_the_alignment_moved_the_visible_pixels(alignment, thermal_size):
    visible_model = camera()
    visible_pixels = project(visible_model, POINTS)
    visible = render_blobs(VISIBLE_SIZE, visible_pixels)
    thermal = np.zeros(thermal_size[::-1], np.uint8)
    aligned, _ = Aligner(alignment)(visible, thermal)

    transform, size = alignment_transform(alignment, VISIBLE_SIZE, thermal_size)
    fused_model = fused_camera_model(visible_model, transform, size)
    assert (fused_model.width, fused_model.height) == (aligned.shape[1], aligned.shape[0])
    assert fused_model.image_size == size
    for point in POINTS:
        expected = project(fused_model, point)
        measured = blob_centre(aligned, expected)
        assert np.abs(measured - expected).max() < 0.12, (point, measured, expected)


def test_input_roi_and_binning_are_folded_into_the_fused_intrinsics():
    # A 2x-binned ROI of a 320x240 sensor: the images are 160x120, and image_geometry would
    # read this model as K shifted by the ROI offset and halved.
    sensor = camera(320, 240, binning_x=2, binning_y=2, roi=(20, 16, 320 - 20, 240 - 16))
    binned = CameraModel(320, 240, sensor.k, sensor.p, 2, 2, (0, 0, 0, 0))
    assert sensor.image_size == (150, 112) and binned.image_size == (160, 120)
    for model in (sensor, binned):
        alignment = AlignmentConfig(mode="none", crop=(5, 3, 100, 80))
        transform, size = alignment_transform(alignment, model.image_size, model.image_size)
        fused = fused_camera_model(model, transform, size)
        assert (fused.binning_x, fused.binning_y, fused.roi) == (0, 0, (0, 0, 0, 0))
        for point in POINTS:
            in_visible = project(model, point)
            assert np.allclose(project(fused, point), in_visible - [5, 3])


def test_identity_alignments_keep_the_visible_intrinsics():
    model = camera()
    for alignment in (AlignmentConfig(), AlignmentConfig(mode="resize_thermal"),
                      AlignmentConfig(mode="resize_visible")):  # same sizes: nothing resized
        transform, size = alignment_transform(alignment, VISIBLE_SIZE, VISIBLE_SIZE)
        fused = fused_camera_model(model, transform, size)
        assert fused.k == model.k and fused.p == model.p and size == VISIBLE_SIZE
