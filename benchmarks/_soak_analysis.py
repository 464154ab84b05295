"""Figures of a soak run: process samples, memory growth, delivery, latency, checks.

Pure functions over what :mod:`_soak_run` collected (no ROS): the node process's samples
from ``/proc``, the camera's published stamps, the recorder's arrivals and the node's
``/diagnostics`` statuses. Times ``t_s`` are seconds since the first published pair (negative
while the node was loading); latencies are milliseconds; memory is MiB (2**20 bytes).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

_KIB_PER_MIB = 1024.0
_PERCENTILES = (50, 95, 99)
#: RSS windows (see :func:`memory_summary`): this long, or this fraction of the measured part
#: when that is shorter, but at least this many samples (and at most a third of the part).
WINDOW_S, WINDOW_FRACTION, WINDOW_SAMPLES = 60.0, 0.1, 20


@dataclass(frozen=True)
class ProcessSample:
    """One reading of a process.

    Attributes:
        t_s: seconds since the first published pair.
        rss_mib: resident set size (``VmRSS``), MiB.
        threads: number of threads.
        fds: open file descriptors.
        cpu_s: user + system CPU seconds since the process started.
        load1: the machine's one-minute load average.
    """

    t_s: float
    rss_mib: float
    threads: int
    fds: int
    cpu_s: float
    load1: float


def read_process_sample(pid: int, t_s: float) -> ProcessSample | None:
    """Read ``/proc/<pid>``; None when the process is gone (or is a zombie)."""
    proc = Path(f"/proc/{pid}")
    try:
        fields = dict(line.split(":", 1) for line in
                      (proc / "status").read_text().splitlines() if ":" in line)
        stat = (proc / "stat").read_text()
        fds = len(os.listdir(proc / "fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if "VmRSS" not in fields:  # zombie: exited, not yet reaped
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime = (int(v) for v in stat.rsplit(")", 1)[1].split()[11:13])
    return ProcessSample(t_s=t_s, rss_mib=int(fields["VmRSS"].split()[0]) / _KIB_PER_MIB,
                         threads=int(fields["Threads"]), fds=fds, cpu_s=(utime + stime) / ticks,
                         load1=os.getloadavg()[0])


def memory_summary(samples: list[ProcessSample], warmup_s: float) -> dict:
    """Resident memory before and after warm-up, robust to allocator churn.

    A node that allocates tens of MiB per frame and frees them again has a saw-tooth RSS
    (about 40 MiB from trough to peak for the MM-LUT at 640x480), so single samples, and
    even medians of a few, say little. What a leak raises is the floor of the saw-tooth: the
    memory still held after the transient buffers were freed. The samples after the warm-up
    are cut into windows of one minute (a tenth of the measured part when that is shorter
    than ten minutes, at least 20 samples, at most a third of the measured part), and each
    window's lowest sample (floor) and highest (peak) are kept.

    Returns:
        ``warmup_rss_mib`` (floor of the first window), ``final_rss_mib`` (floor of the last),
        ``max_growth_mib`` (highest window floor minus the first: the checked figure),
        ``final_growth_mib``, ``peak_growth_mib`` (the same for window peaks),
        ``max_rss_mib`` (largest sample), ``growth_mib_per_hour`` (least-squares slope of all
        samples after warm-up), ``window_s`` and ``windows`` (``[t_s, floor, peak]``),
        ``loaded_rss_mib`` (last sample before traffic), threads and file descriptors at
        warm-up and at the end, the node's mean CPU use after warm-up (percent of one core);
        values None when fewer than two samples follow the warm-up.
    """
    after = [s for s in samples if s.t_s >= warmup_s]
    before_traffic = [s for s in samples if s.t_s < 0]
    summary: dict = {"samples": len(samples), "samples_after_warmup": len(after),
                     "loaded_rss_mib": before_traffic[-1].rss_mib if before_traffic else None}
    keys = ("warmup_rss_mib", "final_rss_mib", "max_growth_mib", "final_growth_mib",
            "peak_growth_mib", "max_rss_mib", "growth_mib_per_hour", "window_s", "windows",
            "threads_warmup", "threads_final", "threads_max", "fds_warmup", "fds_final",
            "fds_max", "cpu_percent")
    if len(after) < 2:
        return {**summary, **dict.fromkeys(keys)}
    times = np.array([s.t_s for s in after])
    rss = np.array([s.rss_mib for s in after])
    slope = float(np.polyfit(times, rss, 1)[0]) if np.ptp(times) > 0 else 0.0
    span = float(times[-1] - times[0])
    interval = float(np.median(np.diff(times)))
    window = min(max(min(WINDOW_S, WINDOW_FRACTION * span), WINDOW_SAMPLES * interval),
                 max(span / 3, interval))
    windows = _windows(times, rss, window)
    floors = np.array([floor for _, floor, _ in windows])
    peaks = np.array([peak for _, _, peak in windows])
    return {**summary, "warmup_rss_mib": float(floors[0]), "final_rss_mib": float(floors[-1]),
            "max_growth_mib": float(floors.max() - floors[0]),
            "final_growth_mib": float(floors[-1] - floors[0]),
            "peak_growth_mib": float(peaks.max() - peaks[0]), "max_rss_mib": float(rss.max()),
            "growth_mib_per_hour": slope * 3600, "window_s": window, "windows": windows,
            "threads_warmup": after[0].threads, "threads_final": after[-1].threads,
            "threads_max": max(s.threads for s in after), "fds_warmup": after[0].fds,
            "fds_final": after[-1].fds, "fds_max": max(s.fds for s in after),
            "cpu_percent": 100 * (after[-1].cpu_s - after[0].cpu_s) / span if span > 0
            else None}


def _windows(times: np.ndarray, values: np.ndarray, window: float) -> list:
    """``[start, min, max]`` of consecutive windows of ``window`` length.

    A last window shorter than half of ``window`` is merged into the one before.
    """
    index = np.floor((times - times[0]) / window).astype(int)
    last = index.max()
    if last > 0 and times[-1] - (times[0] + last * window) < window / 2:
        index[index == last] = last - 1
    return [[float(times[0] + i * window), float(values[index == i].min()),
             float(values[index == i].max())] for i in np.unique(index)]


def percentiles(values_ms: np.ndarray) -> dict:
    """``count``, ``p50``, ``p95``, ``p99``, ``max`` (None when empty)."""
    values = np.asarray(values_ms, dtype=np.float64)
    if values.size == 0:
        return {"count": 0, **{f"p{q}": None for q in _PERCENTILES}, "max": None}
    return {"count": int(values.size),
            **{f"p{q}": float(np.percentile(values, q)) for q in _PERCENTILES},
            "max": float(values.max())}


def delivery_summary(published_ns: np.ndarray, received: np.ndarray, t0_ns: int,
                     warmup_s: float) -> dict:
    """Pairs in, fused images out and end-to-end latency after the warm-up.

    Args:
        published_ns: (P,) int64 stamps of the published pairs (wall clock).
        received: (R, 2) int64 ``(stamp_ns, receive_ns)`` of the fused images.
        t0_ns: stamp of the first published pair.
        warmup_s: pairs stamped before ``t0 + warmup`` are not counted.

    Returns:
        ``pairs_in``, ``delivered``, ``fraction``, ``input_hz``, ``output_hz``,
        ``window_s`` and ``end_to_end_ms`` (percentiles of camera publish -> recorder).
    """
    start_ns = t0_ns + int(warmup_s * 1e9)
    inputs = published_ns[published_ns >= start_ns]
    window_s = (inputs[-1] - inputs[0]) / 1e9 + (1.0 / _rate(inputs)) if inputs.size > 1 \
        else 0.0
    matched = received[np.isin(received[:, 0], inputs)] if received.size else \
        np.zeros((0, 2), np.int64)
    return {"pairs_in": int(inputs.size), "delivered": int(len(matched)),
            "fraction": len(matched) / inputs.size if inputs.size else 0.0,
            "input_hz": inputs.size / window_s if window_s else 0.0,
            "output_hz": len(matched) / window_s if window_s else 0.0,
            "window_s": float(window_s),
            "end_to_end_ms": percentiles((matched[:, 1] - matched[:, 0]) / 1e6)}


def _rate(stamps_ns: np.ndarray) -> float:
    return (stamps_ns.size - 1) / max((stamps_ns[-1] - stamps_ns[0]) / 1e9, 1e-9)


def timeline(published_ns: np.ndarray, received: np.ndarray, t0_ns: int, bin_s: float) -> list:
    """Input rate, output rate and latency percentiles per ``bin_s`` of publish time.

    A last bin shorter than half of ``bin_s`` is merged into the one before.
    """
    if published_ns.size < 2:
        return []
    end_s = (published_ns[-1] - t0_ns) / 1e9 + 1.0 / _rate(published_ns)
    edges = [*np.arange(0.0, end_s, bin_s), end_s]
    if len(edges) > 2 and edges[-1] - edges[-2] < bin_s / 2:
        del edges[-2]
    bins = []
    for start, stop in zip(edges[:-1], edges[1:]):
        low, high = t0_ns + int(start * 1e9), t0_ns + int(stop * 1e9)
        inputs = published_ns[(published_ns >= low) & (published_ns < high)]
        outputs = received[(received[:, 0] >= low) & (received[:, 0] < high)] \
            if received.size else np.zeros((0, 2), np.int64)
        outputs = outputs[np.isin(outputs[:, 0], inputs)]
        seconds = float(stop - start)
        latency = percentiles((outputs[:, 1] - outputs[:, 0]) / 1e6)
        bins.append({"t_s": float(start), "seconds": seconds,
                     "input_hz": inputs.size / seconds, "output_hz": len(outputs) / seconds,
                     **{key: latency[key] for key in ("p50", "p95", "p99", "max")}})
    return bins


def _window_figures(statuses: list[dict], kind: str) -> dict:
    """Median of the per-window p50 and largest per-window p99 of a diagnostics latency."""
    p50 = [float(s["values"][f"{kind} latency p50 (ms)"]) for s in statuses
           if s["values"].get(f"{kind} latency p50 (ms)", "n/a") != "n/a"]
    p99 = [float(s["values"][f"{kind} latency p99 (ms)"]) for s in statuses
           if s["values"].get(f"{kind} latency p99 (ms)", "n/a") != "n/a"]
    return {"windows": len(p50), "p50": float(np.median(p50)) if p50 else None,
            "p99_max": max(p99) if p99 else None}


def diagnostics_summary(statuses: list[dict], t0_ns: int, warmup_s: float) -> dict:
    """The node's own figures from ``/diagnostics`` after the warm-up.

    Returns:
        ``statuses`` (count), ``warnings`` (WARN or worse, with the first few distinct
        messages), ``hardware_id``, ``pipeline_ms`` / ``added_ms`` / ``queue_ms`` (median of the
        window p50s, largest window p99; ``added`` is the node's latency on top of the
        pipeline), and ``totals`` (the last status's running totals, e.g. pairs, published,
        failed, rejected images, queue and synchroniser drops).
    """
    after = [s for s in statuses if s["receive_ns"] >= t0_ns + int(warmup_s * 1e9)]
    warnings = [s for s in after if s["level"] >= 1]
    totals = {key.removeprefix("total "): value for key, value in
              (statuses[-1]["values"].items() if statuses else ()) if key.startswith("total ")}
    return {"statuses": len(after), "warnings": len(warnings),
            "warning_messages": sorted({s["message"] for s in warnings})[:5],
            "hardware_id": statuses[-1]["hardware_id"] if statuses else None,
            "pipeline_ms": _window_figures(after, "pipeline"),
            "added_ms": _window_figures(after, "overhead"),
            "queue_ms": _window_figures(after, "queue"),
            "totals": {k: int(v) if v.lstrip("-").isdigit() else v for k, v in totals.items()}}


def evaluate_checks(memory: dict, delivery: dict, diagnostics: dict, *, max_growth_mib: float,
                    min_fraction: float, min_rate_hz: float) -> list[dict]:
    """Pass/fail of the soak's bounds.

    - ``rss_growth``: the largest RSS after warm-up minus the warm-up value <= ``max_growth_mib``;
    - ``delivered_rate``: the output rate >= ``min_rate_hz`` and >= ``min_fraction`` of what
      the node can deliver: the input rate, or ``1000 / pipeline p50`` when the model is slower
      than the input (the node then drops pairs by design and fuses the newest).
    """
    growth = memory["max_growth_mib"]
    checks = [{"name": "rss_growth", "value": growth, "limit": max_growth_mib,
               "passed": bool(growth is not None and growth <= max_growth_mib),
               "detail": "highest window floor RSS - warm-up floor RSS (MiB)" if growth is not None
               else "fewer than two memory samples after the warm-up"}]
    pipeline_p50 = diagnostics["pipeline_ms"]["p50"]
    capacity = 1000.0 / pipeline_p50 if pipeline_p50 else None
    expected = min(delivery["input_hz"], capacity) if capacity else delivery["input_hz"]
    bound = max(min_rate_hz, min_fraction * expected, 1e-9)
    checks.append({"name": "delivered_rate", "value": delivery["output_hz"], "limit": bound,
                   "passed": bool(delivery["output_hz"] >= bound),
                   "detail": f"output Hz >= max({min_rate_hz:g}, {min_fraction:g} x "
                             f"{expected:.2f} Hz expected: input {delivery['input_hz']:.2f} Hz"
                             + (f", model capacity {capacity:.2f} Hz)" if capacity else ")")})
    return checks


def _fmt(value, pattern: str = "{:.1f}", missing: str = "n/a") -> str:
    return missing if value is None else pattern.format(value)


def render_table(report: dict) -> str:
    """The printed summary of a report (one metric per line)."""
    memory, delivery = report["memory"], report["delivery"]
    e2e, diag = delivery["end_to_end_ms"], report["diagnostics"]
    config = report["config"]
    latency = "/".join(_fmt(e2e[k]) for k in ("p50", "p95", "p99", "max"))
    totals = diag["totals"]
    total_text = ", ".join(f"{k} {v}" for k, v in totals.items()) or "n/a"
    rows = [
        ("run", f"{report['measured_s']:.0f} s of {config['duration_s']:g} s "
                f"({'complete' if report['complete'] else 'INCOMPLETE: ' + report['outcome']}), "
                f"warm-up {config['warmup_s']:g} s"),
        ("node", diag["hardware_id"] or config["model"] or "node default"),
        ("input", f"{config['rate_hz']:g} Hz {config['size'][0]}x{config['size'][1]} "
                  f"{config['visible_encoding']} + {config['thermal_encoding']}, "
                  f"{report['frames']['kind']} frames"),
        ("RSS loaded / at warm-up", f"{_fmt(memory['loaded_rss_mib'])} / "
                                    f"{_fmt(memory['warmup_rss_mib'])} MiB"),
        ("RSS final", f"{_fmt(memory['final_rss_mib'])} MiB (floors of "
                      f"{_fmt(memory['window_s'], '{:.0f}')} s windows)"),
        ("RSS max growth after warm-up", f"{_fmt(memory['max_growth_mib'], '{:+.1f}')} MiB "
                                         f"(limit {config['max_growth_mib']:g})"),
        ("RSS peaks: growth / largest", f"{_fmt(memory['peak_growth_mib'], '{:+.1f}')} MiB / "
                                        f"{_fmt(memory['max_rss_mib'])} MiB"),
        ("RSS trend after warm-up", f"{_fmt(memory['growth_mib_per_hour'], '{:+.1f}')} MiB/h"),
        ("threads / fds (warm-up -> final)",
         f"{memory['threads_warmup']} -> {memory['threads_final']} / "
         f"{memory['fds_warmup']} -> {memory['fds_final']}"),
        ("node CPU after warm-up", f"{_fmt(memory['cpu_percent'], '{:.0f}')} % of a core"),
        ("delivered", f"{delivery['delivered']}/{delivery['pairs_in']} pairs "
                      f"({100 * delivery['fraction']:.1f} %), {delivery['output_hz']:.2f} Hz "
                      f"of {delivery['input_hz']:.2f} Hz in"),
        ("end-to-end latency p50/p95/p99/max", f"{latency} ms"),
        ("added latency p50/p99 (diagnostics)", f"{_fmt(diag['added_ms']['p50'])}/"
                                                f"{_fmt(diag['added_ms']['p99_max'])} ms"),
        ("pipeline p50/p99 (diagnostics)", f"{_fmt(diag['pipeline_ms']['p50'])}/"
                                           f"{_fmt(diag['pipeline_ms']['p99_max'])} ms"),
        ("diagnostics warnings", f"{diag['warnings']} of {diag['statuses']} statuses"
                                 + (f": {diag['warning_messages'][0]}"
                                    if diag["warning_messages"] else "")),
        ("node totals", total_text),
        ("camera behind schedule p99", f"{_fmt(report['camera']['late_ms_p99'])} ms "
                                       f"(load {_fmt(report['machine']['load1_mean'], '{:.1f}')}"
                                       f" on {report['machine']['cpus']} CPUs)"),
    ]
    for check in report["checks"]:
        rows.append((f"check {check['name']}",
                     f"{'PASS' if check['passed'] else 'FAIL'}: {_fmt(check['value'], '{:.2f}')}"
                     f" vs {_fmt(check['limit'], '{:.2f}')} ({check['detail']})"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def plot_report(report: dict, path: Path) -> None:
    """RSS, latency and delivered rate against time (PNG, matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, bins = report["samples"], report["timeline"]
    warmup = report["config"]["warmup_s"]
    figure, (memory_axis, latency_axis, rate_axis) = plt.subplots(
        3, 1, figsize=(10, 9), sharex=True, constrained_layout=True)
    memory_axis.plot([s["t_s"] for s in samples], [s["rss_mib"] for s in samples], ".-",
                     markersize=2, label="node RSS")
    baseline = report["memory"]["warmup_rss_mib"]
    shown = [s["rss_mib"] for s in samples if s["t_s"] >= 0] or [s["rss_mib"] for s in samples]
    if report["memory"]["windows"]:
        windows = report["memory"]["windows"]
        for column, colour, label in ((1, "tab:orange", "window floor"),
                                      (2, "tab:purple", "window peak")):
            memory_axis.step([w[0] for w in windows] + [samples[-1]["t_s"]],
                             [w[column] for w in windows] + [windows[-1][column]],
                             where="post", color=colour, label=label)
    if baseline is not None:
        limit = baseline + report["config"]["max_growth_mib"]
        memory_axis.axhline(baseline, color="tab:green", linestyle=":", label="warm-up floor")
        memory_axis.axhline(limit, color="tab:red", linestyle="--",
                            label="warm-up floor + allowed growth")
        shown += [baseline, limit]
    margin = max(2.0, 0.1 * (max(shown) - min(shown)))
    memory_axis.set_ylim(min(shown) - margin, max(shown) + margin)  # traffic phase, not loading
    memory_axis.set_ylabel("RSS (MiB)")
    title = report["diagnostics"]["hardware_id"] or report["config"]["model"] or "fusion node"
    memory_axis.set_title(f"soak: {title}, {report['config']['rate_hz']:g} Hz "
                          f"{report['config']['size'][0]}x{report['config']['size'][1]}")
    centres = [b["t_s"] + b["seconds"] / 2 for b in bins]
    for key, style in (("p50", "-"), ("p99", "--"), ("max", ":")):
        latency_axis.plot(centres, [np.nan if b[key] is None else b[key] for b in bins], style,
                          label=f"end-to-end {key}")
    latency_axis.set_ylabel("latency (ms)")
    latency_axis.set_ylim(bottom=0)
    rate_axis.plot(centres, [b["input_hz"] for b in bins], label="pairs in")
    rate_axis.plot(centres, [b["output_hz"] for b in bins], label="fused out")
    rate_axis.set_ylabel("rate (Hz)")
    rate_axis.set_ylim(0, 1.15 * max([b["input_hz"] for b in bins] + [1.0]))
    rate_axis.set_xlabel("time since the first pair (s)")
    for axis in (memory_axis, latency_axis, rate_axis):
        axis.axvspan(min(0.0, samples[0]["t_s"] if samples else 0.0), warmup, color="0.9",
                     label="warm-up" if axis is memory_axis else None)
        axis.grid(True, alpha=0.3)
        axis.legend(loc="best", fontsize=8)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def samples_as_dicts(samples: list[ProcessSample]) -> list[dict]:
    """JSON-ready samples (rounded)."""
    return [{k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(s).items()}
            for s in samples]
