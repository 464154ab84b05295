"""The interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from lutfuse_ros.artifacts import Artifact
from lutfuse_ros.backends.frame_inputs import FrameInputs


class InferenceBackend(ABC):
    """Runs one model artifact on one runtime.

    The pipeline hands every backend one input type, :class:`FrameInputs` (the aligned uint8
    planes and the luma), through :meth:`infer_frame`; by default that builds the model-space
    float tensors of :meth:`infer`, the one method a runtime must implement. A backend knows
    nothing about colour orders, thermal normalisation or ROS. Implementations import their
    runtime lazily (in ``__init__`` or :meth:`is_available`), so registering a backend costs
    nothing when its runtime is absent.

    Args:
        artifact: the loaded, validated model artifact.
        device: runtime-specific device string (``cpu``, ``cuda``, ``cuda:1`` ...).
        **options: runtime-specific options (precision, threads, engine path ...).
    """

    #: Registry name (``torch``, ``onnxruntime``, ``tensorrt``).
    name: str = ""

    def __init__(self, artifact: Artifact, device: str = "cpu", **options) -> None:
        self.artifact = artifact
        self.device = device
        self.options = options

    @classmethod
    def is_available(cls, device: str = "cpu") -> bool:
        """Whether this runtime can run on ``device`` in this environment."""
        return True

    @abstractmethod
    def infer(self, visible_rgb: np.ndarray, infrared: np.ndarray) -> np.ndarray:
        """Fuse one pair.

        Args:
            visible_rgb: ``(1, 3, H, W)`` float32 RGB on [0, 1], C-contiguous.
            infrared: ``(1, 1, H, W)`` float32 on [0, 1], C-contiguous.

        Returns:
            ``(H, W)`` float32 raw fused luminance (before the artifact's output mapping).
        """

    def infer_frame(self, frame: FrameInputs) -> np.ndarray:
        """Fuse one aligned frame (what the pipeline calls).

        Args:
            frame: the aligned uint8 visible and infrared planes and the visible luma.

        Returns:
            ``(H, W)`` float32 raw fused luminance, as :meth:`infer`. This default converts
            the frame to :meth:`infer`'s tensors; a backend that can start from the uint8
            planes (torch's fast CPU path) overrides it.
        """
        return self.infer(frame.visible_rgb(), frame.infrared())

    def describe(self) -> str:
        """One line naming the runtime, device and options, for logs."""
        options = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.name} on {self.device}" + (f" ({options})" if options else "")

    def close(self) -> None:
        """Release runtime resources (GPU memory, sessions). Safe to call twice."""

    def __enter__(self) -> "InferenceBackend":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
