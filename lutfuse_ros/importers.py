"""Import the official LUT-Fuse and MMDRFuse checkpoints as lutfuse artifacts.

Nothing is unpickled: ``.npy`` files are read with ``allow_pickle=False`` and PyTorch files
with ``torch.load(weights_only=True)``. Sizes are checked before anything is allocated, so a
corrupt or hostile file is refused with :class:`~lutfuse_ros.errors.ArtifactError` instead of
exhausting memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from tokenize import TokenError

import numpy as np
import torch
from torch import nn

from lutfuse_ros.artifacts import MAX_ARCHITECTURE_INT, make_manifest
from lutfuse_ros.errors import ArtifactError
from lutfuse_ros.models import FusionTeacher, MiniFusionNet, MMLUT


def import_lutfuse(lut_path: str | Path, context_path: str | Path) -> tuple[MMLUT, dict]:
    """Build an MM-LUT from the official ``fine_tuned_lut.npy`` + ``generator_context.pth``.

    Args:
        lut_path: float32 ``(B, B, B, B[, 1])`` table, axes [luma, gradient, context, infrared].
        context_path: the context network's state dict.

    Returns:
        ``(model, manifest)`` ready for :func:`lutfuse_ros.artifacts.save_artifact`.
    """
    table = _load_npy(Path(lut_path))
    if table.ndim == 5 and table.shape[-1] == 1:
        table = table[..., 0]
    if table.ndim != 4 or len(set(table.shape)) != 1:
        raise ArtifactError(f"{lut_path}: LUT must be (B,B,B,B) or (B,B,B,B,1), got {table.shape}")
    if table.shape[0] < 2:
        raise ArtifactError(f"{lut_path}: LUT needs at least 2 bins per axis, got {table.shape}")
    state = _load_state_dict(Path(context_path))
    channels = _shape_of(state, "input_layer.0.weight", context_path)[0]
    blocks = sum(1 for key, value in state.items()
                 if key.startswith("mid_layer.") and key.endswith(".weight") and value.ndim == 4)
    if blocks > MAX_ARCHITECTURE_INT:
        raise ArtifactError(f"{context_path}: {blocks} context blocks; at most "
                            f"{MAX_ARCHITECTURE_INT} are supported (corrupt checkpoint?)")
    model = _built_to_fit(context_path, state, lambda: MMLUT(
        bins=table.shape[0], context_channels=channels, context_blocks=blocks),
        part=lambda lut: lut.context)
    _load_into(model.context, state, context_path)
    with torch.no_grad():
        model.lut.copy_(torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32)))
    manifest = make_manifest(
        model, name="lutfuse-official", output_mapping="none",
        description="Official LUT-Fuse (ICCV 2025) MM-LUT and context network, imported.",
        provenance={"source": "official LUT-Fuse checkpoint (MIT licence)",
                    "files": _fingerprints(lut_path, context_path)})
    return model.eval(), manifest


def import_mmdrfuse(student_path: str | Path) -> tuple[MiniFusionNet, dict]:
    """Build the 113-parameter mini-model from the official MMDRFuse ``student.model``."""
    state = _load_state_dict(Path(student_path))
    hidden = _shape_of(state, "conv1.1.weight", student_path)[0]
    model = _built_to_fit(student_path, state,
                          lambda: MiniFusionNet(hidden=hidden, quantise_input=True))
    _load_into(model, state, student_path)
    manifest = make_manifest(
        model, name="mmdrfuse-official", output_mapping="clamp",
        description="Official MMDRFuse (ACM MM 2024) student, imported; its official test "
                    "script min-max stretches each output (luma_mapping: minmax reproduces it).",
        provenance={"source": "official MMDRFuse student weights",
                    "files": _fingerprints(student_path)})
    return model.eval(), manifest


def import_mmdrfuse_teacher(teacher_path: str | Path) -> tuple[FusionTeacher, dict]:
    """Build the MMDRFuse teacher from the official ``teacher.model`` (for comparisons)."""
    state = _load_state_dict(Path(teacher_path))
    width = _shape_of(state, "conv1.1.weight", teacher_path)[0]
    model = _built_to_fit(teacher_path, state, lambda: FusionTeacher(width=width))
    _load_into(model, state, teacher_path)
    manifest = make_manifest(
        model, name="mmdrfuse-teacher-official", output_mapping="clamp",
        description="Official MMDRFuse teacher, imported.",
        provenance={"source": "official MMDRFuse teacher weights",
                    "files": _fingerprints(teacher_path)})
    return model.eval(), manifest


def _summary(error: Exception) -> str:
    """``Type: first line of the message`` of a loader's exception."""
    return f"{type(error).__name__}: {next(iter(str(error).splitlines()), 'no details')}"


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ArtifactError(f"{path}: LUT file not found")
    try:  # memory-mapped: a header promising more data than the file holds fails here
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, MemoryError, SyntaxError, TokenError) as error:
        # a damaged header text reaches Python's literal parser (SyntaxError, TokenError)
        raise ArtifactError(f"{path}: not a readable .npy array ({_summary(error)})") from None
    if not isinstance(array, np.ndarray):
        raise ArtifactError(f"{path}: not a single .npy array ({type(array).__name__})")
    if not np.issubdtype(array.dtype, np.floating):
        raise ArtifactError(f"{path}: LUT dtype must be floating point, got {array.dtype}")
    if not np.isfinite(array).all():
        raise ArtifactError(f"{path}: LUT holds NaN/inf values")
    return array


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ArtifactError(f"{path}: checkpoint file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or unsafe files
        raise ArtifactError(f"{path}: not a loadable weights-only PyTorch checkpoint "
                            f"({_summary(error)})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ArtifactError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _shape_of(state: dict, key: str, path) -> tuple[int, ...]:
    """Shape of a layer weight whose first axis is a network width (checked to be sane)."""
    if key not in state:
        raise ArtifactError(f"{path}: checkpoint has no {key!r}; is it the right file? "
                            f"(keys: {', '.join(list(state)[:6])} ...)")
    shape = tuple(state[key].shape)
    if not shape or not 1 <= shape[0] <= MAX_ARCHITECTURE_INT:
        raise ArtifactError(f"{path}: {key!r} has shape {shape}; its first axis (a layer width) "
                            f"must be 1..{MAX_ARCHITECTURE_INT}")
    return shape


def _built_to_fit(path, state: dict[str, torch.Tensor], build: Callable[[], nn.Module],
                  part: Callable[[nn.Module], nn.Module] = lambda model: model) -> nn.Module:
    """``build()``, once a meta-device copy (no memory) showed that ``state`` fills ``part``.

    ``state`` must fill ``part`` of the network exactly, so a checkpoint cannot make the
    importer allocate a network larger than the weights it holds.
    """
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in part(build()).state_dict().items()}
    except (ValueError, TypeError, RuntimeError) as error:
        raise ArtifactError(f"{path}: describes a network that cannot be built ({error})"
                            ) from None
    found = {k: tuple(v.shape) for k, v in state.items()}
    if found != expected:
        wrong = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
        raise ArtifactError(
            f"{path}: weights do not fit the expected network: missing "
            f"{sorted(expected.keys() - found.keys())[:6]}, unexpected "
            f"{sorted(found.keys() - expected.keys())[:6]}, wrong shape "
            f"{[(k, found[k], expected[k]) for k in wrong[:3]]}")
    return build()


def _load_into(module: nn.Module, state: dict, path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = next(iter(str(error).splitlines()), "no details")
        raise ArtifactError(f"{path}: weights do not fit the expected network: "
                            f"{first_line}") from None
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise ArtifactError(f"{path}: tensor {name!r} holds NaN/inf values")


def _fingerprints(*paths) -> dict[str, str]:
    return {Path(p).name: "sha256:" + hashlib.sha256(Path(p).read_bytes()).hexdigest()
            for p in paths}
