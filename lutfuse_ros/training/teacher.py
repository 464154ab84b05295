"""Teachers for distillation.

A lutfuse artifact, a TorchScript or ONNX file, or a folder of precomputed fused references.

Every teacher takes the model IO convention of the package (``visible_rgb`` ``(N, 3, H, W)``
RGB on [0, 1], ``infrared`` ``(N, 1, H, W)`` on [0, 1]) and produces a fused luminance; a
teacher that exposes its 4-channel features (a FusionTeacher artifact, or a TorchScript
module returning ``(features, output)``) also feeds the feature term of digestible
distillation.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np
import torch

from lutfuse_ros.artifacts import load_artifact
from lutfuse_ros.colour import split_luma_chroma
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.training.config import TeacherSourceConfig, resolve_path

LOG = logging.getLogger(__name__)


class Teacher(ABC):
    """A frozen fusion model to distil from."""

    #: True when :meth:`run` returns 4-channel features.
    provides_features: bool = False

    @abstractmethod
    def run(self, visible_rgb: torch.Tensor, infrared: torch.Tensor,
            ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Teacher features and raw output.

        Args:
            visible_rgb: ``(N, 3, H, W)`` RGB on [0, 1].
            infrared: ``(N, 1, H, W)`` on [0, 1].

        Returns:
            ``(features or None, output)``: ``(N, 4, H, W)`` and the raw ``(N, 1, H, W)``
            output (tanh range for MMDRFuse-style teachers).
        """

    def fuse_luma(self, visible_rgb: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """The teacher's fused luminance on [0, 1], ``(N, 1, H, W)`` (no gradient)."""
        with torch.no_grad():
            return self.run(visible_rgb, infrared)[1].clamp(0.0, 1.0)

    def to(self, device: torch.device) -> "Teacher":
        """Move to a device (no-op for teachers that do not run on torch devices)."""
        return self

    @abstractmethod
    def describe(self) -> dict:
        """Provenance: kind, path, file hash, and the artifact's own provenance if any."""


class ArtifactTeacher(Teacher):
    """A lutfuse ``.safetensors`` artifact (any family, e.g. from ``lutfuse train teacher``)."""

    def __init__(self, path: str | Path) -> None:
        self.artifact = load_artifact(path)
        self.model = self.artifact.build_model().requires_grad_(False)
        self.provides_features = hasattr(self.model, "forward_features")
        self.mapping = self.artifact.output_mapping

    def to(self, device: torch.device) -> "ArtifactTeacher":
        self.model.to(device)
        return self

    def run(self, visible_rgb, infrared):
        with torch.no_grad():
            if self.provides_features:
                return self.model.forward_features(visible_rgb, infrared)
            return None, self.model(visible_rgb, infrared)

    def fuse_luma(self, visible_rgb, infrared):
        output = self.run(visible_rgb, infrared)[1]
        if self.mapping == "minmax":
            flat = output.flatten(1)
            low = flat.min(1).values.view(-1, 1, 1, 1)
            high = flat.max(1).values.view(-1, 1, 1, 1)
            return (output - low) / (high - low).clamp_min(1e-12)
        return output.clamp(0.0, 1.0)

    def describe(self) -> dict:
        return {"kind": "artifact", "path": str(self.artifact.path),
                "sha256": file_sha256(self.artifact.path), "name": self.artifact.name,
                "family": self.artifact.family,
                "architecture": self.artifact.manifest.get("architecture"),
                "recipe": self.artifact.manifest.get("provenance", {})}


class TorchScriptTeacher(Teacher):
    """A ``torch.jit`` module called as ``model(visible_rgb, infrared)``.

    It may return the fused luminance or a ``(features, output)`` tuple.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"TorchScript teacher {self.path} not found")
        try:
            self.model = torch.jit.load(str(self.path), map_location="cpu").eval()
        except (RuntimeError, ValueError) as error:
            raise ConfigError(f"{self.path} is not a TorchScript module: "
                              f"{str(error).splitlines()[0]}") from None
        probe = self.model(torch.zeros(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))
        self.provides_features = isinstance(probe, (tuple, list))

    def to(self, device):
        self.model.to(device)
        return self

    def run(self, visible_rgb, infrared):
        with torch.no_grad():
            result = self.model(visible_rgb, infrared)
        if isinstance(result, (tuple, list)):
            return result[0], result[1]
        return None, result

    def describe(self) -> dict:
        return {"kind": "torchscript", "path": str(self.path), "sha256": file_sha256(self.path)}


class OnnxTeacher(Teacher):
    """An ONNX model whose first output is the fused luminance ``(N, 1, H, W)``.

    Its inputs are ``visible_rgb`` and ``infrared``, or two positional inputs in that order.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"ONNX teacher {self.path} not found")
        try:
            import onnxruntime
        except ImportError as error:
            raise ConfigError("ONNX teachers need onnxruntime (pip install "
                              "'lutfuse_ros[onnx]')") from error
        self.session = onnxruntime.InferenceSession(str(self.path),
                                                    providers=["CPUExecutionProvider"])
        names = [i.name for i in self.session.get_inputs()]
        if len(names) != 2:
            raise ConfigError(f"ONNX teacher {self.path} must have 2 inputs (visible_rgb, "
                              f"infrared), has {names}")
        self.input_names = (("visible_rgb", "infrared") if {"visible_rgb", "infrared"} <= set(names)
                            else tuple(names))

    def run(self, visible_rgb, infrared):
        feeds = {self.input_names[0]: visible_rgb.detach().cpu().numpy().astype(np.float32),
                 self.input_names[1]: infrared.detach().cpu().numpy().astype(np.float32)}
        output = self.session.run(None, feeds)[0]
        return None, torch.from_numpy(output).to(visible_rgb.device)

    def describe(self) -> dict:
        return {"kind": "onnx", "path": str(self.path), "sha256": file_sha256(self.path)}


def build_teacher(config: TeacherSourceConfig) -> Teacher | None:
    """The live teacher of a config, or None for a ``folder`` teacher (references only)."""
    if config.kind == "folder":
        return None
    if config.kind == "classical":
        from lutfuse_ros.training.classical_teacher import ClassicalTeacher

        return ClassicalTeacher(config.rule, config.max_weight, config.sum_gain)
    path = resolve_path(config.path)
    if config.kind == "artifact":
        return ArtifactTeacher(path)
    if config.kind == "torchscript":
        return TorchScriptTeacher(path)
    return OnnxTeacher(path)


def file_sha256(path: str | Path | None) -> str | None:
    """``sha256:<hex>`` of a file (None for None)."""
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def read_reference(path: str | Path) -> np.ndarray:
    """A precomputed teacher output as ``(H, W)`` float32 luminance on [0, 1].

    16-bit gray PNGs keep their precision; colour images give their BT.601 luminance (the
    official LUT-Fuse references are RGB).
    """
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ConfigError(f"cannot read teacher reference {path}")
    if image.ndim == 2:
        scale = 65535.0 if image.dtype == np.uint16 else 255.0
        return image.astype(np.float32) / np.float32(scale)
    if image.dtype != np.uint8:
        image = (image / 257).astype(np.uint8)
    luma, _, _ = split_luma_chroma(np.ascontiguousarray(image[..., :3]), "bgr")
    return luma.astype(np.float32)


def write_reference(path: Path, luma: np.ndarray) -> None:
    """Store a teacher luminance as a 16-bit gray PNG (atomically)."""
    from lutfuse_ros.image_io import write_image_atomic

    image = np.round(np.clip(luma, 0.0, 1.0) * 65535.0).astype(np.uint16)
    write_image_atomic(path, image, overwrite=True)
