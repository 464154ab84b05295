r"""``lutfuse make-bag``: a visible + thermal rosbag2 from image folders or a pair of videos.

Example::

    lutfuse make-bag drive.bag --visible ../shared/data/video/vi/0113_1714.mp4 \
        --thermal ../shared/data/video/ir/0113_1714.mp4 --storage mcap --thermal-rate 9
"""

from __future__ import annotations

import argparse

from lutfuse_ros.bag.common import DEFAULT_THERMAL_TOPIC, DEFAULT_VISIBLE_TOPIC, STORAGE_IDS
from lutfuse_ros.bag.make import THERMAL_ENCODINGS, VISIBLE_ENCODINGS, MakeBagOptions, make_bag


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``make-bag`` subcommand to the ``lutfuse`` parser."""
    parser = subparsers.add_parser(
        "make-bag", help="write a visible + thermal rosbag2 from image folders or videos",
        description="Write a rosbag2 with a visible and a thermal sensor_msgs/Image topic from "
                    "two image folders (paired by file stem) or two videos (paired by frame "
                    "index), with real timestamps.")
    parser.add_argument("out", metavar="OUT", help="rosbag2 directory to create")
    parser.add_argument("--visible", required=True, metavar="DIR|VIDEO",
                        help="visible image folder or video")
    parser.add_argument("--thermal", required=True, metavar="DIR|VIDEO",
                        help="thermal image folder (same stems) or video (same frame count)")
    parser.add_argument("--storage", choices=STORAGE_IDS, default="sqlite3",
                        help="rosbag2 storage (default: %(default)s)")
    parser.add_argument("--rate", type=float, metavar="HZ",
                        help="visible frame rate (default: the video's own, 30 for folders)")
    parser.add_argument("--thermal-rate", type=float, metavar="HZ",
                        help="thermal frame rate; frames are resampled (default: --rate)")
    parser.add_argument("--thermal-offset", type=float, default=0.0, metavar="S",
                        help="seconds added to every thermal stamp (a sensor clock offset)")
    parser.add_argument("--visible-topic", default=DEFAULT_VISIBLE_TOPIC)
    parser.add_argument("--thermal-topic", default=DEFAULT_THERMAL_TOPIC)
    parser.add_argument("--encoding", choices=VISIBLE_ENCODINGS, default="bgr8",
                        help="visible encoding (default: %(default)s)")
    parser.add_argument("--thermal-encoding", choices=THERMAL_ENCODINGS,
                        help="thermal encoding (default: the source's bit depth)")
    parser.add_argument("--max-frames", type=int, metavar="N", help="use at most N frame pairs")
    parser.add_argument("--start-time", type=float, metavar="EPOCH_S",
                        help="stamp of the first frame, seconds since the epoch (default: now)")
    parser.add_argument("--resize", type=int, nargs=2, metavar=("WIDTH", "HEIGHT"),
                        help="resize both streams")
    parser.add_argument("--visible-frame-id", default="visible_camera")
    parser.add_argument("--thermal-frame-id", default="thermal_camera")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Write the bag and print what it holds."""
    result = make_bag(MakeBagOptions(
        visible=args.visible, thermal=args.thermal, output=args.out, storage=args.storage,
        rate=args.rate, thermal_rate=args.thermal_rate, thermal_offset=args.thermal_offset,
        visible_topic=args.visible_topic, thermal_topic=args.thermal_topic,
        encoding=args.encoding, thermal_encoding=args.thermal_encoding,
        max_frames=args.max_frames, start_time=args.start_time,
        resize=tuple(args.resize) if args.resize else None,
        visible_frame_id=args.visible_frame_id, thermal_frame_id=args.thermal_frame_id,
        force=args.force, progress=not args.no_progress))
    span = (result.end_ns - result.start_ns) / 1e9
    counts = ", ".join(f"{topic}: {count}" for topic, count in result.counts.items())
    print(f"wrote {result.path} ({args.storage}) from {result.source}: {counts}; "
          f"{span:.2f} s at {result.rate:g} Hz visible / {result.thermal_rate:g} Hz thermal")
    return 0
