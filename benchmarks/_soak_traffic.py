"""Camera and recorder processes of the soak benchmark (``benchmarks/soak_node.py``).

Run as ``python benchmarks/_soak_traffic.py camera|record --work DIR ... --ros-args ...``;
both apply the shipped Fast DDS profile as the node does, stop when ``--stop-file`` appears
(or on SIGINT/SIGTERM) and when the process that started them is gone, and append what they
did to CSV files in ``--work`` that the soak script reads while they run:

- ``camera`` publishes visible + thermal pairs on ``visible/image`` and ``thermal/image`` at
  ``--rate`` Hz until stopped. Frames come from the aligned thermal/visible clips in
  ``--video-dir`` (``vi/*.mp4`` and ``ir/*.mp4``, frame N of one matching frame N of the
  other), decoded on the fly and looped, or from :mod:`lutfuse_ros.demo_scene` when that
  folder is missing. Both images of a pair carry the wall-clock publish time as stamp.
  ``published.csv``: ``stamp_ns,late_us`` per pair (``late_us``: behind schedule).
- ``record`` subscribes to ``fused/image`` (sensor-data QoS, as a downstream consumer) and
  ``/diagnostics``. ``received.csv``: ``stamp_ns,receive_ns`` per fused image;
  ``diagnostics.jsonl``: the statuses whose name starts with the node's namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_VIDEO_DIR = REPO.parent / "shared" / "data" / "video"
PUBLISHED_CSV, RECEIVED_CSV, DIAGNOSTICS_JSONL = "published.csv", "received.csv", \
    "diagnostics.jsonl"
RECORDER_READY = "recorder.ready"
#: 16-bit thermal counts made from 8-bit gray: ``offset + gray * gain`` (radiometric-like).
MONO16_OFFSET, MONO16_GAIN = 7000, 8
_FLUSH_PERIOD_S = 0.5


def video_clips(video_dir: Path) -> list[str]:
    """Names of the clips present as both ``vi/<name>`` and ``ir/<name>`` (sorted)."""
    if not (video_dir / "vi").is_dir() or not (video_dir / "ir").is_dir():
        return []
    visible = {path.name for path in (video_dir / "vi").glob("*.mp4")}
    return sorted(name for name in visible if (video_dir / "ir" / name).is_file())


def describe_frame_source(video_dir: Path) -> tuple[str, str]:
    """``(kind, description)`` of what the camera will publish: ``video`` or ``synthetic``."""
    clips = video_clips(video_dir)
    if clips:
        return "video", f"video clips {', '.join(clips)} from {video_dir}, looped"
    return "synthetic", (f"no aligned clips in {video_dir} (../shared missing?): publishing "
                         "synthetic lutfuse_ros.demo_scene frames instead")


class VideoFrames:
    """Endless pairs from aligned clips, decoded on the fly (~1 ms per 640x480 pair).

    Args:
        video_dir: folder with ``vi/`` and ``ir/`` clips of the same names.
        size: ``(width, height)`` of the frames returned (resized when the clip differs).
    """

    def __init__(self, video_dir: Path, size: tuple[int, int]) -> None:
        self._dir, self._size = video_dir, size
        self._clips = video_clips(video_dir)
        if not self._clips:
            raise FileNotFoundError(f"no aligned vi/ and ir/ .mp4 clips in {video_dir}")
        self._index = -1
        self._captures: tuple[cv2.VideoCapture, cv2.VideoCapture] | None = None

    def _open_next(self) -> None:
        self.close()
        self._index = (self._index + 1) % len(self._clips)
        name = self._clips[self._index]
        self._captures = (cv2.VideoCapture(str(self._dir / "vi" / name)),
                          cv2.VideoCapture(str(self._dir / "ir" / name)))

    def next_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """The next pair: ``(H, W, 3)`` uint8 BGR visible and ``(H, W)`` uint8 gray thermal."""
        for _ in range(len(self._clips) + 1):
            if self._captures is not None:
                (ok_visible, visible), (ok_thermal, thermal) = (c.read() for c in self._captures)
                if ok_visible and ok_thermal:
                    return self._fit(visible), cv2.cvtColor(self._fit(thermal),
                                                            cv2.COLOR_BGR2GRAY)
            self._open_next()
        raise RuntimeError(f"none of the clips in {self._dir} can be decoded")

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        width, height = self._size
        if frame.shape[:2] == (height, width):
            return frame
        return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)

    def close(self) -> None:
        for capture in self._captures or ():
            capture.release()
        self._captures = None


class SyntheticFrames:
    """Endless pairs cycling through a few rendered demo scenes (no data files needed)."""

    def __init__(self, size: tuple[int, int], distinct: int = 8) -> None:
        from lutfuse_ros.demo_scene import make_demo_pair

        width, height = size
        self._pairs = []
        for seed in range(distinct):
            visible, counts = make_demo_pair(height, width, seed=seed)
            gray = np.clip((counts.astype(np.float32) - MONO16_OFFSET) / MONO16_GAIN, 0, 255)
            self._pairs.append((visible, gray.astype(np.uint8)))
        self._next = 0

    def next_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """The next pair: ``(H, W, 3)`` uint8 BGR visible and ``(H, W)`` uint8 gray thermal."""
        pair = self._pairs[self._next % len(self._pairs)]
        self._next += 1
        return pair

    def close(self) -> None:
        self._pairs = []


def encode_pair(visible_bgr: np.ndarray, thermal_gray: np.ndarray, visible_encoding: str,
                thermal_encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """Lay a pair out for its encodings.

    Visible as ``bgr8``/``rgb8``; thermal as ``mono8``/``mono16`` (16-bit:
    ``7000 + 8 * gray`` counts, as a radiometric camera delivers).
    """
    visible = visible_bgr if visible_encoding == "bgr8" else \
        np.ascontiguousarray(visible_bgr[..., ::-1])
    if thermal_encoding == "mono16":
        thermal = (MONO16_OFFSET + thermal_gray.astype(np.uint16) * MONO16_GAIN).astype(np.uint16)
    else:
        thermal = thermal_gray
    return visible, thermal


class _Stopper:
    """True once the stop file exists or the parent process (the soak script) is gone."""

    def __init__(self, stop_file: Path) -> None:
        self._stop_file, self._parent = stop_file, os.getppid()

    def __call__(self) -> bool:
        return self._stop_file.exists() or os.getppid() != self._parent


def _stamp(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def run_camera(args: argparse.Namespace, ros_args: list[str]) -> int:
    """Publish pairs at ``args.rate`` until stopped; log each pair to ``published.csv``."""
    import rclpy
    from sensor_msgs.msg import Image

    from lutfuse_ros.ros.conversions import array_to_image
    from lutfuse_ros.ros.qos import make_qos

    size = tuple(args.size)
    kind, description = describe_frame_source(args.video_dir)
    print(f"camera: {description}", flush=True)
    frames = VideoFrames(args.video_dir, size) if kind == "video" else SyntheticFrames(size)
    stopped = _Stopper(args.stop_file)
    rclpy.init(args=ros_args)
    node = rclpy.create_node("lutfuse_soak_camera")
    qos = make_qos("sensor_data", 5)
    publishers = (node.create_publisher(Image, "visible/image", qos),
                  node.create_publisher(Image, "thermal/image", qos))
    log = open(args.work / PUBLISHED_CSV, "w", encoding="ascii")
    log.write("stamp_ns,late_us\n")
    try:
        while not all(p.get_subscription_count() for p in publishers):
            if stopped():
                return 0
            time.sleep(0.05)
        period, start, index, flushed = 1.0 / args.rate, time.monotonic(), 0, time.monotonic()
        images = encode_pair(*frames.next_pair(), args.visible_encoding, args.thermal_encoding)
        while not stopped():
            late = time.monotonic() - (start + index * period)
            if late < 0:
                time.sleep(-late)
                late = 0.0
            elif late > period:  # fell a whole frame behind: skip ticks rather than burst
                index += int(late / period)
                late -= int(late / period) * period
            stamp_ns = time.time_ns()
            for publisher, array, encoding in zip(publishers, images, (args.visible_encoding,
                                                                       args.thermal_encoding)):
                message = array_to_image(array, encoding)
                message.header.stamp, message.header.frame_id = _stamp(stamp_ns), "soak_camera"
                publisher.publish(message)
            log.write(f"{stamp_ns},{int(late * 1e6)}\n")
            index += 1
            if time.monotonic() - flushed > _FLUSH_PERIOD_S:
                log.flush()
                flushed = time.monotonic()
            images = encode_pair(*frames.next_pair(), args.visible_encoding,
                                 args.thermal_encoding)
    except KeyboardInterrupt:
        pass
    finally:
        log.close()
        frames.close()
        time.sleep(0.5)  # let the last samples leave before the publishers go
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _status_dict(status, receive_ns: int) -> dict:
    level = status.level
    return {"receive_ns": receive_ns, "name": status.name,
            "level": level[0] if isinstance(level, bytes) else int(level),
            "message": status.message, "hardware_id": status.hardware_id,
            "values": {kv.key: kv.value for kv in status.values}}


def run_recorder(args: argparse.Namespace, ros_args: list[str]) -> int:
    """Log every fused image's stamp and arrival, and the node's diagnostics, until stopped."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from lutfuse_ros.ros.qos import make_qos

    stopped = _Stopper(args.stop_file)
    received = open(args.work / RECEIVED_CSV, "w", encoding="ascii")
    received.write("stamp_ns,receive_ns\n")
    diagnostics = open(args.work / DIAGNOSTICS_JSONL, "w", encoding="utf-8")

    def on_image(msg) -> None:
        receive_ns = time.time_ns()
        stamp = msg.header.stamp
        received.write(f"{stamp.sec * 1_000_000_000 + stamp.nanosec},{receive_ns}\n")

    def on_diagnostics(msg) -> None:
        receive_ns = time.time_ns()
        for status in msg.status:
            if status.name.startswith(f"{args.namespace}/"):
                diagnostics.write(json.dumps(_status_dict(status, receive_ns)) + "\n")

    rclpy.init(args=ros_args)
    node = rclpy.create_node("lutfuse_soak_recorder")
    node.create_subscription(Image, "fused/image", on_image, make_qos("sensor_data", 5))
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    (args.work / RECORDER_READY).touch()
    flushed = time.monotonic()
    try:
        while not stopped():
            rclpy.spin_once(node, timeout_sec=0.05)
            if time.monotonic() - flushed > _FLUSH_PERIOD_S:
                received.flush()
                diagnostics.flush()
                flushed = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        received.close()
        diagnostics.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``python benchmarks/_soak_traffic.py``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder of the CSV files")
    parser.add_argument("--stop-file", type=Path, required=True, help="stop once this exists")
    roles = parser.add_subparsers(dest="role", required=True)
    camera = roles.add_parser("camera", help="publish visible/thermal pairs")
    camera.add_argument("--rate", type=float, default=30.0, help="pairs per second")
    camera.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    camera.add_argument("--visible-encoding", choices=("bgr8", "rgb8"), default="bgr8")
    camera.add_argument("--thermal-encoding", choices=("mono8", "mono16"), default="mono16")
    camera.add_argument("--video-dir", type=Path, default=DEFAULT_VIDEO_DIR)
    camera.set_defaults(runner=run_camera)
    record = roles.add_parser("record", help="log fused/image arrivals and diagnostics")
    record.add_argument("--namespace", required=True, help="the node's namespace (/ns)")
    record.set_defaults(runner=run_recorder)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a role; everything from ``--ros-args`` on goes to ``rclpy.init``."""
    from lutfuse_ros.ros.transport import apply_transport_profile

    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--ros-args") if "--ros-args" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    apply_transport_profile()
    return args.runner(args, [sys.argv[0], *argv[split:]])


if __name__ == "__main__":
    sys.exit(main())
