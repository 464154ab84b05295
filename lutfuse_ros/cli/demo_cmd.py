"""``lutfuse demo``: fuse a generated scene with the shipped models; no ROS, GPU or download."""

from __future__ import annotations

import argparse
from pathlib import Path

from lutfuse_ros.artifacts import shipped_models
from lutfuse_ros.demo_scene import make_demo_pair
from lutfuse_ros.image_io import write_image_atomic
from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.preprocessing import ThermalNormaliser
from lutfuse_ros.visualise import side_by_side


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="fuse a generated scene with the shipped models")
    parser.add_argument("-o", "--out", default="lutfuse_demo",
                        help="output folder (default: ./%(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    visible, thermal16 = make_demo_pair()
    thermal8 = ThermalNormaliser()(thermal16)
    panels = [("thermal (16-bit, percentile clip)", thermal8), ("visible", visible)]
    for name in shipped_models():
        pipeline = FusionPipeline.from_artifact(name)
        fused, timings = pipeline.fuse_timed(visible, thermal16)
        path = write_image_atomic(out / f"fused_{name}.png", fused, overwrite=True)
        panels.append((name, fused))
        print(f"{name}: {path}  ({timings.total_ms:.1f} ms on CPU, "
              f"{pipeline.artifact.manifest['parameters']} parameters)")
    grid = write_image_atomic(out / "demo_grid.png", side_by_side(panels, height=240),
                              overwrite=True)
    write_image_atomic(out / "visible.png", visible, overwrite=True)
    write_image_atomic(out / "thermal16.png", thermal16, overwrite=True)
    print(f"grid: {grid}")
    return 0
