"""``lutfuse replay``: play a bag through the fusion node, record ``fused/image``, report.

Example::

    lutfuse replay drive.bag --out drive_fused --report results/drive --as-fast-as-possible

starts the node on a private ROS_DOMAIN_ID, plays the bag, records the fused images into the
rosbag2 ``drive_fused`` and writes ``results/drive.{json,md}`` and
``results/drive_latency.png``. The first Ctrl-C stops the playback cleanly (the node is
stopped, what was recorded is kept and reported; with ``--force``, earlier results at those
names are kept rather than replaced by partial ones); one during that final cleanup aborts it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from lutfuse_ros.bag.common import STORAGE_IDS
from lutfuse_ros.bag.reader import ORDERS
from lutfuse_ros.bag.replay import run_replay
from lutfuse_ros.bag.replay_options import NODE_MODES, ReplayOptions
from lutfuse_ros.bag.report import to_markdown


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``replay`` subcommand to the ``lutfuse`` parser."""
    parser = subparsers.add_parser(
        "replay", help="play a bag through the fusion node and report on its output",
        description="Publish a bag's visible and thermal images to the fusion node, record "
                    "fused/image into a rosbag2, and report counts, sync misses, latency, "
                    "fused rate and fusion metrics.")
    parser.add_argument("bag", metavar="BAG",
                        help="rosbag2 directory, .db3/.mcap file, or rosbag1 .bag file")
    parser.add_argument("--out", metavar="OUT_BAG", help="rosbag2 to record fused/image into")
    parser.add_argument("--storage", choices=STORAGE_IDS, default="sqlite3",
                        help="storage of OUT_BAG (default: %(default)s)")
    parser.add_argument("--report", metavar="PREFIX",
                        help="write PREFIX.json, PREFIX.md, PREFIX_latency.png (default: "
                             "OUT_BAG_report when --out is given)")
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--rate", type=float, default=1.0,
                       help="playback speed factor of the recorded timing (default: 1.0)")
    speed.add_argument("--as-fast-as-possible", action="store_true",
                       help="ignore recorded timing; keep --max-in-flight pairs in flight")
    parser.add_argument("--node", choices=NODE_MODES, default="auto",
                        help="auto: start the node in a child process on a private "
                             "ROS_DOMAIN_ID; external: use a running node")
    parser.add_argument("--params-file", type=Path, help="the node's parameter file")
    parser.add_argument("--node-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="parameter override for the node (repeatable)")
    parser.add_argument("--namespace", default="/", help="the node's namespace (default: /)")
    parser.add_argument("--visible-topic", help="visible topic in the bag (default: found)")
    parser.add_argument("--thermal-topic", help="thermal topic in the bag (default: found)")
    parser.add_argument("--domain-id", type=int,
                        help="ROS_DOMAIN_ID (default: a private one with --node auto, the "
                             "environment's with --node external)")
    parser.add_argument("--clock", choices=ORDERS, default="log",
                        help="play in bag-time order (log) or header-stamp order (stamp)")
    parser.add_argument("--max-in-flight", type=int, default=1, metavar="N",
                        help="pairs handed to the node before its output for the oldest "
                             "came back, with --as-fast-as-possible (default: 1: no drops)")
    parser.add_argument("--stall-timeout", type=float, default=5.0, metavar="S",
                        help="give up a pair after S s without output (default: 5)")
    parser.add_argument("--node-timeout", type=float, default=120.0, metavar="S",
                        help="wait at most S s for the node to connect (default: 120)")
    parser.add_argument("--drain-timeout", type=float, default=3.0, metavar="S",
                        help="wait at most S s for outputs after the last publish")
    parser.add_argument("--metrics-frames", type=int, default=20, metavar="N",
                        help="fused frames evaluated with the fusion metrics (0: none)")
    parser.add_argument("--temporal-frames", type=int, default=30, metavar="N",
                        help="consecutive pairs in the middle of the bag scored for temporal "
                             "stability (0: none; ~2.5 MB of memory per 640x480 pair)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Replay, print the report; 0 on success, 1 without any fused output, 130 on Ctrl-C."""
    report_prefix = args.report or (f"{args.out.rstrip('/')}_report" if args.out else None)
    options = ReplayOptions(
        bag=Path(args.bag), output=Path(args.out) if args.out else None,
        report_prefix=Path(report_prefix) if report_prefix else None, storage=args.storage,
        rate=args.rate, as_fast_as_possible=args.as_fast_as_possible, node=args.node,
        params_file=args.params_file, node_params=list(args.node_param),
        namespace=args.namespace, visible_topic=args.visible_topic,
        thermal_topic=args.thermal_topic, domain_id=args.domain_id, clock=args.clock,
        max_in_flight=args.max_in_flight, stall_timeout=args.stall_timeout,
        node_timeout=args.node_timeout, drain_timeout=args.drain_timeout,
        metrics_frames=args.metrics_frames, temporal_frames=args.temporal_frames,
        force=args.force, progress=not args.no_progress)
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def request_stop(signum: int, frame: object) -> None:
        print(f"lutfuse replay: {signal.Signals(signum).name} received, stopping cleanly",
              file=sys.stderr)
        stop.set()
        signal.signal(signum, previous[signum])

    for sig in previous:
        signal.signal(sig, request_stop)
    try:
        outcome = run_replay(options, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stdout.write(to_markdown(outcome.report))
    for path in outcome.files:
        print(f"wrote {path}")
    if outcome.report.interrupted:
        return 130
    return 0 if outcome.report.frames.get("fused_matched") else 1
