"""One camera image on its way to fusion: stamp, frame id and pixels, without ROS.

The node's message layer (:mod:`lutfuse_ros.ros.camera_input`) turns each incoming image into
a :class:`CameraFrame` on the executor: a raw ``sensor_msgs/Image`` becomes a read-only array
view of its data (no pixel is copied or converted), a ``CompressedImage`` keeps its encoded
bytes, whose signature was checked. Pairing, dropping and decoding then happen on frames;
:meth:`CameraFrame.pixels` decodes a compressed frame on the worker thread, so pairs the
worker drops are never decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from lutfuse_ros.errors import ConversionError
from lutfuse_ros.image_codec import DecodeError, codec_of, decode_image
from lutfuse_ros.raw_image import (THERMAL_ENCODINGS, VISIBLE_ENCODINGS, ImageFields,
                                   image_to_array, validate_image_message)
from lutfuse_ros.stamps import header_stamp_ns, ns_to_stamp

#: stream name -> encodings its images may use.
STREAM_ENCODINGS = MappingProxyType({"visible": VISIBLE_ENCODINGS, "thermal": THERMAL_ENCODINGS})


class UndecodableFrame(DecodeError):
    """Compressed frames whose payload did not decode (their pair is dropped, not failed).

    Attributes:
        streams: the streams whose frame did not decode (``visible``, ``thermal`` or both).
    """

    def __init__(self, streams: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.streams = streams

    @classmethod
    def of_all(cls, errors: list[UndecodableFrame]) -> UndecodableFrame:
        """One error for the undecodable frames of a pair (messages joined)."""
        return cls(tuple(stream for error in errors for stream in error.streams),
                   "; ".join(str(error) for error in errors))


def check_encoding(stream: str, encoding: str) -> None:
    """Reject an encoding the stream does not accept.

    Raises:
        ConversionError: ``encoding`` is not in ``STREAM_ENCODINGS[stream]``.
    """
    allowed = STREAM_ENCODINGS[stream]
    if encoding not in allowed:
        raise ConversionError(f"{stream} image has unsupported encoding {encoding!r}; "
                              f"expected one of {', '.join(allowed)}")


def check_raw_image(msg: ImageFields, stream: str) -> None:
    """Reject a raw image that cannot be converted, without touching its pixels (~1 us).

    Args:
        msg: the ``sensor_msgs/Image`` (rclpy or rosbags) or any
            :class:`~lutfuse_ros.raw_image.ImageFields`.
        stream: ``visible`` or ``thermal``.

    Raises:
        ConversionError: unsupported encoding for the stream, bad sizes, short ``step``,
            truncated data.
    """
    check_encoding(stream, msg.encoding)
    validate_image_message(msg)


@dataclass(frozen=True)
class CameraFrame:
    """One image of one camera stream.

    Attributes:
        stream: ``visible`` or ``thermal``.
        stamp_ns: header stamp, nanoseconds.
        frame_id: header frame id.
        array: the raw image's pixels (layout of :mod:`lutfuse_ros.raw_image` for
            ``encoding``; a read-only view of the message data), or None for a compressed
            frame.
        encoding: the raw image's encoding (None for a compressed frame).
        compressed: the encoded JPEG or PNG bytes (signature checked), or None.
        arrived_ns: ``time.monotonic_ns()`` when the message arrived (0 when not measured).
    """

    stream: str
    stamp_ns: int
    frame_id: str
    array: np.ndarray | None = None
    encoding: str | None = None
    compressed: Any = None
    arrived_ns: int = 0

    @classmethod
    def from_raw(cls, stream: str, msg: ImageFields, *, arrived_ns: int = 0,
                 to_array: Any = image_to_array) -> CameraFrame:
        """Wrap a raw image message (checked, then viewed as an array; no pixel work).

        Args:
            stream: ``visible`` or ``thermal``.
            msg: the image message (its ``header`` gives stamp and frame id).
            arrived_ns: arrival time, ``time.monotonic_ns()``.
            to_array: message -> ``(array, encoding)``; the package's own conversion unless
                the node chose ``cv_bridge``.

        Raises:
            ConversionError: see :func:`check_raw_image` (``to_array`` validates the fields).
        """
        check_encoding(stream, msg.encoding)
        array, encoding = to_array(msg)  # validates sizes, step and data first
        return cls(stream, header_stamp_ns(msg.header), msg.header.frame_id, array=array,
                   encoding=encoding, arrived_ns=arrived_ns)

    @classmethod
    def from_compressed(cls, stream: str, msg: Any, *, arrived_ns: int = 0) -> CameraFrame:
        """Wrap a ``sensor_msgs/CompressedImage`` (its signature checked, not decoded).

        Raises:
            DecodeError: empty data or neither a JPEG nor a PNG signature.
        """
        codec_of(msg.data)
        return cls(stream, header_stamp_ns(msg.header), msg.header.frame_id,
                   compressed=msg.data, arrived_ns=arrived_ns)

    @classmethod
    def from_array(cls, stream: str, array: np.ndarray, encoding: str, stamp_ns: int = 0,
                   frame_id: str = "") -> CameraFrame:
        """A frame of an array already in memory (warm-up, tests).

        Raises:
            ConversionError: unsupported encoding for the stream.
        """
        check_encoding(stream, encoding)
        return cls(stream, stamp_ns, frame_id, array=array, encoding=encoding)

    @property
    def stamp_text(self) -> str:
        """The stamp as ``sec.nanosec`` for messages."""
        sec, nanosec = ns_to_stamp(self.stamp_ns)
        return f"{sec}.{nanosec:09d}"

    def pixels(self) -> tuple[np.ndarray, str]:
        """The frame's pixels and their encoding, decoding a compressed payload.

        Returns:
            ``(array, encoding)`` in a layout of :mod:`lutfuse_ros.raw_image`.

        Raises:
            UndecodableFrame: a compressed payload that is truncated, corrupt or decodes to
                a layout the stream does not accept (16-bit visible images).
        """
        if self.compressed is None:
            return self.array, self.encoding
        try:
            array, encoding = decode_image(self.compressed)
            if encoding not in STREAM_ENCODINGS[self.stream]:
                raise DecodeError(f"{self.stream} image decoded as {encoding}; expected one of "
                                  f"{', '.join(STREAM_ENCODINGS[self.stream])}")
        except DecodeError as error:
            raise UndecodableFrame((self.stream,), f"{self.stream} compressed image at stamp "
                                   f"{self.stamp_text} did not decode: {error}") from None
        return array, encoding
