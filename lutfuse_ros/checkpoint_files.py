"""Reading official checkpoints safely: the shared part of every family's importer.

Nothing is unpickled: ``.npy`` files are read with ``allow_pickle=False`` and PyTorch files
with ``torch.load(weights_only=True)``. Sizes are checked before anything is allocated, so a
corrupt or hostile file is refused with :class:`~lutfuse_ros.errors.ArtifactError` instead of
exhausting memory. The importers themselves live with their families
(``lutfuse_ros/families/<family>/importer.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from tokenize import TokenError

import numpy as np
import torch
from torch import nn

from lutfuse_ros.artifacts import MAX_ARCHITECTURE_INT
from lutfuse_ros.errors import ArtifactError


def summary(error: Exception) -> str:
    """``Type: first line of the message`` of a loader's exception."""
    return f"{type(error).__name__}: {next(iter(str(error).splitlines()), 'no details')}"


def load_npy(path: Path) -> np.ndarray:
    """A floating-point ``.npy`` array, memory-mapped, refused if damaged or non-finite."""
    if not path.is_file():
        raise ArtifactError(f"{path}: LUT file not found")
    try:  # memory-mapped: a header promising more data than the file holds fails here
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, MemoryError, SyntaxError, TokenError) as error:
        # a damaged header text reaches Python's literal parser (SyntaxError, TokenError)
        raise ArtifactError(f"{path}: not a readable .npy array ({summary(error)})") from None
    if not isinstance(array, np.ndarray):
        raise ArtifactError(f"{path}: not a single .npy array ({type(array).__name__})")
    if not np.issubdtype(array.dtype, np.floating):
        raise ArtifactError(f"{path}: LUT dtype must be floating point, got {array.dtype}")
    if not np.isfinite(array).all():
        raise ArtifactError(f"{path}: LUT holds NaN/inf values")
    return array


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A weights-only PyTorch state dict (``module.`` prefixes removed)."""
    if not path.is_file():
        raise ArtifactError(f"{path}: checkpoint file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or unsafe files
        raise ArtifactError(f"{path}: not a loadable weights-only PyTorch checkpoint "
                            f"({summary(error)})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ArtifactError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def shape_of(state: dict, key: str, path) -> tuple[int, ...]:
    """Shape of a layer weight whose first axis is a network width (checked to be sane)."""
    if key not in state:
        raise ArtifactError(f"{path}: checkpoint has no {key!r}; is it the right file? "
                            f"(keys: {', '.join(list(state)[:6])} ...)")
    shape = tuple(state[key].shape)
    if not shape or not 1 <= shape[0] <= MAX_ARCHITECTURE_INT:
        raise ArtifactError(f"{path}: {key!r} has shape {shape}; its first axis (a layer width) "
                            f"must be 1..{MAX_ARCHITECTURE_INT}")
    return shape


def built_to_fit(path, state: dict[str, torch.Tensor], build: Callable[[], nn.Module],
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


def load_into(module: nn.Module, state: dict, path) -> None:
    """Load ``state`` strictly into ``module``; refuse NaN/inf tensors."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = next(iter(str(error).splitlines()), "no details")
        raise ArtifactError(f"{path}: weights do not fit the expected network: "
                            f"{first_line}") from None
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise ArtifactError(f"{path}: tensor {name!r} holds NaN/inf values")


def fingerprints(*paths) -> dict[str, str]:
    return {Path(p).name: "sha256:" + hashlib.sha256(Path(p).read_bytes()).hexdigest()
            for p in paths}
