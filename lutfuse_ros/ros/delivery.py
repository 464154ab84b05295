"""How many of a camera's frames reach the node, measured from the frames that did arrive.

A best-effort publisher whose middleware cannot deliver large samples (Fast DDS with its
default transports in the camera's own process) loses frames before the node sees them; the
node cannot fix that, but it can notice and say so, without the publisher's cooperation:

- **Publication sequence numbers** (preferred): the middleware numbers each writer's samples
  and rclpy hands the number to a subscription callback that takes a ``MessageInfo``
  (``publication_sequence_number``; Fast DDS fills it on Jazzy and Kilted). Over a window,
  ``last - first + 1`` samples were sent per publisher and the received ones were counted.
  Kilted also gives the publisher's gid, so several publishers on one topic are told apart;
  without it a sequence number going back starts a new run.
- **Lost-sample events** of the middleware (rclpy's ``message_lost``): Fast DDS counts the
  samples of which only some fragments arrived, which is how large best-effort frames die;
  it sees losses even when no frame arrives at all. Where both are available, the estimate
  with more missing frames wins.
- **Gaps between header stamps** (where sequence numbers are missing): a camera stamps its
  frames one period apart, so the gaps between received stamps are near-integer multiples
  ``k`` of the period, and ``k - 1`` frames are missing in each.

:func:`estimate_period` finds the period as the largest ``p`` such that most gaps are
near-integer multiples of ``p`` (candidates: a small gap divided by 1, 2, ...; a run of losses
cannot fake a longer period, because gaps of random multiples of ``T`` are rarely all multiples
of ``2T``). :class:`DeliveryMonitor` keeps one stream's recent stamps (by stamp time, so bags
and simulation clocks work) and turns them into a :class:`DeliveryEstimate`. Gaps longer than
``pause`` seconds are pauses of the camera, not losses (the silent-stream watchdog reports
those), and a stamp going back restarts the measurement (a clock jump or a looping bag).
No ROS imports.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

_NS_PER_S = 1_000_000_000
#: Largest distance of a gap from an integer multiple of the period (fraction of the period).
MULTIPLE_TOLERANCE = 0.2
#: Fraction of gaps that must be near-integer multiples for a period to be accepted.
MIN_FIT_FRACTION = 0.75
#: Candidate divisors of the reference gap tried (16: up to 94% of frames lost in a row).
MAX_DIVISOR = 16


@dataclass(frozen=True)
class DeliveryEstimate:
    """Frames received against frames the camera sent, over one window.

    Attributes:
        received: frames received.
        expected: ``received`` plus the frames missing.
        period_s: the camera's frame period found from the stamps, seconds (None when the
            sequence numbers gave the estimate).
        span_s: time covered (pauses excluded), seconds.
        evidence: ``publication sequence numbers`` or ``gaps between stamps``.
    """

    received: int
    expected: int
    period_s: float | None
    span_s: float
    evidence: str = "gaps between stamps"

    @property
    def ratio(self) -> float:
        """``received / expected`` in ``[0, 1]``."""
        return self.received / self.expected if self.expected else 1.0

    def describe(self) -> str:
        """``8 of ~40 frames (20%) (gaps between stamps, camera period 100.0 ms)``."""
        period = (f", camera period {1000 * self.period_s:.1f} ms"
                  if self.period_s is not None else "")
        return (f"{self.received} of ~{self.expected} frames ({100 * self.ratio:.0f}%) "
                f"({self.evidence}{period})")


def _fit_fraction(gaps: np.ndarray, period: float) -> float:
    multiples = gaps / period
    distance = np.abs(multiples - np.round(multiples))
    return float(np.mean((distance <= MULTIPLE_TOLERANCE) & (np.round(multiples) >= 1)))


def estimate_period(gaps_s: np.ndarray, min_period_s: float = 1e-3) -> float | None:
    """The frame period that explains the gaps between received stamps.

    Args:
        gaps_s: ``(N,)`` positive gaps between consecutive received stamps, seconds.
        min_period_s: shortest period considered (1 ms = 1 kHz).

    Returns:
        The period in seconds (refined as the median of ``gap / multiple``), or None when no
        candidate explains at least :data:`MIN_FIT_FRACTION` of the gaps.
    """
    gaps = np.asarray(gaps_s, dtype=np.float64)
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return None
    low = float(np.percentile(gaps, 10))
    reference = float(np.median(gaps[gaps <= 1.5 * low]))   # the cluster of the shortest gaps
    for divisor in range(1, MAX_DIVISOR + 1):
        period = reference / divisor
        if period < min_period_s:
            break
        for _ in range(2):   # refine: each gap over its multiple, median
            period = float(np.median(gaps / np.maximum(np.round(gaps / period), 1)))
        if _fit_fraction(gaps, period) >= MIN_FIT_FRACTION:
            return period
    return None


def estimate_delivery(stamps_ns: np.ndarray, pause_s: float = 2.0) -> DeliveryEstimate | None:
    """Received against expected frames from the stamps of the received frames.

    Args:
        stamps_ns: ``(N,)`` header stamps in nanoseconds, any order (duplicates ignored).
        pause_s: gaps at least this long are pauses, not losses (0: none is).

    Returns:
        The estimate, or None with fewer than 3 distinct stamps or no consistent period.
    """
    stamps = np.unique(np.asarray(stamps_ns, dtype=np.int64))
    if stamps.size < 3:
        return None
    gaps = np.diff(stamps).astype(np.float64) / _NS_PER_S
    if pause_s > 0:
        gaps = gaps[gaps < pause_s]
    period = estimate_period(gaps)
    if period is None:
        return None
    missing = int(np.sum(np.maximum(np.round(gaps / period), 1) - 1))
    return DeliveryEstimate(int(stamps.size), int(stamps.size) + missing, period,
                            float(gaps.sum()))


def estimate_from_sequences(runs: dict, min_expected: int = 3) -> DeliveryEstimate | None:
    """Received against sent samples from per-publisher publication sequence numbers.

    Args:
        runs: publisher key -> ``[(arrival_s, sequence), ...]`` of one window.
        min_expected: fewest samples sent for an estimate.

    Returns:
        The estimate, or None when too few samples were sent.
    """
    received = expected = 0
    first_s, last_s = float("inf"), float("-inf")
    for entries in runs.values():
        if not entries:
            continue
        sequences = {sequence for _, sequence in entries}
        received += len(sequences)
        expected += max(sequences) - min(sequences) + 1
        first_s = min(first_s, entries[0][0])
        last_s = max(last_s, entries[-1][0])
    if expected < min_expected or received == 0:
        return None
    return DeliveryEstimate(received, expected, None, last_s - first_s,
                            "publication sequence numbers")


class DeliveryMonitor:
    """One stream's recent frames and their delivery estimate (thread-safe).

    Args:
        window_s: time kept behind the newest frame, seconds (stamp time for stamps,
            arrival time for sequence numbers).
        min_frames: fewest received frames for an estimate from stamps.
        pause_s: see :func:`estimate_delivery`.
        jump_back_s: a stamp this far behind the newest restarts the stamp measurement.
        max_frames: frames kept at most (a bound on memory at any rate).
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, window_s: float = 20.0, min_frames: int = 8, pause_s: float = 2.0,
                 jump_back_s: float = 1.0, max_frames: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._window_ns = int(window_s * _NS_PER_S)
        self._jump_back_ns = int(jump_back_s * _NS_PER_S)
        self._min_frames = min_frames
        self._pause_s = pause_s
        self._max_frames = max_frames
        self._clock = clock
        self._lock = threading.Lock()
        self._stamps: deque[tuple[int, float]] = deque(maxlen=max_frames)  # (stamp, arrival)
        self._runs: dict[Any, deque] = {}
        self._arrivals: deque[float] = deque(maxlen=max_frames)
        self._lost: deque[tuple[float, int]] = deque(maxlen=max_frames)

    def add(self, stamp_ns: int, sequence: int | None = None, publisher: Any = None) -> None:
        """Note a received frame.

        Args:
            stamp_ns: its header stamp.
            sequence: its publication sequence number (None or 0: not available).
            publisher: a key of the publisher that sent it (None: unknown).
        """
        with self._lock:
            now = self._clock()
            self._arrivals.append(now)
            self._add_stamp(stamp_ns, now)
            if sequence:
                self._add_sequence(sequence, publisher)

    def lost(self, count: int) -> None:
        """Note samples the middleware reported as lost: ``count`` (``message_lost`` event)."""
        if count > 0:
            with self._lock:
                self._lost.append((self._clock(), count))

    def _add_stamp(self, stamp_ns: int, now: float) -> None:
        newest = self._stamps[-1][0] if self._stamps else None
        if newest is not None and stamp_ns < newest - self._jump_back_ns:
            self._stamps.clear()
        if newest is None or stamp_ns >= newest:
            self._stamps.append((stamp_ns, now))
        else:  # late but within the jump threshold: keep the deque sorted by stamp
            self._stamps = deque(sorted((*self._stamps, (stamp_ns, now))),
                                 maxlen=self._max_frames)
        cutoff = self._stamps[-1][0] - self._window_ns
        while self._stamps and self._stamps[0][0] < cutoff:
            self._stamps.popleft()

    def _add_sequence(self, sequence: int, publisher: Any) -> None:
        now = self._clock()
        run = self._runs.setdefault(publisher, deque(maxlen=self._max_frames))
        if run and sequence < run[-1][1]:   # a new writer behind the same key
            run.clear()
        run.append((now, sequence))
        for key in list(self._runs):
            entries = self._runs[key]
            while entries and entries[0][0] < now - self._window_s:
                entries.popleft()
            if not entries:
                del self._runs[key]

    def reset(self) -> None:
        """Forget everything (for example after the subscription was re-created)."""
        with self._lock:
            self._stamps.clear()
            self._runs.clear()
            self._arrivals.clear()
            self._lost.clear()

    def estimate(self) -> DeliveryEstimate | None:
        """The estimate over the window.

        From sequence numbers where the frames had them, else from the stamps; None with too
        few frames or no regular period.
        """
        now = self._clock()
        start = now - self._window_s
        with self._lock:
            runs = {key: [entry for entry in entries if entry[0] >= start]
                    for key, entries in self._runs.items()}
            stamps = np.array([stamp for stamp, arrived in self._stamps if arrived >= start],
                              dtype=np.int64)
            arrivals = [arrived for arrived in self._arrivals if arrived >= start]
            lost = [(at, count) for at, count in self._lost if at >= start]
        candidates = []
        if any(runs.values()):
            candidates.append(estimate_from_sequences(runs))
        if lost:
            times = arrivals + [at for at, _ in lost]
            candidates.append(DeliveryEstimate(
                len(arrivals), len(arrivals) + sum(count for _, count in lost), None,
                max(times) - min(times), "lost-sample events"))
        candidates = [c for c in candidates if c is not None]
        if candidates:
            return max(candidates, key=lambda c: c.expected - c.received)
        if np.unique(stamps).size < self._min_frames:
            return None
        return estimate_delivery(stamps, self._pause_s)
