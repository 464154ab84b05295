"""``lutfuse import-checkpoint``: official checkpoints -> lutfuse artifacts."""

from __future__ import annotations

import argparse

from lutfuse_ros.artifacts import save_artifact
from lutfuse_ros.families.mini.importer import import_mmdrfuse
from lutfuse_ros.families.mmlut.importer import import_lutfuse
from lutfuse_ros.families.teacher.importer import import_mmdrfuse_teacher


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("import-checkpoint", help="convert an official checkpoint")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    lut = kinds.add_parser("lutfuse", help="official LUT-Fuse: --lut X.npy --context Y.pth")
    lut.add_argument("--lut", required=True, help="fine_tuned_lut.npy")
    lut.add_argument("--context", required=True, help="generator_context.pth")
    mini = kinds.add_parser("mmdrfuse", help="official MMDRFuse: --student Z.model")
    source = mini.add_mutually_exclusive_group(required=True)
    source.add_argument("--student", help="student.model (the 113-parameter mini-model)")
    source.add_argument("--teacher", help="teacher.model")
    for sub in (lut, mini):
        sub.add_argument("-o", "--output", required=True, help="destination .safetensors")
        sub.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.kind == "lutfuse":
        model, manifest = import_lutfuse(args.lut, args.context)
    elif args.student:
        model, manifest = import_mmdrfuse(args.student)
    else:
        model, manifest = import_mmdrfuse_teacher(args.teacher)
    path = save_artifact(model, args.output, manifest, overwrite=args.force)
    print(f"wrote {path} ({manifest['family']}, {manifest['parameters']} parameters)")
    return 0
