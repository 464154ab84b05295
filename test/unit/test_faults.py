"""Fault state of the fusion node.

Silent streams, failure streaks, per-window events, and their merge into the diagnostics
report.
"""

from __future__ import annotations

from lutfuse_ros.errors import BackendError
from lutfuse_ros.ros.diagnostics import ERROR, OK, DiagnosticsReport, NodeStatistics
from lutfuse_ros.ros.faults import FailureStreak, FaultMonitor, StreamWatchdog


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_watchdog_waits_for_the_first_image_then_flags_each_silence_once():
    clock = FakeClock()
    watchdog = StreamWatchdog(2.0, clock=clock)
    clock.now += 60
    assert watchdog.check() == [] and watchdog.silent() == {}  # cameras not started: waiting
    watchdog.arrived("visible")
    clock.now += 1.0
    watchdog.arrived("visible")
    assert watchdog.check() == []  # thermal's clock started with the first visible image
    clock.now += 1.5
    watchdog.arrived("visible")
    assert watchdog.check() == [("thermal", 2.5)]
    assert watchdog.check() == []  # reported once per silence
    clock.now += 1.0
    assert watchdog.silent() == {"thermal": 3.5}
    assert watchdog.arrived("thermal") == 3.5  # resumed after 3.5 s
    assert watchdog.arrived("thermal") is None and watchdog.silent() == {}
    values = watchdog.values()
    assert values["total thermal silences"] == "1" and values["total visible silences"] == "0"
    assert values["thermal seconds since last image"] == "0.0"
    assert values["visible seconds since last image"] == "1.0"


def test_watchdog_reports_both_streams_of_a_dead_publisher_and_can_be_disabled():
    clock = FakeClock()
    watchdog, disabled = StreamWatchdog(1.0, clock=clock), StreamWatchdog(0.0, clock=clock)
    for stream in ("visible", "thermal"):
        watchdog.arrived(stream)
        disabled.arrived(stream)
    clock.now += 5
    assert sorted(watchdog.check()) == [("thermal", 5.0), ("visible", 5.0)]
    assert disabled.check() == [] and disabled.silent() == {}


def test_failure_streak_crosses_the_threshold_once_and_clears_on_success():
    streak = FailureStreak(3)
    assert [streak.failed(BackendError("NaN")) for _ in range(5)] == [False, False, True,
                                                                      False, False]
    fault = streak.fault()
    assert fault.level == ERROR and "5 consecutive pairs failed" in fault.message
    assert "last: BackendError: NaN" in fault.message
    assert streak.succeeded() == 5 and streak.fault() is None and streak.succeeded() == 0
    streak.failed(RuntimeError("x"))
    assert streak.fault() is None  # one failure is not a streak
    assert streak.values() == {"consecutive failures": "1", "last failure": "RuntimeError: x",
                               "total failure episodes (ERROR)": "1"}


def fusing_report(clock: FakeClock, published: int = 10) -> DiagnosticsReport:
    stats = NodeStatistics(clock)
    for name in ("visible", "thermal", "pairs"):
        for _ in range(10):
            stats.count(name)
    for _ in range(published):
        stats.record_output(1.0, 0.5, 0.1)
    clock.now += 1.0
    return stats.report(warn_fraction=0.8)


def test_monitor_without_faults_keeps_the_report_and_adds_its_values():
    clock = FakeClock()
    monitor = FaultMonitor(2.0, 5, clock=clock)
    report = monitor.apply(fusing_report(clock))
    assert (report.level, report.message) == (OK, "fusing at 10.0 Hz")
    for key in ("total clock_jumps", "total model swaps", "total model swaps refused",
                "consecutive failures", "total visible silences"):
        assert key in report.values
    assert report.values["total published"] == "10"


def test_monitor_merges_silence_failures_and_window_events_worst_first():
    clock = FakeClock()
    monitor = FaultMonitor(1.0, 2, clock=clock)
    monitor.streams.arrived("visible")
    clock.now += 2.0
    monitor.streams.arrived("visible")
    assert monitor.streams.check() == [("thermal", 2.0)]
    for _ in range(2):
        monitor.failures.failed(BackendError("backend faulty produced NaN/inf values"))
    text = monitor.clock_jump("visible", 50_000_000_000, 20_000_000_000)
    assert "clock jumped back by 30.000 s on the visible stream" in text
    monitor.model_refused("reload_model refused: truncated")
    stats = NodeStatistics(clock)
    for _ in range(10):
        stats.count("visible")
    clock.now += 1.0
    report = monitor.apply(stats.report(warn_fraction=0.8))
    assert report.level == ERROR
    parts = report.message.split("; ")
    assert parts[0].startswith("fusion failing: 2 consecutive pairs failed")
    assert parts[1] == "thermal stream silent for 3.0 s"
    assert "clock jumped back" in report.message and "model change refused" in report.message
    assert "no thermal images received" not in report.message  # said better by the watchdog
    assert report.values["total clock_jumps"] == "1"
    assert report.values["total model swaps refused"] == "1"

    # Events belong to one window; states last until they clear.
    monitor.failures.succeeded()
    monitor.streams.arrived("thermal")
    monitor.model_swapped("lutfuse-mmlut on torch")
    monitor.model_swapped("lutfuse-mmlut on torch")
    report = monitor.apply(fusing_report(clock))
    assert report.level == OK
    assert report.message == ("model swapped to lutfuse-mmlut on torch (2 times); "
                              "fusing at 10.0 Hz")
    report = monitor.apply(fusing_report(clock))
    assert (report.level, report.message) == (OK, "fusing at 10.0 Hz")
    assert report.values["total clock_jumps"] == "1" and report.values["total model swaps"] \
        == "2"


def test_monitor_keeps_the_statistics_warning_next_to_a_fault():
    clock = FakeClock()
    monitor = FaultMonitor(2.0, 1, clock=clock)
    monitor.failures.failed(RuntimeError("device lost"))
    report = monitor.apply(fusing_report(clock, published=2))
    assert report.level == ERROR
    assert report.message.startswith("fusion failing: 1 consecutive pairs failed")
    assert report.message.endswith("output 2.0 Hz < 0.8 x expected 10.0 Hz")
