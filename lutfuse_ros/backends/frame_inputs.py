"""One aligned frame in the pipeline's native (uint8) form: the one input type of backends.

The pipeline hands every backend a :class:`FrameInputs` through
:meth:`~lutfuse_ros.backends.base.InferenceBackend.infer_frame`. By default a backend turns
it into the float32 model tensors of ``infer`` (:meth:`FrameInputs.visible_rgb`,
:meth:`FrameInputs.infrared`); one that can start from the uint8 images directly (the fast CPU
path, which feeds the context network the raw 0..255 values and reads the infrared axis from
8-bit levels) overrides ``infer_frame``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lutfuse_ros.errors import InputError

_INV_255 = np.float32(1.0 / 255.0)


@dataclass(frozen=True)
class FrameInputs:
    """A registered visible/thermal pair after thermal normalisation and alignment.

    Attributes:
        visible: ``(H, W, 3)`` uint8 in ``colour_order``, or ``(H, W)`` uint8 gray.
        colour_order: ``"bgr"`` or ``"rgb"`` (ignored for gray).
        thermal: ``(H, W)`` uint8 infrared.
        luma: ``(H, W)`` float32 BT.601 luminance of ``visible`` on [0, 1], bit-identical to
            what :func:`lutfuse_ros.families.features.rgb_to_luma` computes from
            :meth:`visible_rgb` (see :func:`lutfuse_ros.colour.luma_plane`).
    """

    visible: np.ndarray
    colour_order: str
    thermal: np.ndarray
    luma: np.ndarray

    def __post_init__(self) -> None:
        size = self.visible.shape[:2]
        if self.thermal.shape != size or self.luma.shape != size:
            raise InputError(f"frame planes differ in size: visible {self.visible.shape}, "
                             f"thermal {self.thermal.shape}, luma {self.luma.shape}")
        if self.visible.dtype != np.uint8 or self.thermal.dtype != np.uint8:
            raise InputError(f"frame images must be uint8, got visible {self.visible.dtype} "
                             f"and thermal {self.thermal.dtype}")

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return self.luma.shape

    def visible_rgb(self) -> np.ndarray:
        """``(1, 3, H, W)`` float32 RGB on [0, 1]; gray is replicated.

        Scaled as ``uint8 * float32(1/255)``.
        """
        if self.visible.ndim == 2:
            return np.ascontiguousarray(np.broadcast_to(self.luma, (1, 3) + self.luma.shape))
        channels = (2, 1, 0) if self.colour_order == "bgr" else (0, 1, 2)
        planar = np.empty((1, 3) + self.size, dtype=np.float32)
        for target, source in enumerate(channels):
            np.multiply(self.visible[..., source], _INV_255, out=planar[0, target],
                        dtype=np.float32)
        return planar

    def infrared(self) -> np.ndarray:
        """``(1, 1, H, W)`` float32 infrared on [0, 1] (``uint8 * float32(1/255)``)."""
        return np.multiply(self.thermal, _INV_255, dtype=np.float32)[None, None]
