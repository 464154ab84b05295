"""Colour conversion: round trips, known values, gray handling."""

import numpy as np
import pytest
import torch

from lutfuse_ros.colour import merge_luma_chroma, split_luma_chroma, to_uint8
from lutfuse_ros.families.features import rgb_to_luma


def test_round_trip_is_within_one_level():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for order in ("bgr", "rgb"):
        y, cb, cr = split_luma_chroma(image, order)
        back = merge_luma_chroma(y, cb, cr, order)
        assert back.dtype == np.uint8 and back.shape == image.shape
        assert np.abs(back.astype(int) - image).max() <= 1


def test_known_values_match_bt601():
    red = np.array([[[0, 0, 255]]], np.uint8)  # BGR
    y, cb, cr = split_luma_chroma(red, "bgr")
    assert y[0, 0] == pytest.approx(0.299, abs=1e-6)
    assert cb[0, 0] == pytest.approx(0.5 - 0.168736, abs=1e-6)
    assert cr[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_gray_input_has_neutral_chroma():
    gray = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    y, cb, cr = split_luma_chroma(gray)
    assert np.allclose(y * 255, gray)
    assert np.all(cb == 0.5) and np.all(cr == 0.5)


def test_luma_above_one_saturates_after_conversion_not_before():
    # Official LUT-Fuse clamps RGB, not Y: a bright luma keeps the chroma's channel ordering.
    y = np.full((1, 1), 1.09, np.float32)
    cb = np.full((1, 1), 0.4445, np.float32)
    cr = np.full((1, 1), 0.5, np.float32)
    rgb = merge_luma_chroma(y, cb, cr, "rgb")
    assert rgb[0, 0, 0] == 255 and rgb[0, 0, 2] < 255


def test_truncate_and_round_differ_by_at_most_one():
    values = np.linspace(0, 1, 1001, dtype=np.float32)
    diff = to_uint8(values, "round").astype(int) - to_uint8(values, "truncate")
    assert set(np.unique(diff)) <= {0, 1}
    with pytest.raises(ValueError, match="rounding"):
        to_uint8(values, "floor")


def test_torch_luma_matches_numpy():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    y, _, _ = split_luma_chroma(image, "rgb")
    tensor = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    assert np.allclose(rgb_to_luma(tensor)[0, 0].numpy(), y, atol=1e-6)
