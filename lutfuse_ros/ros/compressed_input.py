"""Camera inputs by transport: raw ``sensor_msgs/Image`` or image_transport's ``compressed``.

``input.visible_transport`` and ``input.thermal_transport`` choose, per stream, what the node
subscribes to:

- ``raw``: ``<stream>/image`` (``sensor_msgs/Image``);
- ``compressed``: ``<stream>/image/compressed`` (``sensor_msgs/CompressedImage``, JPEG or PNG,
  16-bit PNG for radiometric thermal), the name image_transport gives it.

A :class:`CameraInput` does the cheap part on the executor (:meth:`CameraInput.check`: header
and sizes, or the codec signature: no pixel work) and the expensive part on the worker
(:meth:`CameraInput.to_image`: decoding), so a compressed camera costs the executor no more
than a raw one and pairs the worker drops are never decoded.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from sensor_msgs.msg import CompressedImage, Image

from lutfuse_ros.image_codec import DecodeError, codec_of, decode_image
from lutfuse_ros.ros.conversions import array_to_image
from lutfuse_ros.ros.fusion_step import STREAM_ENCODINGS, FusionStep

TRANSPORTS = ("raw", "compressed")


class CameraInput:
    """One camera stream received over one transport.

    Args:
        stream: ``visible`` or ``thermal``.
        transport: ``raw`` or ``compressed``.
    """

    def __init__(self, stream: str, transport: str) -> None:
        self.stream = stream
        self.transport = transport
        self.compressed = transport == "compressed"
        self.message_type = CompressedImage if self.compressed else Image
        self.topic = f"{stream}/image" + ("/compressed" if self.compressed else "")

    def check(self, msg: Any) -> None:
        """Reject a message that cannot be used, without touching its pixels.

        Raises:
            ConversionError: (raw) unsupported encoding or inconsistent sizes; (compressed)
                empty data or neither a JPEG nor a PNG signature.
        """
        if self.compressed:
            codec_of(msg.data)
        else:
            FusionStep.check(msg, self.stream)

    def to_image(self, msg: Any) -> Image:
        """The message as a ``sensor_msgs/Image`` with the same header (worker side).

        Raises:
            DecodeError: a compressed payload that is truncated, corrupt or decodes to a
                layout the stream does not accept (16-bit visible images).
        """
        if not self.compressed:
            return msg
        array, encoding = decode_image(msg.data)
        if encoding not in STREAM_ENCODINGS[self.stream]:
            raise DecodeError(f"{self.stream} image decoded as {encoding}; expected one of "
                              f"{', '.join(STREAM_ENCODINGS[self.stream])}")
        return array_to_image(array, encoding, msg.header)


def make_inputs(visible_transport: str, thermal_transport: str,
                ) -> MappingProxyType:
    """``{"visible": CameraInput, "thermal": CameraInput}`` for the two transports."""
    return MappingProxyType({"visible": CameraInput("visible", visible_transport),
                             "thermal": CameraInput("thermal", thermal_transport)})
