"""``lutfuse train teacher|lut|mini --config FILE.yaml``: train a model from recordings.

Examples::

    lutfuse train teacher --config config/train_teacher.yaml
    lutfuse train lut --config config/train_lut.yaml --resume
    torchrun --nproc_per_node=2 -m lutfuse_ros.cli.main train mini --config config/train_mini.yaml

Each run writes checkpoints, TensorBoard logs, ``loss_curve.png``, ``metrics.md`` and the
validation images into the config's ``run_dir`` and the artifact to its ``output``.
"""

from __future__ import annotations

import argparse

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.training.config import STAGES, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train", help="train a teacher, an MM-LUT or a mini-model from a YAML config",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=STAGES,
                        help="teacher (MM-Net), lut (MM-LUT distillation or quantisation), "
                             "mini (113-parameter mini-model)")
    parser.add_argument("--config", required=True, metavar="FILE.yaml", help="training config")
    parser.add_argument("--resume", action="store_true",
                        help="continue from <run_dir>/checkpoint.pt if present")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output artifact; start over despite a "
                             "checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=2 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the config, train, print where the artifact went."""
    from lutfuse_ros.training.engine import train

    config = load_config(args.config, args.overrides)
    if config.stage != args.stage:
        raise ConfigError(f"{args.config} configures the {config.stage!r} stage, not "
                          f"{args.stage!r}")
    result = train(config, resume=args.resume, force=args.force, progress=not args.no_progress)
    if result.artifact is not None:
        print(f"wrote {result.artifact} after {result.steps} step(s); logs in {result.run_dir}")
    return 0
