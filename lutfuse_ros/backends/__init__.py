"""Inference backends behind one interface, chosen by name from a registry.

``create_backend("torch" | "onnxruntime" | "tensorrt" | "auto", artifact, device)``. Each
runtime lives in its own module and is imported only when asked for.
"""

from __future__ import annotations

import importlib
import logging

from lutfuse_ros.artifacts import Artifact
from lutfuse_ros.backends.base import InferenceBackend
from lutfuse_ros.errors import BackendError, ConfigError

#: backend name -> "module:Class" (imported lazily).
BACKENDS: dict[str, str] = {
    "torch": "lutfuse_ros.backends.torch_backend:TorchBackend",
    "onnxruntime": "lutfuse_ros.backends.onnx_backend:OnnxRuntimeBackend",
    "tensorrt": "lutfuse_ros.backends.tensorrt_backend:TensorRTBackend",
}

#: Order in which ``auto`` tries backends, per device kind.
AUTO_PREFERENCE: dict[str, tuple[str, ...]] = {
    "cuda": ("tensorrt", "onnxruntime", "torch"),
    "cpu": ("torch", "onnxruntime"),
}


def backend_class(name: str) -> type[InferenceBackend]:
    """Import and return the class registered under ``name``.

    Raises:
        ConfigError: unknown name.
        BackendError: the backend's module cannot be imported.
    """
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; choose one of "
                          f"{', '.join(['auto', *BACKENDS])}") from None
    module_name, class_name = target.split(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except ImportError as error:
        raise BackendError(f"backend {name!r} cannot be imported: {error}") from None


def available_backends(device: str = "cpu") -> list[str]:
    """Names of the registered backends that can run on ``device`` here."""
    names = []
    for name in BACKENDS:
        try:
            if backend_class(name).is_available(device):
                names.append(name)
        except BackendError:
            continue
    return names


def create_backend(name: str, artifact: Artifact, device: str = "cpu", **options,
                   ) -> InferenceBackend:
    """Instantiate a backend by name; ``auto`` picks the best available one and logs it.

    Args:
        name: a key of :data:`BACKENDS`, or ``auto``.
        artifact: the model to run.
        device: ``cpu`` or ``cuda[:N]``.
        **options: passed to the backend.
    """
    if name == "auto":
        kind = "cuda" if device.startswith("cuda") else "cpu"
        candidates = [n for n in AUTO_PREFERENCE[kind] if n in available_backends(device)]
        if not candidates:
            raise BackendError(f"no backend is available for device {device!r}")
        name = candidates[0]
        logging.getLogger(__name__).info("backend auto -> %s on %s", name, device)
    cls = backend_class(name)
    if not cls.is_available(device):
        raise BackendError(f"backend {name!r} is not available for device {device!r} here")
    return cls(artifact, device=device, **options)


__all__ = ["BACKENDS", "InferenceBackend", "available_backends", "backend_class",
           "create_backend"]
