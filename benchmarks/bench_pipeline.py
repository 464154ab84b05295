"""Per-stage CPU timing of the fusion pipeline, with the official-approach baseline ratio.

Prints, for the MM-LUT (the official 16-channel context network and narrower ones) and the
mini-model at each resolution: milliseconds to decode the input files (JPEG visible + PNG
thermal) and to convert ROS ``sensor_msgs/Image`` messages to arrays, then the pipeline's
preprocess / model / postprocess stages (medians), its full-frame p50 / p99, and how many
times faster than the official approach (timed interleaved in the same run).

Weights are random (speed does not depend on them); the accuracy of the fast path is
tested in ``test/unit/test_fast_path.py`` and ``test/unit/test_fidelity.py``.

Usage::

    python benchmarks/bench_pipeline.py [--resolutions 640x480 1280x720 1920x1080]
        [--widths 16 12 8 4] [--iterations 30] [--backends torch:precision=bf16 ...]
        [--json results.json [--force]]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lutfuse_ros.artifacts import Artifact, make_manifest  # noqa: E402
from lutfuse_ros.atomic_files import atomic_output  # noqa: E402
from lutfuse_ros.benchmark import (BASELINE_LABEL, BackendSpec, benchmark_inputs,  # noqa: E402
                                   machine_info, parse_resolution, run_benchmark)
from lutfuse_ros.benchmark.runner import BACKEND_VARIANTS  # noqa: E402
from lutfuse_ros.families.mini.model import MiniFusionNet  # noqa: E402
from lutfuse_ros.families.mmlut.model import MMLUT  # noqa: E402

DEFAULT_RESOLUTIONS = ("640x480", "1280x720", "1920x1080")
DEFAULT_WIDTHS = (16, 12, 8, 4)


def model_artifacts(widths: list[int]) -> list[Artifact]:
    """In-memory artifacts: MM-LUTs of the official layout at each context width + the mini."""
    torch.manual_seed(0)
    models = []
    for width in widths:
        model = MMLUT(bins=16, context_channels=width, context_blocks=3, lattice="official")
        with torch.no_grad():
            model.fill_analytic("max")
        label = "official architecture" if width == 16 else f"context width {width}"
        models.append((f"mmlut-c{width}", label, model))
    models.append(("mini-h4", "113-parameter mini-model", MiniFusionNet(hidden=4)))
    artifacts = []
    for name, description, model in models:
        manifest = make_manifest(model.eval(), name=name, description=description,
                                 provenance={"source": "benchmark (random weights)"})
        artifacts.append(Artifact(None, manifest, model.state_dict()))
    return artifacts


def median_ms(function, repeats: int) -> float:
    """Median wall time of ``function()`` in milliseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def input_stage_ms(width: int, height: int, repeats: int) -> dict[str, float | None]:
    """Decode (files) and convert (ROS messages) milliseconds for one pair."""
    visible, thermal = benchmark_inputs(width, height)
    jpeg = cv2.imencode(".jpg", visible, [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
    png = cv2.imencode(".png", thermal)[1]
    stages: dict[str, float | None] = {"decode": median_ms(
        lambda: (cv2.imdecode(jpeg, cv2.IMREAD_COLOR),
                 cv2.imdecode(png, cv2.IMREAD_UNCHANGED)), repeats)}
    try:
        from lutfuse_ros.ros.conversions import array_to_image, image_to_array
    except ImportError:  # no ROS message types here: report the file path only
        stages["convert"] = None
        return stages
    messages = (array_to_image(visible, "bgr8"), array_to_image(thermal, "mono8"))
    stages["convert"] = median_ms(
        lambda: [np.ascontiguousarray(image_to_array(m)[0]) for m in messages], repeats)
    return stages


def print_table(results, inputs: dict[str, dict]) -> None:
    header = ("| model | resolution | backend | decode | convert | pre | model | post | "
              "p50 | p99 | x faster than official |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in results:
        resolution = f"{row.width}x{row.height}"
        io = inputs[resolution]
        convert = "-" if io["convert"] is None else f"{io['convert']:.2f}"
        if row.status != "ok":
            print(f"| {row.model} | {resolution} | {row.backend} | {row.status}: {row.reason} |")
            continue
        stages = row.stages_ms or {}
        pre, model, post = (f"{stages[k]:.2f}" if k in stages else "-"
                            for k in ("preprocess", "model", "postprocess"))
        speedup = ("-" if row.backend == BASELINE_LABEL or not row.speedup_vs_baseline
                   else f"{row.speedup_vs_baseline:.1f}")
        print(f"| {row.model} | {resolution} | {row.backend} | {io['decode']:.2f} | {convert} "
              f"| {pre} | {model} | {post} | {row.p50_ms:.2f} | {row.p99_ms:.2f} | {speedup} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", nargs="+", default=list(DEFAULT_RESOLUTIONS))
    parser.add_argument("--widths", nargs="+", type=int, default=list(DEFAULT_WIDTHS),
                        help="MM-LUT context-network widths (16 = official architecture)")
    parser.add_argument("--backends", nargs="+", default=None,
                        help="backend specs (default: torch at fp32 and, where native, bf16)")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--force", action="store_true", help="overwrite --json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    resolutions = [parse_resolution(r) for r in args.resolutions]
    backends = ([BackendSpec.parse(b) for b in args.backends] if args.backends
                else BACKEND_VARIANTS["torch"]("cpu"))
    machine = machine_info()
    print(f"# {machine['cpu']}, {machine['logical_cpus']} logical CPUs, torch "
          f"{machine['torch']} ({machine['torch_threads']} threads), "
          f"load {machine['load_average']}")
    inputs = {f"{w}x{h}": input_stage_ms(w, h, max(5, args.iterations // 3))
              for w, h in resolutions}
    results = run_benchmark(model_artifacts(args.widths), backends, resolutions,
                            iterations=args.iterations, warmup=args.warmup)
    print("\nmilliseconds per frame (stages: medians; decode = JPEG visible + PNG thermal, "
          "convert = two ROS Image messages to arrays)\n")
    print_table(results, inputs)
    if args.json:
        with atomic_output(args.json, overwrite=args.force) as temporary:
            temporary.write_text(json.dumps({"machine": machine, "inputs": inputs,
                                             "results": [r.to_json() for r in results]},
                                            indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
