"""Camera inputs by transport: raw ``sensor_msgs/Image`` or image_transport's ``compressed``.

``input.visible_transport`` and ``input.thermal_transport`` choose, per stream, what the node
subscribes to:

- ``raw``: ``<stream>/image`` (``sensor_msgs/Image``);
- ``compressed``: ``<stream>/image/compressed`` (``sensor_msgs/CompressedImage``, JPEG or PNG,
  16-bit PNG for radiometric thermal), the name image_transport gives it.

A :class:`CameraInput` turns each message into a
:class:`~lutfuse_ros.stream.camera_frame.CameraFrame` on the executor with only the cheap part
of the work: header, sizes and encoding checked and the data viewed as an array (raw), or the
codec signature checked (compressed). Decoding a compressed frame happens on the worker, so a
compressed camera costs the executor no more than a raw one and pairs the worker drops are
never decoded.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from sensor_msgs.msg import CompressedImage, Image

from lutfuse_ros.ros.conversions import ImageConverter
from lutfuse_ros.stream.camera_frame import CameraFrame

TRANSPORTS = ("raw", "compressed")


class CameraInput:
    """One camera stream received over one transport.

    Args:
        stream: ``visible`` or ``thermal``.
        transport: ``raw`` or ``compressed``.
        converter: raw message -> array conversion (the package's own unless the node's
            ``use_cv_bridge`` chose ``cv_bridge``).
    """

    def __init__(self, stream: str, transport: str,
                 converter: ImageConverter | None = None) -> None:
        self.stream = stream
        self.transport = transport
        self.compressed = transport == "compressed"
        self.message_type = CompressedImage if self.compressed else Image
        self.topic = f"{stream}/image" + ("/compressed" if self.compressed else "")
        self._converter = converter or ImageConverter(prefer_cv_bridge=False)

    def frame(self, msg: Any, arrived_ns: int = 0) -> CameraFrame:
        """The message as a frame, without pixel work.

        Args:
            msg: the received ``Image`` or ``CompressedImage``.
            arrived_ns: its arrival time, ``time.monotonic_ns()``.

        Raises:
            ConversionError: (raw) unsupported encoding or inconsistent sizes; (compressed)
                empty data or neither a JPEG nor a PNG signature.
        """
        if self.compressed:
            return CameraFrame.from_compressed(self.stream, msg, arrived_ns=arrived_ns)
        return CameraFrame.from_raw(self.stream, msg, arrived_ns=arrived_ns,
                                    to_array=self._converter.image_to_array)


def make_inputs(visible_transport: str, thermal_transport: str,
                converter: ImageConverter | None = None) -> MappingProxyType:
    """``{"visible": CameraInput, "thermal": CameraInput}`` for the two transports."""
    return MappingProxyType({
        "visible": CameraInput("visible", visible_transport, converter),
        "thermal": CameraInput("thermal", thermal_transport, converter)})
