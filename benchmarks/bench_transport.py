"""Fast DDS transports and large images: delivered frames of a best-effort image topic.

Reproduces the measurement behind the shipped Fast DDS profile (``config/fastdds_profile.xml``,
see ``docs/ros_node.md``): a publisher process sends visible + thermal pairs at ``--rate`` Hz
for ``--count`` pairs, two recorder processes subscribe (sensor-data QoS, depth 5, or
``--qos reliable``),
and the visible frames delivered and their latency are counted. Each side's transports are
chosen separately, to show which side of a link needs the profile:

- ``default``: Fast DDS defaults (shared memory with a 512 KiB segment, plus UDPv4);
- ``shipped``: the package's profile (32 MiB shared-memory segment plus UDPv4);
- ``large_data``: ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` (shared memory + TCP).

Usage::

    python benchmarks/bench_transport.py [--size 640 480] [--rate 30] [--count 150]
        [--qos reliable] [--links default:default shipped:shipped default:shipped shipped:default
         large_data:default]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lutfuse_ros.ros.fastdds_version import detect_fastdds  # noqa: E402
from lutfuse_ros.ros.transport import (USER_TRANSPORT_VARIABLES, profile_variables,  # noqa: E402
                                       shipped_profile_path)

TRANSPORTS = {
    "default": {},
    # the variable(s) the installed Fast DDS generation reads (2.x: FASTRTPS_, 3.x: FASTDDS_)
    "shipped": dict.fromkeys(profile_variables(detect_fastdds()), str(shipped_profile_path())),
    "large_data": {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"},
}


def measure(publisher: str, subscriber: str, args: argparse.Namespace, domain_id: int,
            ) -> tuple[int, float, float]:
    """Delivered visible frames and p50/p99 latency (ms) of one publisher:subscriber link."""
    base = {k: v for k, v in os.environ.items() if k not in USER_TRANSPORT_VARIABLES}
    base.update(ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1",
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH")])))
    traffic = [sys.executable, "-m", "lutfuse_testing.camera_traffic", "--no-fastdds-profile",
               "--qos", args.qos, "--timeout", str(args.match_timeout)]
    with tempfile.TemporaryDirectory(prefix="lutfuse_transport_") as folder:
        tmp = Path(folder)
        processes = []
        try:
            for topic in ("visible", "thermal"):
                processes.append(subprocess.Popen(
                    traffic + ["record", "--topic", f"{topic}/image", "--ready-file",
                               str(tmp / f"ready_{topic}"), "--done-file", str(tmp / "done"),
                               "--idle", "2", "--out", str(tmp / f"{topic}.npz")],
                    cwd=REPO, env={**base, **TRANSPORTS[subscriber]},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            processes.append(subprocess.Popen(
                traffic + ["publish", "--size", *map(str, args.size), "--rate", str(args.rate),
                           "--count", str(args.count), "--ready-file",
                           str(tmp / "ready_visible"), "--done-file", str(tmp / "done"),
                           "--linger-until", str(tmp / "visible.npz")],
                cwd=REPO, env={**base, **TRANSPORTS[publisher]},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for process in processes:
                process.wait(args.match_timeout + args.count / args.rate + 60)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                    try:
                        process.wait(10)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
        if not (tmp / "visible.npz").exists():
            return 0, float("nan"), float("nan")
        with np.load(tmp / "visible.npz") as data:
            measured = data["frame_id"] == "camera"
            latency = (data["receive_ns"][measured] - data["stamp_ns"][measured]) / 1e6
    if not len(latency):
        return 0, float("nan"), float("nan")
    return int(measured.sum()), float(np.percentile(latency, 50)), \
        float(np.percentile(latency, 99))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--qos", choices=("sensor_data", "reliable"), default="sensor_data",
                        help="QoS of both sides (depth 5)")
    parser.add_argument("--match-timeout", type=float, default=30.0,
                        help="seconds to wait for discovery before a link counts as unmatched")
    parser.add_argument("--links", nargs="+", default=["default:default", "shipped:shipped",
                                                       "default:shipped", "shipped:default",
                                                       "large_data:default"],
                        help="publisher:subscriber transports")
    args = parser.parse_args()
    print(f"{args.size[0]}x{args.size[1]} bgr8 + mono8 at {args.rate:g} Hz, {args.count} pairs, "
          f"{args.qos} QoS depth 5, load {os.getloadavg()[0]:.1f}")
    print(f"{'publisher':>11} {'subscriber':>11} {'delivered':>11} {'p50 ms':>7} {'p99 ms':>7}")
    for index, link in enumerate(args.links):
        publisher, subscriber = link.split(":")
        got, p50, p99 = measure(publisher, subscriber, args, 1 + (os.getpid() + index) % 100)
        print(f"{publisher:>11} {subscriber:>11} {got:>5}/{args.count:<5} {p50:7.1f} {p99:7.1f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
