"""Tests of lutfuse_ros.ros.conversions (own conversion path; cv_bridge only faked)."""

from __future__ import annotations

import sys
import types

import cv2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from lutfuse_ros.errors import ConversionError
from lutfuse_ros.ros.conversions import (
    ENCODING_LAYOUTS, SUPPORTED_ENCODINGS, ImageConverter, array_to_image, image_to_array,
    thermal_to_array, visible_to_bgr)

PADDING_BYTE = 0xAB


def random_array(encoding: str, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A random array in ``encoding``'s layout, full value range."""
    layout = ENCODING_LAYOUTS[encoding]
    shape = (height, width) if layout.channels == 1 else (height, width, layout.channels)
    high = np.iinfo(layout.dtype).max
    return np.random.default_rng(seed).integers(0, high, size=shape, endpoint=True,
                                                dtype=layout.dtype)


def padded_message(array: np.ndarray, encoding: str, pad: int, big_endian: bool = False,
                   extra_tail: int = 0) -> Image:
    """Build an Image by hand, row by row, with ``pad`` garbage bytes after each row."""
    height, width = array.shape[:2]
    wire = array.astype(array.dtype.newbyteorder(">" if big_endian else "<"))
    rows = [wire[row].tobytes() + bytes([PADDING_BYTE]) * pad for row in range(height)]
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=int(big_endian))
    msg.step = len(rows[0])
    msg.data = b"".join(rows) + bytes([PADDING_BYTE]) * extra_tail
    return msg


class TestRoundTrip:
    @pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
    def test_array_to_image_to_array(self, encoding):
        original = random_array(encoding, 5, 6, seed=1)
        msg = array_to_image(original, encoding)
        layout = ENCODING_LAYOUTS[encoding]
        assert isinstance(msg, Image)
        assert (msg.height, msg.width, msg.encoding) == (5, 6, encoding)
        assert msg.step == 6 * layout.channels * layout.dtype.itemsize
        assert msg.is_bigendian == int(sys.byteorder == "big")
        assert bytes(msg.data) == original.tobytes()
        restored, restored_encoding = image_to_array(msg)
        assert restored_encoding == encoding
        assert restored.dtype == layout.dtype and restored.shape == original.shape
        np.testing.assert_array_equal(restored, original)

    @pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
    @pytest.mark.parametrize("pad", [1, 3, 64])
    def test_padded_step_is_honoured(self, encoding, pad):
        original = random_array(encoding, 4, 8, seed=pad)
        msg = padded_message(original, encoding, pad)
        restored, _ = image_to_array(msg)
        np.testing.assert_array_equal(restored, original)
        repacked = array_to_image(restored, encoding)
        assert repacked.step == msg.step - pad
        np.testing.assert_array_equal(image_to_array(repacked)[0], original)

    @pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
    @pytest.mark.parametrize("pad", [0, 1, 2])
    def test_big_endian_16_bit(self, encoding, pad):
        original = np.array([[0x0102, 0xFF00, 0x00FF], [0xABCD, 0, 65535]], dtype=np.uint16)
        msg = padded_message(original, encoding, pad, big_endian=True)
        assert bytes(msg.data[:2]) == b"\x01\x02"
        restored, _ = image_to_array(msg)
        assert restored.dtype == np.dtype(np.uint16) and restored.dtype.isnative
        np.testing.assert_array_equal(restored, original)

    def test_odd_step_for_16_bit_little_endian(self):
        original = random_array("mono16", 3, 5, seed=7)
        msg = padded_message(original, "mono16", pad=3)
        assert msg.step % 2 == 1
        np.testing.assert_array_equal(image_to_array(msg)[0], original)

    def test_bytes_after_last_row_are_ignored(self):
        original = random_array("bgr8", 3, 4)
        msg = padded_message(original, "bgr8", pad=2, extra_tail=17)
        np.testing.assert_array_equal(image_to_array(msg)[0], original)

    def test_result_is_read_only_view_of_message_data(self):
        msg = array_to_image(random_array("rgb8", 4, 4), "rgb8")
        array, _ = image_to_array(msg)
        assert not array.flags.writeable
        assert np.shares_memory(array, np.frombuffer(msg.data, dtype=np.uint8))
        with pytest.raises(ValueError):
            array[0, 0, 0] = 1

    def test_non_native_byte_order_array_is_written_natively(self):
        original = np.array([[1, 258], [65535, 4096]], dtype=">u2")
        msg = array_to_image(original, "mono16")
        np.testing.assert_array_equal(image_to_array(msg)[0], original.astype(np.uint16))

    def test_single_channel_trailing_axis_is_accepted(self):
        original = random_array("mono8", 3, 3)
        msg = array_to_image(original[:, :, None], "mono8")
        np.testing.assert_array_equal(image_to_array(msg)[0], original)

    def test_header_is_kept(self):
        header = Header(frame_id="thermal_optical")
        header.stamp.sec, header.stamp.nanosec = 12, 345
        msg = array_to_image(random_array("mono8", 2, 2), "mono8", header=header)
        assert msg.header.frame_id == "thermal_optical"
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)

    def test_non_contiguous_array_is_packed(self):
        original = random_array("bgr8", 6, 8)[::2, ::2]
        msg = array_to_image(original, "bgr8")
        assert msg.step == 12
        np.testing.assert_array_equal(image_to_array(msg)[0], original)


class TestBadMessages:
    def make(self, **fields) -> Image:
        msg = array_to_image(random_array("mono16", 4, 5), "mono16")
        for name, value in fields.items():
            setattr(msg, name, value)
        return msg

    def test_unsupported_encoding(self):
        with pytest.raises(ConversionError, match=r"unsupported image encoding '32FC1'.*mono8"):
            image_to_array(self.make(encoding="32FC1"))

    def test_empty_data(self):
        with pytest.raises(ConversionError, match=r"mono16 image 5x4 has empty data.*40 bytes"):
            image_to_array(self.make(data=b""))

    def test_truncated_data(self):
        msg = self.make()
        msg.data = bytes(msg.data)[:-1]
        with pytest.raises(ConversionError, match=r"mono16 .*truncated: 39 bytes < step 10 x "
                                                  r"height 4 = 40"):
            image_to_array(msg)

    def test_step_smaller_than_row(self):
        with pytest.raises(ConversionError, match=r"mono16 image step=9 is smaller than one "
                                                  r"row: width=5 x 2 bytes per pixel = 10"):
            image_to_array(self.make(step=9))

    @pytest.mark.parametrize("field", ["width", "height"])
    def test_zero_size(self, field):
        with pytest.raises(ConversionError, match=rf"mono16 image has zero size: .*{field}=0"):
            image_to_array(self.make(**{field: 0}))

    @pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2"])
    def test_odd_width_yuv422_message(self, encoding):
        msg = Image(height=2, width=3, encoding=encoding, step=6, data=bytes(12))
        with pytest.raises(ConversionError, match=rf"{encoding} image width must be even.*"
                                                  r"width=3"):
            image_to_array(msg)

    @pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2"])
    def test_odd_width_yuv422_array(self, encoding):
        with pytest.raises(ConversionError, match=rf"{encoding} array width must be even"):
            array_to_image(np.zeros((2, 3, 2), np.uint8), encoding)

    def test_data_that_is_not_a_buffer(self):
        fake = types.SimpleNamespace(encoding="mono8", width=2, height=1, step=2,
                                     is_bigendian=0, data=[1, 2])
        with pytest.raises(ConversionError, match="not a bytes-like buffer"):
            image_to_array(fake)


class TestBadArrays:
    @pytest.mark.parametrize("array, encoding, pattern", [
        (np.zeros((2, 2), np.uint16), "mono8", r"mono8 needs a uint8 array, got uint16"),
        (np.zeros((2, 2), np.float32), "mono16", r"mono16 needs a uint16 array, got float32"),
        (np.zeros((2, 2), np.int8), "mono8", r"needs a uint8 array, got int8"),
        (np.zeros((2, 2), np.uint8), "bgr8", r"bgr8 needs an array of shape \(H, W, 3\)"),
        (np.zeros((2, 2, 4), np.uint8), "rgb8", r"rgb8 needs .*\(H, W, 3\), got \(2, 2, 4\)"),
        (np.zeros((2, 2, 3), np.uint8), "mono8", r"mono8 needs .*\(H, W\), got \(2, 2, 3\)"),
        (np.zeros((0, 2), np.uint8), "mono8", r"mono8 array has zero size"),
        (np.zeros((2, 2), np.uint8), "jpeg", r"unsupported image encoding 'jpeg'"),
        ([[1, 2]], "mono8", r"needs a numpy array, got list"),
    ])
    def test_array_to_image_rejects(self, array, encoding, pattern):
        with pytest.raises(ConversionError, match=pattern):
            array_to_image(array, encoding)


def pack_yuv422(y: np.ndarray, u: np.ndarray, v: np.ndarray, uyvy: bool) -> np.ndarray:
    """Pack (H, W) luma and (H, W/2) chroma planes into an (H, W, 2) YUV 4:2:2 array."""
    height, width = y.shape
    packed = np.empty((height, width // 2, 4), np.uint8)
    order = (u, y[:, 0::2], v, y[:, 1::2]) if uyvy else (y[:, 0::2], u, y[:, 1::2], v)
    for index, plane in enumerate(order):
        packed[:, :, index] = plane
    return packed.reshape(height, width, 2)


class TestVisibleToBgr:
    def test_bgr_passes_through(self):
        bgr = random_array("bgr8", 3, 4)
        np.testing.assert_array_equal(visible_to_bgr(bgr, "bgr8"), bgr)
        np.testing.assert_array_equal(visible_to_bgr(bgr, "8UC3"), bgr)

    @pytest.mark.parametrize("encoding, reorder", [
        ("rgb8", [2, 1, 0]), ("bgra8", [0, 1, 2]), ("rgba8", [2, 1, 0])])
    def test_colour_orders(self, encoding, reorder):
        array = random_array(encoding, 3, 4)
        result = visible_to_bgr(array, encoding)
        assert result.shape == (3, 4, 3) and result.dtype == np.uint8
        np.testing.assert_array_equal(result, array[:, :, reorder])

    @pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
    def test_mono_stays_two_dimensional(self, encoding):
        gray = random_array(encoding, 3, 4)
        np.testing.assert_array_equal(visible_to_bgr(gray, encoding), gray)

    def test_yuv422_layouts_decode_alike(self):
        rng = np.random.default_rng(3)
        y = rng.integers(16, 236, (4, 6), dtype=np.uint8)
        u, v = (rng.integers(16, 241, (4, 3), dtype=np.uint8) for _ in range(2))
        uyvy = visible_to_bgr(pack_yuv422(y, u, v, uyvy=True), "yuv422")
        yuyv = visible_to_bgr(pack_yuv422(y, u, v, uyvy=False), "yuv422_yuy2")
        assert uyvy.shape == (4, 6, 3) and uyvy.dtype == np.uint8
        np.testing.assert_array_equal(uyvy, yuyv)

    def test_yuv422_neutral_chroma_is_gray(self):
        y = np.tile(np.array([40, 200], np.uint8), (2, 2))
        neutral = np.full((2, 2), 128, np.uint8)
        bgr = visible_to_bgr(pack_yuv422(y, neutral, neutral, uyvy=True), "yuv422")
        assert np.ptp(bgr.astype(int), axis=2).max() <= 1
        assert abs(int(bgr[0, 0, 0]) - int(bgr[0, 1, 0])) > 100

    def test_padded_message_gives_contiguous_result(self):
        msg = padded_message(random_array("rgb8", 3, 4), "rgb8", pad=5)
        result = visible_to_bgr(*image_to_array(msg))
        assert result.flags.c_contiguous

    def test_thermal_only_encoding_is_rejected(self):
        with pytest.raises(ConversionError, match="'mono16' is not a visible-camera encoding"):
            visible_to_bgr(np.zeros((2, 2), np.uint16), "mono16")


class TestThermalToArray:
    @pytest.mark.parametrize("encoding", ["mono8", "8UC1", "mono16", "16UC1"])
    def test_single_channel_is_unchanged(self, encoding):
        raw = random_array(encoding, 3, 4)
        result = thermal_to_array(raw, encoding)
        assert result.dtype == raw.dtype
        np.testing.assert_array_equal(result, raw)

    def test_big_endian_message_yields_native_counts(self):
        raw = np.array([[300, 40000]], np.uint16)
        array, encoding = image_to_array(padded_message(raw, "mono16", 0, big_endian=True))
        np.testing.assert_array_equal(thermal_to_array(array, encoding), raw)

    @pytest.mark.parametrize("encoding, code", [
        ("bgr8", cv2.COLOR_BGR2GRAY), ("rgb8", cv2.COLOR_RGB2GRAY),
        ("bgra8", cv2.COLOR_BGRA2GRAY), ("rgba8", cv2.COLOR_RGBA2GRAY)])
    def test_colour_thermal_becomes_gray(self, encoding, code):
        array = random_array(encoding, 3, 4)
        result = thermal_to_array(array, encoding)
        assert result.shape == (3, 4) and result.dtype == np.uint8
        np.testing.assert_array_equal(result, cv2.cvtColor(array, code))

    @pytest.mark.parametrize("encoding, uyvy", [("yuv422", True), ("yuv422_yuy2", False)])
    def test_yuv_keeps_luma(self, encoding, uyvy):
        y = random_array("mono8", 2, 4)
        chroma = np.zeros((2, 2), np.uint8)
        np.testing.assert_array_equal(
            thermal_to_array(pack_yuv422(y, chroma, chroma, uyvy), encoding), y)

    def test_mismatched_array_is_rejected(self):
        with pytest.raises(ConversionError, match="mono16 needs a uint16 array, got uint8"):
            thermal_to_array(np.zeros((2, 2), np.uint8), "mono16")


class TestImageConverter:
    def test_own_path_when_not_preferred(self):
        converter = ImageConverter(prefer_cv_bridge=False)
        assert not converter.uses_cv_bridge
        original = random_array("bgr8", 2, 3)
        array, encoding = converter.image_to_array(converter.array_to_image(original, "bgr8"))
        assert encoding == "bgr8"
        np.testing.assert_array_equal(array, original)

    def test_falls_back_when_cv_bridge_missing(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "cv_bridge", None)  # makes the import fail
        assert not ImageConverter(prefer_cv_bridge=True).uses_cv_bridge

    def test_cv_bridge_is_used_and_its_errors_wrapped(self, monkeypatch):
        class FailingBridge:
            def imgmsg_to_cv2(self, msg, desired_encoding):
                raise TypeError("bridge says no")

            def cv2_to_imgmsg(self, array, encoding):
                raise TypeError("bridge says no")

        fake_module = types.SimpleNamespace(CvBridge=FailingBridge)
        monkeypatch.setitem(sys.modules, "cv_bridge", fake_module)
        converter = ImageConverter(prefer_cv_bridge=True)
        assert converter.uses_cv_bridge
        msg = array_to_image(random_array("mono8", 2, 2), "mono8")
        with pytest.raises(ConversionError, match="cv_bridge could not convert a mono8 2x2"):
            converter.image_to_array(msg)
        with pytest.raises(ConversionError, match="cv_bridge could not build a mono8"):
            converter.array_to_image(random_array("mono8", 2, 2), "mono8")
        msg.data = b""  # validated before cv_bridge sees it: same message as the own path
        with pytest.raises(ConversionError, match="has empty data"):
            converter.image_to_array(msg)


@settings(max_examples=150, deadline=None)
@given(encoding=st.sampled_from(SUPPORTED_ENCODINGS + ("32FC1", "")),
       width=st.integers(0, 9), height=st.integers(0, 5), step_delta=st.integers(-3, 5),
       length_delta=st.integers(-5, 5), big_endian=st.booleans(), seed=st.integers(0, 2**16))
def test_random_messages_round_trip_or_raise_conversion_error(
        encoding, width, height, step_delta, length_delta, big_endian, seed):
    layout = ENCODING_LAYOUTS.get(encoding, ENCODING_LAYOUTS["mono8"])
    row_bytes = width * layout.bytes_per_pixel
    step = max(0, row_bytes + step_delta)
    length = max(0, step * height + length_delta)
    data = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    msg = Image(height=height, width=width, encoding=encoding, step=step,
                is_bigendian=int(big_endian), data=data)
    try:
        array, returned_encoding = image_to_array(msg)
    except ConversionError:
        return
    assert returned_encoding == encoding
    # Reference decoded row by row from the raw bytes.
    wire_dtype = layout.dtype.newbyteorder(">" if big_endian else "<")
    rows = [np.frombuffer(data[r * step:r * step + row_bytes], dtype=wire_dtype)
            for r in range(height)]
    expected = np.stack(rows).astype(layout.dtype).reshape(array.shape)
    assert array.shape[:2] == (height, width)
    np.testing.assert_array_equal(array, expected)
    again, _ = image_to_array(array_to_image(array, encoding))
    np.testing.assert_array_equal(again, expected)
