r"""``lutfuse eval``: fusion metrics of folders of fused images, as a Markdown table and JSON.

Example::

    lutfuse eval lutfuse=out/lutfuse mmdrfuse=out/mmdrfuse \
        --ir data/roadscene/test/ir --vi data/roadscene/test/vi --baselines --out results/rs

prints one row of metric means per method (and per trivial baseline with ``--baselines``) and
writes ``results/rs.md`` and ``results/rs.json`` (per-image values and skipped pairs).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.metrics import (
    AVERAGE_LABEL,
    MAX_LABEL,
    EvaluationReport,
    evaluate_baselines,
    evaluate_folder,
    to_json,
    to_markdown,
)
from lutfuse_ros.metrics.grids import write_comparison_grids
from lutfuse_ros.metrics.report import index_images

LOGGER = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand to the ``lutfuse`` parser."""
    parser = subparsers.add_parser(
        "eval", help="fusion metrics for a folder of fused images",
        description="Compute EN SD SF AG MI SCD VIF Qabf SSIM CC PSNR of fused images against "
                    "their infrared and visible sources (matched by file stem) and print the "
                    "means per method as a Markdown table.")
    parser.add_argument("fused", nargs="+", metavar="FUSED_DIR",
                        help="folder of fused images, optionally as LABEL=DIR (default label: "
                             "the folder name)")
    parser.add_argument("--ir", required=True, metavar="DIR", help="infrared source folder")
    parser.add_argument("--vi", required=True, metavar="DIR", help="visible source folder")
    parser.add_argument("--baselines", action="store_true",
                        help="add rows for the trivial average (ir+vi)/2 and max(ir, vi) fusions")
    parser.add_argument("--out", metavar="PREFIX",
                        help="also write PREFIX.md and PREFIX.json")
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing PREFIX.md / PREFIX.json")
    parser.add_argument("--grid", metavar="DIR",
                        help="also write side-by-side comparison PNGs (infrared | visible | "
                             "each method [| baselines]) of a few scenes into DIR")
    parser.add_argument("--grid-stems", metavar="NAME", nargs="+",
                        help="scenes for --grid (image names without suffix; default: the "
                             "first 4 scenes the first method has)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(handler=run)


def parse_fused_argument(text: str) -> tuple[str, Path]:
    """Split a ``FUSED_DIR`` argument into ``(label, folder)``.

    An argument naming an existing folder is taken whole (even if it contains ``=``);
    otherwise ``LABEL=DIR`` is split at the first ``=``.

    Raises:
        ConfigError: If ``LABEL=DIR`` has an empty label or folder.
    """
    if "=" in text and not Path(text).is_dir():
        label, _, folder = text.partition("=")
        if not label or not folder:
            raise ConfigError(f"fused folder argument {text!r}: expected LABEL=DIR or DIR")
        return label, Path(folder)
    folder = Path(text)
    return folder.resolve().name or text, folder


def _output_paths(prefix: str, force: bool) -> tuple[Path, Path]:
    """``PREFIX.md`` and ``PREFIX.json``; refuses existing files unless ``force``."""
    paths = (Path(f"{prefix}.md"), Path(f"{prefix}.json"))
    existing = [str(path) for path in paths if path.exists()]
    if existing and not force:
        raise FileExistsError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    return paths


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` (synced to disk) beside ``path``, then rename it over ``path``."""
    with atomic_output(path, overwrite=True) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def run(args: argparse.Namespace) -> int:
    """Evaluate the fused folders (and baselines); print the table; returns the exit code.

    Returns:
        0 on success; 1 if some method had no image that could be evaluated.

    Raises:
        ConfigError: On duplicate labels or malformed ``LABEL=DIR`` arguments.
        InputError: If a folder does not exist.
        FileExistsError: If an output file exists and ``--force`` was not given.
    """
    methods: dict[str, Path] = {}
    for text in args.fused:
        label, folder = parse_fused_argument(text)
        if label in methods:
            raise ConfigError(f"label {label!r} given twice; name the folders as LABEL=DIR")
        if args.baselines and label in (AVERAGE_LABEL, MAX_LABEL):
            raise ConfigError(f"label {label!r} is reserved for a baseline")
        methods[label] = folder
    outputs = _output_paths(args.out, args.force) if args.out else None

    progress = not args.no_progress
    reports: dict[str, EvaluationReport] = {
        label: evaluate_folder(folder, args.ir, args.vi, progress=progress)
        for label, folder in methods.items()}
    if args.baselines:
        reports.update(evaluate_baselines(args.ir, args.vi, progress=progress))

    markdown = to_markdown(reports)
    sys.stdout.write(markdown)
    if outputs is not None:
        markdown_path, json_path = _output_paths(args.out, args.force)
        _write_atomically(markdown_path, markdown)
        _write_atomically(json_path, to_json(reports))
        LOGGER.info("wrote %s and %s", markdown_path, json_path)

    if args.grid:
        stems = args.grid_stems or sorted(index_images(next(iter(methods.values())),
                                                       "fused"))[:4]
        written = write_comparison_grids(args.grid, stems, methods, Path(args.ir),
                                         Path(args.vi), baselines=args.baselines,
                                         overwrite=args.force)
        LOGGER.info("wrote %d comparison grid(s) in %s", len(written), args.grid)

    for label, report in reports.items():
        if report.skipped:
            LOGGER.warning("%s: %d pair(s) skipped (listed in the report)", label,
                           len(report.skipped))
    empty = [label for label, report in reports.items() if not report.rows]
    if empty:
        LOGGER.error("no image pair could be evaluated for: %s", ", ".join(empty))
        return 1
    return 0
