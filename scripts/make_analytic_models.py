#!/usr/bin/env python3
"""Write hand-made (untrained) max(luma, infrared) models into a folder of your choice.

Useful as a predictable reference or a starting point; the shipped defaults in
lutfuse_ros/resources/models/ are trained models (docs/training.md), which this script never
touches. Their manifests say they are untrained.
"""

import argparse
from pathlib import Path

import torch

from lutfuse_ros.analytic_models import save_analytic_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args()
    torch.manual_seed(0)
    save_analytic_models(args.out, overwrite=args.force)
    print(f"wrote analytic models to {args.out}")


if __name__ == "__main__":
    main()
