"""JPEG and PNG images as bytes, the payload of ``sensor_msgs/CompressedImage`` (no ROS).

:func:`decode_image` turns the bytes a camera sent into an array for the pipeline. The codec is
recognised from the data's signature (the ``format`` string of a message is only a hint, and
image_transport writers disagree on it); a payload that is neither JPEG nor PNG, is cut short
(no JPEG end-of-image marker, no PNG ``IEND`` chunk: OpenCV would otherwise return a partly
gray image without complaint), or does not decode raises :class:`DecodeError` naming what was
wrong. :func:`encode_image` is the inverse, for test traffic and tools.

Decoded layouts: JPEG and 8-bit PNG colour -> ``(H, W, 3)`` uint8 BGR (``bgr8``), with
alpha -> ``(H, W, 4)`` BGRA (``bgra8``), gray -> ``(H, W)`` uint8 (``mono8``); 16-bit PNG gray
-> ``(H, W)`` native uint16 (``mono16``, radiometric thermal counts kept).
"""

from __future__ import annotations

import cv2
import numpy as np

from lutfuse_ros.errors import ConversionError

JPEG_SIGNATURE = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CODECS = ("jpeg", "png")
#: Largest decoded image accepted (pixels); a tiny payload claiming more is refused.
MAX_PIXELS = 64 * 1024 * 1024
_ENCODINGS = {(np.dtype(np.uint8), 1): "mono8", (np.dtype(np.uint8), 3): "bgr8",
              (np.dtype(np.uint8), 4): "bgra8", (np.dtype(np.uint16), 1): "mono16"}


class DecodeError(ConversionError):
    """A compressed image could not be decoded (the message says why)."""


def codec_of(data) -> str:
    """``jpeg`` or ``png`` from the signature of ``data`` (bytes, ``array.array``, ndarray).

    Raises:
        DecodeError: empty data or an unknown signature.
    """
    if not len(data):
        raise DecodeError("compressed image has no data")
    head = bytes(data[:8])
    if head.startswith(JPEG_SIGNATURE):
        return "jpeg"
    if head.startswith(PNG_SIGNATURE):
        return "png"
    raise DecodeError(f"compressed image is neither JPEG nor PNG (first bytes {head.hex()}, "
                      f"{len(data)} bytes)")


def _check_complete(data, codec: str) -> None:
    if codec == "jpeg" and not bytes(data[-64:]).rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise DecodeError(f"JPEG data of {len(data)} bytes is truncated (no end-of-image "
                          "marker)")
    if codec == "png" and b"IEND" not in bytes(data[-16:]):
        raise DecodeError(f"PNG data of {len(data)} bytes is truncated (no IEND chunk)")
    if codec == "png" and len(data) >= 24:
        header = bytes(data[16:24])
        width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
        if width * height > MAX_PIXELS:
            raise DecodeError(f"PNG claims {width}x{height} pixels, more than {MAX_PIXELS}")


def decode_image(data) -> tuple[np.ndarray, str]:
    """Decode JPEG or PNG bytes.

    Args:
        data: the encoded image: bytes or any buffer (``CompressedImage.data`` is an
            ``array.array``; it is read in place, not copied).

    Returns:
        ``(array, encoding)`` in a layout of the module table, ``encoding`` one of
        ``mono8``, ``bgr8``, ``bgra8``, ``mono16``.

    Raises:
        DecodeError: not JPEG/PNG, truncated, corrupt, or a layout the node cannot use
            (16-bit colour).
    """
    codec = codec_of(data)
    _check_complete(data, codec)
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        array = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise DecodeError(f"{codec.upper()} data of {len(data)} bytes does not decode: "
                          f"{error}") from None
    if array is None or array.size == 0:
        raise DecodeError(f"{codec.upper()} data of {len(data)} bytes is corrupt (OpenCV could "
                          "not decode it)")
    channels = 1 if array.ndim == 2 else array.shape[2]
    encoding = _ENCODINGS.get((array.dtype, channels))
    if encoding is None:
        raise DecodeError(f"{codec.upper()} image of {channels} channel(s) of {array.dtype} is "
                          "not supported (8-bit gray/colour or 16-bit gray)")
    return (array[:, :, 0] if array.ndim == 3 and channels == 1 else array), encoding


def encode_image(array: np.ndarray, codec: str, quality: int = 90) -> bytes:
    """Encode an array as JPEG (8-bit) or PNG (8- or 16-bit).

    Args:
        array: ``(H, W)`` uint8/uint16 or ``(H, W, 3)`` uint8 BGR.
        codec: ``jpeg`` or ``png``.
        quality: JPEG quality 1..100 (PNG: ignored, compression level 3).

    Raises:
        ConversionError: unknown codec or OpenCV refused the array.
    """
    if codec not in CODECS:
        raise ConversionError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    extension, params = ((".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)]) if codec == "jpeg"
                         else (".png", [cv2.IMWRITE_PNG_COMPRESSION, 3]))
    ok, encoded = cv2.imencode(extension, np.ascontiguousarray(array), params)
    if not ok:
        raise ConversionError(f"OpenCV could not encode a {array.dtype} array of shape "
                              f"{array.shape} as {codec}")
    return encoded.tobytes()
