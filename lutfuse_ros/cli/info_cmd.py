"""``lutfuse info``: print an artifact's manifest."""

from __future__ import annotations

import argparse
import json

from lutfuse_ros.artifacts import load_artifact, shipped_models


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="print an artifact's manifest")
    parser.add_argument("model", nargs="?", help="artifact path or shipped model name; "
                        "without it, list the shipped models")
    parser.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.model:
        for name, path in shipped_models().items():
            manifest = load_artifact(path).manifest
            print(f"{name:28s} {manifest['family']:8s} {manifest['description']}")
        return 0
    artifact = load_artifact(args.model)
    manifest = artifact.manifest
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    print(f"file:         {artifact.path}")
    for key in ("name", "family", "description", "parameters"):
        print(f"{key + ':':13s} {manifest.get(key)}")
    print(f"architecture: {manifest['architecture']}")
    print(f"output:       {manifest['output']}")
    print(f"provenance:   {json.dumps(manifest.get('provenance', {}))}")
    if manifest.get("metrics"):
        print(f"metrics:      {json.dumps(manifest['metrics'])}")
    return 0
