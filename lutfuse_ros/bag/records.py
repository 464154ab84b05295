"""What a replay published and received, and the report computed from it (no ROS here)."""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from lutfuse_ros.bag.player import THERMAL, VISIBLE, PlaybackPlan
from lutfuse_ros.bag.report import ReplayReport, latency_stats, rate_hz


def diagnostic_statuses(message: Any) -> list[dict[str, Any]]:
    """A ``diagnostic_msgs/DiagnosticArray`` as plain dicts.

    Returns:
        One ``{"name", "level", "message", "hardware_id", "values"}`` per status; ``level``
        is an int (0 OK, 1 WARN, 2 ERROR, 3 STALE), ``values`` maps key to string value.
    """
    statuses = []
    for status in message.status:
        level = status.level
        level = level[0] if isinstance(level, (bytes, bytearray)) else int(level)
        statuses.append({"name": status.name, "level": level, "message": status.message,
                         "hardware_id": status.hardware_id,
                         "values": {kv.key: kv.value for kv in status.values}})
    return statuses


@dataclass
class ReplayRecords:
    """Thread-safe log of a replay: publish and receive times by stamp, samples, diagnostics.

    Args:
        sample_visible_stamps: visible stamps whose images (visible and fused) are kept for
            the fusion metrics.
        sample_thermal_stamps: thermal stamps whose images are kept.

    Attributes:
        publish_times: stream -> header stamp -> monotonic publish time (s).
        outputs: ``(stamp_ns, receive_monotonic_s)`` per fused image, in arrival order.
        fused_samples: kept fused images by stamp (CDR).
        source_samples: kept input images by ``(stream, stamp)`` (CDR).
        diagnostics: statuses of the last ``/diagnostics`` message (see
            :func:`diagnostic_statuses`) and its receive time.
    """

    sample_visible_stamps: set[int] = field(default_factory=set)
    sample_thermal_stamps: set[int] = field(default_factory=set)
    publish_times: dict[str, dict[int, float]] = field(
        default_factory=lambda: {VISIBLE: {}, THERMAL: {}})
    outputs: list[tuple[int, float]] = field(default_factory=list)
    fused_samples: dict[int, bytes] = field(default_factory=dict)
    source_samples: dict[tuple[str, int], bytes] = field(default_factory=dict)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    diagnostics_time: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def published(self, stream: str, stamp_ns: int, when_s: float, cdr: bytes) -> None:
        """Note a published input message."""
        keep = stamp_ns in (self.sample_visible_stamps if stream == VISIBLE
                            else self.sample_thermal_stamps)
        with self._lock:
            self.publish_times[stream].setdefault(stamp_ns, when_s)
            if keep:
                self.source_samples[(stream, stamp_ns)] = cdr

    def received(self, stamp_ns: int, when_s: float, cdr: bytes) -> int:
        """Note a fused image; returns the number received so far."""
        with self._lock:
            self.outputs.append((stamp_ns, when_s))
            if stamp_ns in self.sample_visible_stamps:
                self.fused_samples[stamp_ns] = cdr
            return len(self.outputs)

    def diagnostics_received(self, statuses: list[dict[str, Any]], when_s: float) -> None:
        """Keep the latest diagnostics."""
        with self._lock:
            self.diagnostics, self.diagnostics_time = statuses, when_s

    def snapshot(self) -> tuple[dict[int, float], dict[int, float], list[tuple[int, float]],
                                list[dict[str, Any]]]:
        """Copies of ``(visible publish times, thermal publish times, outputs, diagnostics)``."""
        with self._lock:
            return (dict(self.publish_times[VISIBLE]), dict(self.publish_times[THERMAL]),
                    list(self.outputs), list(self.diagnostics))

    def output_count(self) -> int:
        """Fused images received so far."""
        with self._lock:
            return len(self.outputs)

    def last_output_time(self) -> float | None:
        """Receive time of the latest fused image."""
        with self._lock:
            return self.outputs[-1][1] if self.outputs else None


def temporal_window(pairs: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
    """The ``count`` consecutive predicted pairs in the middle of the bag (all if fewer).

    The middle keeps the node's start (model warm-up drops in real-time mode) and the end
    (pairs held by the synchroniser) out of the temporal-stability window.
    """
    if count <= 0:
        return []
    start = max(0, (len(pairs) - count) // 2)
    return pairs[start:start + count]


def sample_triples(records: ReplayRecords, plan: PlaybackPlan, visible_stamps: list[int]
                   ) -> tuple[list[tuple[bytes, bytes, bytes]], int]:
    """``(fused, visible, thermal)`` CDR of the given visible stamps that were fused and kept.

    Returns:
        The triples in the order of ``visible_stamps`` and the number of fused frames kept
        whose sources were not (a pair predicted differently from the node's).
    """
    partner = plan.thermal_partner()
    triples, missing = [], 0
    for stamp in visible_stamps:
        fused = records.fused_samples.get(stamp)
        if fused is None:
            continue
        visible = records.source_samples.get((VISIBLE, stamp))
        thermal = records.source_samples.get((THERMAL, partner.get(stamp, -1)))
        if visible is None or thermal is None:
            missing += 1
            continue
        triples.append((fused, visible, thermal))
    return triples, missing


def node_counters(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    """The node's running totals from its diagnostics, with each status's level and message.

    Keys starting with ``total`` (the node's counters since start: pairs, drops, rejected
    images...) are kept; windowed values (rates, latency over the last second) say little
    after the replay has drained and are left out, unless a status has no totals at all.
    Keys are prefixed with the status name when several statuses report.
    """
    counters: dict[str, Any] = {}
    several = len(statuses) > 1
    for status in statuses:
        prefix = f"{status['name']}: " if several else ""
        counters[f"{prefix}level"] = status["level"]
        if status["message"]:
            counters[f"{prefix}message"] = status["message"]
        values = status["values"]
        totals = {k: v for k, v in values.items() if k.startswith("total")} or values
        counters.update({f"{prefix}{key}": value for key, value in totals.items()})
    return counters


def summarise(plan: PlaybackPlan, records: ReplayRecords, setup: dict[str, Any],
              extra_sync: dict[str, Any], play_wall_s: float, total_wall_s: float,
              interrupted: bool) -> ReplayReport:
    """Counts, latencies and rates of a replay (metrics are added by the caller).

    Args:
        plan: the playback plan (predicted pairs).
        records: what was published and received.
        setup: settings to record in the report.
        extra_sync: more sync entries (flow-control timeouts, stamp order issues).
        play_wall_s: seconds from the first to the last publish.
        total_wall_s: seconds of the whole run.
        interrupted: the run was stopped early.
    """
    visible_times, thermal_times, outputs, statuses = records.snapshot()
    partner = plan.thermal_partner()
    first_publish = min([*visible_times.values(), *thermal_times.values()], default=0.0)
    latencies, pair_latencies, series, seen = [], [], [], set()
    unmatched = duplicates = 0
    for stamp, when in outputs:
        published = visible_times.get(stamp)
        if published is None:
            unmatched += 1
            continue
        if stamp in seen:
            duplicates += 1
            continue
        seen.add(stamp)
        latencies.append(1000.0 * (when - published))
        series.append((when - first_publish, latencies[-1]))
        thermal_time = thermal_times.get(partner.get(stamp, -1))
        if thermal_time is not None:
            pair_latencies.append(1000.0 * (when - max(published, thermal_time)))
    completed = sorted(max(visible_times[v], thermal_times[t]) for v, t in plan.pairs
                       if v in visible_times and t in thermal_times)
    expected = len(plan.pairs)
    frames = {"visible_in": len(visible_times), "thermal_in": len(thermal_times),
              "pairs_expected": expected, "pairs_published": len(completed),
              "pairs_held_at_end": plan.held_at_end, "fused_out": len(outputs),
              "fused_matched": len(seen), "unmatched_outputs": unmatched,
              "duplicate_outputs": duplicates,
              "delivered_ratio": len(seen) / expected if expected else math.nan,
              "delivered_ratio_releasable": (len(seen) / (expected - plan.held_at_end)
                                             if expected > plan.held_at_end else math.nan)}
    sync = {"visible_without_output": len(visible_times) - len(seen), **extra_sync,
            "node": node_counters(statuses) if statuses else None}
    rates = {"input_pair_rate_hz": rate_hz(completed),
             "fused_rate_hz": rate_hz(sorted(when for _, when in outputs)),
             "play_wall_s": play_wall_s, "total_wall_s": total_wall_s}
    return ReplayReport(setup=setup, frames=frames, sync=sync,
                        latency=asdict(latency_stats(latencies)),
                        latency_from_pair=asdict(latency_stats(pair_latencies)),
                        rates=rates, interrupted=interrupted, latency_series_ms=series)
