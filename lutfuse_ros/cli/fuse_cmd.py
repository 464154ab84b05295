"""``lutfuse fuse``: fuse image pairs given as two files or two folders."""

from __future__ import annotations

import argparse
import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from lutfuse_ros.atomic_files import path_inside
from lutfuse_ros.cli.common import add_pipeline_options, pipeline_from_args
from lutfuse_ros.errors import InputError, LutfuseError
from lutfuse_ros.image_io import (ImagePair, find_pairs, read_thermal, read_visible,
                                  write_image_atomic)
from lutfuse_ros.preprocessing import ThermalNormaliser
from lutfuse_ros.visualise import side_by_side

LOG = logging.getLogger("lutfuse.fuse")
#: Pairs decoded ahead of the fusion, and results waiting to be encoded, at most.
_AHEAD = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("fuse", help="fuse image pairs (files or folders)")
    parser.add_argument("--visible", required=True, help="visible image or folder")
    parser.add_argument("--thermal", required=True, help="thermal image or folder (same stems)")
    parser.add_argument("-o", "--out", required=True,
                        help="output file (pair mode) or folder (folder mode)")
    parser.add_argument("--grid", action="store_true",
                        help="also write IR | visible | fused side-by-side PNGs (*_grid.png)")
    parser.add_argument("--force", action="store_true",
                        help="recompute and overwrite outputs that exist (default: skip them)")
    add_pipeline_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    visible, thermal, out = Path(args.visible), Path(args.thermal), Path(args.out)
    if visible.is_dir() != thermal.is_dir():
        raise InputError("--visible and --thermal must both be files or both be folders")
    if visible.is_dir():
        pairs, unmatched = find_pairs(visible, thermal)
        if unmatched:
            LOG.warning("%d images have no partner and are skipped: %s", len(unmatched),
                        ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else ""))
        if out.resolve() in (visible.resolve(), thermal.resolve()):
            raise InputError(f"output folder {out} is an input folder; choose another")
        targets = {pair.name: path_inside(out, f"{pair.name}.png") for pair in pairs}
    else:
        pairs = [ImagePair(visible.stem, visible, thermal)]
        targets = {visible.stem: out}
    inputs = {p.resolve() for pair in pairs for p in (pair.visible, pair.thermal)}
    if any(t.resolve() in inputs for t in targets.values()):
        raise InputError("an output path equals an input path; refusing to overwrite inputs")
    pipeline = pipeline_from_args(args)
    grid_thermal = ThermalNormaliser(pipeline.config.thermal)
    todo = [pair for pair in pairs if args.force or not targets[pair.name].exists()]
    skipped, failed = len(pairs) - len(todo), []

    def write_outputs(pair: ImagePair, vis, th, fused) -> None:
        target = targets[pair.name]
        write_image_atomic(target, fused, overwrite=args.force)
        grid_target = target.with_name(f"{target.stem}_grid.png")
        if args.grid and grid_target.exists() and not args.force:
            LOG.warning("kept the existing %s (use --force to redo it)", grid_target)
        elif args.grid:
            grid = side_by_side([("infrared", grid_thermal(th)), ("visible", vis),
                                 (f"fused ({pipeline.artifact.name})", fused)])
            write_image_atomic(grid_target, grid, overwrite=args.force)

    # decoding the next pairs and encoding the last results overlap with the fusion (PNG
    # coding is most of a file-to-file pair's time, and OpenCV releases the GIL for it); at
    # most _AHEAD pairs wait on either side, so memory stays bounded
    written = 0
    writes: deque[tuple[ImagePair, Future]] = deque()

    def skip(pair: ImagePair, error: LutfuseError) -> None:
        failed.append(f"{pair.name}: {error}")
        LOG.error("skipped %s: %s", pair.name, error)

    def finish_oldest_write() -> None:
        nonlocal written
        pair, write = writes.popleft()
        try:
            write.result()
            written += 1
        except LutfuseError as error:
            skip(pair, error)

    with ThreadPoolExecutor(1, thread_name_prefix="lutfuse-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="lutfuse-write") as writer:
        reads = _read_ahead(reader, todo)
        for pair, read in tqdm(reads, total=len(todo), desc="fuse", unit="pair",
                               disable=len(todo) < 2):
            try:
                vis, th = read.result()
                fused = pipeline.fuse(vis, th)
            except LutfuseError as error:
                skip(pair, error)
                continue
            writes.append((pair, writer.submit(write_outputs, pair, vis, th, fused)))
            if len(writes) > _AHEAD:
                finish_oldest_write()
        while writes:
            finish_oldest_write()
    print(f"fused {written} pair(s) into {out}" + (f", {skipped} already there (use --force to "
          "redo)" if skipped else "") + (f", {len(failed)} failed" if failed else ""))
    for line in failed:
        print(f"  failed: {line}")
    return 1 if failed and not (written or skipped) else 0


def _read_ahead(reader: ThreadPoolExecutor, pairs: list[ImagePair],
                ) -> Iterator[tuple[ImagePair, Future]]:
    """Yield ``(pair, future of (visible, thermal))``, decoding up to ``_AHEAD`` pairs ahead."""
    pending: deque[tuple[ImagePair, Future]] = deque()
    for pair in pairs:
        pending.append((pair, reader.submit(_read_pair, pair)))
        if len(pending) > _AHEAD:
            yield pending.popleft()
    yield from pending


def _read_pair(pair: ImagePair):
    return read_visible(pair.visible), read_thermal(pair.thermal)
