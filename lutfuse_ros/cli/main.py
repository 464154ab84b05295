"""Entry point of the ``lutfuse`` command.

Each subcommand lives in its own module under :mod:`lutfuse_ros.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function taking the
parsed arguments and returning an exit code. Modules are imported lazily by name so that a
subcommand's heavy dependencies (rclpy, rosbags, onnxruntime) load only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lutfuse_ros.errors import LutfuseError

#: subcommand name -> (module under lutfuse_ros.cli, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo_cmd", "fuse a bundled synthetic scene and write the fused image and a grid"),
    "fuse": ("fuse_cmd", "fuse image pairs (files or folders)"),
    "eval": ("eval_cmd", "fusion metrics for a folder of fused images"),
    "import-checkpoint": ("import_cmd", "convert an official checkpoint into a lutfuse artifact"),
    "info": ("info_cmd", "print an artifact's manifest"),
    "bench": ("bench_cmd", "time the pipeline per backend, model and resolution"),
    "node": ("node_cmd", "run the ROS 2 fusion node (ROS arguments after --ros-args)"),
    "make-bag": ("make_bag_cmd", "write a visible + thermal rosbag2 from image folders or videos"),
    "replay": ("replay_cmd", "play a bag through the fusion node; record and report its output"),
    "export": ("export_cmd", "export an artifact to ONNX or a cached TensorRT engine"),
    "train": ("train_cmd", "train a teacher, an MM-LUT or a mini-model from a YAML config"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Build the top-level parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="lutfuse", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if name == chosen:
            module = importlib.import_module(f"lutfuse_ros.cli.{module_name}")
            module.register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``lutfuse``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0 if args.command is None else 2
    if unknown and not getattr(args, "accepts_extra_args", False):
        parser.error(f"unrecognised arguments: {' '.join(unknown)}")
    args.extra_args = unknown
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except LutfuseError as error:
        print(f"lutfuse {args.command}: error: {error}", file=sys.stderr)
        return 1
    except FileExistsError as error:
        print(f"lutfuse {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lutfuse {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
