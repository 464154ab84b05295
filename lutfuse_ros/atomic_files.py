"""Write outputs so that nothing the user had is lost: temp file beside the target + rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lutfuse_ros.errors import ConfigError


def refuse_existing(path: str | os.PathLike, overwrite: bool) -> Path:
    """Return ``path`` as a Path, raising FileExistsError if it exists and ``overwrite`` is off."""
    destination = Path(path)
    if destination.exists() and not overwrite:
        raise FileExistsError(f"{destination} exists; pass --force to overwrite it")
    return destination


def path_inside(folder: str | os.PathLike, name: str) -> Path:
    r"""``folder / name`` for a file name that comes from data or configuration.

    Names derived from input files, topics, labels or manifests must stay inside the output
    folder the user chose: ``name`` must be one plain file name, not a path.

    Args:
        folder: the output folder.
        name: the file name to create in it.

    Returns:
        ``Path(folder) / name``.

    Raises:
        ConfigError: ``name`` is empty, ``.`` or ``..``, holds a path separator (``/`` or
            ``\``) or a NUL byte, or is absolute; the message names it and the folder.
    """
    text = str(name)
    plain = text not in ("", ".", "..") and not any(c in text for c in ("/", "\\", "\0"))
    if not plain:
        raise ConfigError(f"refusing to write {text!r} in {folder}: an output name must be a "
                          "plain file name (no '/', '\\', '..' or absolute path)")
    return Path(folder) / text


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Give a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    An exception (or an interrupt) inside the block removes the temporary file and leaves any
    previous ``path`` untouched. The temporary name keeps the destination's suffix, so
    writers that pick a format by extension (OpenCV, safetensors) work unchanged.

    Args:
        path: the final destination.
        overwrite: replace an existing destination (otherwise FileExistsError up front).

    Yields:
        The temporary path to write.
    """
    destination = refuse_existing(path, overwrite)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.stem}.", suffix=destination.suffix
                                         or ".part", dir=destination.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        if destination.exists() and not overwrite:
            raise FileExistsError(f"{destination} appeared while writing; not replaced")
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
