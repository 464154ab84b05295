"""One fusion step in message terms: two ``sensor_msgs/Image`` in, fused messages out.

The node hands each synchronised pair to :meth:`FusionStep.fuse` on its worker thread. The
step converts the messages (:mod:`lutfuse_ros.ros.conversions`), runs the ROS-free
:class:`~lutfuse_ros.pipeline.FusionPipeline`, and builds the output ``Image`` (and, on
request, the ``CompressedImage``) with the configured encoding, stamp and frame id. It holds
no ROS node, so it runs and is tested without a graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from lutfuse_ros.errors import ConversionError
from lutfuse_ros.pipeline import FusionPipeline, StageTimings
from lutfuse_ros.ros.conversions import (THERMAL_ENCODINGS, VISIBLE_ENCODINGS, ImageConverter,
                                         thermal_to_array, validate_image_message,
                                         visible_to_bgr)
from lutfuse_ros.settings.node_settings import OutputSettings

#: stream name -> encodings its messages may use.
STREAM_ENCODINGS = MappingProxyType({"visible": VISIBLE_ENCODINGS, "thermal": THERMAL_ENCODINGS})
# Output encoding -> conversion of the pipeline's BGR (or gray) result.
_OUTPUT_LAYOUTS = MappingProxyType({
    "bgr8": lambda fused: fused,
    "rgb8": lambda fused: np.ascontiguousarray(fused[..., ::-1]),
    "mono8": lambda fused: fused,
})
# Output stamp source -> stamp from (visible, thermal, clock).
_STAMP_SOURCES = MappingProxyType({
    "visible": lambda visible, thermal, now: visible.header.stamp,
    "thermal": lambda visible, thermal, now: thermal.header.stamp,
    "now": lambda visible, thermal, now: now(),
})
_CODECS = MappingProxyType({"jpeg": ".jpg", "png": ".png"})


@dataclass
class FusedImage:
    """The result of one step.

    Attributes:
        message: the ``sensor_msgs/Image`` to publish.
        bgr_or_gray: the pipeline's ``(H, W, 3)`` BGR or ``(H, W)`` uint8 result (for
            compression).
        timings: per-stage pipeline milliseconds.
    """

    message: Image
    bgr_or_gray: np.ndarray
    timings: StageTimings


class FusionStep:
    """Convert, fuse and wrap one synchronised pair.

    Args:
        pipeline: the fusion pipeline (BGR colour order; ``mono`` output for ``mono8``).
        output: encoding, stamp source, frame id and compression settings.
        converter: message conversion (cv_bridge or the package's own); own when None.
    """

    def __init__(self, pipeline: FusionPipeline, output: OutputSettings,
                 converter: ImageConverter | None = None) -> None:
        self.pipeline = pipeline
        self.output = output
        self.converter = converter or ImageConverter(prefer_cv_bridge=False)
        self._to_output = _OUTPUT_LAYOUTS[output.encoding]
        self._stamp_of = _STAMP_SOURCES[output.stamp_source]
        codec = output.compressed
        self._codec = _CODECS.get(codec)
        self._codec_params = ([cv2.IMWRITE_JPEG_QUALITY, output.jpeg_quality] if codec == "jpeg"
                              else [cv2.IMWRITE_PNG_COMPRESSION, output.png_compression])

    @staticmethod
    def check(msg: Image, stream: str) -> None:
        """Reject a message that cannot be converted, without touching its pixels (~1 us).

        Args:
            msg: the incoming image.
            stream: ``visible`` or ``thermal``.

        Raises:
            ConversionError: unsupported encoding for the stream, bad sizes, short ``step``,
                truncated data.
        """
        allowed = STREAM_ENCODINGS[stream]
        if msg.encoding not in allowed:
            raise ConversionError(f"{stream} image has unsupported encoding {msg.encoding!r}; "
                                  f"expected one of {', '.join(allowed)}")
        validate_image_message(msg)

    def fuse(self, visible: Image, thermal: Image, now: Callable[[], Any]) -> FusedImage:
        """Fuse one pair of messages.

        Args:
            visible: visible image (any of ``VISIBLE_ENCODINGS``).
            thermal: thermal image (any of ``THERMAL_ENCODINGS``; 16-bit kept for the
                pipeline's thermal normalisation).
            now: returns the node clock's current ``builtin_interfaces/Time`` (used for the
                ``now`` stamp source).

        Returns:
            The fused image message (``output.encoding``, tightly packed), the array and
            timings.

        Raises:
            ConversionError: a message cannot be converted.
            InputError: the pipeline rejects the pair (for example a size mismatch without an
                alignment mode).
            BackendError: inference failed.
        """
        visible_array, visible_encoding = self.converter.image_to_array(visible)
        thermal_array, thermal_encoding = self.converter.image_to_array(thermal)
        fused, timings = self.pipeline.fuse_timed(
            visible_to_bgr(visible_array, visible_encoding),
            thermal_to_array(thermal_array, thermal_encoding))
        header = Header(stamp=self._stamp_of(visible, thermal, now),
                        frame_id=self.output.frame_id or visible.header.frame_id)
        message = self.converter.array_to_image(self._to_output(fused), self.output.encoding,
                                                header)
        return FusedImage(message, fused, timings)

    @property
    def compresses(self) -> bool:
        """Whether ``output.compressed`` asks for a compressed topic."""
        return self._codec is not None

    def compress(self, fused: FusedImage) -> CompressedImage:
        """Encode a fused image as ``sensor_msgs/CompressedImage`` (image_transport format).

        Raises:
            ConversionError: no codec configured or OpenCV failed to encode.
        """
        if self._codec is None:
            raise ConversionError("output.compressed is 'none'; nothing to compress")
        ok, encoded = cv2.imencode(self._codec, fused.bgr_or_gray, self._codec_params)
        if not ok:
            raise ConversionError(f"OpenCV could not encode the fused image as "
                                  f"{self.output.compressed}")
        source = "mono8" if fused.bgr_or_gray.ndim == 2 else "bgr8"
        return CompressedImage(
            header=fused.message.header,
            format=f"{self.output.encoding}; {self.output.compressed} compressed {source}",
            data=encoded.tobytes())
