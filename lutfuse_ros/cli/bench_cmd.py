"""``lutfuse bench``: latency of the full pipeline per backend x model x resolution."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lutfuse_ros.artifacts import load_artifact, shipped_models
from lutfuse_ros.atomic_files import refuse_existing


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="time the full uint8 pipeline per backend, model and resolution",
        description="Times the full uint8 -> uint8 pipeline for every available backend x "
                    "model x resolution, interleaved with the official-approach baseline of "
                    "each model family, and writes bench.json, bench.md and bench.png.")
    parser.add_argument("--out", required=True, help="output folder for the reports")
    parser.add_argument("--models", nargs="+", default=None,
                        help="artifact paths or shipped names (default: every shipped model)")
    parser.add_argument("--backends", nargs="+", default=None,
                        help="backend specs such as torch, torch:precision=bf16, onnxruntime "
                             "(default: every available backend and its variants)")
    parser.add_argument("--resolutions", nargs="+", default=None,
                        help="WIDTHxHEIGHT list (default: 640x480 1280x720 1920x1080)")
    parser.add_argument("--iterations", type=int, default=50, help="timed frames per case")
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames per case first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the official-approach baseline")
    parser.add_argument("--force", action="store_true", help="overwrite existing reports")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lutfuse_ros.benchmark import (DEFAULT_RESOLUTIONS, REPORT_FILES, BackendSpec,
                                       default_backend_specs, machine_info, markdown_table,
                                       parse_resolution, run_benchmark, write_reports)

    out = Path(args.out)
    for name in REPORT_FILES:
        refuse_existing(out / name, args.force)
    resolutions = ([parse_resolution(r) for r in args.resolutions] if args.resolutions
                   else list(DEFAULT_RESOLUTIONS))
    backends = ([BackendSpec.parse(b) for b in args.backends] if args.backends
                else default_backend_specs(args.device))
    artifacts = [load_artifact(m) for m in (args.models or list(shipped_models()))]
    machine = machine_info()
    results = run_benchmark(artifacts, backends, resolutions, iterations=args.iterations,
                            warmup=args.warmup, device=args.device,
                            baseline=not args.no_baseline)
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    settings = {"models": [a.name for a in artifacts], "backends": [b.label for b in backends],
                "resolutions": [f"{w}x{h}" for w, h in resolutions],
                "iterations": args.iterations, "warmup": args.warmup, "device": args.device}
    paths = write_reports(results, machine, settings, out, overwrite=args.force)
    print(markdown_table(results, machine))
    print("reports: " + ", ".join(str(p) for p in paths))
    return 0
