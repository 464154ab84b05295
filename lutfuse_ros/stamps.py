"""Header stamps as integer nanoseconds and back, without ROS.

The bag tools, the node's frame path and the test cameras all convert between
``builtin_interfaces/Time`` fields (``sec``, ``nanosec``) and integer nanoseconds here.
"""

from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000


def stamp_to_ns(sec: int, nanosec: int) -> int:
    """``builtin_interfaces/Time`` fields as integer nanoseconds."""
    return int(sec) * NS_PER_S + int(nanosec)


def ns_to_stamp(stamp_ns: int) -> tuple[int, int]:
    """Integer nanoseconds as ``(sec, nanosec)`` with ``0 <= nanosec < 1e9``."""
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return sec, nanosec


def header_stamp_ns(header: Any) -> int:
    """Nanoseconds of a ``std_msgs/Header``'s stamp (rclpy or rosbags message)."""
    return stamp_to_ns(header.stamp.sec, header.stamp.nanosec)
