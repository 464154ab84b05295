"""The replay report: counts, sync misses, latency, rates and fusion metrics; JSON, Markdown, PNG.

Latency is publish-to-receive wall time in the replay process, matched by header stamp: the
time from publishing the visible message whose stamp the fused image carries to receiving
that fused image. It includes transport both ways, the node's synchroniser waiting for the
next frame (an approximate-time policy releases a pair only then), conversion and inference.
``latency_from_pair`` starts instead when the later member of the predicted pair was published.

Fusion metrics are the means of :func:`lutfuse_ros.metrics.evaluate_pair` over a subsample of
fused frames against their visible and thermal sources (protocol gray images; 16-bit thermal
scaled to 8 bit with the pipeline's default percentile normalisation; a thermal frame of
another size resized to the fused size). Temporal stability
(:mod:`lutfuse_ros.metrics.temporal`) is measured on a window of consecutive pairs with the
same gray images, except that 16-bit thermal is stretched with one range for the whole
window; a pair the node dropped is simply absent, so the motion spans the gap.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.errors import InputError
from lutfuse_ros.metrics import METRIC_NAMES, evaluate_pair
from lutfuse_ros.metrics.temporal import (
    SOURCE_LABELS,
    TEMPORAL_METRIC_NAMES,
    TemporalStabilityMeter,
)
from lutfuse_ros.preprocessing import ThermalConfig, ThermalNormaliser, sequence_percentile_range

REPORT_SUFFIXES = (".json", ".md", "_latency.png")


@dataclass
class LatencyStats:
    """Summary of latencies in milliseconds (NaN fields when ``count`` is 0)."""

    count: int = 0
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    mean_ms: float = math.nan


def latency_stats(values_ms: list[float]) -> LatencyStats:
    """Percentiles (linear interpolation), maximum and mean of ``values_ms``."""
    if not values_ms:
        return LatencyStats()
    values = np.asarray(values_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return LatencyStats(len(values), float(p50), float(p90), float(p99), float(values.max()),
                        float(values.mean()))


def rate_hz(times_s: list[float]) -> float:
    """Mean event rate of sorted event times: ``(n - 1) / span`` (NaN for fewer than 2)."""
    if len(times_s) < 2 or times_s[-1] <= times_s[0]:
        return math.nan
    return (len(times_s) - 1) / (times_s[-1] - times_s[0])


@dataclass
class ReplayReport:
    """Everything ``lutfuse replay`` measured.

    Attributes:
        setup: bag, topics, node mode, rate, domain id and other settings of the run.
        frames: ``visible_in``, ``thermal_in`` (published), ``pairs_expected`` (predicted by
            the package's synchroniser with the node's parameters), ``pairs_held_at_end``,
            ``fused_out`` (received), ``fused_matched`` (stamp equals a published visible
            stamp), ``unmatched_outputs``, ``duplicate_outputs``, ``pairs_published``,
            ``delivered_ratio`` (matched / expected) and ``delivered_ratio_releasable``
            (matched / (expected - held at end)).
        sync: ``visible_without_output`` (counted here), ``flow_control_timeouts``,
            ``stamp_order`` (per bag topic), and ``node`` (the node's own counters from its
            last ``/diagnostics`` message, when one arrived).
        latency: :class:`LatencyStats` fields, from the visible publish.
        latency_from_pair: :class:`LatencyStats` fields, from the pair's completion.
        rates: ``input_pair_rate_hz``, ``fused_rate_hz``, ``play_wall_s``, ``total_wall_s``.
        metrics: means per metric of :data:`METRIC_NAMES` plus ``frames_evaluated``.
        temporal: temporal stability of the fused frames of a window of consecutive pairs
            (see :func:`temporal_stability_of_samples`).
        interrupted: the run was stopped early (Ctrl-C); numbers cover what was played.
        latency_series_ms: per matched output ``(seconds since the first publish, latency)``.
    """

    setup: dict[str, Any] = field(default_factory=dict)
    frames: dict[str, Any] = field(default_factory=dict)
    sync: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=lambda: asdict(LatencyStats()))
    latency_from_pair: dict[str, Any] = field(default_factory=lambda: asdict(LatencyStats()))
    rates: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    temporal: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    latency_series_ms: list[tuple[float, float]] = field(default_factory=list)


def gray_for_metrics(image: np.ndarray) -> np.ndarray:
    """The metrics protocol's gray image of a BGR or gray uint8 array: float32, rounded."""
    if image.ndim == 3:
        return np.round(cv2.cvtColor(image.astype(np.float32), cv2.COLOR_BGR2GRAY))
    return image.astype(np.float32)


def fusion_metric_means(samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                        ) -> dict[str, Any]:
    """Mean of :func:`evaluate_pair` over ``(fused, visible, thermal)`` samples.

    Args:
        samples: fused ``(H, W, 3)`` BGR or ``(H, W)`` uint8; visible ``(H, W, 3)`` BGR or
            ``(H, W)`` uint8; thermal ``(h, w)`` uint8 or uint16.

    Returns:
        ``{metric: mean}`` for every metric, ``frames_evaluated`` and ``skipped`` (reasons).
    """
    normalise = ThermalNormaliser()
    rows, skipped = [], []
    for fused, visible, thermal in samples:
        fused_gray = gray_for_metrics(fused)
        height, width = fused_gray.shape
        visible_gray = gray_for_metrics(visible)
        if visible_gray.shape != fused_gray.shape:
            skipped.append(f"fused {width}x{height} differs from visible "
                           f"{visible_gray.shape[1]}x{visible_gray.shape[0]} (aligned crop?)")
            continue
        thermal8 = normalise(thermal)
        if thermal8.shape != fused_gray.shape:
            thermal8 = cv2.resize(thermal8, (width, height), interpolation=cv2.INTER_LINEAR)
        try:
            rows.append(evaluate_pair(fused_gray, thermal8.astype(np.float32), visible_gray))
        except InputError as error:
            skipped.append(str(error))
    means = {name: (float(np.mean([row[name] for row in rows])) if rows else math.nan)
             for name in METRIC_NAMES}
    return {**means, "frames_evaluated": len(rows), "skipped": skipped}


def temporal_stability_of_samples(samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                                  ) -> dict[str, Any]:
    """Temporal stability of consecutive ``(fused, visible, thermal)`` samples in time order.

    Args:
        samples: as for :func:`fusion_metric_means`, ordered by stamp; frames whose fused
            size differs from the visible one (or from the first frame's) are skipped.

    Returns:
        ``tRWE``, ``tWE``, ``tFlicker`` (lower is more stable), ``frame_pairs``,
        ``valid_fraction``, the sources' ``tRWE`` as ``source_ir_tRWE`` and
        ``source_vi_tRWE`` (how much the inputs change by themselves), ``frames_evaluated`` and
        ``skipped`` (reasons). Scores are NaN with fewer than two usable frames.

    The infrared reference of 16-bit thermal is one linear stretch for the whole window
    (its 1-99 % range over all frames, :func:`sequence_percentile_range`), not the
    pipeline's per-frame percentile: flicker a per-frame thermal range adds to the fused
    video then counts against it. 8-bit thermal is used as it is.
    """
    wide = [thermal for _, _, thermal in samples if thermal.dtype == np.uint16]
    normalise = ThermalNormaliser(ThermalConfig(
        mode="fixed", fixed_range=sequence_percentile_range(wide)) if wide else None)
    meter = TemporalStabilityMeter(["fused"])
    skipped: list[str] = []
    shape = None
    evaluated = 0
    for fused, visible, thermal in samples:
        fused_gray = gray_for_metrics(fused).astype(np.float64)
        visible_gray = gray_for_metrics(visible).astype(np.float64)
        height, width = fused_gray.shape
        if visible_gray.shape != fused_gray.shape or shape not in (None, fused_gray.shape):
            skipped.append(f"fused {width}x{height} differs from the visible frame or the "
                           "first fused frame")
            continue
        thermal8 = normalise(thermal)
        if thermal8.shape != fused_gray.shape:
            thermal8 = cv2.resize(thermal8, (width, height), interpolation=cv2.INTER_LINEAR)
        meter.add(thermal8.astype(np.float64), visible_gray, {"fused": fused_gray})
        shape = fused_gray.shape
        evaluated += 1
    scores = meter.scores()
    result: dict[str, Any] = scores["fused"].as_dict()
    result["source_ir_tRWE"] = scores[SOURCE_LABELS[0]].tRWE
    result["source_vi_tRWE"] = scores[SOURCE_LABELS[1]].tRWE
    return {**result, "frames_evaluated": evaluated, "skipped": skipped}


def report_paths(prefix: str | os.PathLike[str]) -> list[Path]:
    """``PREFIX.json``, ``PREFIX.md`` and ``PREFIX_latency.png``."""
    return [Path(f"{prefix}{suffix}") for suffix in REPORT_SUFFIXES]


def _fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def to_markdown(report: ReplayReport) -> str:
    """A human-readable summary of ``report``."""
    setup, frames, sync, rates = report.setup, report.frames, report.sync, report.rates
    lines = [f"# Replay of {setup.get('bag')}", ""]
    if report.interrupted:
        lines += ["**Interrupted**: the numbers cover what was played before the stop.", ""]
    lines += [f"- mode: {setup.get('mode')}, node: {setup.get('node')}, ROS_DOMAIN_ID "
              f"{setup.get('domain_id')}",
              f"- topics: {setup.get('visible_topic')} + {setup.get('thermal_topic')} -> "
              f"{setup.get('fused_topic')}",
              f"- output bag: {setup.get('output_bag') or 'not recorded'}", "",
              "| frames | count |", "|---|---|"]
    for key in ("visible_in", "thermal_in", "pairs_expected", "pairs_held_at_end", "fused_out",
                "fused_matched", "unmatched_outputs", "duplicate_outputs"):
        lines.append(f"| {key} | {frames.get(key, 'n/a')} |")
    lines.append(f"| delivered (matched / expected) | "
                 f"{_fmt(100 * frames.get('delivered_ratio', math.nan))} % |")
    lines.append(f"| delivered of the pairs the node could release | "
                 f"{_fmt(100 * frames.get('delivered_ratio_releasable', math.nan))} % |")
    lines += ["", "| sync | count |", "|---|---|",
              f"| visible frames without output | {sync.get('visible_without_output')} |",
              f"| flow-control timeouts | {sync.get('flow_control_timeouts')} |"]
    for topic, issues in sync.get("stamp_order", {}).items():
        lines.append(f"| stamps backwards / duplicate on {topic} | {issues.get('backwards')} / "
                     f"{issues.get('duplicates')} |")
    node = sync.get("node") or {}
    for key, value in node.items():
        lines.append(f"| node: {key} | {value} |")
    lines += ["", "| latency (ms) | p50 | p90 | p99 | max | n |", "|---|---|---|---|---|---|"]
    for label, stats in (("visible publish -> fused received", report.latency),
                         ("pair complete -> fused received", report.latency_from_pair)):
        lines.append(f"| {label} | {_fmt(stats['p50_ms'])} | {_fmt(stats['p90_ms'])} | "
                     f"{_fmt(stats['p99_ms'])} | {_fmt(stats['max_ms'])} | {stats['count']} |")
    lines += ["", f"- input pair rate: {_fmt(rates.get('input_pair_rate_hz', math.nan), 2)} Hz, "
              f"fused rate: {_fmt(rates.get('fused_rate_hz', math.nan), 2)} Hz",
              f"- playback wall time: {_fmt(rates.get('play_wall_s', math.nan), 2)} s "
              f"(whole run {_fmt(rates.get('total_wall_s', math.nan), 2)} s)", ""]
    metrics = report.metrics
    if metrics.get("frames_evaluated"):
        names = [name for name in METRIC_NAMES if name in metrics]
        lines += [f"Fusion metrics, mean over {metrics['frames_evaluated']} fused frames:", "",
                  "| " + " | ".join(names) + " |", "|" + "---|" * len(names),
                  "| " + " | ".join(_fmt(metrics[n], 3) for n in names) + " |", ""]
    else:
        lines += ["Fusion metrics: none evaluated.", ""]
    temporal = report.temporal
    if temporal.get("frame_pairs"):
        lines += [f"Temporal stability over {temporal['frames_evaluated']} consecutive fused "
                  "frames (lower is more stable; the sources' tRWE for reference):", "",
                  "| " + " | ".join(TEMPORAL_METRIC_NAMES) + " | source ir tRWE | "
                  "source vi tRWE |", "|" + "---|" * (len(TEMPORAL_METRIC_NAMES) + 2),
                  "| " + " | ".join(_fmt(temporal[n], 4) for n in TEMPORAL_METRIC_NAMES)
                  + f" | {_fmt(temporal['source_ir_tRWE'], 4)} | "
                  f"{_fmt(temporal['source_vi_tRWE'], 4)} |", ""]
    else:
        lines += ["Temporal stability: fewer than two consecutive fused frames.", ""]
    return "\n".join(lines)


def to_json(report: ReplayReport) -> str:
    """``report`` as JSON (NaN written as ``null``)."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value
    return json.dumps(clean(asdict(report)), indent=2) + "\n"


def _replace_atomically(path: Path, write: Any) -> None:
    """Call ``write(temporary_path)`` then rename the result to ``path``."""
    with atomic_output(path, overwrite=True) as temporary:
        write(temporary)


def plot_latency(report: ReplayReport, path: Path) -> None:
    """Latency over time and its histogram as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    series = np.asarray(report.latency_series_ms, dtype=np.float64).reshape(-1, 2)
    figure, (over_time, histogram) = pyplot.subplots(1, 2, figsize=(10, 3.6))
    try:
        over_time.plot(series[:, 0], series[:, 1], ".", markersize=3)
        over_time.set_xlabel("replay time (s)")
        over_time.set_ylabel("latency (ms)")
        over_time.set_title("visible publish -> fused received")
        if len(series):
            histogram.hist(series[:, 1], bins=min(50, max(5, len(series) // 4)))
            for label, key, colour in (("p50", "p50_ms", "tab:green"),
                                       ("p99", "p99_ms", "tab:red")):
                histogram.axvline(report.latency[key], linestyle="--", color=colour,
                                  label=f"{label} {report.latency[key]:.1f} ms")
            histogram.legend()
        histogram.set_xlabel("latency (ms)")
        histogram.set_ylabel("fused frames")
        figure.tight_layout()
        figure.savefig(path, dpi=100, format="png")
    finally:
        pyplot.close(figure)


def save_report(report: ReplayReport, prefix: str | os.PathLike[str], force: bool
                ) -> list[Path]:
    """Write ``PREFIX.json``, ``PREFIX.md`` and ``PREFIX_latency.png`` (temp file + rename).

    Raises:
        FileExistsError: one of them exists and ``force`` is false.
    """
    paths = report_paths(prefix)
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise FileExistsError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    json_path, markdown_path, plot_path = paths
    _replace_atomically(json_path, lambda p: p.write_text(to_json(report), encoding="utf-8"))
    _replace_atomically(markdown_path,
                        lambda p: p.write_text(to_markdown(report), encoding="utf-8"))
    _replace_atomically(plot_path, lambda p: plot_latency(report, p))
    return paths
