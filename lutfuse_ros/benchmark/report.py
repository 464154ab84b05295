"""Benchmark reports: machine description, JSON, a Markdown table and a PNG plot."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

import numpy as np

from lutfuse_ros.atomic_files import atomic_output, refuse_existing
from lutfuse_ros.benchmark.runner import BASELINE_LABEL, CaseResult

REPORT_FILES = ("bench.json", "bench.md", "bench.png")
#: 1-minute load average per logical CPU above which a report warns that it was busy.
BUSY_LOAD_PER_CPU = 0.75


def machine_info() -> dict:
    """CPU, core count, library versions and load, to read the numbers against."""
    import cv2
    import torch

    from lutfuse_ros.backends.cpu_kernels.precision import cpu_has_native_bf16

    info = {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": cpu_has_native_bf16(), "opencv": cv2.__version__,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    try:
        import onnxruntime
        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown_table(results: list[CaseResult], machine: dict) -> str:
    """One Markdown table per model: latency, FPS, stages and speed-up per backend."""
    lines = [f"Machine: {machine.get('cpu')}, {machine.get('logical_cpus')} logical CPUs, "
             f"torch {machine.get('torch')} ({machine.get('torch_threads')} threads), "
             f"load average at start {machine.get('load_average')}.", "",
             "Full uint8 -> uint8 pipeline per frame. p50/p99 latency in ms; FPS from the mean; "
             "stages (pre / model / post) are medians; speed-up is the baseline's p50 over "
             "the case's p50, timed interleaved in the same run.", ""]
    loads = [machine.get("load_average", [0.0])[0], machine.get("load_average_end", [0.0])[0]]
    if max(loads) > BUSY_LOAD_PER_CPU * (machine.get("logical_cpus") or 1):
        lines[1:1] = ["", f"**Warning: the machine was busy (1-minute load {loads[0]} at the "
                          f"start, {loads[1]} at the end): absolute latencies are inflated; the "
                          "ratios, timed interleaved, are the comparable figures.**"]
    for model in dict.fromkeys(r.model for r in results):
        rows = [r for r in results if r.model == model]
        lines += [f"### {model} ({rows[0].family})", "",
                  "| resolution | backend | p50 ms | p99 ms | FPS | pre / model / post ms "
                  "| speed-up vs official approach |",
                  "|---|---|---:|---:|---:|---|---:|"]
        for row in rows:
            resolution = f"{row.width}x{row.height}"
            if row.status != "ok":
                lines.append(f"| {resolution} | {row.backend} | {row.status}: "
                             f"{_one_line(row.reason)} | | | | |")
                continue
            stages = " / ".join(f"{row.stages_ms[k]:.1f}" for k in
                                ("preprocess", "model", "postprocess")) if row.stages_ms else "-"
            speedup = (f"{row.speedup_vs_baseline:.1f}x" if row.speedup_vs_baseline
                       and row.backend != BASELINE_LABEL else "-")
            lines.append(f"| {resolution} | {row.backend} | {row.p50_ms:.2f} | "
                         f"{row.p99_ms:.2f} | {row.fps:.1f} | {stages} | {speedup} |")
        lines.append("")
    return "\n".join(lines)


def _one_line(text: str, limit: int = 80) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def plot_results(results: list[CaseResult], path: Path) -> None:
    """Grouped bars of p50 latency (log scale) per resolution, one panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r.model for r in results))
    figure, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.5), squeeze=False)
    for axis, model in zip(axes[0], models):
        rows = [r for r in results if r.model == model and r.status == "ok"]
        resolutions = list(dict.fromkeys(f"{r.width}x{r.height}" for r in rows))
        backends = list(dict.fromkeys(r.backend for r in rows))
        width = 0.8 / max(len(backends), 1)
        for index, backend in enumerate(backends):
            values = [next((r.p50_ms for r in rows if r.backend == backend
                            and f"{r.width}x{r.height}" == res), np.nan) for res in resolutions]
            positions = np.arange(len(resolutions)) + (index - (len(backends) - 1) / 2) * width
            axis.bar(positions, values, width, label=backend)
        axis.set_xticks(np.arange(len(resolutions)), resolutions)
        axis.set_yscale("log")
        axis.set_ylabel("p50 latency per frame (ms, log)")
        axis.set_title(model)
        axis.grid(axis="y", which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_reports(results: list[CaseResult], machine: dict, settings: dict, out_dir: Path,
                  overwrite: bool = False) -> list[Path]:
    """Write ``bench.json``, ``bench.md`` and ``bench.png`` into ``out_dir``, atomically.

    Raises:
        FileExistsError: a report exists and ``overwrite`` is False (checked before writing
            anything).
    """
    out_dir = Path(out_dir)
    paths = [out_dir / name for name in REPORT_FILES]
    for path in paths:
        refuse_existing(path, overwrite)
    payload = {"machine": machine, "settings": settings,
               "results": [r.to_json() for r in results]}
    with atomic_output(paths[0], overwrite) as temporary:
        temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    with atomic_output(paths[1], overwrite) as temporary:
        temporary.write_text(markdown_table(results, machine) + "\n", encoding="utf-8")
    with atomic_output(paths[2], overwrite) as temporary:
        plot_results(results, temporary)
    return paths
