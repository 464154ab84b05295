#!/usr/bin/env python3
"""Validate a trained artifact and install it as a shipped default model.

    python scripts/ship_model.py runs/lut/lutfuse-mmlut.safetensors --as lutfuse-mmlut --force

The artifact is loaded (shapes, finite values, integrity), its manifest and weights are
re-saved unchanged in the current artifact format (with its integrity hash) to
lutfuse_ros/resources/models/NAME.safetensors, atomically. An existing shipped model is only
replaced with --force. Run from the repository root.
"""

import argparse
from pathlib import Path

from lutfuse_ros.artifacts import load_artifact, save_artifact

MODELS_DIR = Path(__file__).resolve().parents[1] / "lutfuse_ros" / "resources" / "models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", type=Path, help="trained .safetensors artifact")
    parser.add_argument("--as", dest="name", required=True,
                        choices=("lutfuse-mmlut", "lutfuse-mini"), help="shipped model name")
    parser.add_argument("--force", action="store_true", help="replace the shipped model")
    args = parser.parse_args()
    artifact = load_artifact(args.artifact)
    provenance = artifact.manifest.get("provenance", {})
    if "trained by lutfuse_ros.training" not in str(provenance.get("source", "")):
        parser.error(f"{args.artifact}: not trained by lutfuse_ros.training (provenance source "
                     f"{provenance.get('source')!r}); only the package's own models ship")
    manifest = dict(artifact.manifest, name=args.name)
    destination = save_artifact(artifact.build_model(), MODELS_DIR / f"{args.name}.safetensors",
                                manifest, overwrite=args.force)
    print(f"shipped {args.artifact} as {destination}")


if __name__ == "__main__":
    main()
