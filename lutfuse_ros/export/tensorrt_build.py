"""Building TensorRT engines from lutfuse ONNX exports (needs TensorRT and a CUDA GPU).

TensorRT is imported only inside these functions, so the package imports without it. The
same code serves TensorRT 8.6 (explicit-batch network flag) and 10.x (explicit batch is the
only mode); both expose the named-tensor API the backend runs with.
"""

from __future__ import annotations

import logging

from lutfuse_ros.errors import BackendError
from lutfuse_ros.export.engine_cache import PRECISIONS, EngineKey, ProfileShapes
from lutfuse_ros.export.onnx_export import INPUT_NAMES, ExportedOnnx
from lutfuse_ros.export.tensorrt_ops import tensorrt_problems

#: Oldest TensorRT with set_input_shape / set_tensor_address / execute_async_v3.
MIN_TENSORRT = (8, 5)
_INPUT_CHANNELS = {"visible": 3, "infrared": 1}
_LOG = logging.getLogger(__name__)


def import_tensorrt():
    """Import the ``tensorrt`` module or explain how to get it.

    Raises:
        BackendError: TensorRT is missing or older than 8.5.
    """
    try:
        import tensorrt
    except ImportError as error:
        raise BackendError(
            f"TensorRT is not installed here ({error}); on Jetson it comes with JetPack "
            "(python3-libnvinfer), on x86-64 from NVIDIA's package index "
            "(pip install tensorrt)") from None
    if tensorrt_version_tuple(tensorrt.__version__) < MIN_TENSORRT:
        raise BackendError(f"TensorRT {tensorrt.__version__} is too old: lutfuse needs 8.6 or "
                           "10.x (the named-tensor execution API)")
    return tensorrt


def tensorrt_version_tuple(version: str) -> tuple[int, int]:
    """``"10.3.0.26"`` -> ``(10, 3)``."""
    parts = (version.split(".") + ["0"])[:2]
    return int(parts[0]), int(parts[1]) if parts[1].isdigit() else 0


def ensure_tensorrt_compatible(exported: ExportedOnnx) -> None:
    """Raise unless the graph passes the TensorRT allow-list (no TensorRT needed).

    Raises:
        BackendError: listing every operator or tensor TensorRT would not import natively.
    """
    import onnx

    problems = tensorrt_problems(onnx.load_from_string(exported.data))
    if problems:
        raise BackendError(f"the ONNX model of {exported.name!r} ({exported.family}) uses "
                           f"operators TensorRT does not import natively: {'; '.join(problems)}")


def cuda_device_identity(device: str) -> tuple[int, str, str]:
    """``(index, GPU name, compute capability "M.m")`` of a ``cuda[:N]`` device.

    Raises:
        BackendError: PyTorch with CUDA is not available, or the device does not exist.
    """
    try:
        import torch
    except ImportError:
        raise BackendError("the TensorRT backend uses PyTorch CUDA tensors for its buffers; "
                           "install PyTorch with CUDA") from None
    if not torch.cuda.is_available():
        raise BackendError(f"device {device!r} requested but CUDA is not available here")
    try:
        index = torch.device(device).index or 0
    except RuntimeError as error:
        raise BackendError(f"invalid CUDA device {device!r}: {error}") from None
    if index >= torch.cuda.device_count():
        raise BackendError(f"CUDA device {index} does not exist "
                           f"({torch.cuda.device_count()} visible)")
    major, minor = torch.cuda.get_device_capability(index)
    return index, torch.cuda.get_device_name(index), f"{major}.{minor}"


def current_engine_key(exported: ExportedOnnx, precision: str, device: str = "cuda",
                       ) -> EngineKey:
    """The key an engine for ``exported`` must have on this machine's TensorRT and GPU."""
    if precision not in PRECISIONS:
        raise BackendError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    tensorrt = import_tensorrt()
    _, gpu_name, capability = cuda_device_identity(device)
    return EngineKey(tensorrt_version=tensorrt.__version__, gpu_name=gpu_name,
                     compute_capability=capability, onnx_sha256=exported.sha256,
                     precision=precision)


def build_engine(exported: ExportedOnnx, precision: str, profile: ProfileShapes,
                 workspace_mb: int, device: str = "cuda") -> bytes:
    """Build a serialised engine.

    In FP16 engines only the layers under the export's FP16 scopes (the MM-LUT context
    network, the teacher's convolutions) may run in FP16; features, look-up coordinates,
    the table look-up and 8-bit rounding are pinned to FP32, because FP16 cannot hold a
    lattice coordinate to a useful fraction of a bin.

    Args:
        exported: the ONNX model.
        precision: ``fp16`` or ``fp32``.
        profile: image sizes the engine must accept.
        workspace_mb: builder workspace limit in MiB.
        device: ``cuda[:N]``.

    Returns:
        The serialised engine.

    Raises:
        BackendError: the graph uses operators outside the TensorRT allow-list, TensorRT is
            missing, the graph does not parse, or the build fails.
    """
    import torch

    ensure_tensorrt_compatible(exported)
    tensorrt = import_tensorrt()
    index, _, _ = cuda_device_identity(device)
    logger = tensorrt.Logger(tensorrt.Logger.WARNING)
    tensorrt.init_libnvinfer_plugins(logger, "")
    builder = tensorrt.Builder(logger)
    explicit_batch = 0
    if tensorrt_version_tuple(tensorrt.__version__) < (10, 0):
        explicit_batch = 1 << int(tensorrt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(explicit_batch)
    parser = tensorrt.OnnxParser(network, logger)
    native_instance_norm = getattr(getattr(tensorrt, "OnnxParserFlag", None),
                                   "NATIVE_INSTANCENORM", None)
    if native_instance_norm is not None:  # 8.6 defaults to a plugin; 10.x is native already
        parser.set_flag(native_instance_norm)
    if not parser.parse(exported.data):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT could not parse the ONNX model of {exported.name!r}: "
                           f"{errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(tensorrt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if precision == "fp16":
        config.set_flag(tensorrt.BuilderFlag.FP16)
        config.set_flag(tensorrt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        pinned = pin_fp32_outside(network, exported.fp16_scopes, tensorrt)
        _LOG.info("FP16 engine: %d layers pinned to FP32", pinned)
    optimisation_profile = builder.create_optimization_profile()
    for name in INPUT_NAMES:
        optimisation_profile.set_shape(name, *profile.input_shapes(_INPUT_CHANNELS[name]))
    config.add_optimization_profile(optimisation_profile)
    with torch.cuda.device(index):
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine for {exported.name!r} "
                           f"({precision}, {profile.describe()}); see the TensorRT log above")
    return bytes(serialized)


def pin_fp32_outside(network, fp16_scopes: tuple[str, ...], tensorrt) -> int:
    """Constrain every floating-point layer not under an FP16 scope to FP32.

    Returns:
        The number of layers pinned.
    """
    floating = (tensorrt.float32, tensorrt.float16)
    pinned = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if any(scope in layer.name for scope in fp16_scopes):
            continue
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if not outputs or any(out.dtype not in floating for out in outputs):
            continue
        layer.precision = tensorrt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, tensorrt.float32)
        pinned += 1
    return pinned
