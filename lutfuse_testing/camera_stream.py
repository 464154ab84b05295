"""The simulated camera and recorder in streaming mode, as the soak benchmark runs them.

``python -m lutfuse_testing.camera_traffic stream|stream-record --work DIR --stop-file F ...``
(see :mod:`lutfuse_testing.camera_traffic`). Both stop when ``--stop-file`` appears (or on
SIGINT/SIGTERM) and when the process that started them is gone, and append what they did to
files in ``--work`` that the soak script reads while they run:

- ``stream`` publishes visible + thermal pairs on ``visible/image`` and ``thermal/image`` at
  ``--rate`` Hz until stopped. Frames come from the aligned clips in ``--video-dir``
  (:class:`~lutfuse_testing.camera_frames.VideoFrames`), or rendered demo scenes when that
  folder is missing. Both images of a pair carry the wall-clock publish time as stamp.
  ``published.csv``: ``stamp_ns,late_us`` per pair (``late_us``: behind schedule).
- ``stream-record`` subscribes to ``fused/image`` (sensor-data QoS, as a downstream consumer)
  and ``/diagnostics``. ``received.csv``: ``stamp_ns,receive_ns`` per fused image;
  ``diagnostics.jsonl``: the statuses whose name starts with the node's namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from lutfuse_testing.camera_frames import (SyntheticFrames, VideoFrames, describe_frame_source,
                                           encode_pair)
from lutfuse_testing.camera_rig import CameraRig

PUBLISHED_CSV, RECEIVED_CSV, DIAGNOSTICS_JSONL = "published.csv", "received.csv", \
    "diagnostics.jsonl"
RECORDER_READY = "recorder.ready"
_FLUSH_PERIOD_S = 0.5


class _Stopper:
    """True once the stop file exists or the parent process (the soak script) is gone."""

    def __init__(self, stop_file: Path) -> None:
        self._stop_file, self._parent = stop_file, os.getppid()

    def __call__(self) -> bool:
        return self._stop_file.exists() or os.getppid() != self._parent


def run_stream(args: argparse.Namespace, ros_args: list[str]) -> int:
    """Publish pairs at ``args.rate`` until stopped; log each pair to ``published.csv``."""
    import rclpy

    from lutfuse_ros.ros.qos import make_qos

    size = tuple(args.size)
    kind, description = describe_frame_source(args.video_dir)
    print(f"camera: {description}", flush=True)
    frames = VideoFrames(args.video_dir, size) if kind == "video" else SyntheticFrames(size)
    stopped = _Stopper(args.stop_file)
    rclpy.init(args=ros_args)
    node = rclpy.create_node("lutfuse_soak_camera")
    rig = CameraRig(node, make_qos("sensor_data", 5))
    log = open(args.work / PUBLISHED_CSV, "w", encoding="ascii")
    log.write("stamp_ns,late_us\n")
    try:
        while not rig.subscribed():
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
            rig.publish(*rig.messages(rig.prepare(images[0], args.visible_encoding, images[1],
                                                  args.thermal_encoding),
                                      stamp_ns, stamp_ns, "soak_camera"))
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


def run_stream_recorder(args: argparse.Namespace, ros_args: list[str]) -> int:
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
