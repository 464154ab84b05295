"""Pinhole intrinsics of the fused image: what the alignment did to the visible pixels (no ROS).

The fused image lives in the visible camera's image plane, possibly resized and cropped:

==================  =====================================================================
alignment           visible pixel -> fused pixel
==================  =====================================================================
``none``            identity (sizes match)
``resize_thermal``  identity: the *thermal* image is resized onto the visible one
``homography``      identity: the *thermal* image is warped into the visible image plane,
                    so the visible intrinsics stay (the homography is thermal -> visible)
``resize_visible``  scale to the thermal size, pixel centres kept:
                    ``u' = (u + 0.5) * sx - 0.5`` with ``sx = thermal width / visible width``
                    (what ``cv2.resize`` does; image_proc's resize node omits the half-pixel
                    term, a shift of ``(sx - 1) / 2`` px)
crop ``x, y``       ``u' = u - x``, ``v' = v - y`` after the above
==================  =====================================================================

Such a map is an affine pixel transform ``A`` (3x3), and a pinhole projection composed with it
is again one: ``K' = A K`` and ``P' = A P`` (distortion ``D`` and rectification ``R`` act on
normalised coordinates and stay). :func:`fused_camera_model` applies it to a
:class:`CameraModel` that follows the ``sensor_msgs/CameraInfo`` conventions (``K``/``P`` of the
full-resolution sensor; ``binning`` and ``roi`` say which part of it the image is, as
``image_geometry`` reads them): the input's binning and ROI are folded into ``K``/``P`` first,
so the output describes the fused pixels directly (binning 0, ROI empty = the whole image).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lutfuse_ros.preprocessing import AlignmentConfig


@dataclass(frozen=True)
class CameraModel:
    """The geometric part of a ``sensor_msgs/CameraInfo``.

    Attributes:
        width: full-resolution sensor width in pixels.
        height: full-resolution sensor height in pixels.
        k: row-major 3x3 intrinsic matrix (9 values).
        p: row-major 3x4 projection matrix (12 values).
        binning_x: horizontal binning (0 and 1: none).
        binning_y: vertical binning.
        roi: ``(x_offset, y_offset, width, height)`` of the full-resolution sensor the image
            shows; ``(0, 0, 0, 0)``: all of it.
    """

    width: int
    height: int
    k: tuple[float, ...]
    p: tuple[float, ...]
    binning_x: int = 0
    binning_y: int = 0
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def image_size(self) -> tuple[int, int]:
        """``(width, height)`` of the images this model describes (after ROI and binning)."""
        width = self.roi[2] or self.width
        height = self.roi[3] or self.height
        return width // max(1, self.binning_x), height // max(1, self.binning_y)

    def image_transform(self) -> np.ndarray:
        """3x3 map from full-resolution sensor pixels to image pixels (ROI, then binning)."""
        bx, by = max(1, self.binning_x), max(1, self.binning_y)
        x, y = (self.roi[0], self.roi[1]) if self.roi[2] and self.roi[3] else (0, 0)
        return np.array([[1.0 / bx, 0.0, -x / bx], [0.0, 1.0 / by, -y / by], [0.0, 0.0, 1.0]])


def alignment_transform(alignment: AlignmentConfig, visible_size: tuple[int, int],
                        thermal_size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The visible -> fused pixel map of one pair and the fused size.

    Args:
        alignment: the pipeline's alignment settings.
        visible_size: ``(width, height)`` of the visible image.
        thermal_size: ``(width, height)`` of the thermal image.

    Returns:
        ``(A, (width, height))``: a 3x3 float64 affine matrix acting on homogeneous pixel
        coordinates ``(u, v, 1)`` (pixel centres at integers) and the fused image size, the
        same size :class:`~lutfuse_ros.preprocessing.Aligner` produces.
    """
    transform = np.eye(3)
    size = tuple(visible_size)
    if alignment.mode == "resize_visible" and tuple(thermal_size) != size:
        sx, sy = thermal_size[0] / visible_size[0], thermal_size[1] / visible_size[1]
        transform = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5],
                              [0.0, 0.0, 1.0]])
        size = tuple(thermal_size)
    if alignment.crop is not None:
        x, y, width, height = alignment.crop
        transform = np.array([[1.0, 0.0, -x], [0.0, 1.0, -y], [0.0, 0.0, 1.0]]) @ transform
        size = (width, height)
    return transform, (int(size[0]), int(size[1]))


def fused_camera_model(visible: CameraModel, transform: np.ndarray,
                       fused_size: tuple[int, int]) -> CameraModel:
    """The camera model of the fused image.

    Args:
        visible: the visible camera's model (its :attr:`CameraModel.image_size` is the
            visible image's size).
        transform: visible -> fused pixel map from :func:`alignment_transform`.
        fused_size: ``(width, height)`` of the fused image.

    Returns:
        ``K' = A B K`` and ``P' = A B P`` (``B``: the input's ROI and binning), the fused size,
        binning 0 and an empty ROI.
    """
    full = transform @ visible.image_transform()
    k = full @ np.asarray(visible.k, dtype=np.float64).reshape(3, 3)
    p = full @ np.asarray(visible.p, dtype=np.float64).reshape(3, 4)
    return replace(visible, width=int(fused_size[0]), height=int(fused_size[1]),
                   k=tuple(float(v) for v in k.ravel()), p=tuple(float(v) for v in p.ravel()),
                   binning_x=0, binning_y=0, roi=(0, 0, 0, 0))


def project(model: CameraModel, point: np.ndarray) -> np.ndarray:
    """Image pixel ``(u, v)`` of a point in the rectified camera frame, through ``P``.

    Args:
        model: the camera model.
        point: ``(3,)`` or ``(N, 3)`` points, metres, camera frame (z forward).

    Returns:
        ``(2,)`` or ``(N, 2)`` float64 pixel coordinates of the images the model describes.
    """
    points = np.atleast_2d(np.asarray(point, dtype=np.float64))
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    pixels = (model.image_transform() @ np.asarray(model.p, dtype=np.float64).reshape(3, 4)
              @ homogeneous.T).T
    uv = pixels[:, :2] / pixels[:, 2:3]
    return uv[0] if np.ndim(point) == 1 else uv
