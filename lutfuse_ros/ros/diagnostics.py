"""Node health: rates, latency percentiles, drops, and their ``/diagnostics`` message.

:class:`NodeStatistics` (no ROS) counts events per reporting window; :meth:`NodeStatistics.report`
turns a window and the running totals into a :class:`DiagnosticsReport` with a level
(``OK``/``WARN``) and key/value pairs; :func:`to_diagnostic_array` wraps it in a
``diagnostic_msgs/DiagnosticArray``. :class:`MessageThrottle` rate-limits repeated warnings
per kind of message (numbers ignored), so one bad camera cannot flood the log and different
problems are each still reported.

Latencies, per published image, in milliseconds:

- ``pipeline``: :meth:`FusionPipeline.fuse_timed` (pre-processing, model, post-processing);
- ``node``: from the arrival of the message that completed the pair to the return of
  ``publish`` (what the node costs downstream consumers, excluding transport);
- ``overhead``: ``node - pipeline`` per image, the latency the node adds to the pipeline;
- ``queue``: waiting in the worker's queue of one for the fusion in progress (part of
  ``overhead``; zero unless the input outpaces the pipeline);
- ``handling``: ``overhead - queue``: synchronisation, conversions, publication.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

OK, WARN, ERROR = 0, 1, 2
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR"}
_MAX_SAMPLES = 20_000  # latency samples kept per window (far above rate x period)
_LATENCY_KINDS = ("pipeline", "node", "overhead", "queue", "handling")
_COUNTED_EVENTS = ("visible", "thermal", "rejected_visible", "rejected_thermal", "pairs",
                   "rate_limited", "published", "failed", "idle", "undecodable_visible",
                   "undecodable_thermal")


@dataclass
class DiagnosticsReport:
    """One report: level, one-line message and ordered key/value strings."""

    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class _Window:
    started: float
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTED_EVENTS, 0))
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {kind: [] for kind in _LATENCY_KINDS})


class NodeStatistics:
    """Thread-safe event counts and latency samples of the fusion node.

    Args:
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._window = _Window(clock())
        self._totals = dict.fromkeys(_COUNTED_EVENTS, 0)

    def count(self, event: str) -> None:
        """Count one event.

        Events: ``visible``, ``thermal`` (messages in), ``rejected_visible``,
        ``rejected_thermal`` (bad messages dropped), ``pairs`` (synchronised),
        ``rate_limited``, ``failed`` (a pair whose fusion raised), ``idle`` (a pair not fused
        because nobody subscribes to an output), ``undecodable_visible``,
        ``undecodable_thermal`` (a compressed image that did not decode; its pair dropped).
        """
        with self._lock:
            self._window.counts[event] += 1
            self._totals[event] += 1

    def record_output(self, node_ms: float, pipeline_ms: float, queue_ms: float) -> None:
        """Count one published image with its latencies (milliseconds)."""
        with self._lock:
            self._window.counts["published"] += 1
            self._totals["published"] += 1
            samples = self._window.latencies
            if len(samples["node"]) < _MAX_SAMPLES:
                samples["node"].append(node_ms)
                samples["pipeline"].append(pipeline_ms)
                samples["overhead"].append(node_ms - pipeline_ms)
                samples["queue"].append(queue_ms)
                samples["handling"].append(node_ms - pipeline_ms - queue_ms)

    @property
    def totals(self) -> dict[str, int]:
        """Running totals of every event since construction."""
        with self._lock:
            return dict(self._totals)

    def report(self, *, warn_fraction: float, max_rate: float = 0.0,
               extra_totals: dict[str, Any] | None = None) -> DiagnosticsReport:
        """Close the current window and describe it.

        Args:
            warn_fraction: WARN when the output rate is below this fraction of the expected
                rate (the synchronised pair rate, capped by ``max_rate``).
            max_rate: the configured output limit in Hz (0 = none).
            extra_totals: more running totals to list (synchroniser and worker counters).

        Returns:
            The report; rates in Hz over the window, latencies as ``p50/p99`` ms.
        """
        with self._lock:
            window, self._window = self._window, _Window(self._clock())
            totals = dict(self._totals)
        seconds = max(self._clock() - window.started, 1e-9)
        rates = {name: window.counts[name] / seconds
                 for name in ("visible", "thermal", "pairs", "published", "idle")}
        values = {"window (s)": f"{seconds:.2f}",
                  "visible rate (Hz)": f"{rates['visible']:.2f}",
                  "thermal rate (Hz)": f"{rates['thermal']:.2f}",
                  "synchronised rate (Hz)": f"{rates['pairs']:.2f}",
                  "output rate (Hz)": f"{rates['published']:.2f}"}
        for kind in _LATENCY_KINDS:
            values[f"{kind} latency p50 (ms)"], values[f"{kind} latency p99 (ms)"] = \
                _percentiles(window.latencies[kind])
        values.update({f"total {name}": str(count) for name, count in totals.items()})
        for name, count in (extra_totals or {}).items():
            values[f"total {name}"] = str(count)
        level, message = _assess(rates, window.counts, warn_fraction, max_rate)
        return DiagnosticsReport(level, message, values)


def _percentiles(samples: list[float]) -> tuple[str, str]:
    if not samples:
        return "n/a", "n/a"
    p50, p99 = np.percentile(np.asarray(samples), [50, 99])
    return f"{p50:.2f}", f"{p99:.2f}"


def _assess(rates: dict[str, float], counts: dict[str, int], warn_fraction: float,
            max_rate: float) -> tuple[int, str]:
    visible, thermal, pairs = rates["visible"], rates["thermal"], rates["pairs"]
    if visible == 0 and thermal == 0:
        return OK, "waiting for images"
    if visible == 0 or thermal == 0:
        silent = "visible" if visible == 0 else "thermal"
        return WARN, f"no {silent} images received"
    if pairs == 0:
        return WARN, "images arrive on both topics but none pair up (check sync.slop and " \
                     "sync.thermal_offset)"
    wanted = pairs - rates["idle"]
    expected = min(wanted, max_rate) if max_rate > 0 else wanted
    problems = []
    if rates["published"] < warn_fraction * expected:
        problems.append(f"output {rates['published']:.1f} Hz < {warn_fraction:g} x expected "
                        f"{expected:.1f} Hz")
    if counts["failed"]:
        problems.append(f"{counts['failed']} pair(s) failed")
    rejected = counts["rejected_visible"] + counts["rejected_thermal"]
    if rejected:
        problems.append(f"{rejected} bad image(s) dropped")
    undecodable = counts["undecodable_visible"] + counts["undecodable_thermal"]
    if undecodable:
        problems.append(f"{undecodable} compressed image(s) did not decode")
    if problems:
        return WARN, "; ".join(problems)
    if counts["idle"] and not counts["published"]:
        return OK, "idle: no subscriber on the fused outputs, pairs are not fused"
    return OK, f"fusing at {rates['published']:.1f} Hz"


class MessageThrottle:
    """Decide whether to log a message, at most once per ``interval`` per kind.

    The kind of a message is its text with every number replaced, so "truncated: 10 bytes"
    and "truncated: 12 bytes" count as one kind while different problems are each logged.

    Args:
        interval: seconds between two logs of one kind (0 logs everything).
        clock: monotonic seconds.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    @staticmethod
    def kind_of(message: str) -> str:
        """The message with numbers replaced by ``#``."""
        return re.sub(r"\d+(\.\d+)?", "#", message)

    def admit(self, message: str) -> tuple[bool, int]:
        """Whether to log ``message`` now, and how many of its kind were suppressed since."""
        kind = self.kind_of(message)
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False, 0
            self._last[kind] = now
            return True, self._suppressed.pop(kind, 0)


def to_diagnostic_array(report: DiagnosticsReport, *, name: str, hardware_id: str, stamp: Any):
    """Wrap a report in a ``diagnostic_msgs/DiagnosticArray`` with one status.

    Args:
        report: from :meth:`NodeStatistics.report`.
        name: status name (the node's fully qualified name).
        hardware_id: what runs the fusion (model, backend, device).
        stamp: ``builtin_interfaces/Time`` of the header.
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=bytes([report.level]), name=name, message=report.message,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in report.values.items()])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
