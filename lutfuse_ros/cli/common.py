"""Options shared by the subcommands that build a fusion pipeline."""

from __future__ import annotations

import argparse

from lutfuse_ros.pipeline import DEFAULT_ARTIFACT, FusionPipeline, PipelineConfig
from lutfuse_ros.preprocessing import ALIGNMENT_MODES, THERMAL_MODES, AlignmentConfig, ThermalConfig


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """Model, backend and pre/post-processing options."""
    group = parser.add_argument_group("model and pipeline")
    group.add_argument("--model", default=DEFAULT_ARTIFACT,
                       help="artifact path or shipped model name (default: %(default)s)")
    group.add_argument("--backend", default="torch", help="torch, onnxruntime, tensorrt or auto")
    group.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    group.add_argument("--output-kind", choices=("colour", "mono"), default="colour")
    group.add_argument("--luma-mapping", choices=("none", "clamp", "minmax"), default=None,
                       help="override the artifact's output mapping")
    group.add_argument("--thermal-mode", choices=THERMAL_MODES, default="percentile",
                       help="16-bit thermal to 8-bit: percentile clip, min-max or fixed range")
    group.add_argument("--thermal-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                       default=(0.0, 65535.0), help="raw counts for --thermal-mode fixed")
    group.add_argument("--clahe", action="store_true", help="CLAHE on the 8-bit thermal image")
    group.add_argument("--align", choices=ALIGNMENT_MODES, default="none",
                       help="how to register thermal to visible when sizes differ")
    group.add_argument("--homography", type=float, nargs=9, metavar="H",
                       help="row-major 3x3 thermal->visible homography for --align homography")


def pipeline_from_args(args: argparse.Namespace) -> FusionPipeline:
    """Build the pipeline the options describe."""
    alignment = AlignmentConfig(mode=args.align)
    if args.homography:
        alignment = AlignmentConfig(mode=args.align, homography=list(args.homography))
    config = PipelineConfig(
        output=args.output_kind, luma_mapping=args.luma_mapping,
        thermal=ThermalConfig(mode=args.thermal_mode, fixed_range=tuple(args.thermal_range),
                              clahe=args.clahe),
        alignment=alignment)
    return FusionPipeline.from_artifact(args.model, backend=args.backend, device=args.device,
                                        config=config)
