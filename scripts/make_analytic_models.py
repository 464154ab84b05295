#!/usr/bin/env python3
"""Write hand-made (untrained) max(luma, infrared) models into a folder of your choice.

Useful as a predictable reference or a starting point; the shipped defaults in
lutfuse_ros/resources/models/ are trained models (docs/training.md), which this script never
touches. Their manifests say they are untrained.
"""

import argparse
from pathlib import Path

import torch

from lutfuse_ros.artifacts import make_manifest, save_artifact
from lutfuse_ros.models import MiniFusionNet, MMLUT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args()
    torch.manual_seed(0)
    provenance = {"source": "analytic initialisation (not trained)", "rule": "max(luma, infrared)"}
    lut = MMLUT(bins=17, context_channels=16, context_blocks=3, lattice="endpoint")
    lut.fill_analytic("max")
    save_artifact(lut, args.out / "analytic-mmlut.safetensors", make_manifest(
        lut, name="analytic-mmlut", provenance=provenance,
        description="MM-LUT filled analytically with max(luma, infrared); untrained placeholder."),
        overwrite=args.force)
    mini = MiniFusionNet()
    mini.fill_analytic()
    save_artifact(mini, args.out / "analytic-mini.safetensors", make_manifest(
        mini, name="analytic-mini", provenance=provenance,
        description="113-parameter mini-model computing tanh(max(luma, infrared)); untrained "
                    "placeholder."), overwrite=args.force)
    print(f"wrote analytic models to {args.out}")


if __name__ == "__main__":
    main()
