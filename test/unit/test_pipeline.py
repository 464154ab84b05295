"""Pipeline: shapes, odd sizes, colour orders, thermal/alignment stages, bad input."""

import numpy as np
import pytest

from lutfuse_ros.errors import ConfigError, InputError
from lutfuse_ros.pipeline import FusionPipeline, PipelineConfig, map_luma
from lutfuse_ros.preprocessing import (AlignmentConfig, Aligner, ThermalConfig,
                                       ThermalNormaliser)


@pytest.fixture(scope="module")
def pipelines():
    return {name: FusionPipeline.from_artifact(name) for name in ("lutfuse-mmlut", "lutfuse-mini")}


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (37, 61, 3), dtype=np.uint8),
            rng.integers(0, 256, (37, 61), dtype=np.uint8))


@pytest.mark.parametrize("name", ["lutfuse-mmlut", "lutfuse-mini"])
def test_odd_sizes_keep_the_input_size(pipelines, pair, name):
    visible, thermal = pair
    fused = pipelines[name].fuse(visible, thermal)
    assert fused.shape == visible.shape and fused.dtype == np.uint8


def test_gray_visible_and_mono_output():
    pipeline = FusionPipeline.from_artifact("lutfuse-mini", config=PipelineConfig(output="mono"))
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    thermal = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    fused = pipeline.fuse(gray, thermal)
    assert fused.shape == (20, 30)


def test_analytic_max_model_outputs_the_brighter_source(analytic_artifacts):
    visible = np.full((16, 16, 3), 40, np.uint8)
    thermal = np.zeros((16, 16), np.uint8)
    thermal[4:12, 4:12] = 200
    fused = FusionPipeline.from_artifact(analytic_artifacts["mmlut"]).fuse(visible, thermal)
    assert abs(int(fused[8, 8, 0]) - 200) <= 2 and abs(int(fused[0, 0, 0]) - 40) <= 2


def test_rgb_order_is_the_mirror_of_bgr(pair):
    visible, thermal = pair
    bgr = FusionPipeline.from_artifact("lutfuse-mini").fuse(visible, thermal)
    rgb = FusionPipeline.from_artifact("lutfuse-mini", config=PipelineConfig(colour_order="rgb")
                                       ).fuse(visible[..., ::-1].copy(), thermal)
    assert np.array_equal(bgr, rgb[..., ::-1])


def test_uint16_thermal_is_normalised(analytic_artifacts):
    visible = np.zeros((24, 24, 3), np.uint8)
    thermal = np.linspace(7000, 9000, 24 * 24).reshape(24, 24).astype(np.uint16)
    fused = FusionPipeline.from_artifact(analytic_artifacts["mmlut"]).fuse(visible, thermal)
    assert fused[-1, -1, 0] > 240 and fused[0, 0, 0] < 15


@pytest.mark.parametrize("visible, thermal, message", [
    (np.zeros((10, 10, 3), np.float32), np.zeros((10, 10), np.uint8),
     "visible image must be uint8"),
    (np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10), np.uint8), "3 channels"),
    (np.zeros((0, 10, 3), np.uint8), np.zeros((0, 10), np.uint8), "empty"),
    (np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.float64), "uint8 or uint16"),
    (np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10, 3), np.uint8), "2-D"),
    (np.zeros((10, 10, 3), np.uint8), np.zeros((12, 10), np.uint8), "alignment mode"),
    ([[1, 2]], np.zeros((10, 10), np.uint8), "numpy array"),
])
def test_bad_input_names_the_problem(pipelines, visible, thermal, message):
    with pytest.raises(InputError, match=message):
        pipelines["lutfuse-mini"].fuse(visible, thermal)


def test_bad_config_is_rejected():
    with pytest.raises(ConfigError, match="colour_order"):
        PipelineConfig(colour_order="bgra")
    with pytest.raises(ConfigError, match="percentiles"):
        ThermalConfig(low_percentile=50, high_percentile=10)
    with pytest.raises(ConfigError, match="singular"):
        AlignmentConfig(mode="homography", homography=[0] * 9)
    with pytest.raises(ConfigError, match="alignment mode"):
        AlignmentConfig(mode="stretch")


def test_thermal_modes():
    ramp = np.arange(0, 1000, dtype=np.uint16).reshape(20, 50) + 5000
    minmax = ThermalNormaliser(ThermalConfig(mode="minmax"))(ramp)
    assert minmax.min() == 0 and minmax.max() == 255
    fixed = ThermalNormaliser(ThermalConfig(mode="fixed", fixed_range=(5000, 7000)))(ramp)
    assert fixed.max() < 130
    clipped = ThermalNormaliser(ThermalConfig(low_percentile=10, high_percentile=90))(ramp)
    assert (clipped == 0).mean() == pytest.approx(0.1, abs=0.01)
    assert (clipped == 255).mean() == pytest.approx(0.1, abs=0.01)
    eight = np.full((4, 4), 77, np.uint8)
    assert np.array_equal(ThermalNormaliser()(eight), eight)
    clahe = ThermalNormaliser(ThermalConfig(clahe=True))(ramp)
    assert clahe.dtype == np.uint8 and clahe.shape == ramp.shape


def test_alignment_modes():
    visible = np.zeros((40, 60, 3), np.uint8)
    thermal = np.zeros((20, 30), np.uint8)
    v, t = Aligner(AlignmentConfig(mode="resize_thermal"))(visible, thermal)
    assert t.shape == (40, 60) and v.shape == (40, 60, 3)
    v, t = Aligner(AlignmentConfig(mode="resize_visible"))(visible, thermal)
    assert v.shape == (20, 30, 3) and t.shape == (20, 30)
    thermal[5, 7] = 255
    shift = [1, 0, 10, 0, 1, 3, 0, 0, 1]
    v, t = Aligner(AlignmentConfig(mode="homography", homography=shift, crop=(2, 2, 50, 30)))(
        visible, thermal)
    assert t.shape == (30, 50) and v.shape == (30, 50, 3)
    assert t[5 + 3 - 2, 7 + 10 - 2] == 255
    with pytest.raises(InputError, match="crop"):
        Aligner(AlignmentConfig(mode="none", crop=(0, 0, 100, 100)))(visible, visible[..., 0])


def test_map_luma():
    luma = np.array([[-0.5, 0.25, 1.5]], np.float32)
    assert np.array_equal(map_luma(luma, "none"), luma)
    assert np.array_equal(map_luma(luma, "clamp"), np.array([[0, 0.25, 1]], np.float32))
    assert np.allclose(map_luma(luma, "minmax"), [[0, 0.375, 1]])
    assert np.all(map_luma(np.ones((2, 2), np.float32), "minmax") == 0)
