#!/usr/bin/env python3
r"""Temporal stability with 16-bit thermal normalised per frame or with a smoothed range.

Gives the thermal table in docs/metrics.md#findings.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python scripts/thermal_range_report.py \\
        [--shared ../shared] [--frames 60] [--model lutfuse-mini] [CLIP ...]

Each shared clip's 8-bit thermal frames are also fed as 16-bit (``ir * 257``) through the
pipeline's thermal normalisation (per-frame percentile, the default; minmax; percentile with
``range_smoothing`` 0.9). Every fused video is scored against the *linear* thermal, so
flicker that the per-frame range adds counts against the fusion. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from lutfuse_ros.metrics.sequences import protocol_gray
from lutfuse_ros.metrics.temporal import TemporalStabilityMeter
from lutfuse_ros.pipeline import FusionPipeline, PipelineConfig
from lutfuse_ros.preprocessing import ThermalConfig

VARIANTS = {
    "8-bit (pass-through)": None,
    "16-bit, per-frame percentile (default)": ThermalConfig(),
    "16-bit, per-frame minmax": ThermalConfig(mode="minmax"),
    "16-bit, percentile, range_smoothing 0.9": ThermalConfig(range_smoothing=0.9),
}


def score_clip(video: Path, clip: str, model: str, frames: int) -> dict:
    """Scores of every variant on the first ``frames`` frames of ``clip``."""
    base = FusionPipeline.from_artifact(model, threads=1)
    pipelines = {label: base if config is None
                 else FusionPipeline(base.backend, PipelineConfig(thermal=config))
                 for label, config in VARIANTS.items()}
    captures = {kind: cv2.VideoCapture(str(video / kind / f"{clip}.mp4")) for kind in ("vi", "ir")}
    meter = TemporalStabilityMeter(list(VARIANTS))
    try:
        for _ in range(frames):
            (ok_vi, visible), (ok_ir, infrared) = (captures[k].read() for k in ("vi", "ir"))
            if not (ok_vi and ok_ir):
                break
            thermal8 = cv2.cvtColor(infrared, cv2.COLOR_BGR2GRAY)
            thermal16 = thermal8.astype(np.uint16) * 257
            fused = {label: protocol_gray(pipeline.fuse(
                visible, thermal8 if VARIANTS[label] is None else thermal16)).astype(np.float64)
                for label, pipeline in pipelines.items()}
            meter.add(thermal8.astype(np.float64), protocol_gray(visible).astype(np.float64),
                      fused)
    finally:
        for capture in captures.values():
            capture.release()
    return meter.scores()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", default=["0113_1714", "0117_1605"])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--model", default="lutfuse-mini")
    args = parser.parse_args()
    video = args.shared / "data" / "video"
    if not (video / "ir").is_dir():
        print(f"no clips under {video}", file=sys.stderr)
        return 2
    results = {clip: score_clip(video, clip, args.model, args.frames) for clip in args.clips}
    print(f"{args.model}, first {args.frames} frames, scored against the linear thermal\n")
    print("| thermal input | " + " | ".join(f"{c} tRWE / tFlicker" for c in args.clips) + " |")
    print("|---|" + "---|" * len(args.clips))
    for label in VARIANTS:
        cells = " | ".join(f"{results[c][label].tRWE:.4f} / {results[c][label].tFlicker:.4f}"
                           for c in args.clips)
        print(f"| {label} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
