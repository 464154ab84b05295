"""Temporal stability in the replay report (ROS-free parts): window, samples, report."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from lutfuse_ros.bag.player import THERMAL, VISIBLE, plan_playback
from lutfuse_ros.bag.records import ReplayRecords, sample_triples, summarise, temporal_window
from lutfuse_ros.bag.replay import ReplayOptions
from lutfuse_ros.bag.report import temporal_stability_of_samples, to_json, to_markdown
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.settings.node_settings import load_sync_settings

HEIGHT, WIDTH = 60, 80


def _panning_frames(count: int, gains: np.ndarray | None = None) -> list[tuple]:
    """``(fused BGR, visible BGR, thermal uint16)`` of a panning scene; fused = visible*gain."""
    noise = np.random.default_rng(4).random((HEIGHT + count, WIDTH + 2 * count))
    smooth = cv2.GaussianBlur(noise.astype(np.float32), (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    samples = []
    for t in range(count):
        crop = smooth[t:t + HEIGHT, 2 * t:2 * t + WIDTH]
        visible = np.repeat(np.round(30 + 190 * crop)[..., None], 3, axis=2).astype(np.uint8)
        thermal = np.round(1000 + 3000 * (1.0 - crop) ** 2).astype(np.uint16)
        gain = 1.0 if gains is None else gains[t]
        fused = np.clip(np.round(visible * gain), 0, 255).astype(np.uint8)
        samples.append((fused, visible, thermal))
    return samples


def test_window_is_the_middle_of_the_bag():
    pairs = [(i, i) for i in range(10)]
    assert temporal_window(pairs, 4) == [(3, 3), (4, 4), (5, 5), (6, 6)]
    assert temporal_window(pairs, 30) == pairs
    assert temporal_window(pairs, 0) == []


def test_sample_triples_skip_dropped_and_unpaired_frames():
    plan = plan_playback([VISIBLE, THERMAL] * 3, [0, 0, 10, 10, 20, 20], load_sync_settings())
    records = ReplayRecords({0, 10, 20}, {0, 10})
    for stamp in (0, 10, 20):
        records.published(VISIBLE, stamp, 0.0, b"v%d" % stamp)
        records.published(THERMAL, stamp, 0.0, b"t%d" % stamp)
    records.received(0, 0.1, b"f0")    # 10 was dropped by the node
    records.received(20, 0.2, b"f20")  # its thermal partner was not kept
    triples, missing = sample_triples(records, plan, [0, 10, 20])
    assert triples == [(b"f0", b"v0", b"t0")] and missing == 1


def test_flickering_output_scores_worse_in_the_report():
    steady = temporal_stability_of_samples(_panning_frames(8))
    gains = 1.0 + 0.08 * np.random.default_rng(2).standard_normal(8)
    flicker = temporal_stability_of_samples(_panning_frames(8, gains))
    assert steady["frames_evaluated"] == 8 and steady["frame_pairs"] == 7
    assert flicker["tRWE"] > 2 * steady["tRWE"]
    assert flicker["tFlicker"] > steady["tFlicker"]
    assert math.isfinite(steady["source_ir_tRWE"]) and math.isfinite(steady["source_vi_tRWE"])


def test_mismatched_frames_are_skipped_and_short_windows_are_nan():
    samples = _panning_frames(3)
    fused, visible, thermal = samples[1]
    samples[1] = (fused[:40], visible, thermal)
    result = temporal_stability_of_samples(samples)
    assert result["frames_evaluated"] == 2 and len(result["skipped"]) == 1
    assert math.isnan(temporal_stability_of_samples(samples[:1])["tRWE"])


def test_report_shows_temporal_stability():
    plan = plan_playback([VISIBLE, THERMAL], [0, 0], load_sync_settings())
    report = summarise(plan, ReplayRecords(), {"bag": "x"}, {}, 0.0, 1.0, interrupted=False)
    assert "Temporal stability: fewer than two" in to_markdown(report)
    report.temporal = temporal_stability_of_samples(_panning_frames(5))
    text = to_markdown(report)
    assert "| tRWE | tWE | tFlicker | source ir tRWE | source vi tRWE |" in text
    data = json.loads(to_json(report))
    assert data["temporal"]["frame_pairs"] == 4
    assert data["temporal"]["tFlicker"] == pytest.approx(report.temporal["tFlicker"])


def test_negative_window_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="--temporal-frames"):
        ReplayOptions(bag=tmp_path / "bag", temporal_frames=-1)


def test_16bit_reference_is_one_range_so_per_frame_stretching_counts():
    """A per-frame percentile copy scores worse than a constant-range stretch.

    The report's thermal reference is linear over the whole window.
    """
    from lutfuse_ros.preprocessing import ThermalConfig, ThermalNormaliser

    frames = _panning_frames(10)
    rows = []
    per_frame = ThermalNormaliser()
    constant = ThermalNormaliser(ThermalConfig(mode="fixed", fixed_range=(1000.0, 4000.0)))
    for t, (_, visible, thermal) in enumerate(frames):
        thermal = thermal.copy()
        if t % 2:
            thermal[:12, :16] = 20000  # a hot object that blinks moves the 99th percentile
        rows.append((visible, thermal))
    flickering = temporal_stability_of_samples(
        [(np.repeat(per_frame(th)[..., None], 3, axis=2), vi, th) for vi, th in rows])
    steady = temporal_stability_of_samples(
        [(np.repeat(constant(th)[..., None], 3, axis=2), vi, th) for vi, th in rows])
    assert flickering["tFlicker"] > 3 * steady["tFlicker"]
