"""Writing ``sensor_msgs/msg/Image`` topics into a rosbag2 (sqlite3 or mcap) with ``rosbags``.

:class:`ImageBagWriter` owns one rosbag2 being written. It builds the output under a hidden
temporary name and renames it into place on :meth:`ImageBagWriter.close`, so an interrupted
run leaves nothing at the destination; :meth:`ImageBagWriter.abort` discards it.

Messages are either numpy images (:meth:`ImageBagWriter.write_image`, serialised here with the
``rosbags`` CDR serialiser) or data that is already CDR (:meth:`ImageBagWriter.write_cdr`, as
received from ``rclpy`` with ``raw=True``); both serialisations are byte-compatible with
``rclpy.serialization``.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from lutfuse_ros.bag.common import (
    IMAGE_TYPE,
    ROSBAG2_VERSION,
    STORAGE_IDS,
    BagError,
    AtomicOutputDir,
    ensure_output_free,
    ns_to_stamp,
    ros2_typestore,
)
from lutfuse_ros.errors import ConfigError

#: encodings :meth:`ImageBagWriter.write_image` writes -> (dtype, channels).
WRITABLE_ENCODINGS = MappingProxyType({
    "bgr8": (np.dtype(np.uint8), 3),
    "rgb8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
})


def image_cdr(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> bytes:
    """Serialise an image as a ROS 2 ``sensor_msgs/msg/Image`` in little-endian CDR.

    Args:
        array: ``(H, W, 3)`` uint8 for ``bgr8``/``rgb8`` (already in that channel order),
            ``(H, W)`` uint8 for ``mono8`` or ``(H, W)`` uint16 for ``mono16``.
        encoding: one of :data:`WRITABLE_ENCODINGS`.
        stamp_ns: header stamp, nanoseconds since the epoch (>= 0).
        frame_id: header frame id.

    Returns:
        The serialised message: tightly packed rows (``step = W * channels * bytes``),
        little-endian 16-bit data (``is_bigendian = 0``).

    Raises:
        ConfigError: unknown encoding.
        BagError: the array does not match the encoding or the stamp is negative.
    """
    layout = WRITABLE_ENCODINGS.get(encoding)
    if layout is None:
        raise ConfigError(f"cannot write encoding {encoding!r}; choose one of "
                          f"{', '.join(WRITABLE_ENCODINGS)}")
    dtype, channels = layout
    expected_ndim = 2 if channels == 1 else 3
    if (array.dtype != dtype or array.ndim != expected_ndim
            or (channels > 1 and array.shape[2] != channels) or 0 in array.shape):
        shape = "(H, W)" if channels == 1 else f"(H, W, {channels})"
        raise BagError(f"{encoding} needs a non-empty {dtype.name} array of shape {shape}, got "
                       f"{array.dtype.name} {array.shape}")
    if stamp_ns < 0:
        raise BagError(f"image stamp {stamp_ns} ns is negative (before the epoch)")
    store = ros2_typestore()
    types = store.types
    sec, nanosec = ns_to_stamp(stamp_ns)
    height, width = array.shape[:2]
    data = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<"))
    message = types[IMAGE_TYPE](
        header=types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
            frame_id=frame_id),
        height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * channels * dtype.itemsize,
        data=data.reshape(-1).view(np.uint8))
    return bytes(store.serialize_cdr(message, IMAGE_TYPE))


class ImageBagWriter:
    """A rosbag2 of image topics, written atomically.

    Use as a context manager: leaving the block normally finalises the bag (metadata written,
    renamed to ``path``); leaving it through an exception (Ctrl-C included) discards it.

    Args:
        path: destination directory of the rosbag2.
        storage: ``sqlite3`` or ``mcap``.
        force: replace an existing ``path``.

    Raises:
        ConfigError: unknown storage.
        FileExistsError: ``path`` exists and ``force`` is false.
    """

    def __init__(self, path: str | os.PathLike[str], storage: str = "sqlite3",
                 force: bool = False) -> None:
        if storage not in STORAGE_IDS:
            raise ConfigError(f"unknown rosbag2 storage {storage!r}; choose one of "
                              f"{', '.join(STORAGE_IDS)}")
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        self.storage = storage
        self._output = AtomicOutputDir(self.path, force)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        try:
            self._writer = Writer(self._output.staging_path, version=ROSBAG2_VERSION,
                                  storage_plugin=plugin)
            self._writer.open()
        except BaseException:
            self._output.discard()
            raise
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self._closed = False

    def add_image_topic(self, topic: str) -> None:
        """Declare an image topic (idempotent)."""
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(
                topic, IMAGE_TYPE, typestore=ros2_typestore())
            self.counts[topic] = 0

    def write_cdr(self, topic: str, log_ns: int, cdr: bytes | memoryview) -> None:
        """Append an already serialised ``sensor_msgs/msg/Image``.

        Args:
            topic: an image topic (declared on first use).
            log_ns: the bag's receive timestamp of the message (ns since the epoch).
            cdr: ROS 2 CDR serialisation of the message.
        """
        self.add_image_topic(topic)
        self._writer.write(self._connections[topic], int(log_ns), cdr)
        self.counts[topic] += 1

    def write_image(self, topic: str, array: np.ndarray, encoding: str, stamp_ns: int,
                    frame_id: str, log_ns: int | None = None) -> None:
        """Serialise an image (see :func:`image_cdr`) and append it.

        Args:
            topic: an image topic (declared on first use).
            array: the image in the layout of ``encoding``.
            encoding: ``bgr8``, ``rgb8``, ``mono8`` or ``mono16``.
            stamp_ns: header stamp (ns since the epoch).
            frame_id: header frame id.
            log_ns: bag timestamp; the header stamp when ``None`` (a lossless recording).
        """
        cdr = image_cdr(array, encoding, stamp_ns, frame_id)
        self.write_cdr(topic, stamp_ns if log_ns is None else log_ns, cdr)

    def close(self) -> Path:
        """Finalise the bag and move it to :attr:`path`; returns that path."""
        if not self._closed:
            self._closed = True
            try:
                self._writer.close()
            except BaseException:
                self._output.discard()
                raise
            self._output.commit()
        return self.path

    def abort(self) -> None:
        """Discard everything written; nothing is left at :attr:`path`."""
        if not self._closed:
            self._closed = True
            try:
                self._writer.abort()
            finally:
                self._output.discard()

    def __enter__(self) -> ImageBagWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class ThreadedBagWriter:
    """An :class:`ImageBagWriter` owned by a thread of its own, fed through a queue.

    SQLite objects may only be used by the thread that created them, and ROS callbacks run on
    executor threads: :meth:`put` may be called from any thread, while opening, writing and
    finalising all happen on the writer thread. Errors of that thread are re-raised by
    :meth:`close`.

    Args:
        path: destination directory of the rosbag2.
        storage: ``sqlite3`` or ``mcap``.
        force: replace an existing ``path``.
        topics: image topics to declare up front (so an empty recording still lists them).

    Raises:
        FileExistsError: ``path`` exists and ``force`` is false.
        ConfigError: unknown storage.
    """

    def __init__(self, path: str | os.PathLike[str], storage: str, force: bool,
                 topics: tuple[str, ...] = ()) -> None:
        ensure_output_free(path, force)
        if storage not in STORAGE_IDS:
            raise ConfigError(f"unknown rosbag2 storage {storage!r}; choose one of "
                              f"{', '.join(STORAGE_IDS)}")
        self.path = Path(path)
        self._queue: queue.SimpleQueue[tuple[str, int, bytes] | bool] = queue.SimpleQueue()
        self._opened = threading.Event()
        self._error: BaseException | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._run, args=(storage, force, topics),
                                        name="lutfuse-bag-writer", daemon=True)
        self._thread.start()
        self._opened.wait()
        if self._error is not None:
            raise self._error

    def _run(self, storage: str, force: bool, topics: tuple[str, ...]) -> None:
        try:
            writer = ImageBagWriter(self.path, storage, force)
            for topic in topics:
                writer.add_image_topic(topic)
        except BaseException as error:  # handed to the creating thread
            self._error = error
            self._opened.set()
            return
        self._opened.set()
        try:
            while True:
                item = self._queue.get()
                if isinstance(item, bool):
                    break
                writer.write_cdr(*item)
                self.written += 1
        except BaseException as error:
            self._error = error
            item = False
        if item:
            try:
                writer.close()
            except BaseException as error:
                self._error = error
        else:
            writer.abort()

    @property
    def error(self) -> BaseException | None:
        """What made the writer thread fail, if it did (later puts are then ignored)."""
        return self._error

    def put(self, topic: str, log_ns: int, cdr: bytes) -> None:
        """Queue a serialised Image for writing (any thread)."""
        if self._error is None:
            self._queue.put((topic, int(log_ns), cdr))

    def close(self) -> Path:
        """Write what is queued, finalise the bag and move it into place; returns its path.

        Raises:
            Exception: whatever failed on the writer thread (the bag is then discarded).
        """
        self._finish(commit=True)
        if self._error is not None:
            raise self._error
        return self.path

    def abort(self) -> None:
        """Discard the recording; nothing is left at :attr:`path`."""
        self._finish(commit=False)

    def _finish(self, commit: bool) -> None:
        if self._thread.is_alive():
            self._queue.put(commit)
            self._thread.join()
