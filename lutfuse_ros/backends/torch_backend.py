"""PyTorch backend (CPU and CUDA).

On CPU it runs the family's fast inference path (:mod:`lutfuse_ros.backends.cpu_kernels`)
where one exists, else the reference module. On CUDA it runs the module, optionally under
autocast.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from lutfuse_ros.artifacts import Artifact
from lutfuse_ros.backends.base import InferenceBackend
from lutfuse_ros.backends.frame_inputs import FrameInputs
from lutfuse_ros.errors import BackendError, ConfigError

#: Precision names accepted on CUDA (autocast dtype of the module); ``auto`` means fp32.
CUDA_PRECISIONS = ("fp32", "fp16", "bf16", "auto")
#: Default ``precision``: ``fp32`` reproduces the official checkpoint's outputs almost
#: bit-exactly (> 90 dB PSNR), which ``bf16`` cannot (>= 54 dB); choose ``auto`` for speed.
DEFAULT_PRECISION = "fp32"

_LOG = logging.getLogger(__name__)


class TorchBackend(InferenceBackend):
    """Runs the artifact's model with PyTorch.

    Args:
        artifact: the model.
        device: ``cpu`` or ``cuda[:N]``.
        threads: intra-op threads on CPU (None keeps PyTorch's default, one per core).
        precision: ``fp32`` (default; reproduces the reference module to float32 rounding),
            ``bf16`` (the MM-LUT context network in bfloat16: about twice as fast on CPUs
            with native bf16, >= 54 dB PSNR against fp32 on the imported official checkpoint
            over the 50 RoadScene test images) or ``auto`` (``bf16`` where the CPU has native
            bf16 instructions, else ``fp32``; on CUDA ``auto`` is ``fp32``, and ``fp16`` is
            accepted there too, as autocast dtypes).
        fast_path: on CPU, use the family's fast implementation (True) or the reference
            module (False; an explicit ``bf16`` then runs it under CPU autocast, ``auto``
            keeps it in fp32). Families without a fast implementation run the module.

    Attributes:
        precision: the precision actually used (``fp32``, ``bf16``, ``fp16``): the
            mini-model's fast path is always ``fp32``.

    Raises:
        ConfigError: invalid threads, device or precision; ``bf16`` on a CPU whose oneDNN
            cannot run bf16 convolutions (AVX2-only CPUs; the message names the missing CPU
            features).
        BackendError: CUDA requested but unavailable.
    """

    name = "torch"

    def __init__(self, artifact: Artifact, device: str = "cpu", threads: int | None = None,
                 precision: str = DEFAULT_PRECISION, fast_path: bool = True, **options) -> None:
        super().__init__(artifact, device, threads=threads, precision=precision,
                         fast_path=fast_path, **options)
        import torch

        from lutfuse_ros.backends.cpu_kernels import build_fast_model, resolve_precision

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
        self.fast_model = None
        if self._device.type == "cuda":
            if precision not in CUDA_PRECISIONS:
                raise ConfigError(f"precision must be one of {', '.join(CUDA_PRECISIONS)} on "
                                  f"CUDA, got {precision!r}")
            self.precision = "fp32" if precision == "auto" else precision
        else:
            resolved = resolve_precision(precision)
            if fast_path:
                self.fast_model = build_fast_model(self.model, resolved)
            if self.fast_model is not None:
                self.precision = self.fast_model.precision
            else:  # the reference module: autocast only when bf16 is asked for explicitly
                self.precision = "bf16" if precision == "bf16" else "fp32"
        _LOG.debug("torch backend: %s", self.describe())

    @classmethod
    def is_available(cls, device: str = "cpu") -> bool:
        try:
            import torch
        except ImportError:
            return False
        return not device.startswith("cuda") or torch.cuda.is_available()

    def describe(self) -> str:
        path = "fast path" if self.fast_model is not None else "module"
        threads = self._torch.get_num_threads() if self._device.type == "cpu" else None
        extra = f", {threads} threads" if threads else ""
        return f"torch on {self.device} ({path}, {self.precision}{extra})"

    def infer(self, visible_rgb: np.ndarray, infrared: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            if self.fast_model is not None:
                return self.fast_model.infer(visible_rgb, infrared)
            visible = torch.from_numpy(visible_rgb).to(self._device)
            thermal = torch.from_numpy(infrared).to(self._device)
            with self._autocast():
                fused = self.model(visible, thermal)
            return fused[0, 0].float().cpu().numpy()

    def infer_frame(self, frame: FrameInputs) -> np.ndarray:
        """Fuse a uint8 frame (the fast path reads the uint8 images directly).

        Returns:
            ``(H, W)`` float32 raw fused luminance, as :meth:`infer`.
        """
        if self.fast_model is None:
            return super().infer_frame(frame)
        with self._torch.inference_mode():
            return self.fast_model.infer_frame(frame)

    def _autocast(self):
        """Autocast context of the module path for a reduced precision, else a no-op."""
        dtypes = {"bf16": self._torch.bfloat16, "fp16": self._torch.float16}
        if self.precision not in dtypes:
            return contextlib.nullcontext()
        return self._torch.autocast(self._device.type, dtype=dtypes[self.precision])

    def close(self) -> None:
        if getattr(self, "fast_model", None) is not None:
            self.fast_model.close()
        if getattr(self, "model", None) is not None and self._device.type == "cuda":
            self.model = None
            self._torch.cuda.empty_cache()
