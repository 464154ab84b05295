"""The latest-item-wins worker and the output rate limiter (no ROS)."""

from __future__ import annotations

import threading

import pytest

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.stream.latest_wins_worker import LatestItemWorker, RateLimiter

MS = 1_000_000


class GatedProcess:
    """A ``process`` callable that blocks on each item until the test releases it."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.done: list = []

    def __call__(self, item) -> None:
        self.started.release()
        assert self.release.acquire(timeout=10), "test never released the item"
        if isinstance(item, Exception):
            raise item
        self.done.append(item)


def test_newest_pending_item_wins_and_replaced_ones_are_counted():
    process = GatedProcess()
    worker = LatestItemWorker(process)
    worker.start()
    try:
        assert worker.submit(0) is False
        assert process.started.acquire(timeout=10)  # 0 is running, queue empty
        replaced = [worker.submit(i) for i in range(1, 6)]
        assert replaced == [False, True, True, True, True]  # 1..4 replaced in turn
        for _ in range(2):
            process.release.release()
        assert worker.wait_idle(10)
        assert process.done == [0, 5]
        counters = worker.counters
        assert (counters.submitted, counters.processed, counters.dropped) == (6, 2, 4)
    finally:
        worker.stop()


def test_an_exception_is_counted_reported_and_the_thread_goes_on():
    process = GatedProcess()
    errors = []

    def on_error(item, error):
        errors.append((item, error))
        raise RuntimeError("a failing error handler must not end the thread either")

    worker = LatestItemWorker(process, on_error)
    worker.start()
    try:
        bad = ValueError("bad pair")
        for item in (bad, "good"):
            worker.submit(item)
            assert process.started.acquire(timeout=10)
            process.release.release()
            assert worker.wait_idle(10)
        assert worker.running
        assert errors == [(bad, bad)] and worker.last_error is bad
        assert process.done == ["good"]
        assert (worker.counters.failed, worker.counters.processed) == (1, 1)
    finally:
        worker.stop()


def test_stop_finishes_the_item_in_progress_and_discards_the_pending_one():
    process = GatedProcess()
    worker = LatestItemWorker(process)
    worker.start()
    worker.submit("running")
    assert process.started.acquire(timeout=10)
    worker.submit("pending")
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    process.release.release()
    stopper.join(10)
    assert not worker.running
    assert process.done == ["running"]
    assert worker.counters.discarded_on_stop == 1
    with pytest.raises(RuntimeError, match="already started"):
        worker.start()


def test_stop_without_start_and_wait_idle_without_work():
    worker = LatestItemWorker(lambda item: None)
    assert worker.stop()
    assert worker.wait_idle(0.1)


def passed(limiter: RateLimiter, stamps_ms: list[float]) -> list[float]:
    return [s for s in stamps_ms if limiter.allow(int(round(s * MS)))]


@pytest.mark.parametrize("max_rate, expected_per_second", [(15.0, 15), (20.0, 20), (10.0, 10)])
def test_rate_limiter_keeps_the_average_rate_of_30hz_input(max_rate, expected_per_second):
    stamps = [i * 1000.0 / 30 for i in range(300)]  # 10 s at 30 Hz
    kept = passed(RateLimiter(max_rate), stamps)
    assert abs(len(kept) - 10 * expected_per_second) <= 1
    gaps = [b - a for a, b in zip(kept, kept[1:])]
    assert max(gaps) <= 2 * 1000.0 / max_rate


def test_rate_limiter_zero_is_unlimited_and_restarts_after_gaps_and_jumps_back():
    assert passed(RateLimiter(0.0), [0.0, 0.1, 0.2]) == [0.0, 0.1, 0.2]
    limiter = RateLimiter(10.0)
    assert passed(limiter, [0.0, 50.0, 100.0]) == [0.0, 100.0]
    assert passed(limiter, [5000.0, 5050.0]) == [5000.0]      # after a gap: restart
    assert passed(limiter, [1000.0, 1010.0]) == [1000.0]      # bag loop: clock jumped back
    with pytest.raises(ConfigError):
        RateLimiter(-1.0)
