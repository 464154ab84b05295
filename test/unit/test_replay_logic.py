"""Tests of the ROS-free parts of ``lutfuse replay``: planning, pacing, flow control, report."""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pytest

from lutfuse_ros.bag.node_process import PRIVATE_DOMAIN_RANGE, choose_domain_id
from lutfuse_ros.bag.player import (
    THERMAL,
    VISIBLE,
    FlowControl,
    Pacer,
    plan_playback,
)
from lutfuse_ros.bag.records import ReplayRecords, node_counters, summarise
from lutfuse_ros.bag.report import (
    fusion_metric_means,
    latency_stats,
    rate_hz,
    report_paths,
    save_report,
    to_markdown,
)
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.settings.node_settings import load_sync_settings, parse_sync_settings
from lutfuse_ros.settings.params_file import parse_override
from lutfuse_ros.metrics import METRIC_NAMES

MS = 1_000_000


def sync_with(**values):
    """The node's default sync settings with some ``sync.*`` values replaced."""
    return parse_sync_settings({f"sync.{name}": value for name, value in values.items()})


def interleaved(visible_hz: float, thermal_hz: float, seconds: float, thermal_delay_ms: float = 0
                ) -> tuple[list[str], list[int]]:
    """Streams and stamps of two cameras, merged in time order (ties: visible first)."""
    events = [(round(i * 1e9 / visible_hz), 0, VISIBLE)
              for i in range(int(seconds * visible_hz))]
    events += [(round(j * 1e9 / thermal_hz + thermal_delay_ms * MS), 1, THERMAL)
               for j in range(int(seconds * thermal_hz))]
    events.sort()
    return [e[2] for e in events], [e[0] for e in events]


class FakeClock:
    """Monotonic seconds advanced by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestPlanPlayback:
    def test_equal_rates_pair_every_frame(self):
        streams, stamps = interleaved(30, 30, 1.0, thermal_delay_ms=2)
        plan = plan_playback(streams, stamps, sync_with(slop=0.01, queue_size=5))
        assert len(plan.pairs) == 30
        assert all(t - v == 2 * MS for v, t in plan.pairs)
        # the synchroniser releases pair i when visible frame i + 1 shows that no closer
        # partner can come (played at index 2i + 2); the last pair is held at the end
        assert plan.releases == {2 * i + 2: i for i in range(29)}
        assert plan.held_at_end == 1
        assert plan.visible_count == plan.thermal_count == 30

    def test_identical_stamps_release_at_once(self):
        plan = plan_playback([VISIBLE, THERMAL] * 3, [0, 0, 10, 10, 20, 20], load_sync_settings())
        assert plan.releases == {1: 0, 3: 1, 5: 2} and plan.held_at_end == 0

    def test_slow_thermal_pairs_with_nearest_visible_frame(self):
        streams, stamps = interleaved(30, 9, 2.0, thermal_delay_ms=5)
        plan = plan_playback(streams, stamps, sync_with(slop=0.02, queue_size=10))
        assert len(plan.pairs) == 18
        for visible, thermal in plan.pairs:
            assert abs(thermal - visible) <= 20 * MS
            nearest = min((s for s, k in zip(stamps, streams) if k == VISIBLE),
                          key=lambda s: abs(s - thermal))
            assert visible == nearest
        # the last pair waits for a frame after the end of the bag
        assert plan.held_at_end == 1

    def test_offset_and_slop_come_into_play(self):
        streams, stamps = interleaved(10, 10, 1.0, thermal_delay_ms=50)
        assert plan_playback(streams, stamps, sync_with(slop=0.02)).pairs == []
        shifted = plan_playback(streams, stamps, sync_with(slop=0.02, thermal_offset=-0.05))
        assert len(shifted.pairs) == 10


class TestFlowControl:
    def test_window_waits_for_outputs(self):
        flow = FlowControl([10, 20, 30, 40], window=2, stall_timeout=60.0)
        stop = threading.Event()
        assert flow.wait_for_slot(0, stop) and flow.wait_for_slot(1, stop)
        released = []
        waiter = threading.Thread(target=lambda: released.append(flow.wait_for_slot(2, stop)))
        waiter.start()
        time.sleep(0.05)
        assert released == [] and waiter.is_alive()
        flow.output_received(10)
        waiter.join(timeout=2.0)
        assert released == [True]
        # a later stamp settles the pairs it skipped (output stamps only increase)
        flow.output_received(35)
        assert flow.resolved == 3 and flow.wait_for_slot(4, stop)

    def test_stall_timeout_gives_up_the_oldest_pair(self):
        clock = FakeClock()
        flow = FlowControl([10, 20, 30], window=2, stall_timeout=1.0, clock=clock)
        stop = threading.Event()
        ticker = threading.Thread(target=lambda: [time.sleep(0.01) or setattr(
            clock, "now", clock.now + 0.25) for _ in range(40)])
        ticker.start()
        assert flow.wait_for_slot(2, stop)
        ticker.join()
        assert flow.timeouts == 1 and flow.resolved == 1

    def test_stop_releases_the_wait(self):
        flow = FlowControl([10, 20, 30], window=2, stall_timeout=60.0)
        stop = threading.Event()
        threading.Timer(0.05, stop.set).start()
        assert flow.wait_for_slot(2, stop) is False

    def test_window_of_one_serialises_pairs(self):
        flow = FlowControl([10, 20], window=1, stall_timeout=60.0)
        stop = threading.Event()
        assert flow.wait_for_slot(0, stop)
        threading.Timer(0.05, flow.output_received, args=(10,)).start()
        started = time.monotonic()
        assert flow.wait_for_slot(1, stop)
        assert time.monotonic() - started >= 0.04
        with pytest.raises(ConfigError, match="at least 1"):
            FlowControl([1], window=0, stall_timeout=1.0)


class TestPacer:
    def test_follows_recorded_time_scaled(self):
        pacer = Pacer(rate=4.0)
        stop = threading.Event()
        started = time.monotonic()
        for log_ns in (0, 100 * MS, 200 * MS, 400 * MS):
            assert pacer.wait(log_ns, stop)
        assert 0.09 <= time.monotonic() - started < 0.5  # 400 ms of bag at 4x = 100 ms

    def test_stop_interrupts(self):
        pacer = Pacer(rate=1.0)
        stop = threading.Event()
        assert pacer.wait(0, stop)
        threading.Timer(0.05, stop.set).start()
        assert pacer.wait(60_000 * MS, stop) is False


class TestSummary:
    def test_counts_latencies_and_rates(self):
        plan = plan_playback([VISIBLE, THERMAL] * 4, [s for i in range(4) for s in (i, i)],
                             sync_with(slop=0.01))
        records = ReplayRecords({0, 2}, {0, 2})
        for stamp in range(4):
            records.published(VISIBLE, stamp, 10.0 + stamp, b"v")
            records.published(THERMAL, stamp, 10.5 + stamp, b"t")
        for stamp, when in ((0, 10.6), (2, 12.7), (2, 12.8), (99, 13.0)):
            records.received(stamp, when, b"f%d" % stamp)
        records.diagnostics_received([{"name": "fusion", "level": 0, "message": "ok",
                                       "hardware_id": "", "values": {
                                           "total pairs": "4", "output rate (Hz)": "2.0"}}],
                                     14.0)
        report = summarise(plan, records, {"bag": "b"}, {"flow_control_timeouts": 0},
                           3.5, 5.0, interrupted=False)
        frames = report.frames
        assert (frames["visible_in"], frames["thermal_in"], frames["pairs_expected"]) == (4, 4, 4)
        assert (frames["fused_out"], frames["fused_matched"]) == (4, 2)
        assert (frames["unmatched_outputs"], frames["duplicate_outputs"]) == (1, 1)
        assert frames["delivered_ratio"] == pytest.approx(0.5)
        assert frames["delivered_ratio_releasable"] == pytest.approx(0.5)  # none held
        assert report.latency["count"] == 2
        assert report.latency["p50_ms"] == pytest.approx(650.0)
        assert report.latency_from_pair["max_ms"] == pytest.approx(200.0)
        assert report.sync["visible_without_output"] == 2
        assert report.sync["node"] == {"level": 0, "message": "ok", "total pairs": "4"}
        assert report.rates["fused_rate_hz"] == pytest.approx(3 / 2.4)
        assert set(records.fused_samples) == {0, 2}
        assert "| fused_matched | 2 |" in to_markdown(report)

    def test_latency_stats_and_rate(self):
        stats = latency_stats([float(v) for v in range(1, 101)])
        assert (stats.count, stats.max_ms) == (100, 100.0)
        assert stats.p50_ms == pytest.approx(50.5) and stats.p99_ms == pytest.approx(99.01)
        assert math.isnan(latency_stats([]).p50_ms)
        assert rate_hz([0.0, 0.5, 1.0]) == pytest.approx(2.0) and math.isnan(rate_hz([1.0]))

    def test_node_counters_keep_totals(self):
        statuses = [{"name": n, "level": 1, "message": "", "hardware_id": "",
                     "values": {"total drops": "3", "rate": "1"}} for n in ("a", "b")]
        assert node_counters(statuses) == {"a: level": 1, "a: total drops": "3",
                                           "b: level": 1, "b: total drops": "3"}


class TestReportFiles:
    def test_written_atomically_and_not_overwritten(self, tmp_path):
        plan = plan_playback([VISIBLE, THERMAL], [0, 0], load_sync_settings())
        records = ReplayRecords()
        records.published(VISIBLE, 0, 1.0, b"")
        records.received(0, 1.02, b"")
        report = summarise(plan, records, {"bag": "x"}, {}, 0.0, 1.0, interrupted=True)
        prefix = tmp_path / "out" / "run"
        paths = save_report(report, prefix, force=False)
        assert paths == report_paths(prefix)
        data = json.loads(paths[0].read_text())
        assert data["interrupted"] is True and data["latency"]["p50_ms"] == pytest.approx(20.0)
        assert data["latency_from_pair"]["p50_ms"] is None  # NaN -> null
        assert "Interrupted" in paths[1].read_text()
        assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with pytest.raises(FileExistsError, match="--force"):
            save_report(report, prefix, force=False)
        save_report(report, prefix, force=True)
        assert sorted(p.name for p in prefix.parent.iterdir()) == sorted(p.name for p in paths)


class TestFusionMetricMeans:
    def test_means_over_samples_and_skips(self):
        rng = np.random.default_rng(0)
        visible = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        thermal16 = rng.integers(1000, 3000, (30, 40), dtype=np.uint16)
        fused = visible.copy()
        metrics = fusion_metric_means([(fused, visible, thermal16),
                                       (fused[:50], visible, thermal16)])
        assert metrics["frames_evaluated"] == 1
        assert set(METRIC_NAMES) <= set(metrics)
        assert 0 < metrics["EN"] <= 8 and metrics["PSNR"] > 0
        assert len(metrics["skipped"]) == 1 and "differs" in metrics["skipped"][0]
        assert math.isnan(fusion_metric_means([])["EN"])


class TestSyncParams:
    def test_defaults_file_and_overrides(self, tmp_path):
        defaults = load_sync_settings(None)
        assert defaults.slop > 0 and defaults.queue_size >= 1
        params = tmp_path / "p.yaml"
        params.write_text("lutfuse_fusion:\n  ros__parameters:\n    sync:\n      slop: 0.04\n"
                          "      thermal_offset: -0.01\n")
        settings = load_sync_settings(params, ["sync.queue_size:=7"])
        assert (settings.slop, settings.thermal_offset, settings.queue_size) == (0.04, -0.01, 7)

    def test_clock_jump_threshold_follows_the_node_parameter(self):
        stamps = [0, 0, 5_000_000_000, 5_000_000_000, 3_000_000_000, 3_000_000_000,
                  3_100_000_000, 3_100_000_000]
        streams = ["visible", "thermal"] * 4
        # A 2 s jump back: the node's default threshold (1 s) resets and pairs again...
        default = plan_playback(streams, stamps, load_sync_settings(None))
        # ...a 3 s threshold treats those frames as late and drops them.
        tolerant = plan_playback(streams, stamps,
                                 load_sync_settings(None, ["sync.clock_jump_threshold:=3.0"]))
        assert load_sync_settings(None).clock_jump_threshold == 1.0
        assert len(default.pairs) > len(tolerant.pairs)

    def test_bad_values_are_named(self, tmp_path):
        with pytest.raises(ConfigError, match="sync.slop"):
            load_sync_settings(None, ["sync.slop:=fast"])
        with pytest.raises(ConfigError, match="NAME:=VALUE"):
            parse_override("sync.slop=0.1")
        empty = tmp_path / "empty.yaml"
        empty.write_text("{}\n")
        with pytest.raises(ConfigError, match="ros__parameters"):
            load_sync_settings(empty)


class TestDomainId:
    def test_private_domain_differs_from_the_environment(self):
        low, high = PRIVATE_DOMAIN_RANGE
        for _ in range(50):
            chosen = choose_domain_id(None, {"ROS_DOMAIN_ID": "7"})
            assert low <= chosen <= high and chosen != 7
        assert choose_domain_id(42, {}) == 42
        with pytest.raises(ConfigError, match="0..232"):
            choose_domain_id(300, {})
