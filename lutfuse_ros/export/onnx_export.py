"""ONNX export of lutfuse artifacts: opset 17, dynamic height and width, manifest inside.

The exported graph has two inputs and one output, batch fixed at 1:

* ``visible``: ``(1, 3, H, W)`` float32 RGB on [0, 1];
* ``infrared``: ``(1, 1, H, W)`` float32 on [0, 1];
* ``fused_luma``: ``(1, 1, H, W)`` float32 raw fused luminance (before the artifact's output
  mapping), exactly what :meth:`lutfuse_ros.backends.InferenceBackend.infer` returns.

The artifact manifest travels in ``metadata_props`` under ``lutfuse_manifest`` together with
a sha256 of the artifact's weights, so a runtime can tell whether an ``.onnx`` file still
belongs to the artifact it is asked to run. Only operators that TensorRT 8.6 and 10.x import
natively are used (see :mod:`lutfuse_ros.export.tensorrt_ops`): reflection padding becomes
slices and a concat, the 4-D LUT a folded rank-4 GridSample or a Gather
(:mod:`lutfuse_ros.families.mmlut.export_ops`).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lutfuse_ros.artifacts import MANIFEST_KEY, Artifact, shipped_models_dir
from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.errors import ArtifactError, BackendError, ConfigError
from lutfuse_ros.families import MODEL_FAMILIES
from lutfuse_ros.families.mmlut.export_ops import DEFAULT_LUT_OP, LUT_OPS, make_lookup

OPSET = 17
INPUT_NAMES = ("visible", "infrared")
OUTPUT_NAME = "fused_luma"
ONNX_FORMAT = "lutfuse-onnx/1"

#: metadata_props keys written beside :data:`lutfuse_ros.artifacts.MANIFEST_KEY`.
FORMAT_KEY = "lutfuse_format"
WEIGHTS_KEY = "lutfuse_weights_sha256"
LUT_OP_KEY = "lutfuse_lut_op"
FP16_SCOPES_KEY = "lutfuse_fp16_scopes"
INTEGRITY_KEY = "lutfuse_integrity_sha256"

#: Size of the tracing example; the exported graph accepts any height and width >= 2.
_TRACE_SIZE = (48, 64)


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 of an artifact's weights, independent of file layout and manifest.

    Hashes, in sorted key order, each tensor's name, dtype, shape and raw little-endian bytes.

    Args:
        state_dict: name -> tensor.

    Returns:
        64 hex digits.
    """
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def onnx_integrity_sha256(model) -> str:
    """sha256 over an ONNX model's graph (nodes and weights) and its lutfuse metadata.

    Written at export under :data:`INTEGRITY_KEY` and checked by :func:`parse_onnx`, so a
    damaged file (a flipped weight bit included) is refused instead of fusing wrongly.

    Args:
        model: an ``onnx.ModelProto``.

    Returns:
        64 hex digits.
    """
    digest = hashlib.sha256(model.graph.SerializeToString(deterministic=True))
    for entry in sorted(model.metadata_props, key=lambda item: item.key):
        if entry.key != INTEGRITY_KEY:
            digest.update(f"|{entry.key}={entry.value}".encode())
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """sha256 hex digest of a byte string (the ONNX hash that keys TensorRT engines)."""
    return hashlib.sha256(data).hexdigest()


def artifact_reference(artifact: Artifact) -> str:
    """How a command line names this artifact: the shipped name, else its path."""
    if artifact.path is None:
        return artifact.name
    path = Path(artifact.path).resolve()
    if path.parent == shipped_models_dir().resolve():
        return path.stem
    return str(path)


def fp16_scopes(family: str) -> tuple[str, ...]:
    """ONNX node-name prefixes whose layers may run in FP16 in a TensorRT FP16 engine.

    Everything else (luminance, Sobel features, look-up coordinates, the table look-up,
    8-bit input rounding) stays FP32: FP16 has 0.125 resolution near 255 and would move
    look-up coordinates by whole fractions of a bin.
    """
    registered = MODEL_FAMILIES.get(family)
    return registered.fp16_scopes if registered is not None else ()


class SliceReflectPad(nn.Module):
    """Reflection padding as slices and a concat (exports without dynamic Pad shapes).

    Args:
        padding: ``(left, right, top, bottom)`` as in :class:`torch.nn.ReflectionPad2d`.
    """

    def __init__(self, padding: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.padding = tuple(int(p) for p in padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad ``(N, C, H, W)`` by mirroring without repeating the edge row/column."""
        left, right, top, bottom = self.padding
        x = self._pad_axis(x, 2, top, bottom)
        return self._pad_axis(x, 3, left, right)

    @staticmethod
    def _pad_axis(x: torch.Tensor, axis: int, before: int, after: int) -> torch.Tensor:
        if not before and not after:
            return x

        def take(start: int, stop: int | None) -> torch.Tensor:
            return x[(slice(None),) * axis + (slice(start, stop),)]

        # Constant (negative) slice bounds keep the graph free of shape arithmetic.
        head = [take(i, i + 1) for i in range(before, 0, -1)]
        tail = [take(-1 - i, -i) for i in range(1, after + 1)]
        return torch.cat([*head, x, *tail], dim=axis)


class ExportGraph(nn.Module):
    """The graph that is traced: the artifact's model with export-friendly pieces.

    Args:
        model: the artifact's model in eval mode (copied; the original is not modified).
        lut_op: LUT formulation for MM-LUT models (see :data:`LUT_OPS`); ignored otherwise.
    """

    def __init__(self, model: nn.Module, lut_op: str = DEFAULT_LUT_OP) -> None:
        super().__init__()
        self.model = _with_slice_padding(copy.deepcopy(model).eval())
        self.lookup = None
        if hasattr(self.model, "lattice_coordinates"):
            self.lookup = make_lookup(self.model.lut.detach(), lut_op)

    def forward(self, visible: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """``(1,3,H,W)`` RGB and ``(1,1,H,W)`` infrared on [0, 1] -> ``(1,1,H,W)`` luminance."""
        if self.lookup is None:
            return self.model(visible, infrared)
        return self.lookup(self.model.lattice_coordinates(visible, infrared))


def _with_slice_padding(model: nn.Module) -> nn.Module:
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.ReflectionPad2d):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, SliceReflectPad(module.padding))
    return model


@dataclass(frozen=True)
class ExportedOnnx:
    """A lutfuse ONNX model in memory.

    Attributes:
        data: the serialised ModelProto.
        sha256: sha256 of ``data``.
        manifest: the embedded artifact manifest.
        weights_sha256: the embedded :func:`weights_sha256` of the source artifact.
        lut_op: the LUT formulation (``gridsample``, ``gather``; empty for other families).
        fp16_scopes: see :func:`fp16_scopes`.
        path: the file it was read from, if any.
    """

    data: bytes
    sha256: str
    manifest: dict
    weights_sha256: str
    lut_op: str
    fp16_scopes: tuple[str, ...]
    path: Path | None = None

    @property
    def family(self) -> str:
        """Model family of the embedded manifest."""
        return self.manifest.get("family", "")

    @property
    def name(self) -> str:
        """Name of the source artifact."""
        return self.manifest.get("name") or (self.path.stem if self.path else self.family)


def export_onnx(artifact: Artifact, lut_op: str = DEFAULT_LUT_OP) -> ExportedOnnx:
    """Export an artifact to ONNX in memory (no file is written).

    Args:
        artifact: the loaded artifact.
        lut_op: ``gather`` (default) or ``gridsample`` (see
            :mod:`lutfuse_ros.families.mmlut.export_ops`); used by MM-LUT models only.

    Returns:
        The exported model; its bytes are deterministic for a given artifact, lut_op and
        PyTorch version.

    Raises:
        ConfigError: unknown ``lut_op``.
    """
    import onnx

    if lut_op not in LUT_OPS:
        raise ConfigError(f"lut_op must be one of {', '.join(LUT_OPS)}, got {lut_op!r}")
    graph = ExportGraph(artifact.build_model(), lut_op).eval()
    height, width = _TRACE_SIZE
    example = (torch.rand(1, 3, height, width), torch.rand(1, 1, height, width))
    dims = {2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, example, buffer, input_names=list(INPUT_NAMES),
                          output_names=[OUTPUT_NAME], opset_version=OPSET, dynamo=False,
                          do_constant_folding=True,
                          dynamic_axes={name: dims for name in (*INPUT_NAMES, OUTPUT_NAME)})
    model = onnx.load_from_string(buffer.getvalue())
    _inline_identity_constants(model)
    _pin_output_batch_and_channel(model)
    family = artifact.family
    used_lut_op = lut_op if graph.lookup is not None else ""
    metadata = {
        FORMAT_KEY: ONNX_FORMAT,
        MANIFEST_KEY: json.dumps(artifact.manifest, sort_keys=True),
        WEIGHTS_KEY: weights_sha256(artifact.state_dict),
        LUT_OP_KEY: used_lut_op,
        FP16_SCOPES_KEY: json.dumps(list(fp16_scopes(family))),
    }
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    model.metadata_props.add(key=INTEGRITY_KEY, value=onnx_integrity_sha256(model))
    model.producer_name = "lutfuse_ros"
    model.doc_string = str(artifact.manifest.get("description", ""))
    onnx.checker.check_model(model)
    data = model.SerializeToString(deterministic=True)
    return ExportedOnnx(data=data, sha256=bytes_sha256(data), manifest=artifact.manifest,
                        weights_sha256=metadata[WEIGHTS_KEY], lut_op=used_lut_op,
                        fp16_scopes=fp16_scopes(family))


def _pin_output_batch_and_channel(model) -> None:
    """Declare the output ``(1, 1, height, width)``.

    Behind a Resize (reduced-resolution context) the tracer leaves the batch and channel
    dimensions symbolic.
    """
    for output in model.graph.output:
        for dim in output.type.tensor_type.shape.dim[:2]:
            if not dim.HasField("dim_value"):
                dim.ClearField("dim_param")
                dim.dim_value = 1


def _inline_identity_constants(model) -> None:
    """Replace ``Identity(initializer)`` nodes by a copy of the initializer.

    The TorchScript exporter deduplicates equal weights (e.g. the unit InstanceNorm scales of
    an untrained model) through Identity nodes; TensorRT wants Conv and InstanceNormalization
    weights to be initializers themselves.
    """
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    for node in [n for n in graph.node if n.op_type == "Identity" and n.input[0] in initializers]:
        copy_of = graph.initializer.add()
        copy_of.CopyFrom(initializers[node.input[0]])
        copy_of.name = node.output[0]
        graph.node.remove(node)


def parse_onnx(data: bytes, path: Path | None = None) -> ExportedOnnx:
    """Read the lutfuse metadata of serialised ONNX bytes.

    Raises:
        ArtifactError: not an ONNX model, or one that lutfuse did not export.
    """
    import onnx

    where = str(path) if path else "ONNX data"
    try:
        model = onnx.load_from_string(data)
    except Exception as error:  # protobuf raises its own DecodeError types
        raise ArtifactError(f"{where}: not a readable ONNX model ({error})") from None
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    if metadata.get(FORMAT_KEY) != ONNX_FORMAT or MANIFEST_KEY not in metadata:
        raise ArtifactError(f"{where}: ONNX model was not exported by 'lutfuse export onnx' "
                            f"(no {FORMAT_KEY}={ONNX_FORMAT} / {MANIFEST_KEY} metadata)")
    if INTEGRITY_KEY in metadata and metadata[INTEGRITY_KEY] != onnx_integrity_sha256(model):
        raise ArtifactError(f"{where}: damaged ONNX model (its graph, weights or metadata no "
                            "longer match the integrity hash written at export); export it "
                            "again with 'lutfuse export onnx'")
    try:
        manifest = json.loads(metadata[MANIFEST_KEY])
        scopes = tuple(json.loads(metadata.get(FP16_SCOPES_KEY, "[]")))
    except (ValueError, TypeError) as error:  # also UnicodeDecodeError of damaged bytes
        raise ArtifactError(f"{where}: lutfuse metadata is not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{where}: lutfuse manifest is not a JSON object")
    return ExportedOnnx(data=data, sha256=bytes_sha256(data), manifest=manifest,
                        weights_sha256=metadata.get(WEIGHTS_KEY, ""),
                        lut_op=metadata.get(LUT_OP_KEY, ""), fp16_scopes=scopes, path=path)


def load_onnx(path: str | os.PathLike) -> ExportedOnnx:
    """Read a lutfuse ``.onnx`` file.

    Raises:
        ArtifactError: missing, unreadable or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"ONNX model {path} not found")
    return parse_onnx(path.read_bytes(), path)


def check_onnx_matches(exported: ExportedOnnx, artifact: Artifact) -> None:
    """Raise unless an exported model was made from exactly this artifact's weights.

    Raises:
        BackendError: other weights or another family; the message names the
            ``lutfuse export onnx`` command that re-exports it.
    """
    expected = weights_sha256(artifact.state_dict)
    if exported.weights_sha256 == expected and exported.family == artifact.family:
        return
    where = exported.path or "the ONNX model"
    command = (f"lutfuse export onnx {artifact_reference(artifact)} "
               f"-o {exported.path or 'MODEL.onnx'} --force")
    raise BackendError(
        f"{where} does not belong to artifact {artifact.name!r}: it was exported from "
        f"{exported.name!r} ({exported.family}, weights sha256 {exported.weights_sha256[:12]}), "
        f"the artifact is {artifact.family} with weights sha256 {expected[:12]}; re-export it "
        f"with: {command}")


def load_or_export_onnx(artifact: Artifact, onnx_path: str | os.PathLike | None,
                        lut_op: str = DEFAULT_LUT_OP) -> ExportedOnnx:
    """The artifact's ONNX model: read from ``onnx_path`` and checked, or exported in memory.

    Raises:
        BackendError: the file is missing, unreadable, foreign or made from other weights;
            the message names the ``lutfuse export onnx`` command that (re)creates it.
    """
    if onnx_path is None:
        return export_onnx(artifact, lut_op)
    try:
        exported = load_onnx(onnx_path)
    except ArtifactError as error:
        raise BackendError(f"{error}; export it with: lutfuse export onnx "
                           f"{artifact_reference(artifact)} -o {onnx_path}") from None
    check_onnx_matches(exported, artifact)
    return exported


def write_onnx(exported: ExportedOnnx, path: str | os.PathLike, force: bool = False) -> Path:
    """Write an exported model atomically (temporary file + rename).

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False.
    """
    with atomic_output(path, overwrite=force) as temporary:
        temporary.write_bytes(exported.data)
    return Path(path)


__all__ = ["ExportedOnnx", "INPUT_NAMES", "OPSET", "OUTPUT_NAME", "artifact_reference",
           "bytes_sha256", "check_onnx_matches", "export_onnx", "load_onnx", "load_or_export_onnx",
           "parse_onnx",
           "weights_sha256", "write_onnx"]
