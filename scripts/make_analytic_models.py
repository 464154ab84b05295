#!/usr/bin/env python3
"""Write the analytic (untrained) default models into lutfuse_ros/resources/models/.

These are placeholders that the training pipeline replaces with trained artifacts
(``lutfuse train ...``); their manifests say so. Run from the repository root.
"""

import argparse
from pathlib import Path

import torch

from lutfuse_ros.artifacts import make_manifest, save_artifact
from lutfuse_ros.models import MiniFusionNet, MMLUT

MODELS_DIR = Path(__file__).resolve().parents[1] / "lutfuse_ros" / "resources" / "models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args()
    torch.manual_seed(0)
    provenance = {"source": "analytic initialisation (not trained)", "rule": "max(luma, infrared)"}
    lut = MMLUT(bins=17, context_channels=16, context_blocks=3, lattice="endpoint")
    lut.fill_analytic("max")
    save_artifact(lut, MODELS_DIR / "lutfuse-mmlut.safetensors", make_manifest(
        lut, name="lutfuse-mmlut", provenance=provenance,
        description="MM-LUT filled analytically with max(luma, infrared); untrained placeholder."),
        overwrite=args.force)
    mini = MiniFusionNet()
    mini.fill_analytic()
    save_artifact(mini, MODELS_DIR / "lutfuse-mini.safetensors", make_manifest(
        mini, name="lutfuse-mini", provenance=provenance,
        description="113-parameter mini-model computing tanh(max(luma, infrared)); untrained "
                    "placeholder."), overwrite=args.force)
    print(f"wrote analytic models to {MODELS_DIR}")


if __name__ == "__main__":
    main()
