"""The node's outputs: ``fused/image``, ``fused/image/compressed`` and ``fused/camera_info``.

:class:`FusedOutputs` owns the publishers and turns a
:class:`~lutfuse_ros.stream.fusion_stream.FusedPair` from the worker into messages: the
``sensor_msgs/Image`` (:mod:`lutfuse_ros.ros.conversions`), the visible camera's calibration
carried over (:mod:`lutfuse_ros.ros.camera_info`) and, while someone subscribes to it, the
``CompressedImage``. This is the way back from arrays to ROS messages.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from lutfuse_ros.ros.camera_info import FUSED_CAMERA_INFO_TOPIC, CameraInfoRelay
from lutfuse_ros.ros.conversions import ImageConverter
from lutfuse_ros.ros.qos import make_qos
from lutfuse_ros.settings.node_settings import QosSettings
from lutfuse_ros.stamps import ns_to_stamp
from lutfuse_ros.stream.fusion_step import CompressedFrame, FusedFrame
from lutfuse_ros.stream.fusion_stream import FusedPair

FUSED_TOPIC = "fused/image"
COMPRESSED_TOPIC = "fused/image/compressed"


def time_of(stamp_ns: int) -> Time:
    """A ``builtin_interfaces/Time`` of a stamp in nanoseconds."""
    sec, nanosec = ns_to_stamp(stamp_ns)
    return Time(sec=sec, nanosec=nanosec)


def image_message(fused: FusedFrame, converter: ImageConverter | None = None) -> Image:
    """The ``sensor_msgs/Image`` of a fused frame: its encoding, stamp and frame id.

    Args:
        fused: the fusion step's result.
        converter: array -> message conversion (the package's own when None).

    Returns:
        The message, tightly packed rows (``step = width * channels``).
    """
    header = Header(stamp=time_of(fused.stamp_ns), frame_id=fused.frame_id)
    return (converter or ImageConverter()).array_to_image(fused.array, fused.encoding, header)


def compressed_message(encoded: CompressedFrame, header: Header) -> CompressedImage:
    """The ``sensor_msgs/CompressedImage`` of an encoded fused frame, with ``header``."""
    return CompressedImage(header=header, format=encoded.format, data=encoded.data)


class FusedOutputs:
    """Publishers of the fused image and what goes with it.

    Args:
        node: the node that owns the publishers.
        qos: the output QoS settings.
        converter: array -> ``Image`` conversion (the package's own unless ``use_cv_bridge``).
        relay: the ``visible/camera_info`` messages received.
        warn: logs a warning (a camera_info that does not match the fused image).
    """

    def __init__(self, node: Any, qos: QosSettings, converter: ImageConverter,
                 relay: CameraInfoRelay, warn: Callable[[str], None]) -> None:
        self._node = node
        self._qos = make_qos(qos.output, qos.output_depth)
        self._converter = converter
        self._relay = relay
        self._warn = warn
        self._image = node.create_publisher(Image, FUSED_TOPIC, self._qos)
        self._camera_info = node.create_publisher(CameraInfo, FUSED_CAMERA_INFO_TOPIC,
                                                  self._qos)
        self._compressed = None

    def open_compressed(self) -> None:
        """Create the compressed publisher (once; a step that compresses needs it)."""
        if self._compressed is None:
            self._compressed = self._node.create_publisher(CompressedImage, COMPRESSED_TOPIC,
                                                           self._qos)

    def wanted(self) -> bool:
        """Whether anyone subscribes to a fused output (image, compressed, camera_info)."""
        return any(publisher.get_subscription_count() for publisher in
                   (self._image, self._compressed, self._camera_info)
                   if publisher is not None)

    def publish(self, pair: FusedPair, alignment: Any) -> int:
        """Publish one fused pair: image, then camera_info, then the compressed copy.

        Args:
            pair: the worker's result (its step still held).
            alignment: the alignment the pipeline applied (for the camera_info).

        Returns:
            ``time.monotonic_ns()`` right after the image was published (the node latency
            ends there).
        """
        fused = pair.fused
        message = image_message(fused, self._converter)
        header = message.header
        self._image.publish(message)
        published_ns = time.monotonic_ns()
        info, mismatch = self._relay.fused_info(pair.visible.stamp_ns, fused, header, alignment)
        if info is not None:
            self._camera_info.publish(info)
        elif mismatch:
            self._warn(mismatch)
        compressed = self._compressed
        if pair.step.compresses and compressed is not None and \
                compressed.get_subscription_count():
            compressed.publish(compressed_message(pair.step.compress(fused), header))
        return published_ns

    def close(self) -> None:
        """Destroy the publishers."""
        for publisher in (self._image, self._compressed, self._camera_info):
            if publisher is not None:
                self._node.destroy_publisher(publisher)
