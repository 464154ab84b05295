"""How many of a camera's frames reach the node, measured from the stamps that did arrive.

A best-effort publisher whose middleware cannot deliver large samples (Fast DDS with its
default transports in the camera's own process) loses frames before the node sees them; the
node cannot fix that, but it can notice and say so. Without the publisher's cooperation (no
sequence numbers in ``sensor_msgs/Image``), the header stamps of the frames received reveal the
gaps: a camera stamps its frames one period apart, so the gaps between received stamps are
near-integer multiples ``k`` of the period, and ``k - 1`` frames are missing in each.

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
from collections import deque
from dataclasses import dataclass

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
        received: distinct stamps received.
        expected: ``received`` plus the frames missing in the gaps.
        period_s: the camera's frame period found from the stamps, seconds.
        span_s: stamp time covered (pauses excluded), seconds.
    """

    received: int
    expected: int
    period_s: float
    span_s: float

    @property
    def ratio(self) -> float:
        """``received / expected`` in ``[0, 1]``."""
        return self.received / self.expected if self.expected else 1.0

    def describe(self) -> str:
        """``8 of ~40 frames (20%), camera period 100.0 ms``."""
        return (f"{self.received} of ~{self.expected} frames ({100 * self.ratio:.0f}%), "
                f"camera period {1000 * self.period_s:.1f} ms")


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


class DeliveryMonitor:
    """One stream's recent stamps and their delivery estimate (thread-safe).

    Args:
        window_s: stamp time kept behind the newest stamp, seconds.
        min_frames: fewest received frames for an estimate.
        pause_s: see :func:`estimate_delivery`.
        jump_back_s: a stamp this far behind the newest restarts the measurement.
        max_frames: stamps kept at most (a bound on memory at any rate).
    """

    def __init__(self, window_s: float = 20.0, min_frames: int = 8, pause_s: float = 2.0,
                 jump_back_s: float = 1.0, max_frames: int = 4096) -> None:
        self._window_ns = int(window_s * _NS_PER_S)
        self._jump_back_ns = int(jump_back_s * _NS_PER_S)
        self._min_frames = min_frames
        self._pause_s = pause_s
        self._lock = threading.Lock()
        self._stamps: deque[int] = deque(maxlen=max_frames)

    def add(self, stamp_ns: int) -> None:
        """Note the stamp of a received frame."""
        with self._lock:
            newest = self._stamps[-1] if self._stamps else None
            if newest is not None and stamp_ns < newest - self._jump_back_ns:
                self._stamps.clear()
            if newest is None or stamp_ns >= newest:
                self._stamps.append(stamp_ns)
            else:  # late but within the jump threshold: keep the deque sorted
                self._stamps = deque(sorted((*self._stamps, stamp_ns)),
                                     maxlen=self._stamps.maxlen)
            cutoff = self._stamps[-1] - self._window_ns
            while self._stamps and self._stamps[0] < cutoff:
                self._stamps.popleft()

    def reset(self) -> None:
        """Forget the stamps (for example after the subscriptions were re-created)."""
        with self._lock:
            self._stamps.clear()

    def estimate(self) -> DeliveryEstimate | None:
        """The estimate over the window, or None with too few frames or no period."""
        with self._lock:
            stamps = np.fromiter(self._stamps, dtype=np.int64, count=len(self._stamps))
        if np.unique(stamps).size < self._min_frames:
            return None
        return estimate_delivery(stamps, self._pause_s)
