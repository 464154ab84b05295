"""``lutfuse export``: artifacts -> ONNX files and cached TensorRT engines.

``lutfuse export onnx ARTIFACT -o FILE.onnx`` writes the ONNX graph with the manifest inside;
``lutfuse export tensorrt ARTIFACT_OR_ONNX`` builds a serialised engine into the engine cache
(or ``--output``). Both refuse to overwrite without ``--force`` and write through a temporary
file and a rename.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

from lutfuse_ros.export.engine_cache import (DEFAULT_RESOLUTIONS, DEFAULT_WORKSPACE_MB,
                                             PRECISIONS, format_resolution)
from lutfuse_ros.families.mmlut.export_ops import LUT_OPS

_LOG = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export an artifact to ONNX or TensorRT")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)

    onnx_parser = targets.add_parser("onnx", help="write an ONNX model (opset 17, dynamic H/W)")
    onnx_parser.add_argument("artifact", help="artifact path or shipped model name")
    onnx_parser.add_argument("-o", "--output", required=True, help="destination .onnx file")
    onnx_parser.set_defaults(handler=run_onnx)

    trt = targets.add_parser("tensorrt", help="build a cached TensorRT engine (needs a GPU)")
    trt.add_argument("source", help="artifact path, shipped model name, or an exported .onnx")
    trt.add_argument("--precision", choices=PRECISIONS, default="fp16",
                     help="engine precision (default: %(default)s; look-ups stay FP32)")
    trt.add_argument("--resolutions", nargs="+", metavar="WxH",
                     default=[format_resolution(r) for r in DEFAULT_RESOLUTIONS],
                     help="image sizes the optimisation profile must cover "
                          "(default: %(default)s)")
    trt.add_argument("--opt", metavar="WxH", help="size to tune for (default: the first)")
    trt.add_argument("--workspace-mb", type=int, default=DEFAULT_WORKSPACE_MB,
                     help="builder workspace limit in MiB (default: %(default)s)")
    trt.add_argument("--device", default="cuda", help="CUDA device (default: %(default)s)")
    where = trt.add_mutually_exclusive_group()
    where.add_argument("--cache-dir", help="engine cache folder (default: "
                       "$LUTFUSE_ENGINE_CACHE or ~/.cache/lutfuse/engines)")
    where.add_argument("--output", help="write the engine (and its .json sidecar) here "
                       "instead of the cache")
    trt.set_defaults(handler=run_tensorrt)

    for sub in (onnx_parser, trt):
        sub.add_argument("--lut-op", choices=LUT_OPS, default=LUT_OPS[0],
                         help="4-D LUT formulation for MM-LUT models (default: %(default)s)")
        sub.add_argument("--force", action="store_true", help="overwrite an existing output")


def run_onnx(args: argparse.Namespace) -> int:
    import onnx

    from lutfuse_ros.artifacts import load_artifact
    from lutfuse_ros.export.onnx_export import export_onnx, write_onnx
    from lutfuse_ros.export.tensorrt_ops import tensorrt_problems

    destination = Path(args.output)
    if destination.exists() and not args.force:
        raise FileExistsError(f"{destination} exists; pass --force to replace it")
    exported = export_onnx(load_artifact(args.artifact), args.lut_op)
    for problem in tensorrt_problems(onnx.load_from_string(exported.data)):
        _LOG.warning("not TensorRT-native: %s", problem)
    path = write_onnx(exported, destination, force=args.force)
    lut = f", lut-op {exported.lut_op}" if exported.lut_op else ""
    print(f"wrote {path} ({exported.family}{lut}, {len(exported.data) / 1e6:.2f} MB, "
          f"sha256 {exported.sha256[:16]})")
    return 0


def run_tensorrt(args: argparse.Namespace) -> int:
    from lutfuse_ros.export import engine_cache
    from lutfuse_ros.export.engine_cache import EngineRecord, ProfileShapes, parse_resolution
    from lutfuse_ros.export.tensorrt_build import (build_engine, current_engine_key,
                                                   ensure_tensorrt_compatible)

    exported = _load_source(args.source, args.lut_op)
    ensure_tensorrt_compatible(exported)
    profile = ProfileShapes.covering([parse_resolution(r) for r in args.resolutions],
                                     parse_resolution(args.opt) if args.opt else None)
    key = current_engine_key(exported, args.precision, args.device)
    cache_dir = Path(args.cache_dir) if args.cache_dir else engine_cache.default_cache_dir()
    engine_path = Path(args.output) if args.output else \
        engine_cache.engine_paths(cache_dir, exported.name, key)[0]
    command = engine_cache.rebuild_command(
        args.source, args.precision, profile, cache_dir=args.cache_dir, lut_op=exported.lut_op,
        workspace_mb=args.workspace_mb, device=args.device, output=args.output)
    if engine_path.exists() and not args.force:
        if _up_to_date(engine_path, key, profile, args.workspace_mb, command):
            print(f"up to date: {engine_path}")
            return 0
        raise FileExistsError(f"{engine_path} exists with other settings; pass --force to "
                              "rebuild it")
    print(f"building a {args.precision} TensorRT {key.tensorrt_version} engine for "
          f"{exported.name!r} on {key.gpu_name} ({profile.describe()}); this takes minutes",
          flush=True)
    data = build_engine(exported, args.precision, profile, args.workspace_mb, args.device)
    record = EngineRecord(key=key, profile=profile, workspace_mb=args.workspace_mb,
                          engine_sha256=hashlib.sha256(data).hexdigest(),
                          model_name=exported.name, weights_sha256=exported.weights_sha256,
                          lut_op=exported.lut_op, build_command=command)
    path = engine_cache.save_engine(engine_path, record, data, force=True)
    print(f"wrote {path} ({len(data) / 1e6:.1f} MB) and {path.with_suffix('.json').name}")
    return 0


def _load_source(source: str, lut_op: str):
    from lutfuse_ros.artifacts import load_artifact
    from lutfuse_ros.export.onnx_export import export_onnx, load_onnx

    if source.lower().endswith(".onnx"):
        exported = load_onnx(source)
        if exported.lut_op and lut_op != LUT_OPS[0] and lut_op != exported.lut_op:
            _LOG.warning("--lut-op %s ignored: %s was exported with %s", lut_op, source,
                         exported.lut_op)
        return exported
    return export_onnx(load_artifact(source), lut_op)


def _up_to_date(engine_path: Path, key, profile, workspace_mb: int, command: str) -> bool:
    from lutfuse_ros.errors import BackendError
    from lutfuse_ros.export.engine_cache import verify_engine

    try:
        record, _ = verify_engine(engine_path, key, command)
    except BackendError:
        return False
    return record.profile == profile and record.workspace_mb == workspace_mb
