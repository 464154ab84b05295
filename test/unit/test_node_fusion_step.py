"""FusionStep: Image messages in (as camera frames), the fused Image and CompressedImage out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time

from lutfuse_ros.errors import ConversionError, InputError
from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.ros.camera_input import CameraInput
from lutfuse_ros.ros.conversions import array_to_image, image_to_array
from lutfuse_ros.ros.fused_output import compressed_message, image_message
from lutfuse_ros.settings.node_settings import parse_settings
from lutfuse_ros.stream.camera_frame import check_raw_image
from lutfuse_ros.stream.fusion_step import FusionStep
from lutfuse_testing.camera_frames import synthetic_pair

_NOW_NS = 99 * 1_000_000_000


def make_step(**output) -> tuple[FusionStep, FusionPipeline]:
    values = {f"output.{key}": value for key, value in output.items()}
    settings = parse_settings(values, fill_defaults=True)
    pipeline = FusionPipeline.from_artifact("lutfuse-mini", backend="torch",
                                            config=settings.pipeline)
    return FusionStep(pipeline, settings.output), pipeline


def messages(visible_encoding: str = "bgr8", thermal_bits: int = 8):
    visible, thermal = synthetic_pair(3, 40, 30, thermal_bits=thermal_bits)
    sent = {"bgr8": visible, "rgb8": np.ascontiguousarray(visible[..., ::-1]),
            "yuv422_yuy2": cv2.cvtColor(visible, cv2.COLOR_BGR2YUV_YUY2)}[visible_encoding]
    visible_msg = array_to_image(sent, visible_encoding)
    visible_msg.header.stamp, visible_msg.header.frame_id = Time(sec=10, nanosec=5), "camera"
    thermal_msg = array_to_image(thermal, "mono16" if thermal_bits == 16 else "mono8")
    thermal_msg.header.stamp, thermal_msg.header.frame_id = Time(sec=10, nanosec=7), "ir"
    return visible, thermal, visible_msg, thermal_msg


def fuse_messages(step: FusionStep, visible_msg, thermal_msg, now_ns: int = _NOW_NS):
    """Message -> camera frame -> step -> FusedFrame, as the node's session does it."""
    visible = CameraInput("visible", "raw").frame(visible_msg)
    thermal = CameraInput("thermal", "raw").frame(thermal_msg)
    return step.fuse(visible, thermal, now_ns=lambda: now_ns)


def test_output_is_the_pipeline_output_with_the_visible_header():
    step, pipeline = make_step()
    visible, thermal, visible_msg, thermal_msg = messages()
    fused = fuse_messages(step, visible_msg, thermal_msg)
    message = image_message(fused)
    array, encoding = image_to_array(message)
    assert encoding == "bgr8"
    assert np.array_equal(array, pipeline.fuse(visible, thermal))
    assert (message.header.stamp.sec, message.header.stamp.nanosec) == (10, 5)
    assert message.header.frame_id == "camera"
    assert message.step == 40 * 3 and fused.timings.total_ms > 0


@pytest.mark.parametrize("encoding, stamp_source, expected_nanosec", [
    ("rgb8", "thermal", 7), ("mono8", "now", 0)])
def test_output_encoding_stamp_source_and_frame_id(encoding, stamp_source, expected_nanosec):
    step, pipeline = make_step(encoding=encoding, stamp_source=stamp_source, frame_id="fused")
    visible, thermal, visible_msg, thermal_msg = messages("rgb8", thermal_bits=16)
    message = image_message(fuse_messages(step, visible_msg, thermal_msg))
    array, got_encoding = image_to_array(message)
    reference = pipeline.fuse(visible, thermal)
    assert got_encoding == encoding
    assert np.array_equal(array, reference[..., ::-1] if encoding == "rgb8" else reference)
    assert message.header.frame_id == "fused"
    assert message.header.stamp.nanosec == expected_nanosec
    assert pipeline.config.output == ("mono" if encoding == "mono8" else "colour")


def test_the_now_stamp_comes_from_the_clock_given():
    step, _ = make_step(stamp_source="now")
    _, _, visible_msg, thermal_msg = messages()
    message = image_message(fuse_messages(step, visible_msg, thermal_msg,
                                          now_ns=12 * 1_000_000_000 + 345))
    assert (message.header.stamp.sec, message.header.stamp.nanosec) == (12, 345)


def test_packed_yuv_visible_is_decoded_before_fusion():
    step, pipeline = make_step()
    _, thermal, visible_msg, thermal_msg = messages("yuv422_yuy2")
    decoded = cv2.cvtColor(image_to_array(visible_msg)[0], cv2.COLOR_YUV2BGR_YUY2)
    fused = fuse_messages(step, visible_msg, thermal_msg)
    assert np.array_equal(image_to_array(image_message(fused))[0],
                          pipeline.fuse(decoded, thermal))


@pytest.mark.parametrize("codec, magic", [("jpeg", b"\xff\xd8"), ("png", b"\x89PNG")])
def test_compressed_output_uses_image_transport_format(codec, magic):
    step, _ = make_step(compressed=codec)
    _, _, visible_msg, thermal_msg = messages()
    fused = fuse_messages(step, visible_msg, thermal_msg)
    message = image_message(fused)
    compressed = compressed_message(step.compress(fused), message.header)
    assert step.compresses
    assert compressed.format == f"bgr8; {codec} compressed bgr8"
    assert bytes(compressed.data[:len(magic)]) == magic
    decoded = cv2.imdecode(np.frombuffer(bytes(compressed.data), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (30, 40, 3)
    assert compressed.header.stamp == message.header.stamp
    if codec == "png":
        assert np.array_equal(decoded, fused.bgr_or_gray)


def test_bad_messages_are_rejected_before_any_pixel_work():
    _, _, visible_msg, thermal_msg = messages()
    check_raw_image(visible_msg, "visible")
    check_raw_image(thermal_msg, "thermal")
    visible_msg.step -= 3
    with pytest.raises(ConversionError, match="smaller than one row"):
        check_raw_image(visible_msg, "visible")
    with pytest.raises(ConversionError, match="smaller than one row"):
        CameraInput("visible", "raw").frame(visible_msg)
    with pytest.raises(ConversionError, match="unsupported encoding 'mono16'"):
        check_raw_image(thermal_msg.__class__(encoding="mono16", width=2, height=2, step=4,
                                              data=bytes(8)), "visible")
    thermal_msg.data = bytes(thermal_msg.data[:10])
    with pytest.raises(ConversionError, match="truncated"):
        check_raw_image(thermal_msg, "thermal")


def test_size_mismatch_raises_input_error_from_the_pipeline():
    step, _ = make_step()
    _, _, visible_msg, _ = messages()
    small = array_to_image(np.zeros((12, 16), np.uint8), "mono8")
    with pytest.raises(InputError, match="thermal image is 16x12"):
        fuse_messages(step, visible_msg, small)
