"""Checkpoints: everything needed to resume a run, written atomically."""

from __future__ import annotations

from pathlib import Path

import torch

from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.errors import ConfigError

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` through a temporary file and a rename.

    An interruption during the write leaves the previous checkpoint intact.
    """
    with atomic_output(path, overwrite=True) as temporary:
        torch.save({"version": CHECKPOINT_VERSION, **state}, temporary)


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (weights-only unpickling).

    Raises:
        ConfigError: unreadable file or another checkpoint version.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for corrupt files
        first_line = next(iter(str(error).splitlines()), "no details")
        raise ConfigError(f"cannot read checkpoint {path}: {type(error).__name__}: "
                          f"{first_line} (truncated or corrupt?)") from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ConfigError(f"{path} is not a lutfuse training checkpoint of version "
                          f"{CHECKPOINT_VERSION}")
    return state
