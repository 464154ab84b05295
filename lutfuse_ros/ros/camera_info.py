"""``fused/camera_info``: the visible camera's calibration, carried over to the fused image.

The node subscribes to ``visible/camera_info`` (``sensor_msgs/CameraInfo``) and keeps the last
few messages (:class:`CameraInfoRelay`). For each fused image the worker picks the one stamped
like the pair's visible image (else the newest), checks that it describes an image of the
visible image's size, and publishes a copy with exactly the fused image's header, its width
and height, and ``K``/``P`` adjusted for what the alignment did
(:mod:`lutfuse_ros.camera_geometry`). Without a camera_info, or with one that does not match
the visible image, nothing is published: a consumer never receives intrinsics that do not
belong to the fused pixels.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from lutfuse_ros.camera_geometry import CameraModel, alignment_transform, fused_camera_model
from lutfuse_ros.preprocessing import AlignmentConfig
from lutfuse_ros.stamps import header_stamp_ns
from lutfuse_ros.stream.fusion_step import FusedFrame

VISIBLE_CAMERA_INFO_TOPIC = "visible/camera_info"
FUSED_CAMERA_INFO_TOPIC = "fused/camera_info"


def camera_model_of(msg: CameraInfo) -> CameraModel:
    """The geometric fields of a CameraInfo message."""
    roi = msg.roi
    return CameraModel(int(msg.width), int(msg.height), tuple(float(v) for v in msg.k),
                       tuple(float(v) for v in msg.p), int(msg.binning_x), int(msg.binning_y),
                       (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)))


def with_camera_model(msg: CameraInfo, model: CameraModel, header) -> CameraInfo:
    """A copy of ``msg`` (distortion, R kept) with ``model``'s geometry and ``header``."""
    out = CameraInfo(header=header, height=model.height, width=model.width,
                     distortion_model=msg.distortion_model, d=list(msg.d), k=list(model.k),
                     r=list(msg.r), p=list(model.p), binning_x=model.binning_x,
                     binning_y=model.binning_y)
    out.roi.x_offset, out.roi.y_offset, out.roi.width, out.roi.height = model.roi
    out.roi.do_rectify = False
    return out


class CameraInfoRelay:
    """The newest ``visible/camera_info`` messages and the fused one built from them.

    Thread-safe: :meth:`add` runs on the executor, :meth:`fused_info` on the worker.

    Args:
        keep: messages kept (by stamp) to match a pair's visible stamp exactly.
    """

    def __init__(self, keep: int = 16) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._by_stamp: OrderedDict[int, CameraInfo] = OrderedDict()

    @property
    def received(self) -> bool:
        """Whether any camera_info arrived."""
        with self._lock:
            return bool(self._by_stamp)

    def add(self, msg: CameraInfo) -> None:
        """Keep a camera_info message (the oldest beyond ``keep`` is forgotten)."""
        with self._lock:
            stamp = header_stamp_ns(msg.header)
            self._by_stamp.pop(stamp, None)
            self._by_stamp[stamp] = msg
            while len(self._by_stamp) > self._keep:
                self._by_stamp.popitem(last=False)

    def info_for(self, stamp_ns: int) -> CameraInfo | None:
        """The camera_info stamped ``stamp_ns``, else the newest one, else None."""
        with self._lock:
            if stamp_ns in self._by_stamp:
                return self._by_stamp[stamp_ns]
            return next(reversed(self._by_stamp.values()), None)

    def fused_info(self, visible_stamp_ns: int, fused: FusedFrame, header: Header,
                   alignment: AlignmentConfig) -> tuple[CameraInfo | None, str]:
        """The camera_info of one fused image.

        Args:
            visible_stamp_ns: the pair's visible stamp (it picks the camera_info).
            fused: the fused frame (its size and the sizes of the pair's images as they
                arrived; the thermal size matters for ``resize_visible``).
            header: the header of the fused image as published (copied).
            alignment: the alignment the pipeline applied.

        Returns:
            ``(message, "")``, or ``(None, why)``: no camera_info yet (``why`` empty) or one
            that does not describe the visible image (``why`` says how).
        """
        source = self.info_for(visible_stamp_ns)
        if source is None:
            return None, ""
        model = camera_model_of(source)
        visible_size = fused.visible_size
        if model.image_size != visible_size:
            return None, (f"visible/camera_info describes {model.image_size[0]}x"
                          f"{model.image_size[1]} images but the visible image is "
                          f"{visible_size[0]}x{visible_size[1]}; fused/camera_info not "
                          "published")
        transform, size = alignment_transform(alignment, visible_size, fused.thermal_size)
        if size != fused.size:
            return None, (f"the alignment gives {size[0]}x{size[1]} but the fused image is "
                          f"{fused.size[0]}x{fused.size[1]}; fused/camera_info not published")
        return with_camera_model(source, fused_camera_model(model, transform, size),
                                 header), ""
