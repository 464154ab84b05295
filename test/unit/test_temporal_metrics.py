"""Temporal stability of fused video (lutfuse_ros.metrics.temporal): definition and validation."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from lutfuse_ros.errors import ConfigError, InputError
from lutfuse_ros.metrics.temporal import (
    SOURCE_LABELS,
    MotionEstimator,
    TemporalStabilityMeter,
    temporal_stability,
)

HEIGHT, WIDTH = 96, 128


def _texture(seed: int, height: int = HEIGHT + 40, width: int = WIDTH + 60) -> np.ndarray:
    """A smooth random texture, float64 gray levels 20..235, larger than one frame."""
    noise = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.5).astype(np.float64)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return 20.0 + 215.0 * smooth


def _moving_sources(frames: int, step: tuple[int, int] = (1, 2)) -> tuple[list, list]:
    """Infrared and visible crops of two textures panning ``step`` (dy, dx) pixels a frame."""
    ir_canvas, vi_canvas = _texture(1), _texture(2)
    ir, vi = [], []
    for t in range(frames):
        y, x = t * step[0], t * step[1]
        ir.append(ir_canvas[y:y + HEIGHT, x:x + WIDTH].copy())
        vi.append(vi_canvas[y:y + HEIGHT, x:x + WIDTH].copy())
    return ir, vi


def _scores(fused: dict[str, list], ir: list, vi: list) -> dict:
    meter = TemporalStabilityMeter(list(fused))
    for index in range(len(ir)):
        meter.add(ir[index], vi[index], {label: frames[index] for label, frames in fused.items()})
    return meter.scores()


def test_static_sequence_scores_perfect():
    ir, vi = _moving_sources(1)
    fused = (ir[0] + vi[0]) / 2
    scores = _scores({"fused": [fused] * 5}, ir * 5, vi * 5)["fused"]
    assert scores.frame_pairs == 4
    assert scores.tRWE == 0.0 and scores.tWE == 0.0
    assert scores.tFlicker == pytest.approx(0.0, abs=1e-12)
    assert scores.valid_fraction == pytest.approx(1.0)


def test_flat_static_video_is_stable_not_undefined():
    flat = np.full((HEIGHT, WIDTH), 128.0)
    ir, vi = _moving_sources(1)
    scores = _scores({"flat": [flat] * 4}, ir * 4, vi * 4)["flat"]
    assert scores.tRWE == 0.0 and scores.tWE == 0.0


def test_flow_compensates_motion():
    """The warp must follow the sources' motion.

    The warping error of a panning average is a small fraction of its plain frame difference.
    """
    ir, vi = _moving_sources(6)
    fused = [(a + b) / 2 for a, b in zip(ir, vi)]
    scores = _scores({"average": fused}, ir, vi)["average"]
    plain = np.mean([np.abs(fused[t] - fused[t - 1]).mean() for t in range(1, 6)])
    assert scores.tWE < 0.2 * plain
    assert scores.valid_fraction > 0.8


def test_injected_flicker_scores_worse():
    ir, vi = _moving_sources(10)
    clean = [(a + b) / 2 for a, b in zip(ir, vi)]
    gains = 1.0 + 0.06 * np.random.default_rng(5).standard_normal(10)
    flickering = [frame * gain for frame, gain in zip(clean, gains)]
    scores = _scores({"clean": clean, "flicker": flickering}, ir, vi)
    assert scores["flicker"].tRWE > 2.0 * scores["clean"].tRWE
    assert scores["flicker"].tFlicker > 10.0 * scores["clean"].tFlicker + 0.01


def test_linear_blend_has_no_flicker_and_sources_are_reported():
    ir, vi = _moving_sources(8)
    blend = [0.3 * a + 0.7 * b for a, b in zip(ir, vi)]
    scores = _scores({"blend": blend}, ir, vi)
    assert scores["blend"].tFlicker == pytest.approx(0.0, abs=1e-9)
    assert set(scores) == {"blend", *SOURCE_LABELS}
    for label in SOURCE_LABELS:
        assert math.isfinite(scores[label].tRWE) and math.isnan(scores[label].tFlicker)


@pytest.mark.parametrize(("gain", "offset"), [(2.0, 0.0), (0.5, 30.0), (1.3, -20.0)])
def test_invariant_to_constant_gain_and_offset(gain, offset):
    """Scores tRWE and tFlicker do not change under F -> gain * F + offset; tWE scales by gain."""
    ir, vi = _moving_sources(8)
    gains = 1.0 + 0.04 * np.random.default_rng(9).standard_normal(8)
    fused = [np.maximum(a, b) * g for a, b, g in zip(ir, vi, gains)]
    scaled = [gain * frame + offset for frame in fused]
    scores = _scores({"fused": fused, "scaled": scaled}, ir, vi)
    assert scores["scaled"].tRWE == pytest.approx(scores["fused"].tRWE, rel=1e-5)
    assert scores["scaled"].tFlicker == pytest.approx(scores["fused"].tFlicker, rel=1e-5)
    assert scores["scaled"].tWE == pytest.approx(gain * scores["fused"].tWE, rel=1e-5)


def test_short_sequences():
    ir, vi = _moving_sources(3)
    fused = [(a + b) / 2 for a, b in zip(ir, vi)]
    two_pairs = temporal_stability(fused, ir, vi)
    assert two_pairs.frame_pairs == 2 and math.isnan(two_pairs.tFlicker)
    assert math.isfinite(two_pairs.tRWE)
    single = temporal_stability(fused[:1], ir[:1], vi[:1])
    assert single.frame_pairs == 0 and math.isnan(single.tRWE) and math.isnan(single.tWE)


def test_bad_input_is_named():
    ir, vi = _moving_sources(2)
    meter = TemporalStabilityMeter(["a"])
    with pytest.raises(InputError, match="expected fused frames for"):
        meter.add(ir[0], vi[0], {"b": ir[0]})
    with pytest.raises(InputError, match="all frames of a time step"):
        meter.add(ir[0], vi[0], {"a": ir[0][:, :-1]})
    with pytest.raises(InputError, match="NaN"):
        meter.add(ir[0], vi[0], {"a": np.full_like(ir[0], np.nan)})
    meter.add(ir[0], vi[0], {"a": ir[0]})
    with pytest.raises(InputError, match="frame size changed"):
        meter.add(ir[1][:-2], vi[1][:-2], {"a": ir[1][:-2]})
    with pytest.raises(InputError, match="ir ended after 1"):
        temporal_stability(ir, ir[:1], vi)
    with pytest.raises(ConfigError, match="reserved"):
        TemporalStabilityMeter([SOURCE_LABELS[0]])
    with pytest.raises(ConfigError, match="distinct"):
        TemporalStabilityMeter(["a", "a"])
    with pytest.raises(ConfigError, match="flow preset"):
        MotionEstimator("slowest")


def _clip_frames(shared_dir, clip: str, count: int) -> tuple[list, list, list]:
    """First ``count`` (visible BGR, infrared gray, visible protocol gray) frames of a clip."""
    captures = [cv2.VideoCapture(str(shared_dir / "data" / "video" / kind / f"{clip}.mp4"))
                for kind in ("vi", "ir")]
    visible, infrared, visible_gray = [], [], []
    try:
        for _ in range(count):
            (ok_vi, vi), (ok_ir, ir) = (capture.read() for capture in captures)
            assert ok_vi and ok_ir, f"{clip} ended early"
            visible.append(vi)
            infrared.append(cv2.cvtColor(ir, cv2.COLOR_BGR2GRAY))
            visible_gray.append(np.round(cv2.cvtColor(vi.astype(np.float32),
                                                      cv2.COLOR_BGR2GRAY)))
    finally:
        for capture in captures:
            capture.release()
    return visible, infrared, visible_gray


@pytest.mark.shared
def test_per_frame_minmax_stretch_scores_worse_than_clamp_on_real_video(shared_dir):
    """The issue's validation: a per-frame stretch scores worse than a clamp.

    The same fused sequence, once clamped and once stretched to 0..255 per frame (the official
    MMDRFuse save step), on a real thermal/visible clip.
    """
    from lutfuse_ros.backends.frame_inputs import FrameInputs
    from lutfuse_ros.colour import luma_plane
    from lutfuse_ros.pipeline import FusionPipeline, map_luma

    clip = shared_dir / "data" / "video" / "vi" / "0113_1714.mp4"
    if not clip.is_file():
        pytest.skip(f"video clip {clip} not in ../shared")
    visible, infrared, visible_gray = _clip_frames(shared_dir, "0113_1714", 16)
    pipeline = FusionPipeline.from_artifact("lutfuse-mini")
    fused: dict[str, list] = {"clamp": [], "minmax": [], "average": [], "average minmax": []}
    for vi, ir, vi_gray in zip(visible, infrared, visible_gray):
        raw = pipeline.backend.infer_frame(FrameInputs(vi, "bgr", ir, luma_plane(vi, "bgr")))
        for mapping in ("clamp", "minmax"):
            fused[mapping].append(np.round(255.0 * np.clip(map_luma(raw, mapping), 0.0, 1.0)))
        average = (ir + vi_gray) / 2
        fused["average"].append(average)
        low, high = average.min(), average.max()
        fused["average minmax"].append(np.round(255.0 * (average - low) / (high - low)))
    pipeline.close()
    scores = _scores(fused, [ir.astype(np.float64) for ir in infrared], visible_gray)
    assert scores["minmax"].tRWE > scores["clamp"].tRWE
    assert scores["minmax"].tFlicker > scores["clamp"].tFlicker
    assert scores["average minmax"].tRWE > scores["average"].tRWE
    assert scores["average minmax"].tFlicker > scores["average"].tFlicker
