"""``visible/camera_info`` -> ``fused/camera_info`` without a graph.

Which message is used, the fused header and size, and nothing for a camera_info that does
not fit the image.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sensor_msgs", reason="ROS message packages are not installed")

from std_msgs.msg import Header  # noqa: E402

from lutfuse_ros.preprocessing import AlignmentConfig  # noqa: E402
from lutfuse_ros.pipeline import StageTimings  # noqa: E402
from lutfuse_ros.ros.camera_info import CameraInfoRelay, camera_model_of  # noqa: E402
from lutfuse_ros.stream.fusion_step import FusedFrame  # noqa: E402
from lutfuse_testing.camera_frames import synthetic_camera_info  # noqa: E402

_NS_PER_S = 1_000_000_000


def stamped(msg, sec: int, frame_id: str = "camera"):
    msg.header.stamp.sec, msg.header.frame_id = sec, frame_id
    return msg


def images(sec: int, visible_size=(64, 48), thermal_size=(32, 24)):
    """The pair's visible stamp (ns) and the sizes of its two images."""
    return sec * _NS_PER_S, (visible_size, thermal_size)


def fused_image(sec: int, size, frame_id="fused_frame"):
    """The published fused image's header and size."""
    header = Header(frame_id=frame_id)
    header.stamp.sec = sec
    return header, size


def fused_info(relay, pair, fused, alignment):
    """``relay.fused_info`` for a pair (``images``) fused to ``fused`` (``fused_image``)."""
    visible_stamp_ns, (visible_size, thermal_size) = pair
    header, size = fused
    frame = FusedFrame(array=np.zeros(size[::-1] + (3,), np.uint8), encoding="bgr8",
                       stamp_ns=header.stamp.sec * _NS_PER_S, frame_id=header.frame_id,
                       bgr_or_gray=np.zeros(size[::-1] + (3,), np.uint8),
                       visible_size=visible_size, thermal_size=thermal_size,
                       timings=StageTimings())
    return relay.fused_info(visible_stamp_ns, frame, header, alignment)


def test_nothing_before_a_camera_info_arrives():
    relay = CameraInfoRelay()
    pair = images(1)
    assert fused_info(relay, pair, fused_image(1, (32, 24)),
                      AlignmentConfig(mode="resize_visible")) == (None, "")


def test_the_visible_stamp_picks_the_camera_info_else_the_newest():
    relay = CameraInfoRelay(keep=3)
    for sec, fx in ((1, 60.0), (2, 70.0), (3, 80.0)):
        info = stamped(synthetic_camera_info(64, 48), sec)
        info.k[0] = info.p[0] = fx
        relay.add(info)
    pair = images(2)
    out, _ = fused_info(relay, pair, fused_image(7, (64, 48)), AlignmentConfig())
    assert out.k[0] == 70.0 and out.header.stamp.sec == 7 and out.header.frame_id == "fused_frame"
    pair = images(9)
    out, _ = fused_info(relay, pair, fused_image(9, (64, 48)), AlignmentConfig())
    assert out.k[0] == 80.0


def test_resize_visible_halves_the_focal_length_and_keeps_distortion():
    relay = CameraInfoRelay()
    source = stamped(synthetic_camera_info(64, 48), 1)
    source.d = [0.1, -0.02, 0.0, 0.001, 0.0]
    relay.add(source)
    pair = images(1)
    out, why = fused_info(relay, pair, fused_image(1, (32, 24)),
                          AlignmentConfig(mode="resize_visible"))
    assert why == "" and (out.width, out.height) == (32, 24)
    assert out.k[0] == pytest.approx(source.k[0] / 2) and list(out.d) == list(source.d)
    assert camera_model_of(out).image_size == (32, 24)


def test_a_camera_info_of_another_size_is_not_carried_over():
    relay = CameraInfoRelay()
    relay.add(stamped(synthetic_camera_info(640, 480), 1))
    pair = images(1)
    out, why = fused_info(relay, pair, fused_image(1, (32, 24)),
                          AlignmentConfig(mode="resize_visible"))
    assert out is None and "640x480" in why and "64x48" in why
