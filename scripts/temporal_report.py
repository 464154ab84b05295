#!/usr/bin/env python3
r"""Temporal-stability table of shipped models, official checkpoints and baselines.

Scores them on the shared thermal/visible clips (the numbers in docs/metrics.md#measured).

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python scripts/temporal_report.py \\
        [--out reports/temporal] [--shared ../shared] [--frames 120] [--threads 1]

Imports the official checkpoints from SHARED/reference_models into OUT/models (never into the
package) with ``lutfuse import-checkpoint``, fuses the first ``--frames`` frames of every clip
in SHARED/data/video/{ir,vi} with each model as the package runs it, and scores every fused
video with :class:`lutfuse_ros.metrics.temporal.TemporalStabilityMeter` (flow on the sources,
computed once per clip for all methods). Each clip's scores are kept in OUT/clips/CLIP.json:
a re-run skips finished clips (``--force`` redoes them), so the job can be stopped and resumed.
Writes OUT/temporal.md and OUT/temporal.json (per clip and the mean over clips).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.metrics.report import baseline_images
from lutfuse_ros.metrics.sequences import protocol_gray
from lutfuse_ros.metrics.temporal import (
    FLOW_PRESETS,
    TEMPORAL_METRIC_NAMES,
    TemporalStabilityMeter,
)
from lutfuse_ros.pipeline import FusionPipeline, PipelineConfig

#: (label, model: shipped name or imported file stem, luma mapping override or None).
METHODS = (
    ("lutfuse-mmlut (default)", "lutfuse-mmlut", None),
    ("lutfuse-mini", "lutfuse-mini", None),
    ("LUT-Fuse official", "lutfuse-official", "clamp"),
    ("MMDRFuse official (its per-image min-max)", "mmdrfuse-official", "minmax"),
    ("MMDRFuse official, clamped", "mmdrfuse-official", "clamp"),
)
BASELINES = ("average (ir+vi)/2", "max(ir, vi)")


def import_official(shared: Path, models: Path) -> dict[str, Path]:
    """The official checkpoints as artifacts in ``models`` (imported once)."""
    models.mkdir(parents=True, exist_ok=True)
    reference = shared / "reference_models"
    commands = {
        "lutfuse-official": ["lutfuse", "--lut", str(reference / "lutfuse" / "fine_tuned_lut.npy"),
                             "--context", str(reference / "lutfuse" / "generator_context.pth")],
        "mmdrfuse-official": ["mmdrfuse", "--student",
                              str(reference / "mmdrfuse" / "student.model")],
    }
    paths = {}
    for name, arguments in commands.items():
        path = models / f"{name}.safetensors"
        if not path.is_file():
            subprocess.run([sys.executable, "-m", "lutfuse_ros.cli.main", "import-checkpoint",
                            *arguments, "-o", str(path)], check=True)
        paths[name] = path
    return paths


def build_pipelines(official: dict[str, Path], threads: int) -> dict[str, FusionPipeline]:
    """One pipeline per method, default settings except the listed luma mapping."""
    pipelines = {}
    for label, model, mapping in METHODS:
        artifact = official.get(model, model)
        pipelines[label] = FusionPipeline.from_artifact(
            str(artifact), config=PipelineConfig(luma_mapping=mapping), threads=threads)
    return pipelines


def score_clip(clip: str, shared: Path, pipelines: dict[str, FusionPipeline], frames: int,
               preset: str = "medium") -> dict:
    """Fuse and score the first ``frames`` frames of one clip with every method."""
    captures = {kind: cv2.VideoCapture(str(shared / "data" / "video" / kind / f"{clip}.mp4"))
                for kind in ("vi", "ir")}
    meter = TemporalStabilityMeter([*pipelines, *BASELINES], preset)
    model_seconds = dict.fromkeys(pipelines, 0.0)
    try:
        for _ in tqdm(range(frames), desc=clip, unit="frame", file=sys.stderr, leave=False):
            (ok_vi, visible), (ok_ir, infrared) = (captures[k].read() for k in ("vi", "ir"))
            if not (ok_vi and ok_ir):
                break
            thermal = cv2.cvtColor(infrared, cv2.COLOR_BGR2GRAY)
            fused = {}
            for label, pipeline in pipelines.items():
                start = time.perf_counter()
                fused[label] = protocol_gray(pipeline.fuse(visible, thermal))
                model_seconds[label] += time.perf_counter() - start
            # the sources as the fusion saw them (8-bit thermal passes through unchanged)
            ir = next(iter(pipelines.values())).normalise_thermal(thermal).astype(np.float64)
            vi = protocol_gray(visible).astype(np.float64)
            fused.update(baseline_images(ir, vi))
            meter.add(ir, vi, fused)
    finally:
        for capture in captures.values():
            capture.release()
    return {"clip": clip, "frames": meter.frame_pairs + 1,
            "scores": {label: scores.as_dict() for label, scores in meter.scores().items()},
            "fuse_seconds": model_seconds}


def _cell(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def mean_over_clips(results: list[dict]) -> dict[str, dict[str, float]]:
    """Per label, the mean of each score over the clips (NaN-free clips only)."""
    labels = list(results[0]["scores"])
    means = {}
    for label in labels:
        means[label] = {}
        for name in TEMPORAL_METRIC_NAMES:
            values = [r["scores"][label][name] for r in results
                      if r["scores"][label][name] is not None
                      and math.isfinite(r["scores"][label][name])]
            means[label][name] = float(np.mean(values)) if values else math.nan
    return means


def markdown(results: list[dict], means: dict, header: str) -> str:
    """The mean table, then one tRWE/tFlicker column pair per clip."""
    clips = [r["clip"] for r in results]
    average = means[BASELINES[0]]["tRWE"]
    lines = [header, "", "| method | tRWE | vs average | tWE | tFlicker | "
             + " | ".join(f"{c} tRWE / tFlicker" for c in clips) + " |",
             "|---|---|---|---|---|" + "---|" * len(clips)]
    for label, row in means.items():
        ratio = row["tRWE"] / average if average else math.nan
        per_clip = " | ".join(f"{_cell(r['scores'][label]['tRWE'])} / "
                              f"{_cell(r['scores'][label]['tFlicker'])}" for r in results)
        lines.append(f"| {label} | {_cell(row['tRWE'])} | {_cell(ratio, 3)} | "
                     f"{_cell(row['tWE'], 3)} | {_cell(row['tFlicker'])} | {per_clip} |")
    frames = ", ".join(f"{r['clip']}: {r['frames']}" for r in results)
    lines += ["", f"Frames per clip: {frames}. Mean over clips; lower is more stable. "
              "`vs average` = tRWE / tRWE of the average baseline (<= 1: at least as stable)."]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    with atomic_output(path, overwrite=True) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/temporal"))
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--frames", type=int, default=120, help="first N frames of each clip")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--flow-preset", choices=sorted(FLOW_PRESETS), default="medium")
    parser.add_argument("--force", action="store_true", help="redo finished clips")
    args = parser.parse_args()
    video = args.shared / "data" / "video"
    clips = sorted(path.stem for path in (video / "vi").glob("*.mp4")
                   if (video / "ir" / path.name).is_file())
    if not clips:
        print(f"no clip pairs under {video}/{{ir,vi}}", file=sys.stderr)
        return 2
    official = import_official(args.shared, args.out / "models")
    pipelines = build_pipelines(official, args.threads)
    (args.out / "clips").mkdir(parents=True, exist_ok=True)
    results = []
    for clip in clips:
        cached = args.out / "clips" / f"{clip}.json"
        if cached.is_file() and not args.force:
            result = json.loads(cached.read_text())
            if (result.get("requested_frames"), result.get("flow_preset", "medium")) == (
                    args.frames, args.flow_preset):
                results.append(result)
                continue
        result = score_clip(clip, args.shared, pipelines, args.frames, args.flow_preset)
        result["requested_frames"], result["flow_preset"] = args.frames, args.flow_preset
        _write(cached, json.dumps(result, indent=1) + "\n")
        results.append(result)
        print(f"{clip}: done", file=sys.stderr)
    means = mean_over_clips(results)
    header = (f"Temporal stability, first {args.frames} frames of each clip, "
              f"{time.strftime('%Y-%m-%d', time.gmtime())}, {platform.processor() or 'CPU'} "
              f"({os.cpu_count()} cores), torch threads {args.threads}, flow {args.flow_preset}; "
              f"command: `scripts/temporal_report.py --frames {args.frames} --flow-preset "
              f"{args.flow_preset}`")
    table = markdown(results, means, header)
    _write(args.out / "temporal.md", table)
    _write(args.out / "temporal.json", json.dumps(
        {"frames": args.frames, "flow_preset": args.flow_preset, "clips": results,
         "means": means}, indent=1) + "\n")
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
