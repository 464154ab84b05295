"""Node statistics, the diagnostics report and its WARN rules, and the log throttle."""

from __future__ import annotations

import pytest

from lutfuse_ros.ros.diagnostics import (OK, WARN, MessageThrottle, NodeStatistics,
                                         to_diagnostic_array)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_window(stats: NodeStatistics, clock: FakeClock, *, visible: int, thermal: int,
               pairs: int, published: int, seconds: float = 1.0) -> None:
    for name, count in (("visible", visible), ("thermal", thermal), ("pairs", pairs)):
        for _ in range(count):
            stats.count(name)
    for i in range(published):
        stats.record_output(node_ms=10.0 + i, pipeline_ms=8.0, queue_ms=0.5)
    clock.now += seconds


def test_rates_percentiles_and_totals_over_a_window():
    clock = FakeClock()
    stats = NodeStatistics(clock)
    run_window(stats, clock, visible=30, thermal=30, pairs=30, published=30)
    report = stats.report(warn_fraction=0.8, extra_totals={"sync dropped_visible": 3})
    values = report.values
    assert report.level == OK and report.message == "fusing at 30.0 Hz"
    assert values["visible rate (Hz)"] == "30.00" and values["output rate (Hz)"] == "30.00"
    assert values["node latency p50 (ms)"] == "24.50"          # 10..39
    assert float(values["node latency p99 (ms)"]) == pytest.approx(38.71)
    assert values["pipeline latency p99 (ms)"] == "8.00"
    assert values["overhead latency p50 (ms)"] == "16.50"
    assert values["handling latency p50 (ms)"] == "16.00" and values["queue latency p99 (ms)"] \
        == "0.50"
    assert values["total published"] == "30" and values["total sync dropped_visible"] == "3"
    # The next window starts empty; totals carry on.
    clock.now += 2.0
    quiet = stats.report(warn_fraction=0.8)
    assert quiet.values["output rate (Hz)"] == "0.00"
    assert quiet.values["node latency p50 (ms)"] == "n/a"
    assert quiet.values["total published"] == "30"
    assert (quiet.level, quiet.message) == (OK, "waiting for images")


@pytest.mark.parametrize("window, max_rate, level, fragment", [
    ({"visible": 30, "thermal": 30, "pairs": 30, "published": 20}, 0.0, WARN,
     "output 20.0 Hz < 0.8"),
    ({"visible": 30, "thermal": 30, "pairs": 30, "published": 25}, 0.0, OK, "fusing at 25.0 Hz"),
    ({"visible": 30, "thermal": 30, "pairs": 30, "published": 10}, 10.0, OK, "fusing at 10.0 Hz"),
    ({"visible": 30, "thermal": 30, "pairs": 30, "published": 7}, 10.0, WARN, "expected 10.0 Hz"),
    ({"visible": 30, "thermal": 0, "pairs": 0, "published": 0}, 0.0, WARN, "no thermal images"),
    ({"visible": 30, "thermal": 9, "pairs": 0, "published": 0}, 0.0, WARN, "none pair up"),
])
def test_warning_when_output_falls_below_the_fraction_of_the_expected_rate(
        window, max_rate, level, fragment):
    clock = FakeClock()
    stats = NodeStatistics(clock)
    run_window(stats, clock, **window)
    report = stats.report(warn_fraction=0.8, max_rate=max_rate)
    assert report.level == level and fragment in report.message


def test_failures_and_rejected_images_warn():
    clock = FakeClock()
    stats = NodeStatistics(clock)
    stats.count("rejected_visible")
    stats.count("failed")
    run_window(stats, clock, visible=30, thermal=30, pairs=30, published=29)
    report = stats.report(warn_fraction=0.8)
    assert report.level == WARN
    assert "1 pair(s) failed" in report.message and "1 bad image(s) dropped" in report.message


def test_throttle_logs_each_kind_once_per_interval_and_counts_the_rest():
    clock = FakeClock()
    throttle = MessageThrottle(5.0, clock)
    assert throttle.admit("data is truncated: 10 bytes < 12") == (True, 0)
    assert throttle.admit("data is truncated: 11 bytes < 12") == (False, 0)
    assert throttle.admit("step=3 is smaller than one row") == (True, 0)   # another kind
    assert throttle.admit("data is truncated: 1 bytes < 2") == (False, 0)
    clock.now += 5.0
    assert throttle.admit("data is truncated: 7 bytes < 9") == (True, 2)
    assert MessageThrottle(0.0, clock).admit("x") == (True, 0)


def test_diagnostic_array_message():
    from builtin_interfaces.msg import Time

    clock = FakeClock()
    stats = NodeStatistics(clock)
    run_window(stats, clock, visible=1, thermal=0, pairs=0, published=0)
    report = stats.report(warn_fraction=0.8)
    array = to_diagnostic_array(report, name="/front/fusion_node: fusion",
                                hardware_id="lutfuse-mini on torch", stamp=Time(sec=5))
    status = array.status[0]
    assert array.header.stamp.sec == 5
    assert status.level == bytes([WARN]) and status.message == "no thermal images received"
    assert status.name == "/front/fusion_node: fusion"
    assert {kv.key: kv.value for kv in status.values} == report.values
