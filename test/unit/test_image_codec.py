"""JPEG/PNG decoding for compressed camera input.

Layouts, 16-bit thermal, and every way a payload can be broken is refused with a reason
(never a silent half-gray image).
"""

from __future__ import annotations

import numpy as np
import pytest

from lutfuse_ros.image_codec import DecodeError, codec_of, decode_image, encode_image
from lutfuse_testing.camera_frames import synthetic_pair


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair(3, 64, 48, thermal_bits=16)


def test_png_round_trips_exactly_including_16_bit_thermal(pair):
    visible, thermal = pair
    for array, encoding in ((visible, "bgr8"), (thermal, "mono16"),
                            (visible[..., 1].copy(), "mono8")):
        decoded, got = decode_image(encode_image(array, "png"))
        assert got == encoding and decoded.dtype == array.dtype
        assert np.array_equal(decoded, array)


def test_jpeg_decodes_to_bgr_close_to_the_original():
    ramp = np.linspace(0, 255, 64, dtype=np.float32)
    smooth = np.stack([np.tile(ramp, (48, 1)), np.tile(ramp[::-1], (48, 1)),
                       np.full((48, 64), 128.0)], -1).astype(np.uint8)
    data = encode_image(smooth, "jpeg", quality=95)
    assert codec_of(data) == "jpeg"
    decoded, encoding = decode_image(np.frombuffer(data, np.uint8))  # any buffer works
    assert encoding == "bgr8" and decoded.shape == smooth.shape
    assert np.abs(decoded.astype(int) - smooth).mean() < 3


@pytest.mark.parametrize("damage, reason", [
    (lambda data: b"", "no data"),
    (lambda data: b"GIF89a" + data[6:], "neither JPEG nor PNG"),
    (lambda data: data[:len(data) // 2], "truncated"),
    (lambda data: data[:30] + bytes(len(data) - 32) + data[-2:], "corrupt"),
])
def test_broken_jpeg_is_refused_with_the_reason(pair, damage, reason):
    data = encode_image(pair[0], "jpeg")
    with pytest.raises(DecodeError, match=reason):
        decode_image(damage(data))


def test_truncated_png_is_refused(pair):
    data = encode_image(pair[1], "png")
    with pytest.raises(DecodeError, match="truncated"):
        decode_image(data[:-20])
