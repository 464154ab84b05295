"""The camera simulator of the tests and benchmarks: timed visible/thermal traffic and recorders.

``python -m lutfuse_testing.camera_traffic publish`` publishes timed visible/thermal pairs on the
relative topics ``visible/image`` and ``thermal/image``; ``python -m lutfuse_testing.camera_traffic
record`` records a topic (``fused/image`` by default, optionally ``/diagnostics`` too) into an
``.npz`` file. Both take ``--ros-args`` (namespace, remaps) and apply the shipped Fast DDS
profile as the node does. They synchronise through marker files rather than fixed sleeps:

1. the recorder touches ``--ready-file`` when its first message arrives;
2. the publisher sends warm-up pairs (``frame_id`` ``warmup``) until that file (every
   ``--ready-file`` given, for several recorders) exists, then
   the measured pairs (``frame_id`` ``camera``), then touches ``--done-file``;
3. the recorder exits once the done file exists and no message came for ``--idle`` seconds;
4. the publisher keeps its publishers until ``--linger-until`` exists (the recording), so
   the last samples are not discarded with them.

``--visible-transport compressed`` publishes the visible images as JPEG on
``visible/image/compressed`` (``--thermal-transport compressed``: thermal as PNG, 16-bit kept,
on ``thermal/image/compressed``) and ``--camera-info`` a ``visible/camera_info`` with each
visible image; ``record --type camera_info`` records CameraInfo messages.

Visible stamps are the wall-clock publish time, so ``receive_ns - stamp_ns`` in the recording
is the end-to-end latency on one host. The publisher's log (JSON) lists every measured pair:
index, stamps, content index and whether (and how) it was corrupted on purpose.

``stream`` and ``stream-record`` are the same camera and recorder for long runs (the soak
benchmark): endless traffic from video clips or rendered scenes until a stop file appears,
logged as it goes (:mod:`lutfuse_testing.camera_stream`). Frame sources:
:mod:`lutfuse_testing.camera_frames`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lutfuse_ros.ros.transport import apply_transport_profile
from lutfuse_testing.camera_frames import (DEFAULT_VIDEO_DIR, synthetic_camera_info,
                                           synthetic_pair, visible_as_encoding)
from lutfuse_testing.camera_rig import CameraRig

WARMUP_FRAME_ID = "warmup"
MEASURED_FRAME_ID = "camera"
#: Ways ``--corrupt-every`` breaks a pair, used in turn.
CORRUPTIONS = ("encoding", "size_mismatch", "truncated", "short_step")
#: Ways it breaks a compressed visible image instead.
COMPRESSED_CORRUPTIONS = ("truncated_jpeg", "not_an_image", "corrupt_jpeg")


def _corrupt_compressed(kind: str, msg) -> None:
    data = bytes(msg.data)
    if kind == "truncated_jpeg":
        msg.data = data[:len(data) // 2]
    elif kind == "not_an_image":
        msg.data = b"this is not an image" * 10
    else:  # corrupt_jpeg: signature and end marker intact, the entropy-coded data wrecked
        msg.data = data[:20] + bytes(len(data) - 22) + data[-2:]


def _corrupt(kind: str, visible_msg, thermal_msg, small_thermal_msg):
    """Return the pair of messages broken in the named way (messages are modified)."""
    if kind == "encoding":
        visible_msg.encoding = "32FC1"
    elif kind == "truncated":
        visible_msg.data = bytes(visible_msg.data[:len(visible_msg.data) // 2])
    elif kind == "short_step":
        visible_msg.step = visible_msg.step - 3
    elif kind == "size_mismatch":
        small_thermal_msg.header = thermal_msg.header
        thermal_msg = small_thermal_msg
    return visible_msg, thermal_msg


def run_publisher(args: argparse.Namespace, ros_args: list[str]) -> int:
    """Publish warm-up pairs until the recorder is ready, then the measured pairs."""
    import rclpy

    from lutfuse_ros.ros.conversions import array_to_image
    from lutfuse_ros.ros.qos import make_qos

    width, height = args.size
    thermal_size = tuple(args.thermal_size) if args.thermal_size else None
    contents = [synthetic_pair(i, width, height, thermal_size, args.thermal_bits)
                for i in range(args.distinct)]
    thermal_encoding = "mono16" if args.thermal_bits == 16 else "mono8"
    small = array_to_image(np.zeros((max(2, height // 2), max(2, width // 2)), np.uint8), "mono8")
    transports = (args.visible_transport, args.thermal_transport)
    camera_info = synthetic_camera_info(width, height) if args.camera_info else None

    rclpy.init(args=ros_args)
    node = rclpy.create_node("lutfuse_traffic_publisher")
    rig = CameraRig(node, make_qos(args.qos, args.depth), transports, camera_info)
    # A compressed visible camera sends JPEG of its BGR image; a raw one the chosen encoding.
    prepared = [rig.prepare(v if transports[0] == "compressed" else
                            visible_as_encoding(v, args.visible_encoding),
                            "bgr8" if transports[0] == "compressed" else args.visible_encoding,
                            t, thermal_encoding, args.jpeg_quality) for v, t in contents]

    def message_pair(content: int, frame_id: str, stamp_ns: int, thermal_ns: int):
        return rig.messages(prepared[content], stamp_ns, thermal_ns, frame_id)

    offset_ns, jitter_ns = int(args.thermal_offset * 1e9), int(args.thermal_jitter * 1e9)
    rng = np.random.default_rng(args.seed)
    log: list[dict] = []
    try:
        deadline = time.monotonic() + args.timeout
        while not rig.subscribed():
            if time.monotonic() > deadline:
                print("publisher: no subscriber appeared", file=sys.stderr)
                return 3
            time.sleep(0.02)
        if args.ready_file:
            ready_files = [Path(path) for path in args.ready_file]
            while not all(path.exists() for path in ready_files):
                if time.monotonic() > deadline:
                    print("publisher: the recorder never became ready", file=sys.stderr)
                    return 3
                now = time.time_ns()
                rig.publish(*message_pair(0, WARMUP_FRAME_ID, now, now - offset_ns))
                time.sleep(0.1)
        period, start = 1.0 / args.rate, time.monotonic() + 0.05
        for index in range(args.count):
            delay = start + index * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.time_ns()
            thermal_ns = now - offset_ns + (int(rng.integers(-jitter_ns, jitter_ns + 1))
                                            if jitter_ns else 0)
            content = index % args.distinct
            visible_msg, thermal_msg = message_pair(content, MEASURED_FRAME_ID, now, thermal_ns)
            kind = "good"
            if args.corrupt_every and index % args.corrupt_every == args.corrupt_every - 1:
                ways = COMPRESSED_CORRUPTIONS if transports[0] == "compressed" else CORRUPTIONS
                kind = ways[(index // args.corrupt_every) % len(ways)]
                if transports[0] == "compressed":
                    _corrupt_compressed(kind, visible_msg)
                else:
                    visible_msg, thermal_msg = _corrupt(kind, visible_msg, thermal_msg, small)
            rig.publish(visible_msg, thermal_msg)
            log.append({"index": index, "stamp_ns": now, "thermal_stamp_ns": thermal_ns,
                        "content": content, "kind": kind, "published_ns": time.time_ns()})
    finally:
        if args.log:
            Path(args.log).write_text(json.dumps({"size": [width, height], "pairs": log}))
        if args.done_file:
            Path(args.done_file).touch()
        # Destroying the publishers right away can discard the last samples still queued
        # for asynchronous sending: keep them until the consumer is finished.
        linger_until = time.monotonic() + (args.timeout if args.linger_until else 1.0)
        while time.monotonic() < linger_until and not (
                args.linger_until and Path(args.linger_until).exists()):
            time.sleep(0.02)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _status_dict(status) -> dict:
    level = status.level
    return {"name": status.name, "level": level[0] if isinstance(level, bytes) else int(level),
            "message": status.message, "hardware_id": status.hardware_id,
            "values": {kv.key: kv.value for kv in status.values}}


def run_recorder(args: argparse.Namespace, ros_args: list[str]) -> int:
    """Record messages until the publisher is done and the topic has gone quiet."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from lutfuse_ros.ros.qos import make_qos

    records: dict[str, list] = {"stamp_ns": [], "receive_ns": [], "frame_id": [], "bytes": []}
    images: list[np.ndarray] = []
    diagnostics: list[dict] = []
    last_message = [time.monotonic()]
    ready = Path(args.ready_file) if args.ready_file else None

    def on_message(msg) -> None:
        receive_ns = time.time_ns()
        last_message[0] = time.monotonic()
        records["stamp_ns"].append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
        records["receive_ns"].append(receive_ns)
        records["frame_id"].append(msg.header.frame_id)
        if args.type == "camera_info":
            records["bytes"].append(0)
            records.setdefault("size", []).append((msg.width, msg.height))
            records.setdefault("k", []).append(list(msg.k))
            records.setdefault("p", []).append(list(msg.p))
        else:
            records["bytes"].append(len(msg.data))
        if args.save_images and args.type == "image":
            from lutfuse_ros.ros.conversions import image_to_array

            images.append(np.array(image_to_array(msg)[0]))
        if ready is not None and not ready.exists():
            ready.touch()

    def on_diagnostics(msg) -> None:
        receive_ns = time.time_ns()
        diagnostics.extend({"receive_ns": receive_ns, **_status_dict(s)} for s in msg.status)

    rclpy.init(args=ros_args)
    node = rclpy.create_node("lutfuse_traffic_recorder")
    message_type = {"image": Image, "compressed": CompressedImage,
                    "camera_info": CameraInfo}[args.type]
    node.create_subscription(message_type, args.topic, on_message, make_qos(args.qos, args.depth))
    if args.diagnostics:
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    done = Path(args.done_file) if args.done_file else None
    deadline = time.monotonic() + args.timeout
    timed_out = False
    try:
        while True:
            rclpy.spin_once(node, timeout_sec=0.02)
            now = time.monotonic()
            if done is not None and done.exists() and now - last_message[0] > args.idle:
                break
            if now > deadline:
                timed_out = True
                break
    except KeyboardInterrupt:
        pass
    finally:
        dtypes = {"frame_id": str, "k": np.float64, "p": np.float64}
        arrays = {key: np.asarray(value, dtype=dtypes.get(key, np.int64))
                  for key, value in records.items()}
        if images:
            arrays["images"] = np.stack(images) if len({i.shape for i in images}) == 1 \
                else np.asarray(images, dtype=object)
        arrays["diagnostics_json"] = np.asarray(json.dumps(diagnostics))
        np.savez(args.out, **arrays)
        node.destroy_node()
        rclpy.try_shutdown()
    return 4 if timed_out else 0


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``python -m lutfuse_testing.camera_traffic``."""
    parser = argparse.ArgumentParser(prog="python -m lutfuse_testing.camera_traffic",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--no-fastdds-profile", action="store_true",
                        help="do not apply the shipped Fast DDS profile")
    parser.add_argument("--qos", default="sensor_data", help="sensor_data or reliable")
    parser.add_argument("--depth", type=int, default=5, help="KEEP_LAST depth")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this long (s)")
    roles = parser.add_subparsers(dest="role", required=True)
    publish = roles.add_parser("publish", help="publish visible/thermal pairs")
    publish.add_argument("--size", type=int, nargs=2, default=(64, 48), metavar=("W", "H"))
    publish.add_argument("--thermal-size", type=int, nargs=2, metavar=("W", "H"))
    publish.add_argument("--thermal-bits", type=int, choices=(8, 16), default=8)
    publish.add_argument("--visible-encoding", choices=("bgr8", "rgb8", "mono8"), default="bgr8")
    publish.add_argument("--rate", type=float, default=30.0, help="pairs per second")
    publish.add_argument("--count", type=int, default=30, help="measured pairs")
    publish.add_argument("--distinct", type=int, default=4, help="distinct contents, cycled")
    publish.add_argument("--thermal-offset", type=float, default=0.0,
                         help="thermal stamps are this many seconds behind the visible ones")
    publish.add_argument("--thermal-jitter", type=float, default=0.0,
                         help="uniform +- jitter of thermal stamps (s)")
    publish.add_argument("--corrupt-every", type=int, default=0,
                         help=f"break every Nth pair, in turn: {', '.join(CORRUPTIONS)} "
                              f"(compressed visible: {', '.join(COMPRESSED_CORRUPTIONS)})")
    publish.add_argument("--visible-transport", choices=("raw", "compressed"), default="raw",
                         help="compressed: JPEG on visible/image/compressed")
    publish.add_argument("--thermal-transport", choices=("raw", "compressed"), default="raw",
                         help="compressed: PNG on thermal/image/compressed")
    publish.add_argument("--jpeg-quality", type=int, default=90)
    publish.add_argument("--camera-info", action="store_true",
                         help="also publish visible/camera_info with each visible image")
    publish.add_argument("--seed", type=int, default=0)
    publish.add_argument("--ready-file", action="append",
                         help="send warm-up pairs until this file exists (repeatable: all)")
    publish.add_argument("--done-file", help="touch this file when finished")
    publish.add_argument("--log", help="write the measured pairs as JSON here")
    publish.add_argument("--linger-until", help="keep the publishers until this file exists "
                         "(default: 1 s after the last pair)")
    publish.set_defaults(runner=run_publisher)
    record = roles.add_parser("record", help="record a topic into an .npz file")
    record.add_argument("--topic", default="fused/image")
    record.add_argument("--type", choices=("image", "compressed", "camera_info"),
                        default="image")
    record.add_argument("--save-images", action="store_true", help="keep the decoded images")
    record.add_argument("--diagnostics", action="store_true", help="also record /diagnostics")
    record.add_argument("--ready-file", help="touch this file at the first message")
    record.add_argument("--done-file", help="stop once this file exists and --idle passed")
    record.add_argument("--idle", type=float, default=3.0, help="quiet time before stopping (s)")
    record.add_argument("--out", required=True, help="output .npz")
    record.set_defaults(runner=run_recorder)
    for role, help_text in (("stream", "publish pairs at --rate until --stop-file (soak)"),
                            ("stream-record", "log fused/image and diagnostics until "
                                              "--stop-file (soak)")):
        stream = roles.add_parser(role, help=help_text)
        stream.add_argument("--work", type=Path, required=True, help="folder of the logs")
        stream.add_argument("--stop-file", type=Path, required=True, help="stop once it exists")
        if role == "stream":
            stream.add_argument("--rate", type=float, default=30.0, help="pairs per second")
            stream.add_argument("--size", type=int, nargs=2, default=(640, 480),
                                metavar=("W", "H"))
            stream.add_argument("--visible-encoding", choices=("bgr8", "rgb8"), default="bgr8")
            stream.add_argument("--thermal-encoding", choices=("mono8", "mono16"),
                                default="mono16")
            stream.add_argument("--video-dir", type=Path, default=DEFAULT_VIDEO_DIR)
            stream.set_defaults(runner=_lazy("run_stream"))
        else:
            stream.add_argument("--namespace", required=True, help="the node's namespace (/ns)")
            stream.set_defaults(runner=_lazy("run_stream_recorder"))
    return parser


def _lazy(name: str):
    """A runner of :mod:`lutfuse_testing.camera_stream`, imported when it runs."""
    def run(args: argparse.Namespace, ros_args: list[str]) -> int:
        from lutfuse_testing import camera_stream

        return getattr(camera_stream, name)(args, ros_args)

    return run


def main(argv: list[str] | None = None) -> int:
    """Run a traffic role; everything from ``--ros-args`` on goes to ``rclpy.init``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--ros-args") if "--ros-args" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    if not args.no_fastdds_profile:
        apply_transport_profile()
    return args.runner(args, [sys.argv[0], *argv[split:]])


if __name__ == "__main__":
    sys.exit(main())
