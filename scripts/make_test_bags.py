#!/usr/bin/env python3
"""Write the tiny replay-test bags under ``test/resources/bags/`` with ``lutfuse make-bag``.

A short moving clip of the demo scene (``lutfuse_ros.demo_scene``: the street slides left two
pixels a frame, the thermal stream is 16-bit as a radiometric camera's), written once as
sqlite3 and once as mcap, 30 Hz on both topics. The replay tests run on these bags, so they
need no ``../shared``. Re-running replaces the bags only with ``--force``.

    python scripts/make_test_bags.py [--force]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from lutfuse_ros.bag.make import MakeBagOptions, make_bag
from lutfuse_ros.demo_scene import make_demo_pair

OUT = Path(__file__).resolve().parents[1] / "test" / "resources" / "bags"
FRAMES = 40
WIDTH, HEIGHT = 64, 48
#: Fixed first stamp (seconds since the epoch), so the bags are the same on every run.
START_TIME = 1.7e9


def write_clip(folder: Path) -> tuple[Path, Path]:
    """``FRAMES`` PNG pairs of the demo scene moving left; returns (visible, thermal) dirs."""
    visible_dir, thermal_dir = folder / "visible", folder / "thermal"
    visible_dir.mkdir()
    thermal_dir.mkdir()
    visible, thermal = make_demo_pair(HEIGHT, WIDTH * 2)
    for index in range(FRAMES):
        left = 2 * index
        cv2.imwrite(str(visible_dir / f"{index:03d}.png"), visible[:, left:left + WIDTH])
        cv2.imwrite(str(thermal_dir / f"{index:03d}.png"),
                    np.ascontiguousarray(thermal[:, left:left + WIDTH]))
    return visible_dir, thermal_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace existing bags")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        visible_dir, thermal_dir = write_clip(Path(scratch))
        for storage in ("sqlite3", "mcap"):
            try:
                result = make_bag(MakeBagOptions(visible_dir, thermal_dir,
                                                 OUT / f"demo_{storage}", storage=storage,
                                                 rate=30.0, start_time=START_TIME,
                                                 force=args.force, progress=False))
            except FileExistsError as error:
                raise SystemExit(f"{error}") from None
            print(f"wrote {result.path}: {result.counts}")


if __name__ == "__main__":
    main()
