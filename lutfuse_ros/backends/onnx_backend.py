"""ONNX Runtime backend: CPU, and the CUDA / TensorRT execution providers where installed."""

from __future__ import annotations

import logging
import os

import numpy as np

from lutfuse_ros.artifacts import Artifact
from lutfuse_ros.backends.base import InferenceBackend
from lutfuse_ros.errors import BackendError, ConfigError
from lutfuse_ros.families.mmlut.export_ops import DEFAULT_LUT_OP
from lutfuse_ros.export.onnx_export import load_or_export_onnx

#: ``execution_provider`` option -> ONNX Runtime provider name.
EXECUTION_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
#: Provider chain tried for each choice, best first; CPU always closes it.
_PROVIDER_CHAINS = {"cpu": ("cpu",), "cuda": ("cuda", "cpu"),
                    "tensorrt": ("tensorrt", "cuda", "cpu")}
GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")
#: Families whose default differs from "NCHWc layout on" (see the ``nchwc`` option).
_NCHWC_BY_FAMILY = {"mini": False}

_LOG = logging.getLogger(__name__)


class OnnxRuntimeBackend(InferenceBackend):
    """Runs the artifact's ONNX export with ONNX Runtime.

    Args:
        artifact: the model.
        device: ``cpu`` or ``cuda[:N]``.
        onnx_path: an ``.onnx`` file written by ``lutfuse export onnx``; its embedded weights
            hash must match ``artifact``. Without it the artifact is exported in memory at
            construction (nothing is written to disk).
        lut_op: LUT formulation of the in-memory export (``gridsample`` or ``gather``).
        threads: intra-op threads (None: ONNX Runtime's default, one per physical core).
        graph_optimization: ``disable``, ``basic``, ``extended`` or ``all`` (default).
        execution_provider: ``cpu``, ``cuda`` or ``tensorrt``; None picks ``cuda`` for a CUDA
            device and ``cpu`` otherwise. TensorRT is used only when asked for, because the
            provider builds engines at session start; give it ``trt_cache_dir`` to keep them.
            A provider this ONNX Runtime lacks falls back along tensorrt -> cuda -> cpu
            with a logged warning.
        trt_cache_dir: engine cache folder of the TensorRT execution provider.
        trt_fp16: let the TensorRT execution provider use FP16.
        nchwc: ONNX Runtime's blocked NCHWc conv layout (part of ``all``). None: on for the
            16-channel MM-LUT context network and the teacher, off for the 4-channel
            mini-model, where the layout reorders cost more than they save (measured).

    Raises:
        BackendError: onnxruntime missing, the ONNX file belongs to other weights, or the
            session cannot be created.
        ConfigError: invalid option values.
    """

    name = "onnxruntime"

    def __init__(self, artifact: Artifact, device: str = "cpu", onnx_path: str | None = None,
                 lut_op: str = DEFAULT_LUT_OP, threads: int | None = None,
                 graph_optimization: str = "all", execution_provider: str | None = None,
                 trt_cache_dir: str | None = None, trt_fp16: bool = False,
                 nchwc: bool | None = None, **options) -> None:
        super().__init__(artifact, device, onnx_path=onnx_path, lut_op=lut_op, threads=threads,
                         graph_optimization=graph_optimization,
                         execution_provider=execution_provider, nchwc=nchwc, **options)
        try:
            import onnxruntime
        except ImportError as error:
            raise BackendError(f"onnxruntime is not installed ({error}); pip install "
                               "onnxruntime (or onnxruntime-gpu)") from None
        self._ort = onnxruntime
        device_kind, device_id = _parse_device(device)
        choice = execution_provider or device_kind
        if choice not in EXECUTION_PROVIDERS:
            raise ConfigError(f"execution_provider must be one of "
                              f"{', '.join(EXECUTION_PROVIDERS)}, got {choice!r}")
        if choice != "cpu" and device_kind != "cuda":
            raise ConfigError(f"execution_provider {choice!r} needs a cuda device, got {device!r}")
        self.exported = load_or_export_onnx(artifact, onnx_path, lut_op)
        session_options = _session_options(onnxruntime, threads, graph_optimization)
        providers = self._providers(choice, device_id, trt_cache_dir, trt_fp16)
        if nchwc is None:
            nchwc = _NCHWC_BY_FAMILY.get(artifact.family, True)
        disabled = [] if nchwc else ["NchwcTransformer"]
        try:
            self.session = onnxruntime.InferenceSession(self.exported.data, session_options,
                                                        providers=providers,
                                                        disabled_optimizers=disabled)
        except Exception as error:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime could not load the {artifact.family} model: "
                               f"{error}") from None
        self.providers = tuple(self.session.get_providers())
        if providers[0][0] not in self.providers:
            _LOG.warning("onnxruntime: %s is installed but could not start (missing CUDA "
                         "libraries?); running on %s", providers[0][0],
                         ", ".join(self.providers))

    @classmethod
    def is_available(cls, device: str = "cpu") -> bool:
        try:
            import onnxruntime
        except ImportError:
            return False
        if not device.startswith("cuda"):
            return True
        gpu_providers = {EXECUTION_PROVIDERS["cuda"], EXECUTION_PROVIDERS["tensorrt"]}
        return bool(gpu_providers & set(onnxruntime.get_available_providers()))

    def _providers(self, choice: str, device_id: int, trt_cache_dir: str | None,
                   trt_fp16: bool) -> list:
        available = set(self._ort.get_available_providers())
        provider_options = {
            "cpu": {},
            "cuda": {"device_id": device_id},
            "tensorrt": {"device_id": device_id, "trt_fp16_enable": bool(trt_fp16),
                         **({"trt_engine_cache_enable": True,
                             "trt_engine_cache_path": os.fspath(trt_cache_dir)}
                            if trt_cache_dir else {})},
        }
        chain = []
        for name in _PROVIDER_CHAINS[choice]:
            provider = EXECUTION_PROVIDERS[name]
            if provider in available:
                chain.append((provider, provider_options[name]))
        if chain[0][0] != EXECUTION_PROVIDERS[choice]:
            _LOG.warning("onnxruntime: %s is not installed (available: %s); falling back to %s",
                         EXECUTION_PROVIDERS[choice], ", ".join(sorted(available)), chain[0][0])
        return chain

    def infer(self, visible_rgb: np.ndarray, infrared: np.ndarray) -> np.ndarray:
        try:
            fused = self.session.run(None, {"visible": visible_rgb, "infrared": infrared})[0]
        except Exception as error:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime failed on input {visible_rgb.shape}: "
                               f"{error}") from None
        return fused[0, 0]

    def describe(self) -> str:
        options = {k: v for k, v in sorted(self.options.items()) if v is not None}
        text = ", ".join(f"{k}={v}" for k, v in options.items())
        return f"{self.name} on {self.device} [{', '.join(self.providers)}] ({text})"

    def close(self) -> None:
        self.session = None


def _parse_device(device: str) -> tuple[str, int]:
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise ConfigError(f"onnxruntime device must be cpu or cuda[:N], got {device!r}")
    return kind, int(index or 0)


def _session_options(onnxruntime, threads: int | None, graph_optimization: str):
    levels = {
        "disable": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if graph_optimization not in levels:
        raise ConfigError(f"graph_optimization must be one of {', '.join(GRAPH_OPTIMIZATIONS)}, "
                          f"got {graph_optimization!r}")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = levels[graph_optimization]
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = threads or 0
    options.log_severity_level = 3
    return options
