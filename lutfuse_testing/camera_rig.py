"""The simulated cameras' publishing side: the one place test traffic becomes ROS messages.

A :class:`CameraRig` holds a visible and a thermal image publisher on an rclpy node (raw
``sensor_msgs/Image`` or image_transport's ``compressed``, as a camera driver would publish
them), optionally ``visible/camera_info`` and ``/clock``. :meth:`CameraRig.prepare` turns one
pair of arrays into reusable message templates (encoded once when a stream is compressed);
:meth:`CameraRig.messages` stamps fresh messages from them and :meth:`CameraRig.publish`
sends them. Every simulated camera of the tests and benchmarks publishes through it: the
scripted ``publish`` and the soak's ``stream`` roles of :mod:`lutfuse_testing.camera_traffic`
(in their own processes) and :class:`lutfuse_testing.node_probe.NodeProbe` (inside a test
process, with stopped streams and clock jumps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lutfuse_ros.image_codec import encode_image
from lutfuse_ros.stamps import ns_to_stamp

STREAMS = ("visible", "thermal")


def stamp_of(stamp_ns: int) -> Any:
    """A ``builtin_interfaces/Time`` of nanoseconds."""
    from builtin_interfaces.msg import Time

    sec, nanosec = ns_to_stamp(stamp_ns)
    return Time(sec=sec, nanosec=nanosec)


@dataclass(frozen=True)
class PreparedImage:
    """One stream's image, ready to be stamped: a raw template or the encoded bytes.

    Attributes:
        raw: an ``Image`` whose fields are copied into each message (None when compressed).
        compressed: JPEG/PNG bytes (None when raw).
        format: the ``CompressedImage.format`` (empty when raw).
    """

    raw: Any = None
    compressed: bytes | None = None
    format: str = ""  # noqa: A003 (the CompressedImage field's name)


class CameraRig:
    """Simulated visible and thermal cameras on one node.

    Args:
        node: the rclpy node that owns the publishers.
        qos: QoS profile of the image (and camera_info) publishers.
        transports: ``(visible, thermal)`` transports, ``raw`` or ``compressed``.
        camera_info: a ``CameraInfo`` published on ``visible/camera_info`` before each
            visible image (with its header); None publishes none.
        clock: also publish ``/clock`` (:meth:`publish_clock`, for ``use_sim_time``).
    """

    def __init__(self, node: Any, qos: Any, transports: tuple[str, str] = ("raw", "raw"),
                 camera_info: Any = None, clock: bool = False) -> None:
        from sensor_msgs.msg import CompressedImage, Image

        self.transports = tuple(transports)
        self._camera_info = camera_info
        self._publishers = []
        for stream, transport in zip(STREAMS, self.transports):
            kind, suffix = ((CompressedImage, "image/compressed") if transport == "compressed"
                            else (Image, "image"))
            self._publishers.append(node.create_publisher(kind, f"{stream}/{suffix}", qos))
        self._camera_info_pub = (node.create_publisher(type(camera_info),
                                                       "visible/camera_info", qos)
                                 if camera_info is not None else None)
        self._clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock

            self._clock_pub = node.create_publisher(Clock, "/clock", 10)

    def subscribed(self) -> bool:
        """Whether both image publishers have a subscriber."""
        return all(publisher.get_subscription_count() for publisher in self._publishers)

    def prepare(self, visible: np.ndarray, visible_encoding: str, thermal: np.ndarray,
                thermal_encoding: str, jpeg_quality: int = 90) -> tuple[PreparedImage, ...]:
        """Templates of one pair (compressed streams: visible as JPEG, thermal as PNG).

        Args:
            visible: the visible array in the layout of ``visible_encoding``.
            visible_encoding: its ROS encoding.
            thermal: the thermal array (``mono8``/``mono16`` layouts or any other encoding's).
            thermal_encoding: its ROS encoding.
            jpeg_quality: quality of the visible JPEG.
        """
        from lutfuse_ros.ros.conversions import array_to_image

        prepared = []
        for array, encoding, transport, codec in (
                (visible, visible_encoding, self.transports[0], "jpeg"),
                (thermal, thermal_encoding, self.transports[1], "png")):
            if transport == "compressed":
                prepared.append(PreparedImage(
                    compressed=encode_image(array, codec, jpeg_quality),
                    format=f"{encoding}; {codec} compressed {encoding}"))
            else:
                prepared.append(PreparedImage(raw=array_to_image(array, encoding)))
        return tuple(prepared)

    def messages(self, prepared: tuple[PreparedImage, ...], stamp_ns: int, thermal_ns: int,
                 frame_id: str) -> list[Any]:
        """Fresh ``[visible, thermal]`` messages of a prepared pair with their stamps."""
        from sensor_msgs.msg import CompressedImage, Image

        messages = []
        for image, ns in zip(prepared, (stamp_ns, thermal_ns)):
            if image.compressed is not None:
                msg = CompressedImage(format=image.format, data=image.compressed)
            else:
                template = image.raw
                msg = Image(height=template.height, width=template.width,
                            encoding=template.encoding, is_bigendian=template.is_bigendian,
                            step=template.step, data=template.data)
            msg.header.frame_id, msg.header.stamp = frame_id, stamp_of(ns)
            messages.append(msg)
        return messages

    def publish(self, visible_msg: Any = None, thermal_msg: Any = None) -> None:
        """Publish the camera_info (with a visible image), the visible and the thermal image.

        A stream given None publishes nothing (a stopped camera).
        """
        if visible_msg is not None and self._camera_info_pub is not None:
            self._camera_info.header = visible_msg.header
            self._camera_info_pub.publish(self._camera_info)
        for publisher, msg in zip(self._publishers, (visible_msg, thermal_msg)):
            if msg is not None:
                publisher.publish(msg)

    def publish_clock(self, stamp_ns: int) -> None:
        """Publish ``/clock`` at ``stamp_ns`` (only with ``clock=True``)."""
        from rosgraph_msgs.msg import Clock

        self._clock_pub.publish(Clock(clock=stamp_of(stamp_ns)))
