"""Fast CPU inference of an :class:`~.model.MMLUT` (same function, see the package doc)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from lutfuse_ros.families.mmlut.fast_context import FastContextNet
from lutfuse_ros.families.mmlut.fast_grid_lattice import GridSampleLattice
from lutfuse_ros.families.mmlut.fast_lattice import LatticeLookup
from lutfuse_ros.families.mmlut.fast_reduced_context import FastReducedContext
from lutfuse_ros.backends.frame_inputs import FrameInputs
from lutfuse_ros.families.features import rgb_to_luma
from lutfuse_ros.families.mmlut.model import MMLUT
from lutfuse_ros.families.mmlut.reduced_context import ReducedContextNet

_INV_255 = np.float32(1.0 / 255.0)


def normalised_gradient(luma: np.ndarray) -> np.ndarray:
    """The MM-LUT gradient axis with OpenCV: Sobel magnitude (zero padding), min-max normalised.

    Same function as :func:`lutfuse_ros.families.features.normalised_gradient` (a flat image maps
    to 0), to float32 rounding.

    Args:
        luma: ``(H, W)`` float32 on [0, 1].

    Returns:
        ``(H, W)`` float32 on [0, 1].
    """
    grad_x = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_CONSTANT)
    grad_y = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_CONSTANT)
    magnitude = cv2.magnitude(grad_x, grad_y)
    low, high = cv2.minMaxLoc(magnitude)[:2]
    magnitude -= np.float32(low)
    span = np.float32(high) - np.float32(low)
    if span > 0:
        magnitude /= span
    return magnitude


class FullResolutionContext:
    """The context value of a full-resolution (official) context network, in lattice units.

    Args:
        network: the reference
            :class:`~lutfuse_ros.families.mmlut.context_net.ContextNet` (weights copied).
        dtype: storage dtype of the network's feature maps.
        scale: lattice units per unit of context.
    """

    def __init__(self, network, dtype: torch.dtype, scale: float) -> None:
        self.network = FastContextNet(network, dtype)
        self.scale = float(scale)

    def from_uint8(self, visible: np.ndarray, thermal: np.ndarray, order: str) -> torch.Tensor:
        """``(H, W)`` float32 context coordinates from the uint8 frame (see FastReducedContext)."""
        logits = self.network.forward(self.network.input_from_uint8(visible, thermal), order)
        return torch.sigmoid_(logits).mul_(self.scale)

    def from_float(self, visible_rgb: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """``(H, W)`` float32 context coordinates from float inputs on [0, 1]."""
        logits = self.network.forward(self.network.input_from_float(visible_rgb, infrared),
                                      "rgb")
        return torch.sigmoid_(logits).mul_(self.scale)


class FastMMLUT:
    """An MM-LUT prepared for fast CPU inference.

    Args:
        model: the reference module (its weights are copied).
        dtype: storage dtype of the context network (float32 or bfloat16); the table look-up
            and every coordinate stay float32.
    """

    def __init__(self, model: MMLUT, dtype: torch.dtype) -> None:
        self.precision = "bf16" if dtype == torch.bfloat16 else "fp32"
        self.scale = float(model.scale)
        context_class = (FastReducedContext if isinstance(model.context, ReducedContextNet)
                         else FullResolutionContext)
        self.context = context_class(model.context, dtype, self.scale)
        levels = torch.arange(256, dtype=torch.float32) * float(_INV_255)
        self.lattice = LatticeLookup(model.lut, levels * self.scale)
        # the reduced-context family (a speed design) looks up with grid_sample (~1e-3
        # lattice units); full-resolution models keep the exact gathers (official fidelity)
        self.grid_lattice = (GridSampleLattice(model.lut, levels * self.scale)
                             if isinstance(model.context, ReducedContextNet) else None)

    def infer_frame(self, frame: FrameInputs) -> np.ndarray:
        """Fuse one uint8 frame; returns ``(H, W)`` float32 fused luminance (unclamped)."""
        order = "gray" if frame.visible.ndim == 2 else frame.colour_order
        context = self.context.from_uint8(frame.visible, frame.thermal, order)
        luma = torch.from_numpy(frame.luma) * self.scale
        gradient = torch.from_numpy(normalised_gradient(frame.luma)).mul_(self.scale)
        if self.grid_lattice is not None:
            fused = self.grid_lattice.lookup_uint8_infrared(luma, gradient, context,
                                                            frame.thermal)
        elif self.lattice.has_uint8_infrared:
            fused = self.lattice.lookup_uint8_infrared(luma, gradient, context,
                                                       torch.from_numpy(frame.thermal))
        else:
            infrared = torch.from_numpy(frame.infrared()[0, 0]) * self.scale
            fused = self.lattice.lookup(luma, gradient, context, infrared)
        return fused.numpy()

    def infer(self, visible_rgb: np.ndarray, infrared: np.ndarray) -> np.ndarray:
        """Fuse float inputs: ``(1, 3, H, W)`` RGB and ``(1, 1, H, W)`` infrared on [0, 1].

        Returns:
            ``(H, W)`` float32 fused luminance (unclamped).
        """
        visible = torch.from_numpy(visible_rgb)
        thermal = torch.from_numpy(infrared)
        luma = rgb_to_luma(visible)[0, 0]
        context = self.context.from_float(visible, thermal)
        gradient = torch.from_numpy(normalised_gradient(luma.numpy())).mul_(self.scale)
        fused = self.lattice.lookup(luma * self.scale, gradient, context,
                                    thermal[0, 0] * self.scale)
        return fused.numpy()

    def close(self) -> None:
        """Nothing to release (PyTorch owns the threads)."""
