"""PyTorch backend (CPU and CUDA)."""

from __future__ import annotations

import numpy as np

from lutfuse_ros.artifacts import Artifact
from lutfuse_ros.backends.base import InferenceBackend
from lutfuse_ros.errors import BackendError, ConfigError


class TorchBackend(InferenceBackend):
    """Runs the artifact's PyTorch model.

    Args:
        artifact: the model.
        device: ``cpu`` or ``cuda[:N]``.
        threads: intra-op threads on CPU (None keeps PyTorch's default).
    """

    name = "torch"

    def __init__(self, artifact: Artifact, device: str = "cpu", threads: int | None = None,
                 **options) -> None:
        super().__init__(artifact, device, threads=threads, **options)
        import torch

        self._torch = torch
        if threads is not None:
            if threads < 1:
                raise ConfigError(f"threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        try:
            self._device = torch.device(device)
        except RuntimeError as error:
            raise ConfigError(f"invalid torch device {device!r}: {error}") from None
        if self._device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"device {device!r} requested but CUDA is not available")
        self.model = artifact.build_model().to(self._device)

    @classmethod
    def is_available(cls, device: str = "cpu") -> bool:
        try:
            import torch
        except ImportError:
            return False
        return not device.startswith("cuda") or torch.cuda.is_available()

    def infer(self, visible_rgb: np.ndarray, infrared: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            visible = torch.from_numpy(visible_rgb).to(self._device)
            thermal = torch.from_numpy(infrared).to(self._device)
            fused = self.model(visible, thermal)
            return fused[0, 0].float().cpu().numpy()

    def close(self) -> None:
        if getattr(self, "model", None) is not None and self._device.type == "cuda":
            self.model = None
            self._torch.cuda.empty_cache()
