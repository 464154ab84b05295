"""The fast CPU inference path of the torch backend.

A *fast model* is a separate inference implementation of a model family, built from the
same weights as the family's reference module (which stays the source of truth and the
training path); it lives in the family's folder (``families/<family>/fast_kernel.py``,
registered as :attr:`~lutfuse_ros.families.ModelFamily.fast_kernel`), and this package holds
what the kernels share (convolution ops, row bands, precision). It computes the same
function faster on a CPU:
``infer(visible_rgb, infrared)`` with the float tensors of the backend contract, and
``infer_frame(frame)`` straight from the pipeline's uint8 images
(:class:`~lutfuse_ros.backends.frame_inputs.FrameInputs`).

Families without a fast kernel run the reference module.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch
from torch import nn

from lutfuse_ros.backends.cpu_kernels.precision import (PRECISIONS, cpu_has_native_bf16,
                                                        resolve_precision, torch_dtype)
from lutfuse_ros.backends.frame_inputs import FrameInputs
from lutfuse_ros.families import family_of


class FastModel(Protocol):
    """What every fast model implements.

    Attributes:
        precision: the precision it computes in, ``fp32`` or ``bf16``.
    """

    precision: str

    def infer(self, visible_rgb: np.ndarray, infrared: np.ndarray) -> np.ndarray:
        """``(1, 3, H, W)`` and ``(1, 1, H, W)`` float32 on [0, 1] -> ``(H, W)`` float32."""

    def infer_frame(self, frame: FrameInputs) -> np.ndarray:
        """uint8 frame -> ``(H, W)`` float32 raw fused luminance."""

    def close(self) -> None:
        """Release worker threads, if any."""


def build_fast_model(model: nn.Module, precision: str) -> FastModel | None:
    """The fast CPU implementation of ``model``, or None where its family has none.

    Args:
        model: a reference module of a registered family (``model.family``).
        precision: a resolved precision, ``fp32`` or ``bf16``.
    """
    family = family_of(model)
    builder: Callable[[nn.Module, torch.dtype], FastModel] | None = (
        family.part("fast_kernel") if family is not None else None)
    if builder is None:
        return None
    return builder(model, torch_dtype(precision))


__all__ = ["FastModel", "PRECISIONS",
           "build_fast_model", "cpu_has_native_bf16", "resolve_precision"]
