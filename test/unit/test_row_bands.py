"""Row bands: a row-local function computed band by band equals one whole-image call."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lutfuse_ros.backends.cpu_kernels.row_bands import RowBands


def blur5(image: np.ndarray) -> np.ndarray:
    """A row-local function with halo 2 (5x5 kernel, the block's edges as the border)."""
    return cv2.GaussianBlur(image, (5, 5), 1.2, borderType=cv2.BORDER_REFLECT_101)


@pytest.mark.parametrize("height, width, workers, band_pixels",
                         [(300, 200, 2, 10_000), (301, 199, 1, 7_000), (480, 640, 2, 240_000),
                          (7, 5, 2, 1)])
def test_bands_tile_the_frame(height, width, workers, band_pixels):
    bands = RowBands(halo=2, workers=workers, band_pixels=band_pixels).bands(height, width)
    assert bands[0][0] == 0 and bands[-1][1] == height
    assert all(a[1] == b[0] for a, b in zip(bands, bands[1:]))
    assert all(bottom - top >= min(5, height) for top, bottom in bands)
    if workers > 1 and height * width >= 40_000:
        assert len(bands) % workers == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_banded_result_equals_the_whole_image_call(workers):
    rng = np.random.default_rng(0)
    image = rng.random((300, 200), dtype=np.float32)
    runner = RowBands(halo=2, workers=workers, band_pixels=6_000)
    assert len(runner.bands(300, 200)) >= 8
    np.testing.assert_array_equal(runner.run(blur5, (image,)), blur5(image))
    runner.close()


def test_colour_planes_and_several_inputs():
    rng = np.random.default_rng(1)
    colour = rng.integers(0, 256, (250, 180, 3), dtype=np.uint8)
    gain = rng.random((250, 180), dtype=np.float32)
    runner = RowBands(halo=0, workers=2, band_pixels=5_000)

    def scale(rows, weights):
        return (rows * weights[..., None]).astype(np.uint8)

    np.testing.assert_array_equal(runner.run(scale, (colour, gain)), scale(colour, gain))
    runner.close()


def test_an_error_in_a_band_reaches_the_caller():
    runner = RowBands(halo=1, workers=2, band_pixels=1_000)

    def fails(rows):
        raise ValueError("bad band")

    with pytest.raises(ValueError, match="bad band"):
        runner.run(fails, (np.zeros((400, 200), np.float32),))
    runner.close()


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="workers"):
        RowBands(halo=1, workers=0)
