"""Property-based tests: any ``sensor_msgs/Image`` the node can receive converts or is refused.

Messages are built field by field by hypothesis (known and unknown encodings, zero sizes, short,
padded and huge ``step``, both byte orders, truncated and oversized ``data``, NaN bytes under a
float encoding) and fed to :class:`~lutfuse_ros.ros.conversions.ImageConverter` and to the
node's path: :class:`~lutfuse_ros.ros.camera_input.CameraInput` (check, then the camera frame)
and :class:`~lutfuse_ros.stream.fusion_step.FusionStep` (``fuse``) to the fused message. Each either
succeeds with the right result or raises a :class:`~lutfuse_ros.errors.LutfuseError` whose
message names what was wrong; hypothesis' per-example deadline turns a hang into a failure.
"""

from __future__ import annotations

import re
import struct
from datetime import timedelta

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import Image

from lutfuse_ros.errors import ConversionError, InputError, LutfuseError
from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.ros.conversions import (
    ENCODING_LAYOUTS,
    SUPPORTED_ENCODINGS,
    THERMAL_ENCODINGS,
    VISIBLE_ENCODINGS,
    ImageConverter,
)
from lutfuse_ros.ros.camera_input import CameraInput
from lutfuse_ros.ros.fused_output import image_message
from lutfuse_ros.settings.node_settings import parse_settings
from lutfuse_ros.stream.camera_frame import check_raw_image
from lutfuse_ros.stream.fusion_step import FusionStep

#: encodings a driver may send that the package does not convert (float, signed, Bayer, typos).
FOREIGN_ENCODINGS = ("32FC1", "32FC3", "64FC1", "16SC1", "8SC1", "bayer_rggb8", "BGR8", "mono8 ",
                     "", "jpeg", "nv12", "rgb16", "bgra16", "mono 8")
#: the message fields a refusal may name; every ConversionError must name at least one.
PROBLEM_WORDS = re.compile(r"encoding|step|width|height|data|size|truncated|empty|row|chroma")
HUGE_STEPS = (2 ** 31 - 1, 2 ** 32 - 1)
FAST = settings(max_examples=120, deadline=timedelta(seconds=2),
                suppress_health_check=[HealthCheck.too_slow])


def bytes_per_pixel(encoding: str) -> int:
    """Bytes per pixel of a supported encoding (4 for an unknown one, as for 32FC1)."""
    layout = ENCODING_LAYOUTS.get(encoding)
    return layout.bytes_per_pixel if layout is not None else 4


@st.composite
def image_messages(draw, encodings=st.sampled_from(SUPPORTED_ENCODINGS + FOREIGN_ENCODINGS)
                   | st.text(max_size=10), max_side: int = 9) -> Image:
    """An Image message whose fields may contradict each other in every way a driver can."""
    encoding = draw(encodings)
    width = draw(st.integers(0, max_side))
    height = draw(st.integers(0, max_side))
    row_bytes = width * bytes_per_pixel(encoding)
    step = draw(st.one_of(
        st.just(row_bytes),                                  # tightly packed
        st.integers(row_bytes + 1, row_bytes + 17),          # padded rows
        st.integers(max(0, row_bytes - 7), max(0, row_bytes - 1)),  # shorter than a row
        st.sampled_from(HUGE_STEPS),                         # nonsense from a broken driver
    ))
    needed = step * height
    if step in HUGE_STEPS:  # never allocate gigabytes: such data is always short
        length = draw(st.integers(0, 64))
    else:
        length = draw(st.one_of(st.just(needed), st.integers(0, needed + 32),
                                st.integers(needed, needed + 64)))
    data = draw(st.binary(min_size=length, max_size=length))
    return Image(height=height, width=width, encoding=encoding, step=step, data=data,
                 is_bigendian=draw(st.sampled_from((0, 1, 2, 255))))


def assert_names_the_problem(error: LutfuseError) -> None:
    """A refusal is a package error whose text says which field or value was wrong."""
    text = str(error)
    assert text and PROBLEM_WORDS.search(text), f"unhelpful error message: {text!r}"


def expected_shape(msg: Image) -> tuple[int, ...]:
    channels = ENCODING_LAYOUTS[msg.encoding].channels
    return (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)


@FAST
@given(msg=image_messages())
def test_converter_returns_the_declared_layout_or_names_the_problem(msg):
    converter = ImageConverter(prefer_cv_bridge=False)
    try:
        array, encoding = converter.image_to_array(msg)
    except ConversionError as error:
        assert_names_the_problem(error)
        return
    assert encoding == msg.encoding in SUPPORTED_ENCODINGS
    assert array.shape == expected_shape(msg)
    assert array.dtype == ENCODING_LAYOUTS[msg.encoding].dtype and array.dtype.isnative
    # The conversion never reads past step * height, however long the data is.
    assert msg.step * msg.height <= len(msg.data)


@FAST
@given(msg=image_messages(), stream=st.sampled_from(("visible", "thermal")))
def test_camera_frame_check_guarantees_a_convertible_message(msg, stream):
    try:
        check_raw_image(msg, stream)
    except ConversionError as error:
        assert_names_the_problem(error)
        if msg.encoding not in (VISIBLE_ENCODINGS if stream == "visible" else THERMAL_ENCODINGS):
            assert repr(msg.encoding) in str(error)
        return
    # What the check accepts, the camera frame must be able to view as an array.
    array, _ = ImageConverter(prefer_cv_bridge=False).image_to_array(msg)
    assert array.shape == expected_shape(msg)


@st.composite
def packed_images(draw) -> tuple[np.ndarray, str]:
    """A valid array for a supported encoding (random content, even width for YUV)."""
    encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS))
    layout = ENCODING_LAYOUTS[encoding]
    height = draw(st.integers(1, 6))
    width = draw(st.integers(1, 6)) * (2 if layout.is_packed_yuv else 1)
    shape = (height, width) if layout.channels == 1 else (height, width, layout.channels)
    seed = draw(st.integers(0, 2 ** 16))
    limit = np.iinfo(layout.dtype).max
    array = np.random.default_rng(seed).integers(0, limit, size=shape, endpoint=True,
                                                 dtype=layout.dtype)
    return array, encoding


@FAST
@given(image=packed_images(), padding=st.integers(0, 9), big_endian=st.booleans(),
       extra=st.integers(0, 40))
def test_padding_byte_order_and_trailing_bytes_do_not_change_pixels(image, padding, big_endian,
                                                                    extra):
    """Padded rows, either byte order and trailing garbage decode to the same pixels.

    The same pixels sent any of these ways give the same array (no silent shift, swap or
    mix-up).
    """
    array, encoding = image
    height, width = array.shape[:2]
    wire = array.astype(array.dtype.newbyteorder(">" if big_endian else "<"))
    rows = wire.reshape(height, -1).view(np.uint8).reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, padding), 0xAB, np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, step=padded.shape[1],
                is_bigendian=int(big_endian), data=padded.tobytes() + b"\xcd" * extra)
    decoded, _ = ImageConverter(prefer_cv_bridge=False).image_to_array(msg)
    np.testing.assert_array_equal(decoded, array)


@FAST
@given(width=st.integers(1, 6), height=st.integers(1, 6), channels=st.sampled_from((1, 3)),
       nan_fraction=st.floats(0.0, 1.0), big_endian=st.booleans())
def test_float_images_with_nan_are_refused_by_encoding(width, height, channels, nan_fraction,
                                                       big_endian):
    """32FC1/32FC3 depth-like images (NaN for no return) are not silently taken as bytes."""
    values = np.random.default_rng(width * 7 + height).random(width * height * channels)
    values[:int(nan_fraction * values.size)] = np.nan
    data = b"".join(struct.pack(">f" if big_endian else "<f", v) for v in values)
    encoding = f"32FC{channels}"
    msg = Image(height=height, width=width, encoding=encoding, step=width * 4 * channels,
                is_bigendian=int(big_endian), data=data)
    with pytest.raises(ConversionError, match=rf"unsupported image encoding '{encoding}'"):
        ImageConverter(prefer_cv_bridge=False).image_to_array(msg)
    for stream in ("visible", "thermal"):
        with pytest.raises(ConversionError, match=rf"{stream} image has unsupported encoding"):
            check_raw_image(msg, stream)


@pytest.fixture(scope="module")
def fusion_step() -> FusionStep:
    """The node's step with the shipped mini-model (the cheapest real model), warmed up."""
    settings_ = parse_settings({}, fill_defaults=True)
    pipeline = FusionPipeline.from_artifact("lutfuse-mini", backend="torch",
                                            config=settings_.pipeline)
    step = FusionStep(pipeline, settings_.output)
    pipeline.fuse(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))
    return step


def fuse_messages(step: FusionStep, visible: Image, thermal: Image, now_ns: int = 0) -> Image:
    """The node's path for one pair of messages: camera frames, the step, the fused message."""
    frames = (CameraInput("visible", "raw").frame(visible),
              CameraInput("thermal", "raw").frame(thermal))
    return image_message(step.fuse(*frames, now_ns=lambda: now_ns))


def small_messages(encodings: tuple[str, ...]) -> st.SearchStrategy[Image]:
    return image_messages(encodings=st.sampled_from(encodings + ("32FC1", "16SC1")), max_side=6)


def partner_for(msg: Image, stream: str) -> Image:
    """A well-formed message of ``stream`` with the size ``msg`` declares (at least 1x1)."""
    height, width = max(1, msg.height), max(1, msg.width)
    rng = np.random.default_rng(height * 31 + width)
    if stream == "visible":
        return ImageConverter(False).array_to_image(
            rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "bgr8")
    return ImageConverter(False).array_to_image(
        rng.integers(0, 65536, (height, width), dtype=np.uint16), "mono16")


@settings(max_examples=80, deadline=timedelta(seconds=5),
          suppress_health_check=[HealthCheck.too_slow])
@given(broken=st.sampled_from(("visible", "thermal")), data=st.data())
def test_fuse_returns_an_image_or_a_package_error(fusion_step, broken, data):
    """The worker-thread path never raises anything but a LutfuseError.

    One stream gets a fuzzed message, the other a well-formed one of the size the fuzzed one
    declares.
    """
    encodings = VISIBLE_ENCODINGS if broken == "visible" else THERMAL_ENCODINGS
    fuzzed = data.draw(small_messages(encodings), label=broken)
    other = partner_for(fuzzed, "thermal" if broken == "visible" else "visible")
    visible, thermal = (fuzzed, other) if broken == "visible" else (other, fuzzed)
    visible.header.stamp = Time(sec=5, nanosec=1)
    try:
        message = fuse_messages(fusion_step, visible, thermal, now_ns=9 * 10 ** 9)
    except (ConversionError, InputError) as error:
        event(f"refused: {type(error).__name__}")
        assert_names_the_problem(error)
        return
    event("fused")
    check_raw_image(visible, "visible")
    check_raw_image(thermal, "thermal")
    assert (message.height, message.width) == (visible.height, visible.width)
    assert message.encoding == "bgr8" and len(message.data) == message.step * message.height
    assert (message.header.stamp.sec, message.header.stamp.nanosec) == (5, 1)


@settings(max_examples=40, deadline=timedelta(seconds=5),
          suppress_health_check=[HealthCheck.too_slow])
@given(visible_size=st.tuples(st.integers(2, 6), st.integers(2, 6)),
       thermal_size=st.tuples(st.integers(2, 6), st.integers(2, 6)),
       thermal_encoding=st.sampled_from(("mono8", "mono16", "bgr8", "yuv422")))
def test_fuse_of_valid_messages_of_any_sizes(fusion_step, visible_size, thermal_size,
                                             thermal_encoding):
    """Well-formed pairs fuse when the sizes agree and name both sizes when they do not."""
    rng = np.random.default_rng(sum(visible_size) * 10 + sum(thermal_size))
    visible = ImageConverter(False).array_to_image(
        rng.integers(0, 256, (*visible_size, 3), dtype=np.uint8), "bgr8")
    layout = ENCODING_LAYOUTS[thermal_encoding]
    height, width = thermal_size
    width += width % 2 if layout.is_packed_yuv else 0
    shape = (height, width) if layout.channels == 1 else (height, width, layout.channels)
    thermal = ImageConverter(False).array_to_image(
        rng.integers(0, np.iinfo(layout.dtype).max, shape, dtype=layout.dtype), thermal_encoding)
    if visible_size != (height, width):
        with pytest.raises(InputError, match=rf"{visible_size[1]}x{visible_size[0]}.*"
                                             rf"{width}x{height}"):
            fuse_messages(fusion_step, visible, thermal)
        return
    message = fuse_messages(fusion_step, visible, thermal)
    assert (message.height, message.width) == visible_size
