"""Faults the fusion node detects and recovers from by itself, independent of ROS.

The node must survive broken drivers and bad models without a restart. This module keeps the
state behind the fault part of its ``/diagnostics`` status; the session (:mod:`.session`) feeds
it and logs each transition (throttled):

- :class:`StreamWatchdog`: an input stream without images for ``stream_timeout`` seconds
  while the node is active is *silent* (WARN ``thermal stream silent for 3.0 s``) until its
  next image arrives; a publisher that is killed and restarted shows as both streams silent,
  then resumed.
- :class:`FailureStreak`: consecutive pairs whose fusion raised (a backend exception, NaN/inf
  model output); ``error_after_failures`` of them in a row make the status ERROR until a pair
  fuses again.
- :class:`FaultMonitor`: both of the above plus events that matter for one reporting window
  (a clock jump back that reset the synchroniser, a model swap or a refused one) and their
  running totals; :meth:`FaultMonitor.apply` merges all of it into the statistics report.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

from lutfuse_ros.ros.diagnostics import ERROR, OK, WARN, DiagnosticsReport

STREAMS = ("visible", "thermal")


@dataclass(frozen=True)
class Fault:
    """One line of the status message with its level (``OK``, ``WARN`` or ``ERROR``)."""

    level: int
    message: str


class StreamWatchdog:
    """Report input streams that stopped delivering images.

    A stream is *silent* once ``timeout`` seconds passed since its last image (for a stream
    that never delivered: since the first image of any stream). Before any image arrived
    nothing is silent: a node whose cameras have not started yet is waiting, not faulty.

    Args:
        timeout: seconds without images before a stream counts as silent; 0 disables.
        streams: stream names.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, timeout: float, streams: tuple[str, ...] = STREAMS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        started = clock()
        self._last = dict.fromkeys(streams, started)
        self._any_seen = False
        self._silent: set[str] = set()
        self._silences = dict.fromkeys(streams, 0)

    def arrived(self, stream: str) -> float | None:
        """Note an image on ``stream``.

        Returns:
            Seconds the stream had been without images when it was silent (it resumed now),
            else None.
        """
        now = self._clock()
        with self._lock:
            if not self._any_seen:
                self._any_seen = True
                self._last = dict.fromkeys(self._last, now)
            last, self._last[stream] = self._last[stream], now
            if stream in self._silent:
                self._silent.discard(stream)
                return now - last
        return None

    def check(self) -> list[tuple[str, float]]:
        """Streams that became silent since the previous check, with their silent seconds."""
        if self._timeout <= 0:
            return []
        now = self._clock()
        newly = []
        with self._lock:
            if not self._any_seen:
                return []
            for stream, last in self._last.items():
                if now - last > self._timeout and stream not in self._silent:
                    self._silent.add(stream)
                    self._silences[stream] += 1
                    newly.append((stream, now - last))
        return newly

    def silent(self) -> dict[str, float]:
        """Streams silent now -> seconds since their last image."""
        now = self._clock()
        with self._lock:
            return {stream: now - self._last[stream] for stream in self._last
                    if stream in self._silent}

    def values(self) -> dict[str, str]:
        """Diagnostics key/values: seconds since each stream's last image and silence counts."""
        now = self._clock()
        with self._lock:
            values = {f"{stream} seconds since last image":
                      f"{now - last:.1f}" if self._any_seen else "n/a"
                      for stream, last in self._last.items()}
            values.update({f"total {stream} silences": str(count)
                           for stream, count in self._silences.items()})
        return values


class FailureStreak:
    """Count consecutive failed pairs; ERROR from ``error_after`` on, cleared by a success.

    Args:
        error_after: consecutive failures that make the state ERROR (>= 1).
    """

    def __init__(self, error_after: int) -> None:
        self._error_after = error_after
        self._lock = threading.Lock()
        self._consecutive = 0
        self._last_error = ""
        self._episodes = 0

    def failed(self, error: BaseException) -> bool:
        """Count a failure; True when it is the one that reaches ``error_after``."""
        with self._lock:
            self._consecutive += 1
            self._last_error = f"{type(error).__name__}: {error}"
            crossed = self._consecutive == self._error_after
            self._episodes += int(crossed)
            return crossed

    def succeeded(self) -> int:
        """Count a success; return the length of the streak it ended (0: there was none)."""
        with self._lock:
            ended, self._consecutive = self._consecutive, 0
            return ended

    @property
    def consecutive(self) -> int:
        """Failures since the last success."""
        with self._lock:
            return self._consecutive

    def fault(self) -> Fault | None:
        """The ERROR while the streak is long enough, else None."""
        with self._lock:
            if self._consecutive < self._error_after:
                return None
            return Fault(ERROR, f"fusion failing: {self._consecutive} consecutive pairs failed "
                                f"(last: {self._last_error})")

    def values(self) -> dict[str, str]:
        """Diagnostics key/values of the streak."""
        with self._lock:
            return {"consecutive failures": str(self._consecutive),
                    "last failure": self._last_error or "none",
                    "total failure episodes (ERROR)": str(self._episodes)}


class FaultMonitor:
    """The fault state of one active session, for its diagnostics.

    Args:
        stream_timeout: see :class:`StreamWatchdog`.
        error_after_failures: see :class:`FailureStreak`.
        clock: monotonic seconds.
    """

    def __init__(self, stream_timeout: float, error_after_failures: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.streams = StreamWatchdog(stream_timeout, clock=clock)
        self.failures = FailureStreak(error_after_failures)
        self._lock = threading.Lock()
        self._events: list[Fault] = []
        self._totals = {"clock_jumps": 0, "model swaps": 0, "model swaps refused": 0}

    def retune(self, stream_timeout: float, error_after_failures: int) -> None:
        """Apply new thresholds (live parameter change); counts and state are kept."""
        self.streams._timeout = stream_timeout
        self.failures._error_after = error_after_failures

    def clock_jump(self, stream: str, newest_ns: int, stamp_ns: int) -> str:
        """Record a clock jump back on ``stream``; return the text to log."""
        message = (f"clock jumped back by {(newest_ns - stamp_ns) / 1e9:.3f} s on the {stream} "
                   f"stream: synchroniser reset, pairing restarts on the new timeline")
        self._record(Fault(WARN, message), "clock_jumps")
        return message

    def model_swapped(self, description: str) -> None:
        """Record a model swap (an OK-level event naming the new model)."""
        self._record(Fault(OK, f"model swapped to {description}"), "model swaps")

    def model_refused(self, reason: str) -> None:
        """Record a refused reload or model change."""
        self._record(Fault(WARN, f"model change refused: {reason}"), "model swaps refused")

    def _record(self, fault: Fault, counter: str) -> None:
        with self._lock:
            self._events.append(fault)
            self._totals[counter] += 1

    def apply(self, report: DiagnosticsReport, extra_faults: list[Fault] | tuple = (),
              ) -> DiagnosticsReport:
        """Merge the faults into a statistics report (and start a new event window).

        The level is the worst of the report's and the faults'; the message lists the faults,
        worst first, then the report's own message unless a silent-stream fault says the same.

        Args:
            report: the statistics report of the window.
            extra_faults: faults found elsewhere (input delivery), merged the same way.

        Returns:
            A new report with the fault key/values added.
        """
        with self._lock:
            events, self._events = self._events, []
            totals = dict(self._totals)
        silent = self.streams.silent()
        faults = [Fault(WARN, f"{stream} stream silent for {seconds:.1f} s")
                  for stream, seconds in silent.items()]
        streak = self.failures.fault()
        faults += ([streak] if streak else []) + _merged(events) + list(extra_faults)
        values = dict(report.values)
        values.update(self.streams.values())
        values.update(self.failures.values())
        values.update({f"total {name}": str(count) for name, count in totals.items()})
        if not faults:
            return replace(report, values=values)
        superseded = {"waiting for images"} | {f"no {stream} images received"
                                               for stream in silent}
        parts = [fault.message for fault in sorted(faults, key=lambda f: -f.level)]
        if report.message not in superseded:
            parts.append(report.message)
        level = max(report.level, *(fault.level for fault in faults))
        return DiagnosticsReport(level, "; ".join(parts), values)


def _merged(events: list[Fault]) -> list[Fault]:
    """Events of one window with repeats of one message counted instead of listed."""
    counts: dict[Fault, int] = {}
    for event in events:
        counts[event] = counts.get(event, 0) + 1
    return [fault if count == 1 else Fault(fault.level, f"{fault.message} ({count} times)")
            for fault, count in counts.items()]
