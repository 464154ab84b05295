"""ROS-free raw image layouts: the arrays behind ``sensor_msgs/msg/Image`` messages.

Encoding tables, ``step`` padding and ``is_bigendian`` handling, and the conversion of a raw
image message's fields to and from numpy arrays, with no ROS import: the node's message layer
(:mod:`lutfuse_ros.ros.conversions`), the bag reader and the training datasets all decode
through this module, and a rosbags-deserialised message works as well as an rclpy one (any
object with the ``Image`` fields ``height``, ``width``, ``encoding``, ``is_bigendian``,
``step`` and ``data``). Bad fields raise :class:`~lutfuse_ros.errors.ConversionError` naming
the encoding, the field and the sizes.

Array layouts (``H`` = height, ``W`` = width):

==========================  ======================  ==========================
encoding                    array                   channel order
==========================  ======================  ==========================
``mono8``, ``8UC1``         ``(H, W)`` uint8        gray
``mono16``, ``16UC1``       ``(H, W)`` uint16       gray (native byte order)
``bgr8``, ``8UC3``          ``(H, W, 3)`` uint8     B, G, R (8UC3 is taken as BGR)
``rgb8``                    ``(H, W, 3)`` uint8     R, G, B
``bgra8`` / ``rgba8``       ``(H, W, 4)`` uint8     B, G, R, A / R, G, B, A
``yuv422``                  ``(H, W, 2)`` uint8     UYVY: U Y0 V Y1 per pixel pair
``yuv422_yuy2``             ``(H, W, 2)`` uint8     YUYV: Y0 U Y1 V per pixel pair
==========================  ======================  ==========================
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import cv2
import numpy as np

from lutfuse_ros.errors import ConversionError


class ImageFields(Protocol):
    """The fields of a ``sensor_msgs/msg/Image`` this module reads (rclpy or rosbags)."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: Any


@dataclass(frozen=True)
class EncodingLayout:
    """How one ROS image encoding maps onto an array.

    Attributes:
        dtype: element type of the array (``uint8`` or ``uint16``).
        channels: elements per pixel (1, 2 for packed YUV 4:2:2, 3 or 4).
    """

    dtype: np.dtype
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        """Bytes one pixel occupies in ``msg.data``."""
        return self.channels * self.dtype.itemsize

    @property
    def is_packed_yuv(self) -> bool:
        """Whether two neighbouring pixels share chroma (so the width must be even)."""
        return self.channels == 2


_UINT8 = np.dtype(np.uint8)
_UINT16 = np.dtype(np.uint16)

#: Every encoding this module converts, read-only.
ENCODING_LAYOUTS = MappingProxyType({
    "mono8": EncodingLayout(_UINT8, 1),
    "8UC1": EncodingLayout(_UINT8, 1),
    "mono16": EncodingLayout(_UINT16, 1),
    "16UC1": EncodingLayout(_UINT16, 1),
    "bgr8": EncodingLayout(_UINT8, 3),
    "8UC3": EncodingLayout(_UINT8, 3),
    "rgb8": EncodingLayout(_UINT8, 3),
    "bgra8": EncodingLayout(_UINT8, 4),
    "rgba8": EncodingLayout(_UINT8, 4),
    "yuv422": EncodingLayout(_UINT8, 2),
    "yuv422_yuy2": EncodingLayout(_UINT8, 2),
})
SUPPORTED_ENCODINGS = tuple(ENCODING_LAYOUTS)

# cv2 conversions from each colour encoding; mono encodings need none.
_TO_BGR_CODES = MappingProxyType({
    "rgb8": cv2.COLOR_RGB2BGR,
    "bgra8": cv2.COLOR_BGRA2BGR,
    "rgba8": cv2.COLOR_RGBA2BGR,
    "yuv422": cv2.COLOR_YUV2BGR_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2BGR_YUY2,
})
_TO_GRAY_CODES = MappingProxyType({
    "bgr8": cv2.COLOR_BGR2GRAY,
    "8UC3": cv2.COLOR_BGR2GRAY,
    "rgb8": cv2.COLOR_RGB2GRAY,
    "bgra8": cv2.COLOR_BGRA2GRAY,
    "rgba8": cv2.COLOR_RGBA2GRAY,
})
# Index of the luma byte within one (H, W, 2) pixel of packed YUV 4:2:2.
_YUV_LUMA_INDEX = MappingProxyType({"yuv422": 1, "yuv422_yuy2": 0})
VISIBLE_ENCODINGS = ("mono8", "8UC1", "bgr8", "8UC3", "rgb8", "bgra8", "rgba8", "yuv422",
                     "yuv422_yuy2")
THERMAL_ENCODINGS = SUPPORTED_ENCODINGS


def layout_for(encoding: str) -> EncodingLayout:
    """Return the array layout of ``encoding``.

    Raises:
        ConversionError: the encoding is not one of :data:`SUPPORTED_ENCODINGS`.
    """
    layout = ENCODING_LAYOUTS.get(encoding)
    if layout is None:
        raise ConversionError(f"unsupported image encoding {encoding!r}; supported encodings: "
                              f"{', '.join(SUPPORTED_ENCODINGS)}")
    return layout


def validate_image_message(msg: ImageFields) -> EncodingLayout:
    """Check that a message's size fields and data describe a convertible image.

    Args:
        msg: the ``sensor_msgs/msg/Image`` (or any :class:`ImageFields`) to check.

    Returns:
        The layout of ``msg.encoding``.

    Raises:
        ConversionError: unsupported encoding, zero width or height, odd width for packed
            YUV 4:2:2, ``step`` shorter than one row, empty data or data shorter than
            ``step * height``.
    """
    encoding = msg.encoding
    layout = layout_for(encoding)
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    if width <= 0 or height <= 0:
        raise ConversionError(f"{encoding} image has zero size: width={width}, height={height}")
    if layout.is_packed_yuv and width % 2:
        raise ConversionError(f"{encoding} image width must be even (two pixels share one "
                              f"chroma pair), got width={width}")
    row_bytes = width * layout.bytes_per_pixel
    if step < row_bytes:
        raise ConversionError(f"{encoding} image step={step} is smaller than one row: width="
                              f"{width} x {layout.bytes_per_pixel} bytes per pixel = {row_bytes}")
    data_bytes = len(msg.data)
    needed = step * height
    if data_bytes == 0:
        raise ConversionError(f"{encoding} image {width}x{height} has empty data (expected "
                              f"step {step} x height {height} = {needed} bytes)")
    if data_bytes < needed:
        raise ConversionError(f"{encoding} image {width}x{height} data is truncated: "
                              f"{data_bytes} bytes < step {step} x height {height} = {needed}")
    return layout


def image_to_array(msg: ImageFields) -> tuple[np.ndarray, str]:
    """Convert an Image message to an array with the package's own conversion.

    Bytes beyond ``step * height`` are ignored. Big-endian 16-bit data is byte-swapped into a
    native ``uint16`` copy; otherwise the array is a read-only view of ``msg.data`` (copy it
    before writing), non-contiguous when ``step`` pads the rows.

    Args:
        msg: the ``sensor_msgs/msg/Image``.

    Returns:
        ``(array, encoding)``: the array in the layout of the module table (``(H, W)``,
        ``(H, W, 2)``, ``(H, W, 3)`` or ``(H, W, 4)``; uint8 or native uint16) and
        ``msg.encoding``.

    Raises:
        ConversionError: the message fails :func:`validate_image_message` or its data is not a
            bytes-like buffer.
    """
    layout = validate_image_message(msg)
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    try:
        raw = np.frombuffer(msg.data, dtype=np.uint8, count=step * height)
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"{msg.encoding} image data is not a bytes-like buffer: "
                              f"{type(msg.data).__name__}") from exc
    rows = raw.reshape(height, step)[:, :width * layout.bytes_per_pixel]
    if layout.dtype.itemsize > 1:
        wire_dtype = layout.dtype.newbyteorder(">" if msg.is_bigendian else "<")
        rows = rows.view(wire_dtype)
        if not wire_dtype.isnative:
            rows = rows.astype(layout.dtype)
    shape = (height, width) if layout.channels == 1 else (height, width, layout.channels)
    array = rows.reshape(shape)
    array.flags.writeable = False
    return array, msg.encoding


def packed_image_fields(array: np.ndarray, encoding: str) -> tuple[int, int, int, int, bytes]:
    """The raw message fields of an array: tightly packed rows in the machine's byte order.

    Args:
        array: image in the layout the module table gives for ``encoding`` (``(H, W, 1)`` is
            accepted for one-channel encodings); uint16 of either byte order for 16-bit ones.
        encoding: any of :data:`SUPPORTED_ENCODINGS`.

    Returns:
        ``(height, width, step, is_bigendian, data)`` with ``step = width * channels * bytes``.

    Raises:
        ConversionError: the encoding is unsupported or the array does not match it.
    """
    layout = layout_for(encoding)
    array = checked_array(array, encoding, layout)
    height, width = array.shape[:2]
    return (height, width, width * layout.bytes_per_pixel, int(sys.byteorder == "big"),
            np.ascontiguousarray(array).tobytes())


def visible_to_bgr(array: np.ndarray, encoding: str) -> np.ndarray:
    """Bring a visible-camera array into the colour order the pipeline uses.

    Args:
        array: output of :func:`image_to_array` for one of :data:`VISIBLE_ENCODINGS`.
        encoding: its encoding.

    Returns:
        C-contiguous ``(H, W, 3)`` uint8 BGR, or ``(H, W)`` uint8 gray for ``mono8``/``8UC1``.
        Packed YUV 4:2:2 is decoded with OpenCV (BT.601). The result may be a read-only view
        of the input when no conversion is needed.

    Raises:
        ConversionError: the encoding is not a visible one or the array does not match it.
    """
    if encoding not in VISIBLE_ENCODINGS:
        raise ConversionError(f"encoding {encoding!r} is not a visible-camera encoding; "
                              f"expected one of {', '.join(VISIBLE_ENCODINGS)}")
    array = checked_array(array, encoding, ENCODING_LAYOUTS[encoding])
    code = _TO_BGR_CODES.get(encoding)
    if code is None:
        return np.ascontiguousarray(array)
    return cv2.cvtColor(np.ascontiguousarray(array), code)


def thermal_to_array(array: np.ndarray, encoding: str) -> np.ndarray:
    """Bring a thermal-camera array to one channel, keeping its bit depth.

    Args:
        array: output of :func:`image_to_array` for one of :data:`THERMAL_ENCODINGS`.
        encoding: its encoding.

    Returns:
        C-contiguous ``(H, W)`` uint8 (8-bit encodings) or native uint16 (``mono16``/
        ``16UC1``, raw counts untouched). Colour images (false-colour thermal outputs) are
        converted to gray with OpenCV's BT.601 weights; packed YUV keeps its luma bytes.

    Raises:
        ConversionError: the encoding is unsupported or the array does not match it.
    """
    array = checked_array(array, encoding, layout_for(encoding))
    if encoding in _YUV_LUMA_INDEX:
        return np.ascontiguousarray(array[:, :, _YUV_LUMA_INDEX[encoding]])
    code = _TO_GRAY_CODES.get(encoding)
    if code is None:
        return np.ascontiguousarray(array)
    return cv2.cvtColor(np.ascontiguousarray(array), code)


def checked_array(array: Any, encoding: str, layout: EncodingLayout) -> np.ndarray:
    """Validate an array against an encoding's layout.

    Returns:
        ``array`` with a one-channel trailing axis squeezed and 16-bit data in native order.

    Raises:
        ConversionError: not an ndarray, wrong dtype, rank, channel count, zero size or an
            odd width for packed YUV.
    """
    if not isinstance(array, np.ndarray):
        raise ConversionError(f"{encoding} conversion needs a numpy array, got "
                              f"{type(array).__name__}")
    if array.dtype.kind != "u" or array.dtype.itemsize != layout.dtype.itemsize:
        raise ConversionError(f"{encoding} needs a {layout.dtype.name} array, got "
                              f"{array.dtype.name}")
    if layout.channels == 1 and array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    expected_ndim = 2 if layout.channels == 1 else 3
    if array.ndim != expected_ndim or (expected_ndim == 3 and array.shape[2] != layout.channels):
        expected = "(H, W)" if layout.channels == 1 else f"(H, W, {layout.channels})"
        raise ConversionError(f"{encoding} needs an array of shape {expected}, got "
                              f"{array.shape}")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ConversionError(f"{encoding} array has zero size: shape {array.shape}")
    if layout.is_packed_yuv and width % 2:
        raise ConversionError(f"{encoding} array width must be even (two pixels share one "
                              f"chroma pair), got width={width}")
    if not array.dtype.isnative:
        array = array.astype(layout.dtype)
    return array
