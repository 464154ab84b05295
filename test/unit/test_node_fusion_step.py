"""FusionStep: Image messages in, the pipeline's output as an Image (and CompressedImage)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time

from lutfuse_ros.errors import ConversionError, InputError
from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.ros.conversions import array_to_image, image_to_array
from lutfuse_ros.ros.fusion_step import FusionStep
from lutfuse_ros.settings.node_settings import parse_settings
from lutfuse_testing.camera_frames import synthetic_pair


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


def test_output_is_the_pipeline_output_with_the_visible_header():
    step, pipeline = make_step()
    visible, thermal, visible_msg, thermal_msg = messages()
    fused = step.fuse(visible_msg, thermal_msg, now=lambda: Time(sec=99))
    array, encoding = image_to_array(fused.message)
    assert encoding == "bgr8"
    assert np.array_equal(array, pipeline.fuse(visible, thermal))
    assert (fused.message.header.stamp.sec, fused.message.header.stamp.nanosec) == (10, 5)
    assert fused.message.header.frame_id == "camera"
    assert fused.message.step == 40 * 3 and fused.timings.total_ms > 0


@pytest.mark.parametrize("encoding, stamp_source, expected_nanosec", [
    ("rgb8", "thermal", 7), ("mono8", "now", 0)])
def test_output_encoding_stamp_source_and_frame_id(encoding, stamp_source, expected_nanosec):
    step, pipeline = make_step(encoding=encoding, stamp_source=stamp_source, frame_id="fused")
    visible, thermal, visible_msg, thermal_msg = messages("rgb8", thermal_bits=16)
    fused = step.fuse(visible_msg, thermal_msg, now=lambda: Time(sec=99))
    array, got_encoding = image_to_array(fused.message)
    reference = pipeline.fuse(visible, thermal)
    assert got_encoding == encoding
    assert np.array_equal(array, reference[..., ::-1] if encoding == "rgb8" else reference)
    assert fused.message.header.frame_id == "fused"
    assert fused.message.header.stamp.nanosec == expected_nanosec
    assert pipeline.config.output == ("mono" if encoding == "mono8" else "colour")


def test_packed_yuv_visible_is_decoded_before_fusion():
    step, pipeline = make_step()
    _, thermal, visible_msg, thermal_msg = messages("yuv422_yuy2")
    decoded = cv2.cvtColor(image_to_array(visible_msg)[0], cv2.COLOR_YUV2BGR_YUY2)
    fused = step.fuse(visible_msg, thermal_msg, now=lambda: Time())
    assert np.array_equal(image_to_array(fused.message)[0], pipeline.fuse(decoded, thermal))


@pytest.mark.parametrize("codec, magic", [("jpeg", b"\xff\xd8"), ("png", b"\x89PNG")])
def test_compressed_output_uses_image_transport_format(codec, magic):
    step, _ = make_step(compressed=codec)
    _, _, visible_msg, thermal_msg = messages()
    fused = step.fuse(visible_msg, thermal_msg, now=lambda: Time())
    compressed = step.compress(fused)
    assert step.compresses
    assert compressed.format == f"bgr8; {codec} compressed bgr8"
    assert bytes(compressed.data[:len(magic)]) == magic
    decoded = cv2.imdecode(np.frombuffer(bytes(compressed.data), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (30, 40, 3)
    assert compressed.header.stamp == fused.message.header.stamp
    if codec == "png":
        assert np.array_equal(decoded, fused.bgr_or_gray)


def test_bad_messages_are_rejected_before_any_pixel_work():
    _, _, visible_msg, thermal_msg = messages()
    FusionStep.check(visible_msg, "visible")
    FusionStep.check(thermal_msg, "thermal")
    visible_msg.step -= 3
    with pytest.raises(ConversionError, match="smaller than one row"):
        FusionStep.check(visible_msg, "visible")
    with pytest.raises(ConversionError, match="unsupported encoding 'mono16'"):
        FusionStep.check(thermal_msg.__class__(encoding="mono16", width=2, height=2, step=4,
                                               data=bytes(8)), "visible")
    thermal_msg.data = bytes(thermal_msg.data[:10])
    with pytest.raises(ConversionError, match="truncated"):
        FusionStep.check(thermal_msg, "thermal")


def test_size_mismatch_raises_input_error_from_the_pipeline():
    step, _ = make_step()
    _, _, visible_msg, _ = messages()
    small = array_to_image(np.zeros((12, 16), np.uint8), "mono8")
    with pytest.raises(InputError, match="thermal image is 16x12"):
        step.fuse(visible_msg, small, now=lambda: Time())
