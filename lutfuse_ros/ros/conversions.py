"""Conversion between ``sensor_msgs/msg/Image`` messages and numpy arrays.

A thin shell over :mod:`lutfuse_ros.raw_image`, which holds the encoding tables and the
array logic without any ROS import: this module adds what needs the message class (building
an ``Image`` from an array) and :class:`ImageConverter`, the single place that chooses between
the package's own conversion and ``cv_bridge`` when a ROS install provides it. Both paths
validate the message the same way, so a bad message always raises
:class:`~lutfuse_ros.errors.ConversionError` naming the encoding, the field and the sizes.
The names re-exported here are those of :mod:`lutfuse_ros.raw_image`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sensor_msgs.msg import Image

from lutfuse_ros.errors import ConversionError
from lutfuse_ros.raw_image import (ENCODING_LAYOUTS, SUPPORTED_ENCODINGS, THERMAL_ENCODINGS,
                                   VISIBLE_ENCODINGS, EncodingLayout, checked_array,
                                   image_to_array, layout_for, packed_image_fields,
                                   thermal_to_array, validate_image_message, visible_to_bgr)

__all__ = ["ENCODING_LAYOUTS", "SUPPORTED_ENCODINGS", "THERMAL_ENCODINGS", "VISIBLE_ENCODINGS",
           "EncodingLayout", "ImageConverter", "array_to_image", "image_to_array", "layout_for",
           "thermal_to_array", "validate_image_message", "visible_to_bgr"]


def array_to_image(array: np.ndarray, encoding: str, header: Any = None) -> Image:
    """Convert an array to an Image message with the package's own conversion.

    Args:
        array: image in the layout of :mod:`lutfuse_ros.raw_image` for ``encoding``
            (``(H, W, 1)`` is accepted for one-channel encodings); uint16 of either byte
            order for 16-bit ones.
        encoding: any of :data:`SUPPORTED_ENCODINGS`.
        header: ``std_msgs/msg/Header`` to copy into the message (stamp and frame id), or
            ``None`` for an empty header.

    Returns:
        The message: tightly packed rows (``step = width * channels * bytes``), data in the
        machine's byte order (``is_bigendian`` says which).

    Raises:
        ConversionError: the encoding is unsupported or the array does not match it.
    """
    height, width, step, is_bigendian, data = packed_image_fields(array, encoding)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian, msg.step, msg.data = is_bigendian, step, data
    return msg


class ImageConverter:
    """The one place that chooses between ``cv_bridge`` and the package's own conversion.

    Both paths first run :func:`validate_image_message`, so errors are the same
    :class:`ConversionError` either way; ``cv_bridge`` failures are wrapped in it too.

    Args:
        prefer_cv_bridge: use ``cv_bridge`` when it can be imported (a robot's ROS install;
            opt-in, the node's ``use_cv_bridge``); ``False`` (default) always uses the own
            conversion.
    """

    def __init__(self, prefer_cv_bridge: bool = False) -> None:
        self._bridge = _create_cv_bridge() if prefer_cv_bridge else None

    @property
    def uses_cv_bridge(self) -> bool:
        """Whether conversions go through ``cv_bridge``."""
        return self._bridge is not None

    def image_to_array(self, msg: Image) -> tuple[np.ndarray, str]:
        """Same contract as the module-level :func:`image_to_array`."""
        if self._bridge is None:
            return image_to_array(msg)
        validate_image_message(msg)
        try:
            array = self._bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")
        except Exception as exc:  # cv_bridge raises CvBridgeError (a TypeError) and others
            raise ConversionError(f"cv_bridge could not convert a {msg.encoding} "
                                  f"{msg.width}x{msg.height} image: {exc}") from exc
        return array, msg.encoding

    def array_to_image(self, array: np.ndarray, encoding: str, header: Any = None) -> Image:
        """Same contract as the module-level :func:`array_to_image`."""
        if self._bridge is None:
            return array_to_image(array, encoding, header)
        checked = checked_array(array, encoding, layout_for(encoding))
        try:
            msg = self._bridge.cv2_to_imgmsg(np.ascontiguousarray(checked), encoding=encoding)
        except Exception as exc:  # see image_to_array
            raise ConversionError(f"cv_bridge could not build a {encoding} image from an "
                                  f"array of shape {checked.shape}: {exc}") from exc
        if header is not None:
            msg.header = header
        return msg


def _create_cv_bridge() -> Any:
    """Return a ``CvBridge`` when the ROS 2 package is importable, else ``None``."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    return CvBridge()
