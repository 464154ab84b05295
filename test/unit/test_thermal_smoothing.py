"""``thermal.range_smoothing``: a steadier 16-bit thermal stretch on video."""

from __future__ import annotations

import numpy as np
import pytest

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.metrics.temporal import TemporalStabilityMeter
from lutfuse_ros.preprocessing import ThermalConfig, ThermalNormaliser

HEIGHT, WIDTH, FRAMES = 48, 64, 12


def _hot_object_video() -> list[np.ndarray]:
    """A static 16-bit scene; a hot object enters and leaves every other frame."""
    ramp = np.linspace(8000, 12000, WIDTH)[None, :] + np.linspace(0, 2000, HEIGHT)[:, None]
    frames = []
    for t in range(FRAMES):
        frame = ramp.copy()
        if t % 2:
            frame[10:30, 20:40] = 30000.0  # 13 % of the pixels: moves the 99th percentile
        frames.append(np.round(frame).astype(np.uint16))
    return frames


def _background_change(frames: list[np.ndarray]) -> float:
    """Mean absolute frame-to-frame change of the 8-bit values outside the object."""
    stack = np.stack(frames).astype(np.float64)
    mask = np.ones((HEIGHT, WIDTH), bool)
    mask[10:30, 20:40] = False
    return float(np.abs(np.diff(stack, axis=0))[:, mask].mean())


def test_smoothing_steadies_the_static_background():
    video = _hot_object_video()
    per_frame = ThermalNormaliser(ThermalConfig())
    smoothed = ThermalNormaliser(ThermalConfig(range_smoothing=0.9))
    plain = [per_frame(frame) for frame in video]
    steady = [smoothed(frame) for frame in video]
    assert np.array_equal(plain[0], steady[0])  # the first frame uses its own range
    assert _background_change(steady) < 0.3 * _background_change(plain)


def test_smoothing_lowers_temporal_flicker_of_the_normalised_thermal():
    """Scored against the linear thermal with the temporal metric: less unexplained change."""
    video = _hot_object_video()
    meter = TemporalStabilityMeter(["per frame", "smoothed"])
    per_frame = ThermalNormaliser(ThermalConfig())
    smoothed = ThermalNormaliser(ThermalConfig(range_smoothing=0.9))
    for frame in video:
        linear = frame.astype(np.float64) * (255.0 / 65535.0)
        meter.add(linear, linear, {"per frame": per_frame(frame).astype(np.float64),
                                   "smoothed": smoothed(frame).astype(np.float64)})
    scores = meter.scores()
    assert scores["smoothed"].tRWE < scores["per frame"].tRWE
    assert scores["smoothed"].tFlicker < 0.5 * scores["per frame"].tFlicker


def test_default_is_per_frame_and_reset_forgets():
    video = _hot_object_video()
    default = ThermalNormaliser()
    first = default(video[1])
    default(video[0])
    assert np.array_equal(default(video[1]), first)  # no history without smoothing
    smoothed = ThermalNormaliser(ThermalConfig(range_smoothing=0.5))
    alone = smoothed(video[1])
    smoothed(video[0])
    assert not np.array_equal(smoothed(video[1]), alone)
    smoothed.reset()
    assert np.array_equal(smoothed(video[1]), alone)


def test_fixed_mode_and_8bit_passthrough_ignore_smoothing():
    video = _hot_object_video()
    fixed = ThermalNormaliser(ThermalConfig(mode="fixed", range_smoothing=0.9))
    reference = ThermalNormaliser(ThermalConfig(mode="fixed"))
    for frame in video[:3]:
        assert np.array_equal(fixed(frame), reference(frame))
    gray = (video[1] >> 8).astype(np.uint8)
    assert np.array_equal(ThermalNormaliser(ThermalConfig(range_smoothing=0.9))(gray), gray)


@pytest.mark.parametrize("weight", [-0.1, 1.0, 2.0])
def test_bad_weight_is_named(weight):
    with pytest.raises(ConfigError, match="range_smoothing"):
        ThermalConfig(range_smoothing=weight)


def test_sequence_range_spans_all_frames():
    from lutfuse_ros.preprocessing import sequence_percentile_range

    dark = np.full((4, 4), 1000, np.uint16)
    bright = np.full((4, 4), 3000, np.uint16)
    assert sequence_percentile_range([dark, bright], 0.0, 100.0) == (1000.0, 3000.0)
    assert sequence_percentile_range([dark]) == (1000.0, 1001.0)  # constant: widened
