"""Training frames from ROS bags (rosbag1, rosbag2 sqlite3 or mcap) via ``rosbags``.

Visible and thermal ``sensor_msgs/Image`` (or ``CompressedImage``) messages are paired by
header stamp with the node's :class:`~lutfuse_ros.sync.ApproximateTimePairer` and its
:class:`~lutfuse_ros.settings.node_settings.SyncSettings` (``config/fuse.yaml``'s ``sync.*``
unless the source overrides slop, offset or queue size) and converted with :mod:`lutfuse_ros.raw_image`, the array layer of the node's own
conversions (no ROS import), so a bag recorded from the robot trains a model on exactly what the
node will see, on a machine without ROS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from lutfuse_ros.errors import ConfigError, InputError
from lutfuse_ros.raw_image import image_to_array, thermal_to_array, visible_to_bgr
from lutfuse_ros.settings.node_settings import SyncSettings, parse_sync_settings
from lutfuse_ros.sync import ApproximateTimePairer
from lutfuse_ros.training.datasets.frames import SequentialSource

LOG = logging.getLogger(__name__)
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


class RosbagSource(SequentialSource):
    """Paired frames of two image topics of a bag.

    Args:
        path: a rosbag2 folder (sqlite3 or mcap storage), a ``.mcap``/``.db3`` storage file
            (inside one, or alone when the recording never wrote its ``metadata.yaml``), or a
            rosbag1 ``.bag`` file.
        visible_topic: visible camera topic.
        thermal_topic: thermal camera topic.
        sync: pairing settings (default: the node's defaults).
        every: keep every N-th pair.
        max_frames: keep at most this many pairs.
        label: key prefix (default: the bag's name).

    Raises:
        InputError: missing bag (here); when the frames are first read: an unreadable
            (truncated, corrupt) bag, missing topics, or a topic that is not an image topic.
    """

    def __init__(self, path: str | Path, visible_topic: str, thermal_topic: str,
                 sync: SyncSettings | None = None, every: int = 1,
                 max_frames: int | None = None, label: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"rosbag {self.path} not found")
        self.label = label or self.path.stem
        self.visible_topic, self.thermal_topic = visible_topic, thermal_topic
        self.sync = sync if sync is not None else parse_sync_settings()
        self.every, self.max_frames = every, max_frames
        self.counters: dict[str, int] = {}

    def _bag_paths(self) -> list[Path]:
        """What ``AnyReader`` opens.

        The rosbag2 folder of a storage file when it has its ``metadata.yaml`` (split
        recordings), else the file itself (an interrupted recording without metadata) or the
        given folder / rosbag1 file.
        """
        if (self.path.is_file() and self.path.suffix in (".mcap", ".db3")
                and (self.path.parent / "metadata.yaml").is_file()):
            return [self.path.parent]
        return [self.path]

    def iterate(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield the kept pairs; every failure of the bag itself becomes an InputError.

        Raises:
            InputError: the bag cannot be opened or read (truncated, corrupt, not a bag), a
                topic is missing or not an image topic, or a message cannot be deserialised.
            ConversionError: an image message's fields are inconsistent.
        """
        try:
            from rosbags.highlevel import AnyReader
            from rosbags.typesys import Stores, get_typestore
        except ImportError as error:
            raise ConfigError("rosbag sources need the 'rosbags' package (pip install "
                              "'lutfuse_ros[bag]')") from error
        try:
            reader = AnyReader(self._bag_paths(), default_typestore=get_typestore(Stores.LATEST))
            reader.open()
        except Exception as error:  # AnyReaderError, apsw/sqlite and mcap errors, OSError
            raise InputError(f"cannot open rosbag {self.path}: {type(error).__name__}: {error} "
                             "(truncated, corrupt or not a bag?)") from error
        try:
            yield from self._pairs(reader)
        finally:
            reader.close()

    def _pairs(self, reader) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Pair and decode the messages of an open reader."""
        pairer = self.sync.make_pairer(allow_message_filters=False)
        kept = 0
        paired = 0
        connections = self._connections(reader)
        for connection, stamp, item in self._read(reader, list(connections.values())):
            if connection.topic == self.visible_topic:
                pairs = pairer.add_visible(stamp, item)
            else:
                pairs = pairer.add_thermal(stamp, item)
            for pair in pairs:
                index = paired
                paired += 1
                if index % self.every:
                    continue
                visible = _decode(*pair.visible, visible=True)
                thermal = _decode(*pair.thermal, visible=False)
                yield f"{self.label}/{pair.visible_stamp_ns}", visible, thermal
                kept += 1
                if self.max_frames is not None and kept >= self.max_frames:
                    self._record(pairer, paired, kept)
                    return
        self._record(pairer, paired, kept)

    def _read(self, reader, connections: list) -> Iterator[tuple[object, int, tuple]]:
        """``(connection, stamp_ns, (message, msgtype))`` in bag order, read errors wrapped."""
        messages = reader.messages(connections=connections)
        while True:
            try:
                connection, log_time, raw = next(messages)
                message = reader.deserialize(raw, connection.msgtype)
            except StopIteration:
                return
            except Exception as error:  # storage and deserialisation errors of many types
                raise InputError(f"cannot read rosbag {self.path}: {type(error).__name__}: "
                                 f"{error} (truncated or corrupt?)") from error
            yield connection, _stamp_ns(message, log_time), (message, connection.msgtype)

    def _connections(self, reader) -> dict[str, object]:
        found = {}
        for connection in reader.connections:
            if connection.topic in (self.visible_topic, self.thermal_topic):
                if connection.msgtype not in IMAGE_TYPES:
                    raise InputError(f"topic {connection.topic} in {self.path} carries "
                                     f"{connection.msgtype}, not an image type {IMAGE_TYPES}")
                found.setdefault(connection.topic, connection)
        missing = [t for t in (self.visible_topic, self.thermal_topic) if t not in found]
        if missing:
            topics = sorted({c.topic for c in reader.connections})
            raise InputError(f"rosbag {self.path} has no topic {', '.join(missing)}; it has: "
                             f"{', '.join(topics)}")
        return found

    def _record(self, pairer: ApproximateTimePairer, paired: int, kept: int) -> None:
        counters = pairer.counters
        self.counters = {"pairs": paired, "kept": kept,
                         **{k: int(v) for k, v in vars(counters).items()
                            if isinstance(v, (int, np.integer))}}
        LOG.info("rosbag %s: %d pairs, kept %d (every %d)", self.path, paired, kept, self.every)

    def describe(self) -> dict:
        return {"kind": "rosbag", "label": self.label, "path": str(self.path),
                "visible_topic": self.visible_topic, "thermal_topic": self.thermal_topic,
                "slop": self.sync.slop, "offset": self.sync.thermal_offset,
                "queue_size": self.sync.queue_size, "every": self.every,
                "max_frames": self.max_frames, "frames": len(self.keys()),
                "pairing": self.counters}


def _stamp_ns(message, log_time: int) -> int:
    stamp = getattr(getattr(message, "header", None), "stamp", None)
    if stamp is None:
        return int(log_time)
    value = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
    return value if value > 0 else int(log_time)


def _decode(message, msgtype: str, visible: bool) -> np.ndarray:
    """A deserialised image message -> BGR/gray (visible) or uint8/uint16 gray (thermal)."""
    if msgtype.endswith("CompressedImage"):
        flags = cv2.IMREAD_COLOR if visible else cv2.IMREAD_UNCHANGED
        image = cv2.imdecode(np.frombuffer(bytes(message.data), np.uint8), flags)
        if image is None:
            raise InputError(f"cannot decode a {message.format!r} CompressedImage")
        if not visible and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return image
    array, encoding = image_to_array(message)
    converted = visible_to_bgr(array, encoding) if visible else thermal_to_array(array, encoding)
    return np.array(converted, copy=True)
