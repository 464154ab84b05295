"""One fusion step: two camera frames in, the fused image out, without ROS.

The fusion stream hands each synchronised pair to :meth:`FusionStep.fuse` on its worker
thread. The step decodes the frames (:meth:`~lutfuse_ros.stream.camera_frame.CameraFrame.pixels`),
brings them into the pipeline's colour order (:mod:`lutfuse_ros.raw_image`), runs the
:class:`~lutfuse_ros.pipeline.FusionPipeline` and returns a :class:`FusedFrame` in the
configured output encoding with its stamp and frame id, and, on request, its JPEG or PNG
encoding (:meth:`FusionStep.compress`). The node's message layer turns both into messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, NamedTuple

import cv2
import numpy as np

from lutfuse_ros.errors import ConversionError
from lutfuse_ros.pipeline import FusionPipeline, StageTimings
from lutfuse_ros.raw_image import thermal_to_array, visible_to_bgr
from lutfuse_ros.settings.node_settings import OutputSettings
from lutfuse_ros.stream.camera_frame import CameraFrame, UndecodableFrame

# Output encoding -> conversion of the pipeline's BGR (or gray) result.
_OUTPUT_LAYOUTS = MappingProxyType({
    "bgr8": lambda fused: fused,
    "rgb8": lambda fused: np.ascontiguousarray(fused[..., ::-1]),
    "mono8": lambda fused: fused,
})
# Output stamp source -> stamp (ns) from (visible, thermal, clock).
_STAMP_SOURCES = MappingProxyType({
    "visible": lambda visible, thermal, now_ns: visible.stamp_ns,
    "thermal": lambda visible, thermal, now_ns: thermal.stamp_ns,
    "now": lambda visible, thermal, now_ns: now_ns(),
})
_CODECS = MappingProxyType({"jpeg": ".jpg", "png": ".png"})


@dataclass(frozen=True)
class FusedFrame:
    """The result of one step.

    Attributes:
        array: the fused image in the layout of ``encoding`` (``(H, W, 3)`` uint8 BGR or RGB,
            ``(H, W)`` uint8 for ``mono8``), C-contiguous.
        encoding: ``output.encoding``.
        stamp_ns: output stamp (``output.stamp_source``), nanoseconds.
        frame_id: ``output.frame_id``, or the visible frame's when that is empty.
        bgr_or_gray: the pipeline's ``(H, W, 3)`` BGR or ``(H, W)`` uint8 result (for
            compression).
        visible_size: ``(width, height)`` of the visible image as it arrived.
        thermal_size: ``(width, height)`` of the thermal image as it arrived.
        timings: per-stage pipeline milliseconds.
    """

    array: np.ndarray
    encoding: str
    stamp_ns: int
    frame_id: str
    bgr_or_gray: np.ndarray
    visible_size: tuple[int, int]
    thermal_size: tuple[int, int]
    timings: StageTimings

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the fused image."""
        return int(self.array.shape[1]), int(self.array.shape[0])


class CompressedFrame(NamedTuple):
    """A fused image encoded as image_transport's ``compressed`` transport carries it.

    Attributes:
        format: ``"<encoding>; <codec> compressed <bgr8|mono8>"``
            (``CompressedImage.format``).
        data: the JPEG or PNG bytes.
    """

    format: str  # noqa: A003 (the CompressedImage field's name)
    data: bytes


class FusionStep:
    """Decode, fuse and lay out one synchronised pair.

    Args:
        pipeline: the fusion pipeline (BGR colour order; ``mono`` output for ``mono8``).
        output: encoding, stamp source, frame id and compression settings.
    """

    def __init__(self, pipeline: FusionPipeline, output: OutputSettings) -> None:
        self.pipeline = pipeline
        self.output = output
        self._to_output = _OUTPUT_LAYOUTS[output.encoding]
        self._stamp_of = _STAMP_SOURCES[output.stamp_source]
        codec = output.compressed
        self._codec = _CODECS.get(codec)
        self._codec_params = ([cv2.IMWRITE_JPEG_QUALITY, output.jpeg_quality] if codec == "jpeg"
                              else [cv2.IMWRITE_PNG_COMPRESSION, output.png_compression])

    def fuse(self, visible: CameraFrame, thermal: CameraFrame,
             now_ns: Callable[[], int]) -> FusedFrame:
        """Fuse one pair of frames.

        Args:
            visible: visible frame (any of the visible encodings, raw or compressed).
            thermal: thermal frame (16-bit kept for the pipeline's thermal normalisation).
            now_ns: returns the node clock's current time in nanoseconds (used for the
                ``now`` stamp source).

        Returns:
            The fused frame in ``output.encoding`` with its stamp, frame id and timings.

        Raises:
            UndecodableFrame: a compressed frame did not decode.
            ConversionError: an array does not match its encoding.
            InputError: the pipeline rejects the pair (for example a size mismatch without an
                alignment mode).
            BackendError: inference failed.
        """
        (visible_array, visible_encoding), (thermal_array, thermal_encoding) = \
            _pixels_of(visible, thermal)
        fused, timings = self.pipeline.fuse_timed(
            visible_to_bgr(visible_array, visible_encoding),
            thermal_to_array(thermal_array, thermal_encoding))
        return FusedFrame(
            array=self._to_output(fused), encoding=self.output.encoding,
            stamp_ns=int(self._stamp_of(visible, thermal, now_ns)),
            frame_id=self.output.frame_id or visible.frame_id, bgr_or_gray=fused,
            visible_size=_size_of(visible_array), thermal_size=_size_of(thermal_array),
            timings=timings)

    @property
    def compresses(self) -> bool:
        """Whether ``output.compressed`` asks for a compressed topic."""
        return self._codec is not None

    def compress(self, fused: FusedFrame) -> CompressedFrame:
        """Encode a fused image as JPEG or PNG (``output.compressed``).

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
        return CompressedFrame(f"{self.output.encoding}; {self.output.compressed} compressed "
                               f"{source}", encoded.tobytes())


def _pixels_of(*frames: CameraFrame) -> list[tuple[np.ndarray, str]]:
    """Each frame's pixels; every frame that does not decode is named in one error."""
    pixels, undecodable = [], []
    for frame in frames:
        try:
            pixels.append(frame.pixels())
        except UndecodableFrame as error:
            undecodable.append(error)
    if undecodable:
        raise UndecodableFrame.of_all(undecodable)
    return pixels


def _size_of(array: np.ndarray) -> tuple[int, int]:
    return int(array.shape[1]), int(array.shape[0])
