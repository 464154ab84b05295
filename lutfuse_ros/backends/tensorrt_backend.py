"""TensorRT backend: runs a prebuilt, cached engine with the named-tensor API.

The backend never builds an engine: a missing, mismatched or stale engine (another TensorRT
version, GPU or ONNX graph, or an input size outside its optimisation profile) raises a
:class:`~lutfuse_ros.errors.BackendError` naming the ``lutfuse export tensorrt ...`` command
that builds it. Device buffers (PyTorch CUDA tensors) and pinned host staging buffers are
allocated once for the profile's largest size; each frame is one host-to-device copy per
input, ``execute_async_v3`` on the backend's CUDA stream and one device-to-host copy.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from lutfuse_ros.artifacts import Artifact
from lutfuse_ros.backends.base import InferenceBackend
from lutfuse_ros.errors import BackendError, ConfigError
from lutfuse_ros.export import engine_cache
from lutfuse_ros.export.engine_cache import ProfileShapes, parse_resolution
from lutfuse_ros.families.mmlut.export_ops import DEFAULT_LUT_OP

_LOG = logging.getLogger(__name__)
_IO_CHANNELS = {"visible": 3, "infrared": 1, "fused_luma": 1}


class TensorRTBackend(InferenceBackend):
    """Runs a TensorRT engine built by ``lutfuse export tensorrt``.

    Args:
        artifact: the model the engine must have been built from.
        device: ``cuda[:N]``.
        precision: ``fp16`` (default; ``auto`` means the same, so the node's default
            ``{precision: auto}`` works for every backend) or ``fp32``: which cached engine
            to load.
        engine_path: an explicit engine file (with its ``.json`` sidecar beside it); without
            it the engine is looked up in ``cache_dir`` by its key.
        onnx_path: the ONNX file the engine was built from (its hash is part of the key);
            without it the artifact is exported in memory to compute the hash.
        cache_dir: engine cache folder (default: :func:`engine_cache.default_cache_dir`).
        lut_op: LUT formulation of the in-memory export (must match the engine's).
        resolutions: sizes (``"WxH"``) this run will feed; checked against the engine's
            profile at construction, and used in rebuild commands.

    Raises:
        BackendError: TensorRT, CUDA or the engine is unavailable or does not fit; the message
            names the command that rebuilds the engine.
        ConfigError: invalid options.
    """

    name = "tensorrt"

    def __init__(self, artifact: Artifact, device: str = "cuda", precision: str = "fp16",
                 engine_path: str | None = None, onnx_path: str | None = None,
                 cache_dir: str | None = None, lut_op: str = DEFAULT_LUT_OP,
                 resolutions: list[str] | None = None, **options) -> None:
        precision = "fp16" if precision == "auto" else precision
        super().__init__(artifact, device, precision=precision, engine_path=engine_path,
                         onnx_path=onnx_path, cache_dir=cache_dir, lut_op=lut_op, **options)
        from lutfuse_ros.export.onnx_export import artifact_reference, load_or_export_onnx
        from lutfuse_ros.export.tensorrt_build import (cuda_device_identity, current_engine_key,
                                                       import_tensorrt)

        if not device.startswith("cuda"):
            raise ConfigError(f"the tensorrt backend runs on cuda[:N] devices, got {device!r}")
        tensorrt = import_tensorrt()
        index, _, _ = cuda_device_identity(device)
        exported = load_or_export_onnx(artifact, onnx_path, lut_op)
        expected = current_engine_key(exported, precision, device)
        wanted = [parse_resolution(r) for r in resolutions] if resolutions else []
        self._command_args = {"source": onnx_path or artifact_reference(artifact),
                              "precision": precision, "cache_dir": cache_dir,
                              "lut_op": exported.lut_op, "device": device, "output": engine_path}
        profile = ProfileShapes.covering(wanted or engine_cache.DEFAULT_RESOLUTIONS)
        command = self.rebuild_command(profile)
        if engine_path:
            record, data = engine_cache.verify_engine(engine_path, expected, command)
        else:
            folder = Path(cache_dir) if cache_dir else engine_cache.default_cache_dir()
            engine_path, record, data = engine_cache.locate_engine(folder, exported.name,
                                                                   expected, command)
        self.record = record
        _LOG.info("TensorRT %s engine %s (%s, %s)", precision, engine_path,
                  expected.tensorrt_version, record.profile.describe())
        for width, height in wanted:
            engine_cache.check_input_shape(record, height, width,
                                           self._grown_command(width, height))
        self._load(tensorrt, data, index)

    @classmethod
    def is_available(cls, device: str = "cpu") -> bool:
        if not device.startswith("cuda"):
            return False
        try:
            import tensorrt  # noqa: F401
            import torch
        except ImportError:
            return False
        return torch.cuda.is_available()

    def rebuild_command(self, profile: ProfileShapes) -> str:
        """The ``lutfuse export tensorrt`` command that builds this backend's engine."""
        return engine_cache.rebuild_command(profile=profile, **self._command_args)

    def _grown_command(self, width: int, height: int) -> str:
        profile = self.record.profile
        grown = ProfileShapes.covering((*profile.resolutions, (width, height)), profile.opt)
        return self.rebuild_command(grown)

    def _load(self, tensorrt, data: bytes, index: int) -> None:
        import torch

        self._torch = torch
        self._logger = tensorrt.Logger(tensorrt.Logger.WARNING)  # must outlive the runtime
        tensorrt.init_libnvinfer_plugins(self._logger, "")
        self._runtime = tensorrt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            raise BackendError("TensorRT could not deserialise the engine (built by another "
                               "TensorRT or for another GPU?); rebuild it with: "
                               f"{self.rebuild_command(self.record.profile)}")
        names = {self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)}
        if names != set(_IO_CHANNELS):
            raise BackendError(f"TensorRT engine has tensors {sorted(names)}, expected "
                               f"{sorted(_IO_CHANNELS)}; rebuild it with: "
                               f"{self.rebuild_command(self.record.profile)}")
        self._context = self._engine.create_execution_context()
        height, width = self.record.profile.max_hw
        pixels = height * width
        self._cuda = torch.device("cuda", index)
        self._stream = torch.cuda.Stream(self._cuda)
        self._device_buffers = {name: torch.empty(channels * pixels, dtype=torch.float32,
                                                  device=self._cuda)
                                for name, channels in _IO_CHANNELS.items()}
        self._host_buffers = {name: torch.empty(channels * pixels, dtype=torch.float32,
                                                pin_memory=True)
                              for name, channels in _IO_CHANNELS.items()}

    def infer(self, visible_rgb: np.ndarray, infrared: np.ndarray) -> np.ndarray:
        height, width = visible_rgb.shape[2:]
        engine_cache.check_input_shape(self.record, height, width,
                                       self._grown_command(width, height))
        pixels = height * width
        torch = self._torch
        context = self._context
        with torch.cuda.stream(self._stream):
            for name, array in (("visible", visible_rgb), ("infrared", infrared)):
                count = _IO_CHANNELS[name] * pixels
                host = self._host_buffers[name][:count]
                np.copyto(host.numpy(), array.reshape(-1))
                device_view = self._device_buffers[name][:count]
                device_view.copy_(host, non_blocking=True)
                context.set_input_shape(name, (1, _IO_CHANNELS[name], height, width))
                context.set_tensor_address(name, device_view.data_ptr())
            output = self._device_buffers["fused_luma"]
            context.set_tensor_address("fused_luma", output.data_ptr())
            launched = context.execute_async_v3(self._stream.cuda_stream)
            result = self._host_buffers["fused_luma"][:pixels]
            result.copy_(output[:pixels], non_blocking=True)
        self._stream.synchronize()
        if not launched:
            raise BackendError(f"TensorRT execution failed for a {width}x{height} input")
        return result.numpy().reshape(height, width).copy()

    def close(self) -> None:
        for attribute in ("_context", "_engine", "_runtime", "_device_buffers", "_host_buffers",
                          "_stream"):
            if hasattr(self, attribute):
                setattr(self, attribute, None)
