"""What the bag tools share: the error type, topic defaults, stamps and atomic bag outputs.

Nothing here imports rclpy: bags are written and read with ``rosbags`` (pure Python), so
``lutfuse make-bag`` works on a machine without ROS.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from lutfuse_ros.errors import InputError
from lutfuse_ros.stamps import NS_PER_S, ns_to_stamp, stamp_to_ns  # noqa: F401 (bag tools' names)

#: the ROS 2 type of every image topic the bag tools write (and replay publishes).
IMAGE_TYPE = "sensor_msgs/msg/Image"
#: the ROS 2 type of a compressed (JPEG/PNG) image topic, which training also reads.
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
#: every image type :class:`~lutfuse_ros.bag.reader.ImageBagReader` can read.
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)
#: default topic names of the bags ``lutfuse make-bag`` writes.
DEFAULT_VISIBLE_TOPIC = "/visible/image"
DEFAULT_THERMAL_TOPIC = "/thermal/image"
#: rosbag2 storage plugins (``--storage``).
STORAGE_IDS = ("sqlite3", "mcap")
#: rosbag2 metadata version written (8: Jazzy and later read it).
ROSBAG2_VERSION = 8
#: the two input streams.
VISIBLE, THERMAL = "visible", "thermal"


class BagError(InputError):
    """A bag is missing, truncated, corrupt, lacks a topic, or holds an unexpected type.

    Replay and training both read bags through :class:`~lutfuse_ros.bag.reader.ImageBagReader`
    and raise this one type (an :class:`~lutfuse_ros.errors.InputError`: bad input data).
    """


@lru_cache(maxsize=1)
def ros2_typestore() -> Any:
    """The ``rosbags`` type store of ROS 2 Kilted (message classes and CDR serialisers)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def cdr_header_stamp_ns(cdr: bytes | memoryview) -> int:
    """Header stamp of a CDR-serialised message whose first field is ``std_msgs/Header``.

    Reads only the 12 bytes after the encapsulation header, so a whole image never has to be
    deserialised to learn its stamp.

    Args:
        cdr: the serialised message (4-byte encapsulation header, then the fields).

    Returns:
        The stamp in nanoseconds.

    Raises:
        BagError: the data is shorter than a header or not CDR encapsulated.
    """
    if len(cdr) < 12:
        raise BagError(f"serialised message of {len(cdr)} bytes is too short to hold a header")
    kind = bytes(cdr[:2])
    if kind == b"\x00\x01":
        sec, nanosec = struct.unpack_from("<iI", cdr, 4)
    elif kind == b"\x00\x00":
        sec, nanosec = struct.unpack_from(">iI", cdr, 4)
    else:
        raise BagError(f"serialised message has encapsulation {kind.hex()}, expected plain CDR "
                       "(0001 little-endian or 0000 big-endian)")
    return stamp_to_ns(sec, nanosec)


def ensure_output_free(path: str | os.PathLike[str], force: bool) -> Path:
    """Refuse an existing output unless ``force``.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is false.
    """
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite it")
    return path


class AtomicOutputDir:
    """A directory (a rosbag2) built under a hidden temporary name, then renamed into place.

    :attr:`staging_path` does not exist yet (``rosbags`` creates it); it lies in a hidden
    ``.NAME.partial-*`` folder beside ``destination`` and has the destination's own name, so
    the storage file inside is named after it. :meth:`commit` moves the result to
    ``destination`` (an existing one is moved aside first and deleted only after the rename);
    :meth:`discard` deletes it. Used as a context manager, leaving the block normally commits
    and leaving it through an exception (Ctrl-C included) discards.

    Args:
        destination: final path of the directory.
        force: allow replacing an existing ``destination``.

    Raises:
        FileExistsError: ``destination`` exists and ``force`` is false (checked on creation
            and again on commit, in case it appeared meanwhile).
    """

    def __init__(self, destination: str | os.PathLike[str], force: bool) -> None:
        self.destination = ensure_output_free(destination, force)
        self.force = force
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        self._staging_root: Path | None = Path(tempfile.mkdtemp(
            prefix=f".{self.destination.name}.partial-", dir=self.destination.parent))
        self.staging_path = self._staging_root / self.destination.name

    def commit(self) -> Path:
        """Move the staged directory to :attr:`destination`; returns it."""
        if self._staging_root is None:
            raise BagError(f"output {self.destination} was already committed or discarded")
        try:
            ensure_output_free(self.destination, self.force)
            if not self.staging_path.exists():
                raise BagError(f"nothing was written for {self.destination}")
            if self.destination.exists():
                self.destination.rename(self._staging_root / f"{self.destination.name}.replaced")
            self.staging_path.rename(self.destination)
        finally:
            self.discard()
        return self.destination

    def discard(self) -> None:
        """Delete the staging folder and whatever is in it (idempotent)."""
        root, self._staging_root = self._staging_root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> AtomicOutputDir:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> bool:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False
