"""The interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from lutfuse_ros.artifacts import Artifact


class InferenceBackend(ABC):
    """Runs one model artifact on one runtime.

    A backend sees only model-space tensors: it knows nothing about colour orders, thermal
    normalisation or ROS. Implementations import their runtime lazily (in ``__init__`` or
    :meth:`is_available`), so registering a backend costs nothing when its runtime is absent.

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
